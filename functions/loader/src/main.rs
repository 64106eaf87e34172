//! The loader Lambda: invoked once per migration step with
//! `{"step": "<name>", "dry_run": bool, "cursor": <opaque or null>, "rollback": bool}`; answers
//! `{"step", "done", "cursor", "counts", "outputs"}` and stops before its deadline so the
//! caller invokes it again with the cursor. With `rollback`, `step` names the steps to undo.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::AwsClients;
use shared::loader::runner::{LoadRequest, LoadResponse, Loader, LoaderMappings};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let deps = build().await?;
    run(service_fn(|event: LambdaEvent<LoadRequest>| handle(&deps, event))).await
}

fn required(name: &str) -> anyhow::Result<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| anyhow::anyhow!("{name} is not set"))
}

/// Built once per execution environment; the mappings are not: they are read per invocation,
/// because `id_mapping_coi_profiles.csv` appears between invocations (Area 6 runs later) and a
/// warm function must see it when `requirements-groups` is rerun to fill the COI profiles.
struct Deps {
    loader: Loader,
    clients: AwsClients,
    mappings_dir: String,
}

async fn build() -> anyhow::Result<Deps> {
    let shared_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = AwsClients::from_shared(&shared_config);
    let secrets = aws_sdk_secretsmanager::Client::new(&shared_config);
    // Small pools: every concurrent invocation holds its own connections.
    let legacy = shared::legacy::connect_with_secret(&secrets, &required("LEGACY_DATABASE_SECRET_ARN")?, 2).await?;
    let target = shared::loader::connect::target_from_secret(&secrets, &required("TARGET_DATABASE_SECRET_ARN")?, 2).await?;
    let mappings_dir = required("MAPPINGS_DIR")?;
    let chunk_rows = match std::env::var("CHUNK_ROWS") {
        Ok(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| anyhow::anyhow!("CHUNK_ROWS must be a positive number, not {v:?}"))?,
        Err(_) => 5000,
    };
    let objects = shared::adapters::s3::S3Objects::new(clients.s3.clone(), required("BUCKET_NAME")?);
    let loader = Loader {
        legacy,
        target,
        mappings: LoaderMappings::default(),
        reports: shared::loader::output::ReportSink::new(&required("REPORT_DIR")?, &clients.s3),
        chunk_rows,
        objects: Some(std::sync::Arc::new(objects)),
    };
    Ok(Deps { loader, clients, mappings_dir })
}

async fn handle(deps: &Deps, event: LambdaEvent<LoadRequest>) -> Result<LoadResponse, Error> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let deadline = Instant::now() + Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
    let started = Instant::now();
    let loader = Loader { mappings: LoaderMappings::load(&deps.clients.s3, &deps.mappings_dir).await?, ..deps.loader.clone() };
    let response = loader.run_until(&event.payload, Some(deadline)).await?;
    let metrics = shared::metrics::Recorder::default();
    use shared::metrics::Unit;
    // Rows read: the steps count them as `<entity>_read` (or `rows_read`).
    let read: u64 = response.counts.iter().filter(|(k, _)| k.ends_with("_read")).map(|(_, n)| n).sum();
    metrics.add("LoaderRowsRead", Unit::Count, read as f64);
    metrics.add("LoaderIssues", Unit::Count, response.counts.get("issues").copied().unwrap_or(0) as f64);
    metrics.sample("LoaderInvocationTime", Unit::Milliseconds, started.elapsed().as_secs_f64() * 1000.0);
    shared::metrics::flush(&metrics, "loader");
    Ok(response)
}
