//! The worker Lambda: SQS-triggered, reading the legacy files from the mounted EFS
//! (`EFS_ROOT`) or a staging bucket (`SOURCE_URI`). Builds its clients and settings once, then
//! answers each batch with the records SQS should retry (ReportBatchItemFailures).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::{AwsClients, Resources};
use shared::source::LegacySource;
use shared::worker::{Worker, WorkerSettings};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let worker = build().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| handle(&worker, event))).await
}

async fn build() -> anyhow::Result<Worker> {
    let resources = Resources::from_env()?;
    let settings = WorkerSettings::from_env()?;
    let clients = AwsClients::from_env().await;
    let source = LegacySource::from_env(&clients.s3)?;
    Ok(shared::wiring::worker(&clients, &resources, settings, Arc::new(source)))
}

async fn handle(worker: &Worker, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let response = worker.handle_batch(event.payload).await;
    shared::metrics::flush(&worker.metrics, "worker");
    Ok(response)
}
