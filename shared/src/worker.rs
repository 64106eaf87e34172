//! The worker's move protocol for one source file, and the SQS batch handler around it.
//!
//! Per file: locate it under the source root, SHA-256 it, claim the content hash (a lease in
//! the dedup store), upload with S3 verifying the checksum (`If-None-Match: *`, so nothing is
//! ever overwritten), read the stored checksum back, mark the claim complete, and write the
//! manifest. Every step is safe to repeat: a duplicate delivery, a crash at any point, or two
//! files with equal content at the same time all converge on one object and correct rows.

use crate::error::PortError;
use crate::crash::CrashPoint;
use crate::hashing::{self, Sha256Digest, StreamingSha256};
use crate::keys::{self, KeyTemplate};
use crate::manifest::{ManifestRecord, Outcome, Resolution};
use crate::message::FileMessage;
use crate::model::{DeadLetterReason, FileStatus};
use crate::paths::{Candidate, PathRules};
use crate::ports::{
    ClaimAttempt, ClaimState, DeadLetters, DedupStore, FileSource, LocateFailure, Located, ManifestStore,
    ObjectStore, PutOutcome, StoredObject, UploadedPart,
};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Whether equal content is shared only within a tenant (default) or across tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupScope {
    Account,
    Global,
}

impl std::str::FromStr for DedupScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "account" => Ok(DedupScope::Account),
            "global" => Ok(DedupScope::Global),
            other => Err(format!("DEDUP_SCOPE must be account or global, not {other:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub key_template: KeyTemplate,
    pub dedup_scope: DedupScope,
    /// Files larger than this go multipart.
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Parts of one file in flight at once.
    pub part_concurrency: usize,
    /// Records of one batch processed at once.
    pub record_concurrency: usize,
    pub lease: Duration,
    /// How long to wait for another worker's live claim on the same content before giving
    /// the message back to SQS.
    pub lease_wait: Duration,
    /// Upper bound on file bytes held in memory by this process at once.
    pub memory_budget_bytes: u64,
    pub path_rules: PathRules,
    /// Files above the multipart threshold and up to this size are read once: uploaded to a
    /// staging key while hashed, then copied by S3 to their content-addressed key. Beyond it
    /// (S3's single-request copy limit, 5 GiB) a file is hashed in one pass, uploaded in a
    /// second.
    pub server_side_copy_limit: u64,
    /// Where large files wait, under their source key, for that copy. The bucket's lifecycle
    /// rule expires what a crashed attempt leaves here.
    pub staging_prefix: String,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            key_template: KeyTemplate::default(),
            dedup_scope: DedupScope::Account,
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
            part_concurrency: 4,
            record_concurrency: 10,
            lease: Duration::from_secs(120),
            lease_wait: Duration::from_secs(10),
            memory_budget_bytes: 192 * 1024 * 1024,
            path_rules: PathRules::default(),
            server_side_copy_limit: S3_MAX_COPY,
            staging_prefix: STAGING_PREFIX.to_string(),
        }
    }
}

const S3_MIN_PART: u64 = 5 * 1024 * 1024;
/// The largest object CopyObject copies in one request.
const S3_MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;
pub const STAGING_PREFIX: &str = "_migration-staging/";
const S3_MAX_PARTS: u64 = 10_000;

impl WorkerSettings {
    /// The part size for a file: the configured size, grown when needed to stay within
    /// S3's 10,000 parts.
    pub fn part_size_for(&self, size: u64) -> u64 {
        let needed = size.div_ceil(S3_MAX_PARTS);
        self.part_size.max(needed).max(S3_MIN_PART)
    }

    /// One staging key per source file, so a retry overwrites what an earlier attempt left.
    pub fn staging_key(&self, source_key: &str) -> String {
        format!("{}{}", self.staging_prefix, source_key.replace(':', "/"))
    }
}

/// The ports a worker uses.
#[derive(Clone)]
pub struct WorkerPorts {
    pub manifest: Arc<dyn ManifestStore>,
    pub dedup: Arc<dyn DedupStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub dead_letters: Arc<dyn DeadLetters>,
    pub source: Arc<dyn FileSource>,
    /// Optional: shortens the wait before a retry that needs another worker to finish first.
    pub redelivery: Option<Arc<dyn crate::ports::Redelivery>>,
}

pub struct Worker {
    settings: WorkerSettings,
    ports: WorkerPorts,
    memory: Arc<Semaphore>,
    memory_unit: u64,
    /// What this worker settled since the last flush (the Lambda prints it per batch as EMF).
    pub metrics: crate::metrics::Recorder,
}

