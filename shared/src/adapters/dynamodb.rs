//! The manifest and the dedup claims in DynamoDB, through conditional writes.

use super::{classify, service_code};
use crate::error::PortError;
use crate::manifest::{ManifestRecord, Outcome};
use crate::message::{FileMessage, LegacyIds};
use crate::model::FileStatus;
use crate::ports::{ClaimAttempt, ClaimState, DedupStore, ManifestStore, RunState, RunStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> Option<T> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn is_conditional_failure<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    R: super::HttpStatus,
{
    service_code(err).is_some_and(|(code, _)| code == "ConditionalCheckFailedException")
}

/// Builds an UpdateItem expression from parts, with placeholder names for every attribute
/// (several of ours, like `status` and `size`, are DynamoDB reserved words).
#[derive(Default)]
struct Update {
    sets: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }
    fn set(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let name = self.name(attr);
        self.values.insert(format!(":{attr}"), value);
        self.sets.push(format!("{name} = :{attr}"));
        self
    }
    fn set_if_absent(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let name = self.name(attr);
        self.values.insert(format!(":{attr}"), value);
        self.sets.push(format!("{name} = if_not_exists({name}, :{attr})"));
        self
    }
    fn set_opt(&mut self, attr: &str, value: Option<AttributeValue>) -> &mut Self {
        match value {
            Some(v) => self.set(attr, v),
            None => self.remove(attr),
        }
    }
    fn remove(&mut self, attr: &str) -> &mut Self {
        let name = self.name(attr);
        self.removes.push(name);
        self
    }
    fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.to_string(), value);
        self
    }
    fn expression(&self) -> String {
        let mut e = String::new();
        if !self.sets.is_empty() {
            e.push_str("SET ");
            e.push_str(&self.sets.join(", "));
        }
        if !self.removes.is_empty() {
            e.push_str(" REMOVE ");
            e.push_str(&self.removes.join(", "));
        }
        e
    }
}

/// The manifest table: partition key `source_key`.
#[derive(Clone)]
pub struct DynamoManifest {
    client: Client,
    table: String,
}

impl DynamoManifest {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    async fn update(&self, key: &str, u: &Update, condition: Option<&str>, op: &'static str) -> Result<Option<Item>, PortError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_key", s(key))
            .update_expression(u.expression())
            .set_expression_attribute_names(Some(u.names.clone()))
            .return_values(ReturnValue::AllNew);
        if !u.values.is_empty() {
            req = req.set_expression_attribute_values(Some(u.values.clone()));
        }
        if let Some(c) = condition {
            req = req.condition_expression(c);
        }
        match req.send().await {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e) if is_conditional_failure(&e) => Ok(None),
            Err(e) => Err(classify(op, e)),
        }
    }
}

pub(crate) fn record_from_item(item: &Item) -> ManifestRecord {
    ManifestRecord {
        source_key: get_s(item, "source_key").unwrap_or_default(),
        area: get_s(item, "area").and_then(|a| a.parse().ok()),
        account_id: get_s(item, "account_id"),
        legacy_path: get_s(item, "legacy_path").unwrap_or_default(),
        resolved_path: get_s(item, "resolved_path"),
        generation: get_s(item, "generation"),
        resolved_via: get_s(item, "resolved_via"),
        s3_key: get_s(item, "s3_key"),
        content_hash: get_s(item, "content_hash"),
        file_uid: get_s(item, "file_uid"),
        uid_ts: get_s(item, "uid_ts"),
        size: get_n(item, "size"),
        ids: LegacyIds {
            customer_id: get_n(item, "customer_id"),
            certificate_id: get_n(item, "certificate_id"),
            document_id: get_n(item, "document_id"),
            repo_file_id: get_n(item, "repo_file_id"),
            attachment_id: get_n(item, "attachment_id"),
        },
        original_filename: get_s(item, "original_filename").unwrap_or_default(),
        legacy_status: get_s(item, "legacy_status"),
        status: get_s(item, "status").and_then(|st| st.parse().ok()),
        attempts: get_n(item, "attempts").unwrap_or(0),
        last_error: get_s(item, "last_error"),
        dedup_of: get_s(item, "dedup_of"),
        dlq_for_message: get_s(item, "dlq_for_message"),
        first_attempt_at: get_s(item, "first_attempt_at"),
        completed_at: get_s(item, "completed_at"),
    }
}

/// DynamoDB refuses empty strings in key attributes only, but an empty value carries no
/// information: store absent instead.
fn non_empty(v: &str) -> Option<AttributeValue> {
    (!v.is_empty()).then(|| s(v))
}

