//! In-memory adapters for unit tests of the domain. They keep the same conditional
//! semantics as the DynamoDB and S3 adapters, so the worker's protocol can be tested
//! without any network.

use crate::error::PortError;
use crate::hashing;
use crate::manifest::{ManifestRecord, Outcome};
use crate::message::FileMessage;
use crate::model::{DeadLetterReason, FileStatus};
use crate::paths::Candidate;
use crate::ports::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct MemoryManifest {
    pub rows: Mutex<BTreeMap<String, ManifestRecord>>,
}

#[async_trait]
impl ManifestStore for MemoryManifest {
    async fn begin(&self, m: &FileMessage, uid_ts: &str, now: &str) -> Result<ManifestRecord, PortError> {
        let mut rows = self.rows.lock().unwrap();
        let row = rows.entry(m.source.key()).or_insert_with(|| ManifestRecord {
            source_key: m.source.key(),
            uid_ts: Some(uid_ts.into()),
            first_attempt_at: Some(now.into()),
            status: Some(FileStatus::InProgress),
            ..Default::default()
        });
        row.area = Some(m.area);
        row.legacy_path = m.legacy_path.clone();
        row.account_id = m.account_id.clone();
        row.original_filename = m.original_filename.clone();
        row.ids = m.ids.clone();
        row.legacy_status = m.legacy_status.clone();
        Ok(row.clone())
    }

    async fn record(&self, key: &str, outcome: &Outcome) -> Result<bool, PortError> {
        let mut rows = self.rows.lock().unwrap();
        let row = rows.entry(key.to_string()).or_insert_with(|| ManifestRecord { source_key: key.into(), ..Default::default() });
        if !matches!(outcome, Outcome::Stored { .. }) && row.status.is_some_and(FileStatus::is_stored) {
            return Ok(false);
        }
        row.status = Some(outcome.status());
        match outcome {
            Outcome::Stored { resolution, s3_key, content_hash, file_uid, size, dedup_of, attempts, completed_at, .. } => {
                row.resolved_path = Some(resolution.resolved_path.clone());
                row.generation = Some(resolution.generation.clone());
                row.resolved_via = Some(resolution.via.clone());
                row.s3_key = Some(s3_key.clone());
                row.content_hash = Some(content_hash.clone());
                row.file_uid = Some(file_uid.clone());
                row.size = Some(*size);
                row.dedup_of = dedup_of.clone();
                row.attempts = *attempts;
                row.completed_at.get_or_insert_with(|| completed_at.clone());
                row.last_error = None;
                row.dlq_for_message = None;
            }
            Outcome::Missing { tried, attempts, dlq_for_message } => {
                row.last_error = Some(format!("missing: tried {}", tried.join(", ")));
                row.attempts = *attempts;
                row.dlq_for_message = dlq_for_message.clone();
            }
            Outcome::Rejected { reason, attempts, dlq_for_message } => {
                row.last_error = Some(reason.clone());
                row.attempts = *attempts;
                row.dlq_for_message = dlq_for_message.clone();
            }
            Outcome::Failed { error, attempts } => {
                row.last_error = Some(error.clone());
                row.attempts = *attempts;
            }
        }
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<ManifestRecord>, PortError> {
        Ok(self.rows.lock().unwrap().get(key).cloned())
    }

    async fn statuses(&self, keys: &[String]) -> Result<HashMap<String, FileStatus>, PortError> {
        let rows = self.rows.lock().unwrap();
        Ok(keys.iter().filter_map(|k| rows.get(k).and_then(|r| r.status).map(|s| (k.clone(), s))).collect())
    }

    async fn scan_all(&self) -> Result<Vec<ManifestRecord>, PortError> {
        Ok(self.rows.lock().unwrap().values().cloned().collect())
    }
}

#[derive(Default)]
pub struct MemoryDedup {
    pub claims: Mutex<HashMap<String, ClaimState>>,
    pub renewals: Mutex<u64>,
}

#[async_trait]
impl DedupStore for MemoryDedup {
    async fn claim(&self, key: &str, owner: &str, lease_until_ms: i64, now_ms: i64) -> Result<ClaimAttempt, PortError> {
        let mut claims = self.claims.lock().unwrap();
        let took_over_from = match claims.get(key) {
            None => None,
            Some(ClaimState::Claimed { owner: o, .. }) if o == owner => None,
            Some(ClaimState::Claimed { owner: o, lease_until_ms: until }) if *until < now_ms => Some(o.clone()),
            Some(existing) => return Ok(ClaimAttempt::Existing(existing.clone())),
        };
        claims.insert(key.into(), ClaimState::Claimed { owner: owner.into(), lease_until_ms });
        Ok(ClaimAttempt::Acquired { took_over_from })
    }

