//! Builds the services from clients and configuration, the same way for the Lambda
//! binaries, the CLI and the integration tests.

use crate::adapters::dynamodb::{DynamoDedup, DynamoManifest, DynamoRuns};
use crate::adapters::s3::S3Objects;
use crate::adapters::sqs::{SqsDeadLetters, SqsRedelivery, SqsSender};
use crate::config::{AwsClients, Resources};
use crate::inventory::Inventory;
use crate::paths::PathRules;
use crate::ports::FileSource;
use crate::source::LegacySource;
use crate::worker::{Worker, WorkerPorts, WorkerSettings};
use std::collections::HashMap;
use std::sync::Arc;

pub fn worker(clients: &AwsClients, resources: &Resources, settings: WorkerSettings, source: Arc<dyn FileSource>) -> Worker {
    let ports = WorkerPorts {
        manifest: Arc::new(DynamoManifest::new(clients.dynamodb.clone(), &resources.manifest_table)),
        dedup: Arc::new(DynamoDedup::new(clients.dynamodb.clone(), &resources.dedup_table)),
        objects: Arc::new(S3Objects::new(clients.s3.clone(), &resources.bucket)),
        dead_letters: Arc::new(SqsDeadLetters::new(clients.sqs.clone(), &resources.dlq_url)),
        source,
        redelivery: Some(Arc::new(SqsRedelivery::new(clients.sqs.clone(), &resources.queue_url))),
    };
    Worker::new(settings, ports)
}

pub struct InventoryOptions {
    pub page_size: u32,
    pub send_concurrency: usize,
    pub max_queue_depth: Option<u64>,
}

impl Default for InventoryOptions {
    fn default() -> Self {
        Self { page_size: 1000, send_concurrency: 16, max_queue_depth: None }
    }
}

pub fn inventory(
    clients: &AwsClients,
    resources: &Resources,
    legacy: sqlx::MySqlPool,
    accounts: HashMap<u64, String>,
    rules: PathRules,
    source: Option<LegacySource>,
    options: InventoryOptions,
) -> Inventory {
    Inventory {
        legacy,
        accounts,
        rules,
        manifest: Arc::new(DynamoManifest::new(clients.dynamodb.clone(), &resources.manifest_table)),
        queue: Arc::new(SqsSender::new(clients.sqs.clone(), &resources.queue_url)),
        runs: Arc::new(DynamoRuns::new(clients.dynamodb.clone(), &resources.runs_table)),
        page_size: options.page_size,
        send_concurrency: options.send_concurrency,
        max_queue_depth: options.max_queue_depth,
        source,
    }
}

pub fn manifest(clients: &AwsClients, resources: &Resources) -> DynamoManifest {
    DynamoManifest::new(clients.dynamodb.clone(), &resources.manifest_table)
}

/// The DLQ as operators list and redrive it, draining back into the work queue.
pub fn dead_letter_queue(clients: &AwsClients, resources: &Resources) -> crate::adapters::dlq::DeadLetterQueue {
    crate::adapters::dlq::DeadLetterQueue::new(clients.sqs.clone(), &resources.dlq_url, &resources.queue_url)
}