/// Long error texts are cut so a row stays far below DynamoDB's 400 KB item limit.
fn clip(text: &str) -> String {
    const MAX: usize = 2000;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

const NOT_STORED: &str = "attribute_not_exists(#status) OR NOT (#status IN (:moved, :deduplicated))";

#[async_trait]
impl ManifestStore for DynamoManifest {
    async fn begin(&self, m: &FileMessage, uid_ts_candidate: &str, now: &str) -> Result<ManifestRecord, PortError> {
        let mut u = Update::default();
        u.set("area", s(m.area.as_str()))
            .set("legacy_path", s(&m.legacy_path))
            .set_opt("original_filename", non_empty(&m.original_filename))
            .set_opt("account_id", m.account_id.as_deref().and_then(non_empty))
            .set_opt("legacy_status", m.legacy_status.as_deref().and_then(non_empty))
            .set_if_absent("uid_ts", s(uid_ts_candidate))
            .set_if_absent("first_attempt_at", s(now))
            .set_if_absent("status", s(FileStatus::InProgress.as_str()))
            .set_if_absent("attempts", n(0));
        for (attr, id) in [
            ("customer_id", m.ids.customer_id),
            ("certificate_id", m.ids.certificate_id),
            ("document_id", m.ids.document_id),
            ("repo_file_id", m.ids.repo_file_id),
            ("attachment_id", m.ids.attachment_id),
        ] {
            u.set_opt(attr, id.map(n));
        }
        let item = self
            .update(&m.source.key(), &u, None, "manifest begin")
            .await?
            .expect("an unconditional update cannot fail its condition");
        Ok(record_from_item(&item))
    }

    async fn record(&self, key: &str, outcome: &Outcome) -> Result<bool, PortError> {
        let mut u = Update::default();
        u.set("status", s(outcome.status().as_str()));
        let condition = match outcome {
            Outcome::Stored {
                resolution,
                s3_key,
                content_hash,
                file_uid,
                size,
                dedup_of,
                attempts,
                completed_at,
                ..
            } => {
                u.set("resolved_path", s(&resolution.resolved_path))
                    .set("generation", s(&resolution.generation))
                    .set("resolved_via", s(&resolution.via))
                    .set("s3_key", s(s3_key))
                    .set("content_hash", s(content_hash))
                    .set("file_uid", s(file_uid))
                    .set("size", n(size))
                    .set("attempts", n(attempts))
                    .set_opt("dedup_of", dedup_of.as_deref().map(s))
                    .set_if_absent("completed_at", s(completed_at))
                    .remove("last_error")
                    .remove("dlq_for_message");
                None
            }
            Outcome::Missing { tried, attempts, dlq_for_message } => {
                u.set("last_error", s(clip(&format!("missing: tried {}", tried.join(", ")))))
                    .set("attempts", n(attempts))
                    .set_opt("dlq_for_message", dlq_for_message.as_deref().map(s));
                Some(NOT_STORED)
            }
            Outcome::Rejected { reason, attempts, dlq_for_message } => {
                u.set("last_error", s(clip(reason)))
                    .set("attempts", n(attempts))
                    .set_opt("dlq_for_message", dlq_for_message.as_deref().map(s));
                Some(NOT_STORED)
            }
            Outcome::Failed { error, attempts } => {
                u.set("last_error", s(clip(error))).set("attempts", n(attempts));
                Some(NOT_STORED)
            }
        };
        if condition.is_some() {
            u.value(":moved", s(FileStatus::Moved.as_str()))
                .value(":deduplicated", s(FileStatus::Deduplicated.as_str()));
        }
        Ok(self.update(key, &u, condition, "manifest record").await?.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<ManifestRecord>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("source_key", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("manifest get", e))?;
        Ok(out.item.as_ref().map(record_from_item))
    }

    async fn statuses(&self, keys: &[String]) -> Result<HashMap<String, FileStatus>, PortError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending: Vec<Item> = chunk.iter().map(|k| HashMap::from([("source_key".to_string(), s(k))])).collect();
            let mut round = 0u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending.clone()))
                    .projection_expression("source_key, #status")
                    .expression_attribute_names("#status", "status")
                    .build()
                    .map_err(|e| PortError::permanent("manifest statuses", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| classify("manifest statuses", e))?;
                for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    if let (Some(k), Some(st)) = (get_s(&item, "source_key"), get_s(&item, "status")) {
                        if let Ok(st) = st.parse() {
                            found.insert(k, st);
                        }
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    round += 1;
                    if round > 8 {
                        return Err(PortError::retryable("manifest statuses", "unprocessed keys after 8 rounds"));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << round.min(5))).await;
                }
            }
        }
        Ok(found)
    }

    async fn scan_all(&self) -> Result<Vec<ManifestRecord>, PortError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("manifest scan", e))?;
            out.extend(page.items.unwrap_or_default().iter().map(record_from_item));
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// The dedup table: partition key `dedup_key`; a claim is a lease on a content hash.
#[derive(Clone)]
pub struct DynamoDedup {
    client: Client,
    table: String,
}

