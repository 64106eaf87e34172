//! The local stack: creates the bucket, queues and tables on an emulator, and an event-source
//! mapping that polls SQS the way Lambda does and calls the worker handler with `SqsEvent`s.

use crate::adapters::classify;
use crate::config::{AwsClients, Resources};
use crate::error::PortError;
use crate::worker::Worker;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Creates (idempotently) everything the template would deploy, on a local endpoint.
/// Returns the resources with the queue URLs the endpoint reports.
pub async fn provision(clients: &AwsClients, prefix: &str, max_receive_count: u32, visibility_timeout_s: u32) -> Result<Resources, PortError> {
    let mut res = Resources::local(prefix, "http://unused");
    match clients.s3.create_bucket().bucket(&res.bucket).send().await {
        Ok(_) => {}
        Err(e) => {
            let code = crate::adapters::service_code(&e).map(|(c, _)| c).unwrap_or_default();
            if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
                return Err(classify("create bucket", e));
            }
        }
    }
    let dlq_attributes = HashMap::from([(QueueAttributeName::MessageRetentionPeriod, "1209600".to_string())]);
    res.dlq_url = ensure_queue(clients, &format!("{prefix}-dlq"), dlq_attributes).await?;
    let dlq_arn = queue_arn(clients, &res.dlq_url).await?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()}).to_string();
    let work_attributes = HashMap::from([
        (QueueAttributeName::VisibilityTimeout, visibility_timeout_s.to_string()),
        (QueueAttributeName::MessageRetentionPeriod, "345600".to_string()),
        (QueueAttributeName::RedrivePolicy, redrive),
    ]);
    res.queue_url = ensure_queue(clients, &format!("{prefix}-work"), work_attributes).await?;
    for (table, key) in [(&res.manifest_table, "source_key"), (&res.dedup_table, "dedup_key"), (&res.runs_table, "run_id")] {
        let created = clients
            .dynamodb
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(AttributeDefinition::builder().attribute_name(key).attribute_type(ScalarAttributeType::S).build().expect("complete"))
            .key_schema(KeySchemaElement::builder().attribute_name(key).key_type(KeyType::Hash).build().expect("complete"))
            .send()
            .await;
        if let Err(e) = created {
            let code = crate::adapters::service_code(&e).map(|(c, _)| c).unwrap_or_default();
            if code != "ResourceInUseException" {
                return Err(classify("create table", e));
            }
        }
    }
    Ok(res)
}

/// Creates the queue, or brings an existing one to the requested attributes (SQS refuses a
/// CreateQueue whose attributes differ from the existing queue's).
async fn ensure_queue(clients: &AwsClients, name: &str, attributes: HashMap<QueueAttributeName, String>) -> Result<String, PortError> {
    let created = clients.sqs.create_queue().queue_name(name).set_attributes(Some(attributes.clone())).send().await;
    match created {
        Ok(out) => Ok(out.queue_url.unwrap_or_default()),
        Err(e) if crate::adapters::service_code(&e).is_some_and(|(code, _)| code.contains("QueueNameExists") || code.contains("QueueAlreadyExists")) => {
            let url = clients
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| classify("get queue url", e))?
                .queue_url
                .unwrap_or_default();
            clients
                .sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| classify("set queue attributes", e))?;
            Ok(url)
        }
        Err(e) => Err(classify("create queue", e)),
    }
}

pub async fn queue_arn(clients: &AwsClients, url: &str) -> Result<String, PortError> {
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| classify("queue arn", e))?;
    out.attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| PortError::permanent("queue arn", format!("no ARN for {url}")))
}

/// Lambda's SQS event source mapping, locally: `pollers` loops each receive up to
/// `batch_size` messages (long polling), hand them to the worker as one `SqsEvent`, and
/// delete exactly the records the handler did not report as failures. Failed records
/// become visible again after the queue's visibility timeout, and the queue's redrive
/// policy moves them to the DLQ after maxReceiveCount, as on AWS.
pub struct LocalEventSource {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub pollers: usize,
    pub worker: Arc<Worker>,
}

#[derive(Debug, Default)]
pub struct PollStats {
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub retried: AtomicU64,
}

