//! The work queue (sending, for the inventory) and the dead-letter queue (forwarding, for the
//! worker) over the SQS API.

use super::classify;
use crate::error::PortError;
use crate::model::DeadLetterReason;
use crate::ports::{DeadLetters, Redelivery, WorkQueue};
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use std::time::Duration;

fn attr(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type and value are set")
}

/// The DLQ, for messages the worker settles as missing or rejected.
#[derive(Clone)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn forward(&self, body: &str, reason: DeadLetterReason, detail: &str, source_key: Option<&str>) -> Result<String, PortError> {
        let mut detail = detail.to_string();
        if detail.len() > 1000 {
            let mut end = 1000;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("reason", attr(reason.as_str()))
            .message_attributes("detail", attr(if detail.is_empty() { "-" } else { &detail }));
        if let Some(key) = source_key {
            req = req.message_attributes("source_key", attr(key));
        }
        let out = req.send().await.map_err(|e| classify("sqs forward to DLQ", e))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// Sends work messages in batches of ten, retrying entries SQS refused.
#[derive(Clone)]
pub struct SqsSender {
    client: Client,
    queue_url: String,
}

impl SqsSender {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Sends up to ten bodies in one request; entries that fail are retried a few times and
    /// then reported as an error (the caller does not advance its cursor past them).
    pub async fn send_batch(&self, bodies: &[String]) -> Result<(), PortError> {
        assert!(bodies.len() <= 10, "SQS batches hold at most ten messages");
        let mut pending: Vec<(usize, &String)> = bodies.iter().enumerate().collect();
        for round in 0..6u32 {
            if pending.is_empty() {
                return Ok(());
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(100 << round)).await;
            }
            let entries = pending
                .iter()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body.as_str())
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            let result = self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await;
            match result {
                Ok(out) => {
                    let failed: std::collections::HashSet<String> = out.failed.iter().map(|f| f.id.clone()).collect();
                    for f in &out.failed {
                        if f.sender_fault {
                            return Err(PortError::permanent("sqs send batch", format!("entry refused: {} {}", f.code, f.message.clone().unwrap_or_default())));
                        }
                    }
                    pending.retain(|(i, _)| failed.contains(&i.to_string()));
                }
                Err(e) => {
                    let err = classify("sqs send batch", e);
                    if !err.is_retryable() || round == 5 {
                        return Err(err);
                    }
                }
            }
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(PortError::retryable("sqs send batch", format!("{} entries still failing after retries", pending.len())))
        }
    }

    /// Visible and in-flight message counts.
    pub async fn depth(&self) -> Result<(u64, u64), PortError> {
        queue_depth(&self.client, &self.queue_url).await
    }
}

pub async fn queue_depth(client: &Client, queue_url: &str) -> Result<(u64, u64), PortError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| classify("sqs get_queue_attributes", e))?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

#[async_trait]
impl WorkQueue for SqsSender {
    async fn send_batch(&self, bodies: &[String]) -> Result<(), PortError> {
        SqsSender::send_batch(self, bodies).await
    }
    async fn depth(&self) -> Result<(u64, u64), PortError> {
        SqsSender::depth(self).await
    }
}

/// Changes a received message's visibility timeout on the work queue.
#[derive(Clone)]
pub struct SqsRedelivery {
    client: Client,
    queue_url: String,
}

impl SqsRedelivery {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl Redelivery for SqsRedelivery {
    async fn redeliver_after(&self, receipt_handle: &str, wait: Duration) -> Result<(), PortError> {
        // SQS allows 0..=43200 s.
        let seconds = wait.as_secs().clamp(1, 43_200) as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| classify("sqs change_message_visibility", e))?;
        Ok(())
    }
}