/// One delivery of a message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: String,
    pub body: String,
    /// SQS's ApproximateReceiveCount: how many times this message has been delivered.
    pub receive_count: u32,
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    /// Settled (stored, missing, rejected): SQS may delete the message.
    Done(FileStatus),
    /// Give the message back to SQS to try again later.
    Retry(String),
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Worker {
    pub fn new(settings: WorkerSettings, ports: WorkerPorts) -> Self {
        // Semaphore permits are counted in units so even a 10 GiB budget fits in u32 permits.
        let memory_unit = 64 * 1024;
        let permits = (settings.memory_budget_bytes / memory_unit).clamp(1, u32::MAX as u64 / 2) as usize;
        Self { settings, ports, memory: Arc::new(Semaphore::new(permits)), memory_unit, metrics: Default::default() }
    }

    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// The Lambda entry: processes the batch's records concurrently and names only the
    /// records SQS should deliver again.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let results: Vec<(Option<String>, RecordResult)> = futures::stream::iter(event.records)
            .map(|record| async move {
                let id = record.message_id.clone();
                let result = match delivery_from(&record) {
                    Some(d) => {
                        let (result, retry_after) = self.process_with_hint(d).await;
                        if let (Some(wait), Some(redelivery), Some(handle)) =
                            (retry_after, &self.ports.redelivery, record.receipt_handle.as_deref())
                        {
                            if let Err(e) = redelivery.redeliver_after(handle, wait).await {
                                tracing::warn!(error = %e, "could not shorten the retry delay; the visibility timeout applies");
                            }
                        }
                        result
                    }
                    None => RecordResult::Retry("record has no message id or body".into()),
                };
                (id, result)
            })
            .buffer_unordered(self.settings.record_concurrency.max(1))
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        for (id, result) in results {
            if let RecordResult::Retry(reason) = result {
                match id {
                    Some(id) if !id.is_empty() => {
                        tracing::warn!(message_id = %id, %reason, "record will be retried");
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = id;
                        response.batch_item_failures.push(failure);
                    }
                    // Without an id the record cannot be named; Lambda retries the whole batch,
                    // which the idempotent handler tolerates.
                    _ => tracing::error!(%reason, "record without message id failed"),
                }
            }
        }
        response
    }

    /// Processes one delivery end to end.
    pub async fn process(&self, delivery: Delivery) -> RecordResult {
        self.process_with_hint(delivery).await.0
    }

    /// Like `process`, plus how long a retry should wait when that is known.
    async fn process_with_hint(&self, delivery: Delivery) -> (RecordResult, Option<Duration>) {
        let message = match FileMessage::parse(&delivery.body) {
            Ok(m) => m,
            Err(e) => return (self.reject_unparseable(&delivery, &e.to_string()).await, None),
        };
        let key = message.source.key();
        let span = tracing::info_span!("file", source = %key, message_id = %delivery.message_id);
        let started = Instant::now();
        let mut retry_after = None;
        let result = match self.process_message(&delivery, &message).instrument(span.clone()).await {
            Ok(r) => r,
            Err(e) => {
                retry_after = e.retry_after;
                let attempts = delivery.receive_count;
                let outcome = Outcome::Failed { error: e.to_string(), attempts };
                if let Err(record_err) = self.ports.manifest.record(&key, &outcome).await {
                    tracing::error!(error = %record_err, "could not record the failure in the manifest");
                }
                RecordResult::Retry(e.to_string())
            }
        };
        if matches!(result, RecordResult::Retry(_)) {
            self.metrics.add("FilesFailed", crate::metrics::Unit::Count, 1.0);
        }
        self.metrics.sample("FileLatency", crate::metrics::Unit::Milliseconds, started.elapsed().as_secs_f64() * 1000.0);
        span.in_scope(|| tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, result = ?result, "file processed"));
        (result, retry_after)
    }

    async fn process_message(&self, delivery: &Delivery, message: &FileMessage) -> Result<RecordResult, PortError> {
        let key = message.source.key();
        let uid_ts = keys::uid_timestamp(chrono::Utc::now());
        let now = now_rfc3339();
        let row = self.ports.manifest.begin(message, &uid_ts, &now).await?;
        // A row first begun at another time means an earlier attempt (maybe one that crashed
        // after uploading) or a concurrent duplicate; see `remove_own_orphan`.
        let earlier_attempt = row.first_attempt_at.as_deref() != Some(now.as_str());
        if let Some(status) = row.status {
            if status.is_stored() && !message.force {
                return Ok(RecordResult::Done(status));
            }
            if matches!(status, FileStatus::Missing | FileStatus::Rejected)
                && row.dlq_for_message.as_deref() == Some(delivery.message_id.as_str())
            {
                // A duplicate delivery of a message we already dead-lettered.
                return Ok(RecordResult::Done(status));
            }
        }
        if let Some(problem) = &message.problem {
            return self.dead_letter(delivery, &key, DeadLetterReason::Rejected, problem.clone(), Vec::new()).await;
        }
        let Some(account_id) = message.account_id.clone() else {
            let reason = format!(
                "no account mapping for customer {}",
                message.ids.customer_id.map(|c| c.to_string()).unwrap_or_else(|| "(none)".into())
            );
            return self.dead_letter(delivery, &key, DeadLetterReason::Rejected, reason, Vec::new()).await;
        };
        let candidates = match self.candidates(message) {
            Ok(c) => c,
            Err(reason) => {
                return self.dead_letter(delivery, &key, DeadLetterReason::Rejected, reason, Vec::new()).await
            }
        };
        let located = match self.ports.source.locate(&candidates).await? {
            Ok(located) => located,
            Err(LocateFailure::Missing { tried }) => {
                let reason = format!("no candidate exists (tried {})", tried.join(", "));
                return self.dead_letter(delivery, &key, DeadLetterReason::Missing, reason, tried).await;
            }
            Err(LocateFailure::Rejected { reason }) => {
                return self.dead_letter(delivery, &key, DeadLetterReason::Rejected, reason, Vec::new()).await
            }
        };
        let uid_ts = row.uid_ts.clone().unwrap_or(uid_ts);
        let attempt = Attempt { uid_ts: &uid_ts, earlier: earlier_attempt };
        self.move_file(delivery, message, &row, &account_id, located, attempt).await
    }

    fn candidates(&self, message: &FileMessage) -> Result<Vec<Candidate>, String> {
        candidates_for(message, &self.settings.path_rules)
    }

    async fn move_file(
        &self,
        delivery: &Delivery,
        message: &FileMessage,
        row: &ManifestRecord,
        account_id: &str,
        located: Located,
        attempt: Attempt<'_>,
    ) -> Result<RecordResult, PortError> {
        let Attempt { uid_ts, earlier: earlier_attempt } = attempt;
        let key = message.source.key();
        let size = located.size;

        // The content-addressed key needs the hash before the final write, so the bytes are
        // read (once) and hashed first: into memory, into a staging object, or in a first
        // streaming pass for what S3 cannot copy in one request.
        let (digest, body) = if size <= self.settings.multipart_threshold {
            let permit = self.reserve(size).await;
            let (bytes, digest) = located.reader.read_all_hashed(size as usize).await?;
            (digest, Body::InMemory { bytes: Some(bytes), _permit: permit })
        } else if size <= self.settings.server_side_copy_limit {
            let staging_key = self.settings.staging_key(&key);
            let digest = match self.copy_in_staged(&located, &staging_key, &key).await? {
                Some(digest) => digest,
                None => self.upload_staged(&located, &staging_key, &key).await?,
            };
            (digest, Body::Staged(staging_key))
        } else {
            let (digest, parts) = self.hash_streaming(&located).await?;
            (digest, Body::TwoPass(parts))
        };
        let hash_hex = hashing::to_hex(&digest);
        let dedup_key = match self.settings.dedup_scope {
            DedupScope::Account => format!("acct#{account_id}#{hash_hex}"),
            DedupScope::Global => format!("global#{hash_hex}"),
        };
        let s3_key = self.settings.key_template.render(account_id, message.area, &hash_hex, &message.original_filename);
        let resolution = Resolution {
            resolved_path: located.resolved_path.clone(),
            generation: located.generation.clone(),
            via: located.via.clone(),
        };
        let stored = |status: FileStatus, s3_key: String, dedup_of: Option<String>| Outcome::Stored {
            status,
            resolution: resolution.clone(),
            s3_key,
            content_hash: hash_hex.clone(),
            file_uid: keys::file_uid(&hash_hex, uid_ts),
            size,
            dedup_of,
            attempts: delivery.receive_count.max(row.attempts),
            completed_at: now_rfc3339(),
        };

        match self.claim(&dedup_key, &key).await? {
            ClaimOutcome::Existing { owner, s3_key: existing_key } => {
                // The content is stored already: make sure it really is before referencing it.
                self.verify(&existing_key, size, &digest, body.part_digests()).await?;
                let (status, dedup_of) =
                    if owner == key { (FileStatus::Moved, None) } else { (FileStatus::Deduplicated, Some(owner)) };
                if earlier_attempt && existing_key != s3_key {
                    self.remove_own_orphan(&s3_key, &key).await?;
                }
                self.discard_staging(&body).await;
                self.ports.manifest.record(&key, &stored(status, existing_key, dedup_of)).await?;
                self.count_stored(status, size);
                return Ok(RecordResult::Done(status));
            }
            ClaimOutcome::Acquired => {}
        }
        crate::crash::reached(CrashPoint::AfterClaim, &key);

        let mut body = body;
        let upload = async {
            let metadata = vec![
                ("sha256".to_string(), hash_hex.clone()),
                ("source-key".to_string(), key.clone()),
            ];
            // Whether S3 itself compared the stored bytes with our SHA-256 on the write: a PUT
            // carrying our checksum that created the object, or a copy whose full-object
            // SHA-256 S3 computed and returned. Anything else is read back.
            let checked_on_write = match &mut body {
                Body::InMemory { bytes, .. } => {
                    let bytes = bytes.take().expect("a file's bytes are uploaded once");
                    let outcome = self.ports.objects.put_object(&s3_key, bytes, &hashing::to_b64(&digest), &metadata).await?;
                    outcome == PutOutcome::Created
                }
                Body::Staged(staging_key) => match self.ports.objects.copy_object(staging_key, &s3_key, &metadata).await? {
                    Some(checksum) if checksum == hashing::to_b64(&digest) => true,
                    Some(checksum) => {
                        return Err(PortError::retryable(
                            "verify",
                            format!("the copy of {staging_key} to {s3_key} has SHA-256 {checksum}, not {}", hashing::to_b64(&digest)),
                        ))
                    }
                    None => false,
                },
                Body::TwoPass(_) => {
                    let lease = Lease { dedup_key: &dedup_key, owner: &key };
                    self.upload_multipart(&located, &s3_key, &metadata, &key, Some(&digest), Some(lease)).await?;
                    false
                }
            };
            crate::crash::reached(CrashPoint::AfterUpload, &key);
            if !checked_on_write {
                self.verify(&s3_key, size, &digest, body.part_digests()).await?;
            }
            if !self.ports.dedup.complete(&dedup_key, &key, &s3_key, size).await? {
                return Err(PortError::retryable("dedup complete", "lost the content claim to another worker"));
            }
            Ok(())
        };
        let uploaded = upload.await;
        if let Err(e) = uploaded {
            // Let a waiting twin proceed now rather than after the lease runs out.
            if let Err(release_err) = self.ports.dedup.release(&dedup_key, &key).await {
                tracing::warn!(error = %release_err, "could not release the content claim; it will expire");
            }
            return Err(e);
        }
        self.discard_staging(&body).await;
        drop(body);
        crate::crash::reached(CrashPoint::BeforeRecord, &key);
        self.ports.manifest.record(&key, &stored(FileStatus::Moved, s3_key, None)).await?;
        self.count_stored(FileStatus::Moved, size);
        Ok(RecordResult::Done(FileStatus::Moved))
    }

    /// Uploads a large file once, hashing as it streams, to its staging key (overwriting
    /// what an earlier attempt of the same file left there); returns the file's SHA-256.
    async fn upload_staged(&self, located: &Located, staging_key: &str, source_key: &str) -> Result<Sha256Digest, PortError> {
        let metadata = [("source-key".to_string(), source_key.to_string())];
        self.upload_multipart(located, staging_key, &metadata, source_key, None, None).await.map(|(digest, _)| digest)
    }

    /// When the file is in S3 already (the staging-bucket source), S3 copies it to its staging
    /// key and computes its SHA-256: no byte passes through the worker. `None` when the file is
    /// not in S3, or S3 returned no checksum (then the bytes are streamed as from EFS).
    async fn copy_in_staged(&self, located: &Located, staging_key: &str, source_key: &str) -> Result<Option<Sha256Digest>, PortError> {
        let Some(remote) = &located.remote else { return Ok(None) };
        let metadata = [("source-key".to_string(), source_key.to_string())];
        let Some(checksum) = self.ports.objects.copy_in(remote, staging_key, &metadata).await? else {
            tracing::warn!(key = %remote.key, "S3 returned no SHA-256 for the copy from the staging source; streaming it instead");
            return Ok(None);
        };
        hashing::from_b64(&checksum).map(Some).ok_or_else(|| {
            PortError::retryable("copy from staging source", format!("S3 returned {checksum:?}, not a SHA-256, for {}", remote.key))
        })
    }

    /// The staging copy has served its purpose once the content is stored or found stored.
    /// A failed delete is left to the bucket's lifecycle rule, not worth a retry of the file.
    async fn discard_staging(&self, body: &Body<'_>) {
        if let Body::Staged(staging_key) = body {
            if let Err(e) = self.ports.objects.delete_object(staging_key).await {
                self.metrics.add("StagingNotDeleted", crate::metrics::Unit::Count, 1.0);
                tracing::warn!(error = %e, %staging_key, "could not delete the staging copy; the lifecycle rule will");
            }
        }
    }
    /// Metrics of a file this delivery stored (or found stored by another file).
    fn count_stored(&self, status: FileStatus, size: u64) {
        use crate::metrics::Unit;
        let (files, bytes) = if status == FileStatus::Deduplicated {
            ("FilesDeduplicated", "BytesDeduplicated")
        } else {
            ("FilesMoved", "BytesUploaded")
        };
        self.metrics.add(files, Unit::Count, 1.0);
        self.metrics.add(bytes, Unit::Bytes, size as f64);
    }

    /// Claims the content hash, waiting a while for a live claim held by someone else.
    async fn claim(&self, dedup_key: &str, owner: &str) -> Result<ClaimOutcome, PortError> {
        let deadline = Instant::now() + self.settings.lease_wait;
        let mut pause = Duration::from_millis(200);
        loop {
            let lease_until = now_ms() + self.settings.lease.as_millis() as i64;
            match self.ports.dedup.claim(dedup_key, owner, lease_until, now_ms()).await? {
                ClaimAttempt::Acquired { took_over_from } => {
                    if let Some(previous) = took_over_from {
                        tracing::warn!(%previous, "took over an expired content claim");
                    }
                    return Ok(ClaimOutcome::Acquired);
                }
                ClaimAttempt::Existing(ClaimState::Complete { owner, s3_key }) => {
                    return Ok(ClaimOutcome::Existing { owner, s3_key })
                }
                ClaimAttempt::Existing(ClaimState::Claimed { owner: holder, lease_until_ms }) => {
                    if Instant::now() >= deadline {
                        let wait_s = ((lease_until_ms - now_ms()).max(0)) / 1000;
                        // Retry shortly after the holder should be done, not after the queue's
                        // visibility timeout (which must cover a whole invocation).
                        let wait = Duration::from_secs(wait_s as u64).min(self.settings.lease) + Duration::from_secs(5);
                        return Err(PortError::retryable(
                            "dedup claim",
                            format!("equal content is being uploaded by {holder} (lease ends in {wait_s}s); retry later"),
                        )
                        .with_retry_after(wait));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Streams the file once to learn its SHA-256 and the digests of the parts it will be
    /// uploaded in (S3's composite checksum of a multipart object is made of those).
    async fn hash_streaming(&self, located: &Located) -> Result<(Sha256Digest, Vec<Sha256Digest>), PortError> {
        let chunk = self.settings.part_size_for(located.size);
        let _permit = self.reserve(chunk).await;
        let mut hasher = StreamingSha256::default();
        let mut parts = Vec::new();
        let mut offset = 0u64;
        while offset < located.size {
            let len = chunk.min(located.size - offset) as usize;
            let (_, next, part) = located.reader.read_range_hashed(offset, len, hasher, true).await?;
            hasher = next;
            parts.push(part.expect("part digest requested"));
            offset += len as u64;
        }
        Ok((hasher.finish(), parts))
    }

    /// Multipart upload with per-part SHA-256 checksums and an abort on every error path.
    /// With `expected`, the whole-file hash of the bytes sent must equal it (a second pass
    /// over a file that may have changed), and the destination must not exist yet; without,
    /// the key is a staging key that may be overwritten. With `lease`, the content claim is
    /// renewed while parts go out. Returns the whole-file hash and the part digests.
    async fn upload_multipart(
        &self,
        located: &Located,
        s3_key: &str,
        metadata: &[(String, String)],
        source_key: &str,
        expected: Option<&Sha256Digest>,
        lease: Option<Lease<'_>>,
    ) -> Result<(Sha256Digest, Vec<Sha256Digest>), PortError> {
        let upload_id = self.ports.objects.create_multipart(s3_key, metadata).await?;
        let result = self.upload_parts(located, s3_key, &upload_id, source_key, expected, lease).await;
        let only_if_absent = expected.is_some();
        match result {
            Ok((parts, digest, part_digests)) => {
                match self.ports.objects.complete_multipart(s3_key, &upload_id, &parts, only_if_absent).await {
                    Ok(PutOutcome::Created) | Ok(PutOutcome::AlreadyExists) => Ok((digest, part_digests)),
                    Err(e) => {
                        self.abort(s3_key, &upload_id).await;
                        Err(e)
                    }
                }
            }
            Err(e) => {
                self.abort(s3_key, &upload_id).await;
                Err(e)
            }
        }
    }

    async fn abort(&self, s3_key: &str, upload_id: &str) {
        if let Err(e) = self.ports.objects.abort_multipart(s3_key, upload_id).await {
            // The bucket's lifecycle rule removes it after a day; say so rather than hide it.
            tracing::error!(error = %e, %upload_id, "could not abort multipart upload; lifecycle rule will");
        }
    }

    async fn upload_parts(
        &self,
        located: &Located,
        s3_key: &str,
        upload_id: &str,
        source_key: &str,
        expected: Option<&Sha256Digest>,
        lease: Option<Lease<'_>>,
    ) -> Result<(Vec<UploadedPart>, Sha256Digest, Vec<Sha256Digest>), PortError> {
        let part_size = self.settings.part_size_for(located.size);
        let part_count = located.size.div_ceil(part_size);
        let mut hasher = StreamingSha256::default();
        let mut digests = Vec::with_capacity(part_count as usize);
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut parts = Vec::with_capacity(part_count as usize);
        let mut last_renewal = Instant::now();
        let renew_every = self.settings.lease / 3;

        for index in 0..part_count {
            // Keep at most `part_concurrency` parts in memory and on the wire.
            while in_flight.len() >= self.settings.part_concurrency.max(1) {
                if let Some(done) = in_flight.next().await {
                    parts.push(done?);
                }
            }
            let offset = index * part_size;
            let len = part_size.min(located.size - offset) as usize;
            let permit = self.reserve(len as u64).await;
            let (bytes, next, part_digest) = located.reader.read_range_hashed(offset, len, hasher, true).await?;
            hasher = next;
            let part_digest = part_digest.expect("part digest requested");
            digests.push(part_digest);
            let objects = self.ports.objects.clone();
            let part_number = index as i32 + 1;
            in_flight.push(async move {
                let uploaded = objects
                    .upload_part(s3_key, upload_id, part_number, bytes, &hashing::to_b64(&part_digest))
                    .await;
                drop(permit);
                uploaded
            });
            if index == part_count / 2 {
                crate::crash::reached(CrashPoint::MidMultipart, source_key);
            }
            if let Some(lease) = &lease {
                if last_renewal.elapsed() >= renew_every {
                    let lease_until = now_ms() + self.settings.lease.as_millis() as i64;
                    if !self.ports.dedup.renew(lease.dedup_key, lease.owner, lease_until).await? {
                        return Err(PortError::retryable("dedup renew", "lost the content claim during upload"));
                    }
                    last_renewal = Instant::now();
                }
            }
        }
        while let Some(done) = in_flight.next().await {
            parts.push(done?);
        }
        let digest = hasher.finish();
        if expected.is_some_and(|e| *e != digest) {
            return Err(PortError::retryable(
                "multipart upload",
                "file changed while it was being migrated (second-pass SHA-256 differs from the first)",
            ));
        }
        parts.sort_by_key(|p| p.part_number);
        Ok((parts, digest, digests))
    }

    /// Reads the stored object's checksum back; the file counts as moved only when it matches.
    async fn verify(
        &self,
        s3_key: &str,
        size: u64,
        digest: &Sha256Digest,
        part_digests: Option<&[Sha256Digest]>,
    ) -> Result<(), PortError> {
        let stored = self
            .ports
            .objects
            .head_object(s3_key)
            .await?
            .ok_or_else(|| PortError::retryable("verify", format!("object {s3_key} is not in the bucket")))?;
        check_stored(&stored, s3_key, size, digest, part_digests)
    }

    /// An attempt of this file that crashed after uploading, then lost its expired lease to a
    /// file with equal content that completed the claim, left its own copy at `s3_key` which
    /// no manifest row will reference. Delete it, but only if its metadata says this file's
    /// upload created it: an object another file uploaded there is never touched.
    async fn remove_own_orphan(&self, s3_key: &str, source_key: &str) -> Result<(), PortError> {
        let Some(stored) = self.ports.objects.head_object(s3_key).await? else {
            return Ok(());
        };
        if stored.metadata_source_key.as_deref() != Some(source_key) {
            return Ok(());
        }
        self.ports.objects.delete_object(s3_key).await?;
        self.metrics.add("OrphansRemoved", crate::metrics::Unit::Count, 1.0);
        tracing::warn!(%s3_key, "removed the copy an earlier crashed attempt left; the content is stored under another key");
        Ok(())
    }

    /// Holds `bytes` of the memory budget until the permit drops.
    async fn reserve(&self, bytes: u64) -> tokio::sync::SemaphorePermit<'_> {
        let budget_units = (self.settings.memory_budget_bytes / self.memory_unit).max(1);
        // A request larger than the whole budget takes all of it and so runs alone.
        let units = bytes.div_ceil(self.memory_unit).clamp(1, budget_units) as u32;
        self.memory.acquire_many(units).await.expect("memory semaphore is never closed")
    }

    /// Sends the message to the DLQ with its reason (once per incoming message) and records
    /// the permanent outcome.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        key: &str,
        reason: DeadLetterReason,
        detail: String,
        tried: Vec<String>,
    ) -> Result<RecordResult, PortError> {
        self.ports.dead_letters.forward(&delivery.body, reason, &detail, Some(key)).await?;
        let dlq_for_message = Some(delivery.message_id.clone());
        let attempts = delivery.receive_count;
        let outcome = match reason {
            DeadLetterReason::Missing => Outcome::Missing { tried, attempts, dlq_for_message },
            DeadLetterReason::Rejected => Outcome::Rejected { reason: detail.clone(), attempts, dlq_for_message },
        };
        self.ports.manifest.record(key, &outcome).await?;
        let metric = if reason == DeadLetterReason::Missing { "FilesMissing" } else { "FilesRejected" };
        self.metrics.add(metric, crate::metrics::Unit::Count, 1.0);
        tracing::warn!(reason = reason.as_str(), %detail, "file dead-lettered");
        Ok(RecordResult::Done(outcome.status()))
    }

    async fn reject_unparseable(&self, delivery: &Delivery, error: &str) -> RecordResult {
        let key = FileMessage::salvage_source_key(&delivery.body);
        if let Some(key) = &key {
            match self.ports.manifest.get(key).await {
                Ok(Some(row)) if row.dlq_for_message.as_deref() == Some(delivery.message_id.as_str()) => {
                    return RecordResult::Done(FileStatus::Rejected)
                }
                Ok(_) => {}
                Err(e) => return RecordResult::Retry(e.to_string()),
            }
        }
        let detail = format!("malformed message: {error}");
        if let Err(e) = self.ports.dead_letters.forward(&delivery.body, DeadLetterReason::Rejected, &detail, key.as_deref()).await {
            return RecordResult::Retry(e.to_string());
        }
        if let Some(key) = &key {
            let outcome = Outcome::Rejected {
                reason: detail.clone(),
                attempts: delivery.receive_count,
                dlq_for_message: Some(delivery.message_id.clone()),
            };
            if let Err(e) = self.ports.manifest.record(key, &outcome).await {
                tracing::error!(error = %e, "rejected message forwarded but not recorded in the manifest");
            }
        }
        tracing::warn!(message_id = %delivery.message_id, %detail, "message rejected");
        RecordResult::Done(FileStatus::Rejected)
    }
}

/// Candidate root-relative paths for a message: the legacy path's rewrite (and its probes),
/// then each fallback path's. Shared with the inventory's dry run so both look in the same
/// places.
pub fn candidates_for(message: &FileMessage, rules: &PathRules) -> Result<Vec<Candidate>, String> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut errors = Vec::new();
    let paths = std::iter::once(&message.legacy_path).chain(message.fallback_paths.iter());
    for (i, path) in paths.enumerate() {
        match rules.resolve(path) {
            Ok(resolved) => {
                for mut c in resolved.candidates {
                    if i > 0 {
                        c.via = if c.via == "primary" { "fallback".into() } else { format!("fallback-{}", c.via) };
                    }
                    if !out.iter().any(|o| o.relative == c.relative) {
                        out.push(c);
                    }
                }
            }
            Err(e) => errors.push(format!("{path:?}: {e}")),
        }
    }
    if out.is_empty() {
        return Err(format!("unusable path: {}", errors.join("; ")));
    }
    Ok(out)
}

/// This attempt at a file: its file-UID timestamp, and whether the file was begun before.
/// Where a file's bytes are once they have been read and hashed.
enum Body<'a> {
    /// A file up to the multipart threshold, held for one PUT; its bytes count against the
    /// memory budget until the upload is done.
    InMemory { bytes: Option<Vec<u8>>, _permit: tokio::sync::SemaphorePermit<'a> },
    /// A large file uploaded once, while it was hashed, to this staging key; S3 copies it to
    /// its content-addressed key.
    Staged(String),
    /// A file beyond S3's single-request copy: hashed in a first pass (these part digests),
    /// uploaded in a second.
    TwoPass(Vec<Sha256Digest>),
}

impl Body<'_> {
    /// The part digests a composite checksum of this file's upload is made of, when known.
    fn part_digests(&self) -> Option<&[Sha256Digest]> {
        match self {
            Body::TwoPass(parts) => Some(parts),
            _ => None,
        }
    }
}