impl LocalEventSource {
    /// Polls until `stop` is set and the queue has been empty (visible and in flight) for a
    /// moment, or until `stop` is set and `drain` is false.
    pub async fn run(&self, stop: Arc<AtomicBool>, stats: Arc<PollStats>) -> Result<(), PortError> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.pollers.max(1) {
            let this = self.clone_parts();
            let stop = stop.clone();
            let stats = stats.clone();
            tasks.spawn(async move { this.poll_loop(stop, stats).await });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| PortError::permanent("local poller", e))??;
        }
        Ok(())
    }

    fn clone_parts(&self) -> LocalEventSource {
        LocalEventSource {
            sqs: self.sqs.clone(),
            queue_url: self.queue_url.clone(),
            queue_arn: self.queue_arn.clone(),
            batch_size: self.batch_size,
            pollers: 1,
            worker: self.worker.clone(),
        }
    }

    async fn poll_loop(&self, stop: Arc<AtomicBool>, stats: Arc<PollStats>) -> Result<(), PortError> {
        let mut empty_polls = 0u32;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.batch_size.clamp(1, 10))
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| classify("local poll receive", e))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                if stop.load(Ordering::SeqCst) {
                    let (visible, in_flight) = crate::adapters::sqs::queue_depth(&self.sqs, &self.queue_url).await?;
                    empty_polls = if visible == 0 && in_flight == 0 { empty_polls + 1 } else { 0 };
                    if empty_polls >= 2 {
                        return Ok(());
                    }
                }
                continue;
            }
            empty_polls = 0;
            let receipts: HashMap<String, String> = messages
                .iter()
                .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
                .collect();
            let event = self.to_event(messages);
            let count = event.records.len() as u64;
            let response = self.worker.handle_batch(event).await;
            let failed: std::collections::HashSet<String> =
                response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.records.fetch_add(count, Ordering::Relaxed);
            stats.retried.fetch_add(failed.len() as u64, Ordering::Relaxed);
            let to_delete: Vec<_> = receipts
                .iter()
                .filter(|(id, _)| !failed.contains(*id))
                .map(|(id, handle)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_"))
                        .receipt_handle(handle)
                        .build()
                        .expect("id and handle are set")
                })
                .collect();
            if !to_delete.is_empty() {
                let out = self
                    .sqs
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(to_delete))
                    .send()
                    .await
                    .map_err(|e| classify("local poll delete", e))?;
                if !out.failed.is_empty() {
                    // Undeleted messages come back after the visibility timeout and the
                    // idempotent worker settles them again; say so instead of hiding it.
                    tracing::warn!(failed = out.failed.len(), "some processed messages could not be deleted; they will be redelivered");
                }
            }
        }
    }

    fn to_event(&self, messages: Vec<aws_sdk_sqs::types::Message>) -> SqsEvent {
        let mut event = SqsEvent::default();
        for m in messages {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(self.queue_arn.clone());
            record.aws_region = Some("us-east-1".into());
            if let Some(attrs) = m.attributes {
                record.attributes = attrs.into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect();
            }
            event.records.push(record);
        }
        event
    }
}

/// Waits until the queue's visible and in-flight counts are both zero.
pub async fn wait_drained(sqs: &aws_sdk_sqs::Client, url: &str, timeout: Duration) -> Result<bool, PortError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (v, f) = crate::adapters::sqs::queue_depth(sqs, url).await?;
        if v == 0 && f == 0 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// What a local move did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MoveRun {
    pub inventory: crate::inventory::InventoryCounts,
    pub batches: u64,
    pub deliveries: u64,
    pub retried_deliveries: u64,
    pub elapsed_s: f64,
}

/// The whole file move, locally: the inventory sends while the pollers already work (as on
/// AWS, which also keeps the emulator's queue shallow), then the pollers drain the queue.
pub async fn run_move(
    inventory: &crate::inventory::Inventory,
    request: &crate::inventory::InventoryRequest,
    esm: LocalEventSource,
) -> Result<MoveRun, LocalError> {
    let started = std::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(PollStats::default());
    let pollers = {
        let (stop, stats) = (stop.clone(), stats.clone());
        tokio::spawn(async move { esm.run(stop, stats).await })
    };
    let inventory_result = inventory.run(request, None).await;
    stop.store(true, Ordering::SeqCst);
    let polled = pollers.await.map_err(|e| PortError::permanent("local pollers", e))?;
    let response = inventory_result?;
    polled?;
    Ok(MoveRun {
        inventory: response.totals,
        batches: stats.batches.load(Ordering::Relaxed),
        deliveries: stats.records.load(Ordering::Relaxed),
        retried_deliveries: stats.retried.load(Ordering::Relaxed),
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

