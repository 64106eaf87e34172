//! The dead-letter queue as operators see it: listing its messages without consuming them,
//! and moving them back to the work queue (all of them, or those of one reason).
//!
//! SQS has no "peek": a message is read by receiving it, which hides it for a visibility
//! timeout. Listing therefore receives every message once (holding each for `HOLD`), then
//! makes them all visible again at once (`ChangeMessageVisibilityBatch` to 0), so the queue
//! is as it was, apart from each message's receive count.
//!
//! Redriving one by one sends each message's body to the work queue and only then deletes it
//! from the DLQ: a crash in between leaves a copy in both queues (the worker is idempotent, so
//! the copy is harmless), never a message in neither. Within one redrive every message id is
//! handled once, even if SQS hands it out twice.
//!
//! The DLQ can hold the same message twice: SQS is at-least-once, a `SendMessage` the SDK
//! retries after a lost answer is stored twice, and a worker whose manifest write failed after
//! forwarding forwards again on the redelivery (forwarding first, recording second, so that a
//! crash never loses the letter). Such copies have the same reason and the same body: listing
//! marks every copy after the first as a [`DeadLetter::duplicate_of`] it, counts and reports
//! group only the originals, and a redrive sends each body once and deletes its copies, so
//! duplicates collapse instead of multiplying round after round.

use super::classify;
use crate::error::PortError;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How long a listed or redriven message stays hidden while we work through the queue. Long
/// enough for a large DLQ to be read to the end before the first messages reappear.
const HOLD_SECONDS: i32 = 300;

/// Empty receives in a row after which a queue still reporting visible messages is taken as
/// read to the end (its count is approximate and can lag).
const EMPTY_ROUNDS: u32 = 5;

/// `reason` of a message the queue's redrive policy moved (the worker never forwarded it):
/// its retries ran out, and the manifest's `last_error` says why.
pub const EXHAUSTED: &str = "exhausted_retries";

/// One DLQ message, as listed (`dlq list --json` prints these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub message_id: String,
    /// `missing`, `rejected` (forwarded by the worker) or [`EXHAUSTED`].
    pub reason: String,
    pub detail: Option<String>,
    /// The manifest key (`attachment:42`), from the attribute or the body.
    pub source_key: Option<String>,
    /// The legacy path the message carries.
    pub legacy_path: Option<String>,
    pub area: Option<String>,
    pub ids: BTreeMap<String, u64>,
    /// Deliveries so far (SQS's ApproximateReceiveCount, listing included).
    pub receive_count: u32,
    /// When it entered the DLQ (ms since the epoch, SQS's SentTimestamp).
    pub sent_ms: u64,
    /// The message id of an earlier listed message with the same reason and body, when this one
    /// is a copy of it (see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    #[serde(skip)]
    pub body: String,
    #[serde(skip)]
    receipt_handle: String,
}

impl DeadLetter {
    /// What makes two messages copies of each other: the reason and the exact body.
    fn content_key(&self) -> [u8; 32] {
        let mut h = crate::hashing::Sha256::new();
        h.update(self.reason.as_bytes());
        h.update(&[0]);
        h.update(self.body.as_bytes());
        h.finish()
    }

    fn from_message(m: &Message) -> Self {
        let attr = |name: &str| m.message_attributes().and_then(|a| a.get(name)).and_then(|v| v.string_value()).map(str::to_string);
        let body = m.body().unwrap_or_default().to_string();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        let source_key = attr("source_key").filter(|k| !k.is_empty()).or_else(|| crate::message::FileMessage::salvage_source_key(&body));
        let ids = parsed
            .get("ids")
            .and_then(|v| v.as_object())
            .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_u64()?))).collect())
            .unwrap_or_default();
        let receive_count = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let sent_ms = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        DeadLetter {
            sent_ms,
            message_id: m.message_id().unwrap_or_default().to_string(),
            reason: attr("reason").filter(|r| !r.is_empty()).unwrap_or_else(|| EXHAUSTED.to_string()),
            detail: attr("detail").filter(|d| d != "-"),
            source_key,
            legacy_path: parsed.get("legacy_path").and_then(|v| v.as_str()).map(str::to_string),
            area: parsed.get("area").and_then(|v| v.as_str()).map(str::to_string),
            ids,
            receive_count,
            duplicate_of: None,
            body,
            receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
        }
    }
}

