//! Self-validation of a move: every stored manifest row points at an object whose stored
//! checksum and size match the row, and whose key carries the content hash.

use crate::error::PortError;
use crate::hashing;
use crate::manifest::ManifestRecord;
use crate::ports::ObjectStore;
use futures::StreamExt;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub rows_checked: u64,
    pub objects_checked: u64,
    /// Objects downloaded and hashed because their stored checksum is a multipart composite.
    pub downloaded: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

pub async fn verify_stored(records: &[ManifestRecord], objects: &dyn ObjectStore) -> Result<VerifyReport, PortError> {
    let mut report = VerifyReport::default();
    let mut by_key: BTreeMap<&str, Vec<&ManifestRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status.is_some_and(|s| s.is_stored())) {
        report.rows_checked += 1;
        match (&r.s3_key, &r.content_hash, r.size) {
            (Some(k), Some(h), Some(_)) => {
                if !k.contains(h.as_str()) {
                    report.problems.push(format!("{}: key {k} does not carry content hash {h}", r.source_key));
                }
                by_key.entry(k.as_str()).or_default().push(r);
            }
            _ => report.problems.push(format!("{}: stored row lacks s3_key, content_hash or size", r.source_key)),
        }
    }
    let heads: Vec<_> = futures::stream::iter(by_key.keys().copied())
        .map(|k| async move { (k, objects.head_object(k).await) })
        .buffer_unordered(16)
        .collect()
        .await;
    for (key, head) in heads {
        report.objects_checked += 1;
        let rows = &by_key[key];
        let Some(stored) = head? else {
            report.problems.push(format!("{key}: referenced by {} rows but not in the bucket", rows.len()));
            continue;
        };
        for r in rows {
            let hash = r.content_hash.as_deref().unwrap_or_default();
            let Ok(bytes) = hex::decode(hash) else {
                report.problems.push(format!("{}: content_hash {hash} is not hex", r.source_key));
                continue;
            };
            let Ok(digest) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                report.problems.push(format!("{}: content_hash {hash} is not a SHA-256", r.source_key));
                continue;
            };
            let whole = hashing::to_b64(&digest);
            if stored.checksum_sha256.as_deref().is_some_and(|c| c != whole) {
                // A multipart object: its stored checksum is over parts we do not know here,
                // so hash the object itself.
                let (actual, size) = objects.read_sha256(key).await?;
                report.downloaded += 1;
                if actual != digest || Some(size) != r.size {
                    report.problems.push(format!("{}: object {key} content hash {} differs from {hash}", r.source_key, hashing::to_hex(&actual)));
                }
            } else if let Err(e) = crate::worker::check_stored(&stored, key, r.size.unwrap_or(0), &digest, None) {
                report.problems.push(format!("{}: {e}", r.source_key));
            }
        }
    }
    Ok(report)
}
