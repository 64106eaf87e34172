//! The ports the domain talks through. Adapters implement them over AWS, the filesystem and
//! memory (for unit tests); the domain never names an AWS type.

use crate::error::PortError;
use crate::manifest::{ManifestRecord, Outcome};
use crate::message::FileMessage;
use crate::model::{DeadLetterReason, FileStatus};
use crate::paths::Candidate;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

/// The durable per-file record (DynamoDB in production).
#[async_trait]
pub trait ManifestStore: Send + Sync {
    /// Registers an attempt at a file: creates the row from the message if absent, fixes the
    /// file-UID timestamp the first time (`uid_ts_candidate` is used only then) and returns
    /// the row as it now stands. Calling it again with the same message changes nothing.
    async fn begin(&self, message: &FileMessage, uid_ts_candidate: &str, now: &str) -> Result<ManifestRecord, PortError>;

    /// Records an outcome. A non-stored outcome (failed, missing, rejected) never overwrites a
    /// stored one: a late failure of a duplicate delivery must not undo a move, and the object
    /// a stored row names stays valid. Returns false when nothing was written for that reason.
    async fn record(&self, source_key: &str, outcome: &Outcome) -> Result<bool, PortError>;

    async fn get(&self, source_key: &str) -> Result<Option<ManifestRecord>, PortError>;

    /// Statuses of many rows at once (rows without a status are absent from the map).
    async fn statuses(&self, source_keys: &[String]) -> Result<HashMap<String, FileStatus>, PortError>;

    /// Every row, for exports and reports.
    async fn scan_all(&self) -> Result<Vec<ManifestRecord>, PortError>;
}

/// A content-hash claim, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    /// Someone (maybe us) holds the lease until `lease_until_ms`.
    Claimed { owner: String, lease_until_ms: i64 },
    /// The content is stored at `s3_key`; `owner` is the source that uploaded it.
    Complete { owner: String, s3_key: String },
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAttempt {
    /// We hold the lease (new claim, our own earlier claim, or an expired one taken over).
    Acquired { took_over_from: Option<String> },
    /// Another holder's lease is live, or the content is already stored.
    Existing(ClaimState),
}

/// Deduplication by content hash (DynamoDB conditional writes in production).
#[async_trait]
pub trait DedupStore: Send + Sync {
    /// Claims `dedup_key` for `owner` until `lease_until_ms`, succeeding when there is no
    /// claim, when the claim is already `owner`'s, or when its lease expired before `now_ms`.
    async fn claim(&self, dedup_key: &str, owner: &str, lease_until_ms: i64, now_ms: i64) -> Result<ClaimAttempt, PortError>;
    /// Extends our lease; false when it is no longer ours.
    async fn renew(&self, dedup_key: &str, owner: &str, lease_until_ms: i64) -> Result<bool, PortError>;
    /// Marks the content stored; false when the claim is no longer ours (someone took over).
    async fn complete(&self, dedup_key: &str, owner: &str, s3_key: &str, size: u64) -> Result<bool, PortError>;
    /// Gives up our live claim so a waiting worker need not wait for the lease to expire.
    async fn release(&self, dedup_key: &str, owner: &str) -> Result<(), PortError>;
    async fn get(&self, dedup_key: &str) -> Result<Option<ClaimState>, PortError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// `If-None-Match: *` refused: the key already holds an object (ours from an earlier
    /// attempt, or a racer's). The caller verifies it instead of overwriting it.
    AlreadyExists,
}

/// What HeadObject says about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// Base64 SHA-256 as stored; composite objects end in `-<parts>`.
    pub checksum_sha256: Option<String>,
    /// The hex SHA-256 we put in the object's metadata.
    pub metadata_sha256: Option<String>,
    /// The manifest key of the file whose upload created the object (metadata).
    pub metadata_source_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub part_number: i32,
    pub etag: String,
    pub checksum_sha256: String,
}

/// The destination bucket.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// One PUT carrying the SHA-256 checksum and `If-None-Match: *`.
    async fn put_object(&self, key: &str, body: Vec<u8>, sha256_b64: &str, metadata: &[(String, String)]) -> Result<PutOutcome, PortError>;
    async fn head_object(&self, key: &str) -> Result<Option<StoredObject>, PortError>;
    async fn create_multipart(&self, key: &str, metadata: &[(String, String)]) -> Result<String, PortError>;
    async fn upload_part(&self, key: &str, upload_id: &str, part_number: i32, body: Vec<u8>, sha256_b64: &str) -> Result<UploadedPart, PortError>;
    /// Completes the upload; with `only_if_absent`, with `If-None-Match: *` (a staging key is
    /// overwritten instead).
    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[UploadedPart], only_if_absent: bool) -> Result<PutOutcome, PortError>;
    /// Server-side copy of `from` to `to` with `metadata`, asking S3 for the new object's
    /// full SHA-256; returns it (base64) when S3 does.
    async fn copy_object(&self, from: &str, to: &str, metadata: &[(String, String)]) -> Result<Option<String>, PortError>;
    /// Server-side copy of `from` (another bucket's object, that very version) to `to` with
    /// `metadata`, overwriting `to` (a staging key); returns the new object's full SHA-256
    /// (base64) when S3 computed it.
    async fn copy_in(&self, from: &RemoteObject, to: &str, metadata: &[(String, String)]) -> Result<Option<String>, PortError>;
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), PortError>;
    /// Removes an object (an earlier attempt's copy that no manifest row references).
    async fn delete_object(&self, key: &str) -> Result<(), PortError>;
    /// Downloads the object, hashing as it streams; returns its SHA-256 and size. Used to
    /// verify objects whose stored checksum is a composite of unknown parts.
    async fn read_sha256(&self, key: &str) -> Result<(crate::hashing::Sha256Digest, u64), PortError>;
}