/// The content claim a long upload keeps renewing.
struct Lease<'a> {
    dedup_key: &'a str,
    owner: &'a str,
}

struct Attempt<'a> {
    uid_ts: &'a str,
    earlier: bool,
}

enum ClaimOutcome {
    Acquired,
    Existing { owner: String, s3_key: String },
}

/// Compares what S3 stored with what we hashed.
pub fn check_stored(
    stored: &StoredObject,
    s3_key: &str,
    size: u64,
    digest: &Sha256Digest,
    part_digests: Option<&[Sha256Digest]>,
) -> Result<(), PortError> {
    let fail = |why: String| Err(PortError::retryable("verify", format!("object {s3_key}: {why}")));
    if stored.size != size {
        return fail(format!("stored size {} differs from source size {size}", stored.size));
    }
    let whole_b64 = hashing::to_b64(digest);
    let whole_hex = hashing::to_hex(digest);
    if let Some(meta) = &stored.metadata_sha256 {
        if *meta != whole_hex {
            return fail(format!("stored content hash {meta} differs from {whole_hex}"));
        }
    }
    let composite = part_digests.map(hashing::composite_b64);
    match &stored.checksum_sha256 {
        Some(c) if *c == whole_b64 => {}
        // S3 reports a multipart object's SHA-256 as the digest of its part digests with a
        // `-<parts>` suffix; some emulators drop the suffix.
        Some(c) if composite.as_deref().is_some_and(|exp| c == exp || exp.split('-').next() == Some(c.as_str())) => {}
        Some(c) if c.contains('-') && composite.is_none() && stored.metadata_sha256.is_some() => {
            // A multipart object whose part layout we do not know; its content hash metadata
            // (checked above) and size must do.
        }
        Some(c) => {
            let expected = composite.unwrap_or(whole_b64);
            return fail(format!("stored SHA-256 checksum {c} differs from {expected}"));
        }
        None => {
            if stored.metadata_sha256.is_none() {
                return fail("S3 returned no SHA-256 checksum to verify".into());
            }
        }
    }
    Ok(())
}