    async fn renew(&self, key: &str, owner: &str, lease_until_ms: i64) -> Result<bool, PortError> {
        let mut claims = self.claims.lock().unwrap();
        match claims.get_mut(key) {
            Some(ClaimState::Claimed { owner: o, lease_until_ms: until }) if o == owner => {
                *until = lease_until_ms;
                *self.renewals.lock().unwrap() += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn complete(&self, key: &str, owner: &str, s3_key: &str, _size: u64) -> Result<bool, PortError> {
        let mut claims = self.claims.lock().unwrap();
        let ours = match claims.get(key) {
            Some(ClaimState::Claimed { owner: o, .. }) => o == owner,
            Some(ClaimState::Complete { owner: o, s3_key: k }) => o == owner && k == s3_key,
            None => false,
        };
        if ours {
            claims.insert(key.into(), ClaimState::Complete { owner: owner.into(), s3_key: s3_key.into() });
        }
        Ok(ours)
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), PortError> {
        let mut claims = self.claims.lock().unwrap();
        if matches!(claims.get(key), Some(ClaimState::Claimed { owner: o, .. }) if o == owner) {
            claims.remove(key);
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<ClaimState>, PortError> {
        Ok(self.claims.lock().unwrap().get(key).cloned())
    }
}

/// A bucket in memory that, like S3, verifies the SHA-256 it is given and honours
/// `If-None-Match: *`. `puts` counts the uploads that actually stored bytes.
type Metadata = HashMap<String, String>;
/// An upload in progress: key, parts by number, metadata.
type PendingUpload = (String, BTreeMap<i32, Vec<u8>>, Metadata);

#[derive(Default)]
pub struct MemoryObjects {
    pub objects: Mutex<BTreeMap<String, (Vec<u8>, Metadata)>>,
    pub uploads: Mutex<HashMap<String, PendingUpload>>,
    pub puts: Mutex<u64>,
    pub heads: Mutex<u64>,
    pub copies: Mutex<u64>,
    pub aborted: Mutex<u64>,
    /// Other buckets' objects `copy_in` can copy from, by `bucket/key`.
    pub remote: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    async fn put_object(&self, key: &str, body: Vec<u8>, sha256_b64: &str, metadata: &[(String, String)]) -> Result<PutOutcome, PortError> {
        if hashing::to_b64(&hashing::sha256(&body)) != sha256_b64 {
            return Err(PortError::permanent("put_object", "BadDigest"));
        }
        let mut objects = self.objects.lock().unwrap();
        if objects.contains_key(key) {
            return Ok(PutOutcome::AlreadyExists);
        }
        objects.insert(key.into(), (body, metadata.iter().cloned().collect()));
        *self.puts.lock().unwrap() += 1;
        Ok(PutOutcome::Created)
    }

    async fn head_object(&self, key: &str) -> Result<Option<StoredObject>, PortError> {
        *self.heads.lock().unwrap() += 1;
        Ok(self.objects.lock().unwrap().get(key).map(|(body, meta)| StoredObject {
            size: body.len() as u64,
            checksum_sha256: Some(hashing::to_b64(&hashing::sha256(body))),
            metadata_sha256: meta.get("sha256").cloned(),
            metadata_source_key: meta.get("source-key").cloned(),
        }))
    }

    async fn create_multipart(&self, key: &str, metadata: &[(String, String)]) -> Result<String, PortError> {
        let mut uploads = self.uploads.lock().unwrap();
        let id = format!("upload-{}", uploads.len() + 1);
        uploads.insert(id.clone(), (key.into(), BTreeMap::new(), metadata.iter().cloned().collect()));
        Ok(id)
    }

    async fn upload_part(&self, _key: &str, upload_id: &str, part_number: i32, body: Vec<u8>, sha256_b64: &str) -> Result<UploadedPart, PortError> {
        if hashing::to_b64(&hashing::sha256(&body)) != sha256_b64 {
            return Err(PortError::permanent("upload_part", "BadDigest"));
        }
        let mut uploads = self.uploads.lock().unwrap();
        let upload = uploads.get_mut(upload_id).ok_or_else(|| PortError::permanent("upload_part", "NoSuchUpload"))?;
        upload.1.insert(part_number, body);
        Ok(UploadedPart { part_number, etag: format!("etag-{part_number}"), checksum_sha256: sha256_b64.into() })
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[UploadedPart], only_if_absent: bool) -> Result<PutOutcome, PortError> {
        let (_, bodies, meta) = self
            .uploads
            .lock()
            .unwrap()
            .remove(upload_id)
            .ok_or_else(|| PortError::permanent("complete_multipart", "NoSuchUpload"))?;
        let mut objects = self.objects.lock().unwrap();
        if only_if_absent && objects.contains_key(key) {
            return Ok(PutOutcome::AlreadyExists);
        }
        let mut body = Vec::new();
        for p in parts {
            body.extend_from_slice(&bodies[&p.part_number]);
        }
        objects.insert(key.into(), (body, meta));
        *self.puts.lock().unwrap() += 1;
        Ok(PutOutcome::Created)
    }

    async fn copy_object(&self, from: &str, to: &str, metadata: &[(String, String)]) -> Result<Option<String>, PortError> {
        let mut objects = self.objects.lock().unwrap();
        let (body, _) = objects.get(from).cloned().ok_or_else(|| PortError::retryable("copy_object", "NoSuchKey"))?;
        let checksum = hashing::to_b64(&hashing::sha256(&body));
        objects.insert(to.into(), (body, metadata.iter().cloned().collect()));
        *self.copies.lock().unwrap() += 1;
        Ok(Some(checksum))
    }

    async fn copy_in(&self, from: &RemoteObject, to: &str, metadata: &[(String, String)]) -> Result<Option<String>, PortError> {
        let body = self
            .remote
            .lock()
            .unwrap()
            .get(&format!("{}/{}", from.bucket, from.key))
            .cloned()
            .ok_or_else(|| PortError::retryable("copy_object", "NoSuchKey"))?;
        let checksum = hashing::to_b64(&hashing::sha256(&body));
        self.objects.lock().unwrap().insert(to.into(), (body.to_vec(), metadata.iter().cloned().collect()));
        *self.copies.lock().unwrap() += 1;
        Ok(Some(checksum))
    }

    async fn read_sha256(&self, key: &str) -> Result<(hashing::Sha256Digest, u64), PortError> {
        let objects = self.objects.lock().unwrap();
        let (body, _) = objects.get(key).ok_or_else(|| PortError::permanent("get_object", "NoSuchKey"))?;
        Ok((hashing::sha256(body), body.len() as u64))
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<(), PortError> {
        self.uploads.lock().unwrap().remove(upload_id);
        *self.aborted.lock().unwrap() += 1;
        Ok(())
    }

    async fn delete_object(&self, key: &str) -> Result<(), PortError> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryDeadLetters {
    pub messages: Mutex<Vec<(String, DeadLetterReason, String)>>,
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn forward(&self, body: &str, reason: DeadLetterReason, detail: &str, _key: Option<&str>) -> Result<String, PortError> {
        let mut m = self.messages.lock().unwrap();
        m.push((body.into(), reason, detail.into()));
        Ok(format!("dlq-{}", m.len()))
    }
}

/// Files by root-relative path, for worker unit tests.
#[derive(Default)]
pub struct MemorySource {
    pub files: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl MemorySource {
    pub fn insert(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.into(), Arc::new(bytes));
    }
}

struct BytesReader(Arc<Vec<u8>>);

#[async_trait]
impl RangeReader for BytesReader {
    async fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, PortError> {
        let start = offset as usize;
        self.0
            .get(start..start + len)
            .map(|s| s.to_vec())
            .ok_or_else(|| PortError::retryable("read", "short read"))
    }
}

#[async_trait]
impl FileSource for MemorySource {
    async fn locate(&self, candidates: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError> {
        let files = self.files.lock().unwrap();
        for c in candidates {
            let path = c.relative.display().to_string();
            if let Some(bytes) = files.get(&path) {
                return Ok(Ok(Located {
                    generation: c.generation.clone(),
                    via: c.via.clone(),
                    size: bytes.len() as u64,
                    reader: Arc::new(BytesReader(bytes.clone())),
                    remote: None,
                    resolved_path: path,
                }));
            }
        }
        Ok(Err(LocateFailure::Missing { tried: candidates.iter().map(|c| c.relative.display().to_string()).collect() }))
    }
}

#[derive(Default)]
pub struct MemoryRuns {
    pub runs: Mutex<HashMap<String, RunState>>,
}

#[async_trait]
impl RunStore for MemoryRuns {
    async fn load(&self, run_id: &str) -> Result<Option<RunState>, PortError> {
        Ok(self.runs.lock().unwrap().get(run_id).cloned())
    }
    async fn checkpoint(&self, run_id: &str, expected_version: u64, next: &RunState) -> Result<bool, PortError> {
        let mut runs = self.runs.lock().unwrap();
        let current = runs.get(run_id).map(|r| r.version).unwrap_or(0);
        if current != expected_version {
            return Ok(false);
        }
        runs.insert(run_id.into(), next.clone());
        Ok(true)
    }
}

/// Records the redelivery delays the worker asks for.
#[derive(Default)]
pub struct MemoryRedelivery {
    pub delays: Mutex<Vec<(String, std::time::Duration)>>,
}

#[async_trait]
impl Redelivery for MemoryRedelivery {
    async fn redeliver_after(&self, receipt_handle: &str, wait: std::time::Duration) -> Result<(), PortError> {
        self.delays.lock().unwrap().push((receipt_handle.into(), wait));
        Ok(())
    }
}