const CLAIMED: &str = "claimed";
const COMPLETE: &str = "complete";

impl DynamoDedup {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn claim_from_item(item: &Item) -> Option<ClaimState> {
    let owner = get_s(item, "owner")?;
    match get_s(item, "state")?.as_str() {
        COMPLETE => Some(ClaimState::Complete { owner, s3_key: get_s(item, "s3_key")? }),
        CLAIMED => Some(ClaimState::Claimed { owner, lease_until_ms: get_n(item, "lease_until").unwrap_or(0) }),
        _ => None,
    }
}

#[async_trait]
impl DedupStore for DynamoDedup {
    async fn claim(&self, key: &str, owner: &str, lease_until_ms: i64, now_ms: i64) -> Result<ClaimAttempt, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("dedup_key", s(key))
            .update_expression("SET #state = :claimed, #owner = :me, lease_until = :lease, claimed_at = if_not_exists(claimed_at, :now)")
            .condition_expression(
                "attribute_not_exists(dedup_key) OR (#state = :claimed AND (#owner = :me OR lease_until < :now))",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":claimed", s(CLAIMED))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let previous = out.attributes.as_ref().and_then(|old| get_s(old, "owner")).filter(|p| p != owner);
                Ok(ClaimAttempt::Acquired { took_over_from: previous })
            }
            Err(e) if is_conditional_failure(&e) => {
                let old = e.as_service_error().and_then(|se| match se {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item.as_ref().and_then(claim_from_item)
                    }
                    _ => None,
                });
                // Not every endpoint returns the old item with the failure; read it then.
                let state = match old {
                    Some(st) => Some(st),
                    None => self.get(key).await?,
                };
                match state {
                    Some(st) => Ok(ClaimAttempt::Existing(st)),
                    // Released between our write and our read: let the caller try again.
                    None => Ok(ClaimAttempt::Existing(ClaimState::Claimed { owner: String::new(), lease_until_ms: 0 })),
                }
            }
            Err(e) => Err(classify("dedup claim", e)),
        }
    }

    async fn renew(&self, key: &str, owner: &str, lease_until_ms: i64) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("dedup_key", s(key))
            .update_expression("SET lease_until = :lease")
            .condition_expression("#state = :claimed AND #owner = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":claimed", s(CLAIMED))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(classify("dedup renew", e)),
        }
    }

    async fn complete(&self, key: &str, owner: &str, s3_key: &str, size: u64) -> Result<bool, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("dedup_key", s(key))
            .update_expression("SET #state = :complete, s3_key = :key, #size = :size REMOVE lease_until")
            .condition_expression("#owner = :me AND (#state = :claimed OR (#state = :complete AND s3_key = :key))")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#size", "size")
            .expression_attribute_values(":claimed", s(CLAIMED))
            .expression_attribute_values(":complete", s(COMPLETE))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":key", s(s3_key))
            .expression_attribute_values(":size", n(size))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(classify("dedup complete", e)),
        }
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), PortError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("dedup_key", s(key))
            .condition_expression("#state = :claimed AND #owner = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":claimed", s(CLAIMED))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(classify("dedup release", e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<ClaimState>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("dedup_key", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dedup get", e))?;
        Ok(out.item.as_ref().and_then(claim_from_item))
    }
}

/// The runs table: partition key `run_id`; the state is one JSON attribute plus a version.
#[derive(Clone)]
pub struct DynamoRuns {
    client: Client,
    table: String,
}

impl DynamoRuns {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[async_trait]
impl RunStore for DynamoRuns {
    async fn load(&self, run_id: &str) -> Result<Option<RunState>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("run_id", s(run_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("runs get", e))?;
        match out.item.as_ref().and_then(|i| get_s(i, "state")) {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| PortError::permanent("runs get", format!("run {run_id} state is unreadable: {e}"))),
        }
    }

    async fn checkpoint(&self, run_id: &str, expected_version: u64, next: &RunState) -> Result<bool, PortError> {
        let json = serde_json::to_string(next).map_err(|e| PortError::permanent("runs checkpoint", e))?;
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("run_id", s(run_id))
            .item("state", s(json))
            .item("version", n(next.version))
            .item("updated_at", s(chrono::Utc::now().to_rfc3339()));
        req = if expected_version == 0 {
            req.condition_expression("attribute_not_exists(run_id) OR version = :zero").expression_attribute_values(":zero", n(0))
        } else {
            req.condition_expression("version = :v").expression_attribute_values(":v", n(expected_version))
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(classify("runs checkpoint", e)),
        }
    }
}