/// Where permanent failures go (the SQS dead-letter queue in production).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Forwards `body` with its reason; returns the new message's id.
    async fn forward(&self, body: &str, reason: DeadLetterReason, detail: &str, source_key: Option<&str>) -> Result<String, PortError>;
}

/// A located source file.
#[derive(Clone)]
pub struct Located {
    /// Root-relative path (or staging key) that matched.
    pub resolved_path: String,
    pub generation: String,
    /// How it was found: `primary`, `probe:<generation>`, `fallback`, `decoded-name`.
    pub via: String,
    pub size: u64,
    pub reader: Arc<dyn RangeReader>,
    /// Where the bytes are when they are in S3 (the staging-bucket source), so that S3 can
    /// copy them itself; `None` for a mounted file.
    pub remote: Option<RemoteObject>,
}

/// One version of an object in another bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    pub bucket: String,
    pub key: String,
    /// The version the source located; a copy or read of any other version fails.
    pub etag: String,
}

impl std::fmt::Debug for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Located")
            .field("resolved_path", &self.resolved_path)
            .field("via", &self.via)
            .field("size", &self.size)
            .finish()
    }
}

/// Positional reads of one open source file.
#[async_trait]
pub trait RangeReader: Send + Sync {
    /// Reads exactly `len` bytes at `offset`; a short read (the file shrank) is an error.
    async fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, PortError>;

    /// Reads the whole file (`len` bytes) and hashes it. A reader on the blocking pool does
    /// both in one task (one hand-off between threads per file instead of two).
    async fn read_all_hashed(&self, len: usize) -> Result<(Vec<u8>, crate::hashing::Sha256Digest), PortError> {
        let bytes = self.read_range(0, len).await?;
        Ok(crate::hashing::sha256_owned(bytes).await)
    }

    /// [`RangeReader::read_range`], feeding the bytes to the whole-file `hasher` and, when
    /// `part_digest` is set, returning their own digest too (a multipart part checksum). A
    /// reader on the blocking pool hashes each slice as it reads it, while it is in cache.
    async fn read_range_hashed(
        &self,
        offset: u64,
        len: usize,
        hasher: crate::hashing::StreamingSha256,
        part_digest: bool,
    ) -> Result<(Vec<u8>, crate::hashing::StreamingSha256, Option<crate::hashing::Sha256Digest>), PortError> {
        let bytes = self.read_range(offset, len).await?;
        let (hasher, bytes, part) = hasher.update(bytes, part_digest).await;
        Ok((bytes, hasher, part))
    }
}

/// Why no candidate could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocateFailure {
    /// None of the candidates exists.
    Missing { tried: Vec<String> },
    /// Something exists but must not be read (escapes the root, not a regular file).
    Rejected { reason: String },
}

/// Where the legacy files are read from: the mounted EFS (`source::MountedSource`) or a staging
/// bucket (`adapters::staging::StagingSource`).
#[async_trait]
pub trait FileSource: Send + Sync {
    /// Tries the candidates in order and opens the first usable one.
    async fn locate(&self, candidates: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError>;
}

/// The inventory's persisted progress (one row per named run).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    pub cursor: Option<crate::inventory::Cursor>,
    pub done: bool,
    pub totals: crate::inventory::InventoryCounts,
    /// Bumped by every checkpoint; checkpoints are conditional on it, so a duplicate or
    /// stale invocation can never add its counts twice.
    pub version: u64,
}

#[async_trait]
pub trait RunStore: Send + Sync {
    async fn load(&self, run_id: &str) -> Result<Option<RunState>, PortError>;
    /// Writes `next` if the stored version is still `expected_version` (0 = no row yet).
    /// Returns false when someone else checkpointed first.
    async fn checkpoint(&self, run_id: &str, expected_version: u64, next: &RunState) -> Result<bool, PortError>;
}

/// The work queue, as the inventory sees it.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Sends up to ten message bodies; an error means some were not accepted.
    async fn send_batch(&self, bodies: &[String]) -> Result<(), PortError>;
    /// Visible and in-flight message counts.
    async fn depth(&self) -> Result<(u64, u64), PortError>;
}

/// Reschedules a delivery: a message whose retry cannot succeed before some time is made
/// visible again then, instead of after the queue's long visibility timeout.
#[async_trait]
pub trait Redelivery: Send + Sync {
    async fn redeliver_after(&self, receipt_handle: &str, wait: std::time::Duration) -> Result<(), PortError>;
}