/// What [`DeadLetterQueue::walk`] does with a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    /// Keep it in the DLQ: made visible again when the walk ends.
    Hold,
    /// It was deleted.
    Consumed,
}

/// The DLQ and the work queue it drains back into.
#[derive(Clone)]
pub struct DeadLetterQueue {
    client: Client,
    dlq_url: String,
    queue_url: String,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redriven {
    /// Messages sent back to the work queue (and deleted from the DLQ), by reason.
    pub moved: BTreeMap<String, u64>,
    /// Messages left in the DLQ because their reason was not asked for.
    pub left: u64,
    /// Copies of a moved message (same reason and body) deleted without being sent again.
    pub duplicates_deleted: u64,
    /// `StartMessageMoveTask`'s handle, when SQS moved everything itself.
    pub move_task: Option<String>,
}

impl DeadLetterQueue {
    pub fn new(client: Client, dlq_url: impl Into<String>, queue_url: impl Into<String>) -> Self {
        Self { client, dlq_url: dlq_url.into(), queue_url: queue_url.into() }
    }

    /// Receives the next batch (up to 10), hiding it for [`HOLD_SECONDS`]. Empty means drained
    /// only once [`DeadLetterQueue::drained`] agrees.
    async fn receive(&self) -> Result<Vec<Message>, PortError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(HOLD_SECONDS)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| classify("sqs receive from DLQ", e))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Makes held messages visible again, ten per call.
    async fn release(&self, receipt_handles: &[String]) -> Result<(), PortError> {
        for chunk in receipt_handles.chunks(10) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("sqs change_message_visibility_batch on DLQ", e))?;
            if let Some(failed) = out.failed().first() {
                return Err(PortError::retryable(
                    "sqs change_message_visibility_batch on DLQ",
                    format!("{} message(s) not made visible again (first: {})", out.failed().len(), failed.message().unwrap_or_default()),
                ));
            }
        }
        Ok(())
    }

    /// Whether an empty receive means the queue has nothing left for us: SQS may answer empty
    /// while messages remain (it samples its servers), so an empty answer ends the loop only
    /// when the queue reports nothing visible, or after [`EMPTY_ROUNDS`] empty answers in a row.
    async fn drained(&self, empty_rounds: &mut u32) -> Result<bool, PortError> {
        *empty_rounds += 1;
        let (visible, _) = super::sqs::queue_depth(&self.client, &self.dlq_url).await?;
        Ok(visible == 0 || *empty_rounds >= EMPTY_ROUNDS)
    }

    /// Receives every message once (SQS may hand one out twice: `visit` sees each delivery)
    /// and hands it to `visit`; the messages `visit` holds are made visible again at the end,
    /// also when a receive or `visit` failed part-way.
    async fn walk(&self, mut visit: impl AsyncFnMut(DeadLetter) -> Result<Visit, PortError>) -> Result<(), PortError> {
        let mut held = Vec::new();
        let mut empty_rounds = 0;
        let result = async {
            loop {
                let batch = self.receive().await?;
                if batch.is_empty() {
                    if self.drained(&mut empty_rounds).await? {
                        return Ok::<(), PortError>(());
                    }
                    continue;
                }
                empty_rounds = 0;
                for m in &batch {
                    let letter = DeadLetter::from_message(m);
                    let handle = letter.receipt_handle.clone();
                    if visit(letter).await? == Visit::Hold {
                        held.push(handle);
                    }
                }
            }
        }
        .await;
        self.release(&held).await?;
        result
    }

    /// Every message in the DLQ, without consuming any, in receive order.
    /// Copies of an earlier message are marked [`DeadLetter::duplicate_of`].
    pub async fn list(&self) -> Result<Vec<DeadLetter>, PortError> {
        let mut seen = HashSet::new();
        let mut originals: HashMap<[u8; 32], String> = HashMap::new();
        let mut listed = Vec::new();
        self.walk(async |mut letter: DeadLetter| {
            if seen.insert(letter.message_id.clone()) {
                let first = originals.entry(letter.content_key()).or_insert_with(|| letter.message_id.clone());
                if *first != letter.message_id {
                    letter.duplicate_of = Some(first.clone());
                }
                listed.push(letter);
            }
            Ok(Visit::Hold)
        })
        .await?;
        Ok(listed)
    }

    /// Moves the messages whose reason is `reason` (every message for `None`) back to the work
    /// queue, one by one: send, then delete. The others are made visible again, and so are
    /// messages that arrived after the redrive began (a worker dead-lettering a redriven file
    /// again must not keep the redrive going round).
    ///
    /// A copy of a message already sent in this redrive (same reason and body) is deleted
    /// without being sent: the work queue gets each instruction once.
    pub async fn redrive(&self, reason: Option<&str>) -> Result<Redriven, PortError> {
        let started_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let mut done = HashSet::new();
        let mut sent_contents = HashSet::new();
        let mut redriven = Redriven::default();
        self.walk(async |letter: DeadLetter| {
            if reason.is_some_and(|r| r != letter.reason) || letter.sent_ms > started_ms {
                if done.insert(letter.message_id.clone()) {
                    redriven.left += 1;
                }
                return Ok(Visit::Hold);
            }
            if !done.contains(&letter.message_id) && sent_contents.contains(&letter.content_key()) {
                redriven.duplicates_deleted += 1;
                done.insert(letter.message_id.clone());
            } else if !done.contains(&letter.message_id) {
                self.client
                    .send_message()
                    .queue_url(&self.queue_url)
                    .message_body(&letter.body)
                    .send()
                    .await
                    .map_err(|e| classify("sqs send to work queue (redrive)", e))?;
                *redriven.moved.entry(letter.reason.clone()).or_default() += 1;
                done.insert(letter.message_id.clone());
                sent_contents.insert(letter.content_key());
            }
            self.client
                .delete_message()
                .queue_url(&self.dlq_url)
                .receipt_handle(&letter.receipt_handle)
                .send()
                .await
                .map_err(|e| classify("sqs delete from DLQ (redrive)", e))?;
            Ok(Visit::Consumed)
        })
        .await?;
        Ok(redriven)
    }

    /// Moves every message back with SQS's own `StartMessageMoveTask` (AWS only; the local
    /// emulator does not implement it). Returns the task handle.
    pub async fn start_move_task(&self) -> Result<String, PortError> {
        let arn = |url: &str| {
            let client = self.client.clone();
            let url = url.to_string();
            async move {
                let out = client
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .map_err(|e| classify("sqs get_queue_attributes (QueueArn)", e))?;
                out.attributes
                    .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
                    .ok_or_else(|| PortError::permanent("sqs get_queue_attributes", format!("{url} has no QueueArn")))
            }
        };
        let (source, destination) = (arn(&self.dlq_url).await?, arn(&self.queue_url).await?);
        let out = self
            .client
            .start_message_move_task()
            .source_arn(source)
            .destination_arn(destination)
            .send()
            .await
            .map_err(|e| classify("sqs start_message_move_task", e))?;
        Ok(out.task_handle.unwrap_or_default())
    }
}

/// Listed messages grouped by reason, in reason order; copies ([`DeadLetter::duplicate_of`])
/// are left out, so each group counts distinct messages.
pub fn by_reason(letters: &[DeadLetter]) -> BTreeMap<&str, Vec<&DeadLetter>> {
    let mut groups: BTreeMap<&str, Vec<&DeadLetter>> = BTreeMap::new();
    for l in letters.iter().filter(|l| l.duplicate_of.is_none()) {
        groups.entry(l.reason.as_str()).or_default().push(l);
    }
    groups
}