fn delivery_from(record: &SqsMessage) -> Option<Delivery> {
    let message_id = record.message_id.clone().filter(|id| !id.is_empty())?;
    let body = record.body.clone()?;
    let receive_count = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Some(Delivery { message_id, body, receive_count })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::*;
    use crate::message::{LegacyIds, SourceRef};
    use crate::model::Area;
    use crate::ports::ObjectStore;

    struct Harness {
        worker: Worker,
        manifest: Arc<MemoryManifest>,
        dedup: Arc<MemoryDedup>,
        objects: Arc<MemoryObjects>,
        dlq: Arc<MemoryDeadLetters>,
        source: Arc<MemorySource>,
        redelivery: Arc<MemoryRedelivery>,
    }

    fn harness(tweak: impl FnOnce(&mut WorkerSettings)) -> Harness {
        let mut settings = WorkerSettings { lease_wait: Duration::from_millis(300), ..Default::default() };
        tweak(&mut settings);
        let (manifest, dedup, objects, dlq, source) = (
            Arc::new(MemoryManifest::default()),
            Arc::new(MemoryDedup::default()),
            Arc::new(MemoryObjects::default()),
            Arc::new(MemoryDeadLetters::default()),
            Arc::new(MemorySource::default()),
        );
        let redelivery = Arc::new(MemoryRedelivery::default());
        let ports = WorkerPorts {
            manifest: manifest.clone(),
            dedup: dedup.clone(),
            objects: objects.clone(),
            dead_letters: dlq.clone(),
            source: source.clone(),
            redelivery: Some(redelivery.clone()),
        };
        Harness { worker: Worker::new(settings, ports), manifest, dedup, objects, dlq, source, redelivery }
    }

    fn message(id: u64, account: Option<&str>, path: &str) -> FileMessage {
        FileMessage {
            v: 1,
            source: SourceRef::Attachment(id),
            area: Area::Certificates,
            legacy_path: path.into(),
            fallback_paths: vec![],
            account_id: account.map(String::from),
            original_filename: path.rsplit('/').next().unwrap().into(),
            ids: LegacyIds { attachment_id: Some(id), customer_id: Some(1), ..Default::default() },
            legacy_status: None,
            problem: None,
            force: false,
        }
    }

    fn delivery(message_id: &str, m: &FileMessage) -> Delivery {
        Delivery { message_id: message_id.into(), body: m.to_json(), receive_count: 1 }
    }

    const P1: &str = "/efsdata/attachments/certificate_management/1/a.pdf";
    const R1: &str = "attachments/certificate_management/1/a.pdf";
    const P2: &str = "/home/wwwriskt/public_html/attachments/certificate_management/2/b.PDF";
    const R2: &str = "attachments/certificate_management/2/b.PDF";

    #[tokio::test]
    async fn moves_a_file_and_a_duplicate_delivery_changes_nothing() {
        let h = harness(|_| {});
        h.source.insert(R1, b"certificate bytes".to_vec());
        let m = message(1, Some("5001"), P1);
        assert_eq!(h.worker.process(delivery("m1", &m)).await, RecordResult::Done(FileStatus::Moved));
        let row = h.manifest.get("attachment:1").await.unwrap().unwrap();
        let hash = hashing::to_hex(&hashing::sha256(b"certificate bytes"));
        assert_eq!(row.s3_key.as_deref(), Some(format!("org_5001/certificates/{hash}.pdf").as_str()));
        assert_eq!(row.content_hash.as_deref(), Some(hash.as_str()));
        assert!(row.file_uid.as_deref().unwrap().starts_with(&format!("{hash}_")));
        assert_eq!(row.file_uid.as_deref().unwrap().len(), 64 + 1 + 20);
        assert_eq!(row.size, Some(17));
        assert_eq!(row.resolved_path.as_deref(), Some(R1));

        let again = h.worker.process(delivery("m1", &m)).await;
        assert_eq!(again, RecordResult::Done(FileStatus::Moved));
        assert_eq!(*h.objects.puts.lock().unwrap(), 1);
        assert_eq!(h.manifest.get("attachment:1").await.unwrap().unwrap(), row, "second write changed the row");
    }

    #[tokio::test]
    async fn a_created_put_is_trusted_and_an_object_already_at_the_key_is_read_back() {
        let h = harness(|_| {});
        h.source.insert(R1, b"certificate bytes".to_vec());
        h.source.insert(R2, b"other bytes".to_vec());
        let m1 = message(1, Some("5001"), P1);
        assert_eq!(h.worker.process(delivery("m1", &m1)).await, RecordResult::Done(FileStatus::Moved));
        assert_eq!(*h.objects.heads.lock().unwrap(), 0, "S3 checked the PUT's SHA-256; no read-back");

        // A crashed attempt left an object at the key but no completed claim: the PUT finds it
        // there, so its checksum is read back before the file counts as moved...
        let hash = hashing::to_hex(&hashing::sha256(b"other bytes"));
        let key = format!("org_5001/certificates/{hash}.pdf");
        h.objects.objects.lock().unwrap().insert(key.clone(), (b"other bytes".to_vec(), Default::default()));
        let m2 = message(2, Some("5001"), P2);
        assert_eq!(h.worker.process(delivery("m2", &m2)).await, RecordResult::Done(FileStatus::Moved));
        assert_eq!(*h.objects.heads.lock().unwrap(), 1);

        // ...and an object there with other bytes is never accepted as this file's copy.
        let m3 = message(3, Some("5002"), P2);
        let key3 = format!("org_5002/certificates/{hash}.pdf");
        h.objects.objects.lock().unwrap().insert(key3, (b"tampered".to_vec(), Default::default()));
        assert!(matches!(h.worker.process(delivery("m3", &m3)).await, RecordResult::Retry(_)));
    }

    #[tokio::test]
    async fn equal_content_in_one_tenant_is_stored_once_even_concurrently() {
        let h = harness(|_| {});
        h.source.insert(R1, b"same".to_vec());
        h.source.insert(R2, b"same".to_vec());
        let (a, b) = (message(1, Some("7"), P1), message(2, Some("7"), P2));
        let (ra, rb) = tokio::join!(h.worker.process(delivery("a", &a)), h.worker.process(delivery("b", &b)));
        let mut statuses = vec![ra, rb];
        statuses.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(statuses, vec![RecordResult::Done(FileStatus::Deduplicated), RecordResult::Done(FileStatus::Moved)]);
        assert_eq!(*h.objects.puts.lock().unwrap(), 1);
        let (ka, kb) = (
            h.manifest.get("attachment:1").await.unwrap().unwrap(),
            h.manifest.get("attachment:2").await.unwrap().unwrap(),
        );
        assert_eq!(ka.s3_key, kb.s3_key);
        let dup = if ka.status == Some(FileStatus::Deduplicated) { ka } else { kb };
        assert!(dup.dedup_of.is_some());
    }

    #[tokio::test]
    async fn tenants_never_share_objects_unless_scope_is_global() {
        for (scope, expected_puts) in [(DedupScope::Account, 2), (DedupScope::Global, 1)] {
            let h = harness(|s| s.dedup_scope = scope);
            h.source.insert(R1, b"same".to_vec());
            h.source.insert(R2, b"same".to_vec());
            h.worker.process(delivery("a", &message(1, Some("7"), P1))).await;
            h.worker.process(delivery("b", &message(2, Some("8"), P2))).await;
            assert_eq!(*h.objects.puts.lock().unwrap(), expected_puts, "{scope:?}");
        }
    }

    #[tokio::test]
    async fn missing_file_is_dead_lettered_once_per_message() {
        let h = harness(|_| {});
        let m = message(3, Some("7"), P1);
        assert_eq!(h.worker.process(delivery("m3", &m)).await, RecordResult::Done(FileStatus::Missing));
        assert_eq!(h.worker.process(delivery("m3", &m)).await, RecordResult::Done(FileStatus::Missing));
        let dlq = h.dlq.messages.lock().unwrap().clone();
        assert_eq!(dlq.len(), 1, "a duplicate delivery forwarded twice");
        assert_eq!(dlq[0].1, DeadLetterReason::Missing);
        assert!(dlq[0].2.contains(R1), "{}", dlq[0].2);
        let row = h.manifest.get("attachment:3").await.unwrap().unwrap();
        assert_eq!(row.status, Some(FileStatus::Missing));
        // Operators restore the file and redrive: a new message id moves it.
        h.source.insert(R1, b"restored".to_vec());
        assert_eq!(h.worker.process(delivery("m3-redriven", &m)).await, RecordResult::Done(FileStatus::Moved));
    }

    #[tokio::test]
    async fn unusable_input_is_rejected_with_a_reason() {
        let h = harness(|_| {});
        assert_eq!(h.worker.process(Delivery { message_id: "x".into(), body: "{not json".into(), receive_count: 1 }).await, RecordResult::Done(FileStatus::Rejected));
        let unmapped = message(4, None, P1);
        assert_eq!(h.worker.process(delivery("u", &unmapped)).await, RecordResult::Done(FileStatus::Rejected));
        let mut problem = message(5, Some("7"), P1);
        problem.problem = Some("attachment has neither certificate_id nor document_id".into());
        assert_eq!(h.worker.process(delivery("p", &problem)).await, RecordResult::Done(FileStatus::Rejected));
        let escape = message(6, Some("7"), "/efsdata/attachments/../../etc/passwd");
        assert_eq!(h.worker.process(delivery("e", &escape)).await, RecordResult::Done(FileStatus::Rejected));
        let dlq = h.dlq.messages.lock().unwrap().clone();
        assert_eq!(dlq.len(), 4);
        assert!(dlq.iter().all(|(_, r, _)| *r == DeadLetterReason::Rejected));
        assert!(dlq[1].2.contains("no account mapping for customer 1"));
        assert!(h.manifest.get("attachment:6").await.unwrap().unwrap().last_error.unwrap().contains(".."));
    }

    #[tokio::test]
    async fn a_live_claim_by_another_is_waited_for_then_retried_and_an_expired_one_taken_over() {
        let h = harness(|_| {});
        h.source.insert(R1, b"contended".to_vec());
        let hash = hashing::to_hex(&hashing::sha256(b"contended"));
        let key = format!("acct#7#{hash}");
        h.dedup.claim(&key, "attachment:99", now_ms() + 60_000, now_ms()).await.unwrap();
        let r = h.worker.process(delivery("m", &message(1, Some("7"), P1))).await;
        assert!(matches!(&r, RecordResult::Retry(why) if why.contains("attachment:99")), "{r:?}");
        assert_eq!(h.manifest.get("attachment:1").await.unwrap().unwrap().status, Some(FileStatus::Failed));

        // The holder "crashed": its lease is in the past, so the next attempt takes over.
        h.dedup.claims.lock().unwrap().insert(key.clone(), ClaimState::Claimed { owner: "attachment:99".into(), lease_until_ms: now_ms() - 1 });
        assert_eq!(h.worker.process(delivery("m", &message(1, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        assert!(matches!(h.dedup.get(&key).await.unwrap(), Some(ClaimState::Complete { owner, .. }) if owner == "attachment:1"));
    }

    #[tokio::test]
    async fn a_crash_after_upload_is_completed_by_the_retry() {
        let h = harness(|_| {});
        h.source.insert(R1, b"half done".to_vec());
        let digest = hashing::sha256(b"half done");
        let hash = hashing::to_hex(&digest);
        let s3_key = format!("org_7/certificates/{hash}.pdf");
        // State left by a worker that claimed and uploaded, then died before completing.
        h.dedup.claim(&format!("acct#7#{hash}"), "attachment:1", now_ms() + 60_000, now_ms()).await.unwrap();
        h.objects.put_object(&s3_key, b"half done".to_vec(), &hashing::to_b64(&digest), &[("sha256".into(), hash.clone())]).await.unwrap();
        assert_eq!(h.worker.process(delivery("m", &message(1, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        assert_eq!(*h.objects.puts.lock().unwrap(), 1, "the retry must not upload again");
        assert_eq!(h.manifest.get("attachment:1").await.unwrap().unwrap().s3_key, Some(s3_key));
    }

    #[tokio::test]
    async fn a_crashed_attempts_copy_is_removed_when_a_twin_stored_the_content_first() {
        let h = harness(|_| {});
        h.source.insert(R1, b"twin content".to_vec());
        let digest = hashing::sha256(b"twin content");
        let hash = hashing::to_hex(&digest);
        let ours = format!("org_7/certificates/{hash}.pdf");
        let twins = format!("org_7/documents/{hash}.pdf");
        let first = message(1, Some("7"), P1);
        // attachment:1 began, uploaded its copy, and died; its lease ran out, and
        // attachment:2 (equal content, another area) took over and completed the claim.
        h.manifest.begin(&first, "20200101000000000000", "2020-01-01T00:00:00.000000Z").await.unwrap();
        let meta = |source: &str| vec![("sha256".to_string(), hash.clone()), ("source-key".to_string(), source.to_string())];
        h.objects.put_object(&ours, b"twin content".to_vec(), &hashing::to_b64(&digest), &meta("attachment:1")).await.unwrap();
        h.objects.put_object(&twins, b"twin content".to_vec(), &hashing::to_b64(&digest), &meta("attachment:2")).await.unwrap();
        let dedup_key = format!("acct#7#{hash}");
        h.dedup.claim(&dedup_key, "attachment:2", now_ms() + 60_000, now_ms()).await.unwrap();
        assert!(h.dedup.complete(&dedup_key, "attachment:2", &twins, 12).await.unwrap());

        assert_eq!(h.worker.process(delivery("m", &first)).await, RecordResult::Done(FileStatus::Deduplicated));
        let row = h.manifest.get("attachment:1").await.unwrap().unwrap();
        assert_eq!(row.s3_key.as_deref(), Some(twins.as_str()));
        let keys: Vec<String> = h.objects.objects.lock().unwrap().keys().cloned().collect();
        assert_eq!(keys, vec![twins.clone()], "the crashed attempt's unreferenced copy is gone, the twin's kept");

        // A first attempt does not look for leftovers, and an object uploaded by another file
        // is never deleted even when an earlier attempt exists.
        h.objects.put_object(&ours, b"twin content".to_vec(), &hashing::to_b64(&digest), &meta("attachment:3")).await.unwrap();
        assert_eq!(h.worker.process(delivery("m2", &first)).await, RecordResult::Done(FileStatus::Deduplicated));
        assert_eq!(h.objects.objects.lock().unwrap().len(), 2);
    }

    fn large_harness(tweak: impl FnOnce(&mut WorkerSettings)) -> Harness {
        harness(|s| {
            s.multipart_threshold = 6 * 1024 * 1024;
            s.part_size = 5 * 1024 * 1024;
            tweak(s);
        })
    }

    fn large_data(mib: u32, seed: u32) -> Vec<u8> {
        (0..(mib * 1024 * 1024)).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8).collect()
    }

    /// Counts the bytes read from the source.
    struct CountingReader {
        data: Vec<u8>,
        bytes_read: Arc<std::sync::Mutex<u64>>,
    }

    #[async_trait::async_trait]
    impl crate::ports::RangeReader for CountingReader {
        async fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, PortError> {
            *self.bytes_read.lock().unwrap() += len as u64;
            Ok(self.data[offset as usize..offset as usize + len].to_vec())
        }
    }

    fn with_source(mut h: Harness, source: Arc<dyn FileSource>) -> Harness {
        let ports = WorkerPorts {
            manifest: h.manifest.clone(),
            dedup: h.dedup.clone(),
            objects: h.objects.clone(),
            dead_letters: h.dlq.clone(),
            source,
            redelivery: None,
        };
        h.worker = Worker::new(h.worker.settings().clone(), ports);
        h
    }

    #[tokio::test]
    async fn a_large_file_is_read_once_staged_and_copied_by_s3_to_its_key() {
        let data = large_data(13, 0);
        let bytes_read = Arc::new(std::sync::Mutex::new(0));
        let reader = Arc::new(CountingReader { data: data.clone(), bytes_read: bytes_read.clone() });
        let h = with_source(large_harness(|_| {}), Arc::new(FixedSource { size: data.len() as u64, reader, remote: None }));
        // What a crashed earlier attempt left at the staging key is overwritten, not used.
        let staging = h.worker.settings().staging_key("attachment:1");
        assert_eq!(staging, "_migration-staging/attachment/1");
        h.objects.objects.lock().unwrap().insert(staging.clone(), (b"stale".to_vec(), Default::default()));

        assert_eq!(h.worker.process(delivery("big", &message(1, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        assert_eq!(*bytes_read.lock().unwrap(), data.len() as u64, "each byte is read once");
        let row = h.manifest.get("attachment:1").await.unwrap().unwrap();
        let objects = h.objects.objects.lock().unwrap();
        let (stored, meta) = objects.get(row.s3_key.as_deref().unwrap()).unwrap();
        assert_eq!(*stored, data);
        assert_eq!(meta.get("sha256"), Some(&hashing::to_hex(&hashing::sha256(&data))));
        assert_eq!(meta.get("source-key").map(String::as_str), Some("attachment:1"));
        assert!(!objects.contains_key(&staging), "the staging copy is deleted once the file is stored");
        assert_eq!(objects.len(), 1);
        assert_eq!((*h.objects.copies.lock().unwrap(), *h.objects.heads.lock().unwrap()), (1, 0), "the copy's checksum is the check");
    }

    /// From a staging bucket, S3 copies a large file to its staging key (computing its
    /// SHA-256) and then to its content-addressed key: the worker reads none of its bytes. A
    /// small file is read (one ranged GET) and PUT as from EFS.
    #[tokio::test]
    async fn a_large_file_in_a_staging_bucket_is_copied_by_s3_without_a_byte_read() {
        let data = large_data(13, 5);
        let bytes_read = Arc::new(std::sync::Mutex::new(0));
        let reader = Arc::new(CountingReader { data: data.clone(), bytes_read: bytes_read.clone() });
        let remote = crate::ports::RemoteObject { bucket: "staging".into(), key: "efsdata/big.pdf".into(), etag: "\"e1\"".into() };
        let h = with_source(large_harness(|_| {}), Arc::new(FixedSource { size: data.len() as u64, reader, remote: Some(remote) }));
        h.objects.remote.lock().unwrap().insert("staging/efsdata/big.pdf".into(), Arc::new(data.clone()));

        assert_eq!(h.worker.process(delivery("big", &message(1, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        assert_eq!(*bytes_read.lock().unwrap(), 0, "no byte passes through the worker");
        let row = h.manifest.get("attachment:1").await.unwrap().unwrap();
        assert_eq!(row.content_hash.as_deref(), Some(hashing::to_hex(&hashing::sha256(&data)).as_str()));
        {
            let objects = h.objects.objects.lock().unwrap();
            let (stored, meta) = objects.get(row.s3_key.as_deref().unwrap()).unwrap();
            assert_eq!(*stored, data);
            assert_eq!(meta.get("source-key").map(String::as_str), Some("attachment:1"));
            assert_eq!(objects.len(), 1, "the staging copy is deleted");
        }
        assert_eq!((*h.objects.copies.lock().unwrap(), *h.objects.puts.lock().unwrap()), (2, 0), "in, then to its key; no upload");

        let small = b"a small certificate".to_vec();
        let small_read = Arc::new(std::sync::Mutex::new(0));
        let reader = Arc::new(CountingReader { data: small.clone(), bytes_read: small_read.clone() });
        let remote = crate::ports::RemoteObject { bucket: "staging".into(), key: "efsdata/small.pdf".into(), etag: "\"e2\"".into() };
        let h = with_source(large_harness(|_| {}), Arc::new(FixedSource { size: small.len() as u64, reader, remote: Some(remote) }));
        assert_eq!(h.worker.process(delivery("small", &message(2, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        assert_eq!(*small_read.lock().unwrap(), small.len() as u64);
        assert_eq!((*h.objects.copies.lock().unwrap(), *h.objects.puts.lock().unwrap()), (0, 1));
    }

    #[tokio::test]
    async fn a_staged_file_whose_content_is_stored_already_is_deduplicated_and_its_staging_copy_dropped() {
        let data = large_data(7, 1);
        let h = large_harness(|_| {});
        h.source.insert(R1, data.clone());
        h.source.insert(R2, data.clone());
        assert_eq!(h.worker.process(delivery("a", &message(1, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        assert_eq!(h.worker.process(delivery("b", &message(2, Some("7"), P2))).await, RecordResult::Done(FileStatus::Deduplicated));
        let objects = h.objects.objects.lock().unwrap();
        assert_eq!(objects.keys().filter(|k| k.starts_with(STAGING_PREFIX)).count(), 0);
        assert_eq!(objects.len(), 1);
        assert_eq!(*h.objects.copies.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn files_beyond_the_copy_limit_are_hashed_then_uploaded_with_a_composite_checksum() {
        let h = large_harness(|s| s.server_side_copy_limit = 8 * 1024 * 1024);
        let data = large_data(13, 2);
        h.source.insert(R1, data.clone());
        assert_eq!(h.worker.process(delivery("big", &message(1, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        let row = h.manifest.get("attachment:1").await.unwrap().unwrap();
        let stored = h.objects.objects.lock().unwrap().get(row.s3_key.as_deref().unwrap()).unwrap().0.clone();
        assert_eq!(stored, data);
        assert_eq!(*h.objects.copies.lock().unwrap(), 0);
        assert_eq!(*h.objects.heads.lock().unwrap(), 1, "the composite checksum is read back");
        assert_eq!(h.worker.settings().part_size_for(data.len() as u64), 5 * 1024 * 1024);
    }

    /// A reader whose bytes change after the first pass, like a file edited mid-migration.
    struct ChangingReader {
        reads: std::sync::Mutex<u64>,
        data: Vec<u8>,
        first_pass_bytes: u64,
    }

    #[async_trait::async_trait]
    impl crate::ports::RangeReader for ChangingReader {
        async fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, PortError> {
            let mut reads = self.reads.lock().unwrap();
            let mut out = self.data[offset as usize..offset as usize + len].to_vec();
            if *reads >= self.first_pass_bytes {
                out[0] ^= 0xff;
            }
            *reads += len as u64;
            Ok(out)
        }
    }

    /// A source whose every candidate resolves to one given reader of `size` bytes.
    struct FixedSource {
        reader: Arc<dyn crate::ports::RangeReader>,
        size: u64,
        /// Where the bytes are in S3, for a staging-bucket source.
        remote: Option<crate::ports::RemoteObject>,
    }

    #[async_trait::async_trait]
    impl FileSource for FixedSource {
        async fn locate(&self, c: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError> {
            Ok(Ok(Located {
                resolved_path: c[0].relative.display().to_string(),
                generation: "gen3".into(),
                via: "primary".into(),
                size: self.size,
                reader: self.reader.clone(),
                remote: self.remote.clone(),
            }))
        }
    }

    #[tokio::test]
    async fn a_file_that_changes_during_multipart_fails_aborts_and_releases_its_claim() {
        let mut h = large_harness(|s| s.server_side_copy_limit = 8 * 1024 * 1024);
        let data = vec![7u8; 11 * 1024 * 1024];
        let reader = Arc::new(ChangingReader { reads: Default::default(), data: data.clone(), first_pass_bytes: data.len() as u64 });
        let ports = WorkerPorts {
            manifest: h.manifest.clone(),
            dedup: h.dedup.clone(),
            objects: h.objects.clone(),
            dead_letters: h.dlq.clone(),
            source: Arc::new(FixedSource { size: data.len() as u64, reader, remote: None }),
            redelivery: None,
        };
        h.worker = Worker::new(h.worker.settings().clone(), ports);
        let r = h.worker.process(delivery("c", &message(1, Some("7"), P1))).await;
        assert!(matches!(&r, RecordResult::Retry(why) if why.contains("changed")), "{r:?}");
        assert_eq!(*h.objects.aborted.lock().unwrap(), 1);
        assert!(h.objects.objects.lock().unwrap().is_empty());
        assert!(h.dedup.claims.lock().unwrap().is_empty(), "claim left behind");
    }

    #[tokio::test]
    async fn the_batch_response_names_only_records_to_retry() {
        let h = harness(|_| {});
        h.source.insert(R1, b"ok".to_vec());
        let hash = hashing::to_hex(&hashing::sha256(b"busy"));
        h.source.insert(R2, b"busy".to_vec());
        h.dedup.claim(&format!("acct#7#{hash}"), "someone", now_ms() + 60_000, now_ms()).await.unwrap();
        let mut event = SqsEvent::default();
        for (id, m) in [("ok", message(1, Some("7"), P1)), ("busy", message(2, Some("7"), P2))] {
            let mut r = SqsMessage::default();
            r.message_id = Some(id.into());
            r.receipt_handle = Some(format!("handle-{id}"));
            r.body = Some(m.to_json());
            r.attributes.insert("ApproximateReceiveCount".into(), "3".into());
            event.records.push(r);
        }
        let response = h.worker.handle_batch(event).await;
        let ids: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(ids, vec!["busy".to_string()]);
        // The busy record comes back soon after the holder's lease, not after the queue's
        // visibility timeout; the settled one is not touched.
        let delays = h.redelivery.delays.lock().unwrap().clone();
        assert_eq!(delays.len(), 1);
        assert_eq!(delays[0].0, "handle-busy");
        assert!(delays[0].1 >= Duration::from_secs(5) && delays[0].1 <= Duration::from_secs(65), "{:?}", delays[0].1);
        assert_eq!(h.manifest.get("attachment:1").await.unwrap().unwrap().attempts, 3);
        // Metrics of the batch: one file moved (2 bytes), one to retry, a latency for each.
        let metrics = h.worker.metrics.take();
        assert_eq!((metrics.sum("FilesMoved"), metrics.sum("BytesUploaded"), metrics.sum("FilesFailed")), (Some(1.0), Some(2.0), Some(1.0)));
        let doc = &metrics.to_emf("worker", 0)[0];
        assert_eq!(doc["FileLatency"].as_array().map(Vec::len), Some(2));

        // A duplicate delivery of the settled file stores nothing and counts nothing.
        let mut again = SqsEvent::default();
        let mut r = SqsMessage::default();
        r.message_id = Some("ok-again".into());
        r.body = Some(message(1, Some("7"), P1).to_json());
        again.records.push(r);
        assert!(h.worker.handle_batch(again).await.batch_item_failures.is_empty());
        assert_eq!(h.worker.metrics.take().sum("FilesMoved"), None);
    }

    /// A reader that takes a while per read, like EFS under load, and can run a hook after
    /// each read (to simulate another worker acting meanwhile).
    struct SlowReader {
        data: Vec<u8>,
        delay: Duration,
        after_read: Box<dyn Fn() + Send + Sync>,
    }

    #[async_trait::async_trait]
    impl crate::ports::RangeReader for SlowReader {
        async fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, PortError> {
            tokio::time::sleep(self.delay).await;
            (self.after_read)();
            Ok(self.data[offset as usize..offset as usize + len].to_vec())
        }
    }


    fn slow_harness(lease: Duration, after_read: Box<dyn Fn() + Send + Sync>, dedup: Arc<MemoryDedup>) -> Harness {
        // Beyond the copy limit: the claim is held while the parts go out.
        let mut h = large_harness(|s| {
            s.server_side_copy_limit = 8 * 1024 * 1024;
            s.part_concurrency = 1;
            s.lease = lease;
        });
        h.dedup = dedup;
        let reader = Arc::new(SlowReader { data: vec![3u8; 16 * 1024 * 1024], delay: Duration::from_millis(40), after_read });
        let ports = WorkerPorts {
            manifest: h.manifest.clone(),
            dedup: h.dedup.clone(),
            objects: h.objects.clone(),
            dead_letters: h.dlq.clone(),
            source: Arc::new(FixedSource { size: reader.data.len() as u64, reader, remote: None }),
            redelivery: None,
        };
        h.worker = Worker::new(h.worker.settings().clone(), ports);
        h
    }

    #[tokio::test]
    async fn a_long_multipart_upload_keeps_renewing_its_lease() {
        let dedup = Arc::new(MemoryDedup::default());
        let h = slow_harness(Duration::from_millis(90), Box::new(|| {}), dedup.clone());
        assert_eq!(h.worker.process(delivery("big", &message(1, Some("7"), P1))).await, RecordResult::Done(FileStatus::Moved));
        assert!(*dedup.renewals.lock().unwrap() >= 1, "the lease was never renewed");
        assert!(matches!(dedup.claims.lock().unwrap().values().next(), Some(ClaimState::Complete { .. })));
    }

    #[tokio::test]
    async fn losing_the_lease_mid_upload_aborts_and_retries() {
        let dedup = Arc::new(MemoryDedup::default());
        let thief = dedup.clone();
        // After every read, someone else holds the claim (as after a takeover of an expired lease).
        let steal = Box::new(move || {
            let mut claims = thief.claims.lock().unwrap();
            for v in claims.values_mut() {
                if let ClaimState::Claimed { owner, .. } = v {
                    *owner = "attachment:666".into();
                }
            }
        });
        let h = slow_harness(Duration::from_millis(90), steal, dedup);
        let r = h.worker.process(delivery("big", &message(1, Some("7"), P1))).await;
        assert!(matches!(&r, RecordResult::Retry(why) if why.contains("lost the content claim")), "{r:?}");
        assert_eq!(*h.objects.aborted.lock().unwrap(), 1);
        assert!(h.objects.objects.lock().unwrap().is_empty());
    }
}
