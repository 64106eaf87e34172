//! The staging-bucket source: when the workers cannot mount DTX 1.0's EFS, the files are first
//! synced from the EFS host into `s3://<bucket>/<prefix>`, the prefix standing for the EFS root
//! (`/efsdata`), and the move reads them from there.
//!
//! Path resolution is the mounted source's (three generations, probes, fallbacks); only the
//! last step differs. A candidate's root-relative path becomes `<prefix><path>` after a lexical
//! confinement check (no `..`, no absolute or empty component, valid UTF-8, within S3's key
//! length), so no crafted legacy path can name a key outside the prefix. A candidate is found
//! by `HeadObject`; its bytes are read with ranged `GetObject`s conditional on the ETag the
//! HEAD saw, so an object replaced mid-read fails the read instead of mixing two versions. The
//! located file also carries its S3 location, which lets the worker have S3 copy a large file
//! into the destination bucket itself (see `ObjectStore::copy_in`).

use super::{classify, service_code};
use crate::error::{ConfigError, PortError};
use crate::paths::Candidate;
use crate::ports::{FileSource, LocateFailure, Located, RangeReader, RemoteObject};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use std::path::{Component, Path};
use std::sync::Arc;

/// S3's longest key, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// Where the synced files are: a bucket and a key prefix (empty, or ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingLocation {
    pub bucket: String,
    pub prefix: String,
}

impl StagingLocation {
    /// Parses `s3://bucket` or `s3://bucket/prefix` (a trailing `/` is implied).
    pub fn parse(uri: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError(format!("source {uri:?}: {why} (expected s3://bucket/prefix)"));
        let rest = uri.strip_prefix("s3://").ok_or_else(|| bad("not an s3:// URI"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(bad("not a valid bucket name"));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.split('/').any(|segment| segment == ".." || segment == ".") || prefix.contains("//") {
            return Err(bad("the prefix has an empty, . or .. segment"));
        }
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(Self { bucket: bucket.to_string(), prefix })
    }

    /// The key standing for a root-relative path, or why the path may not be read.
    pub fn key_for(&self, relative: &Path) -> Result<String, String> {
        let mut segments = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(segment) => {
                    segments.push(segment.to_str().ok_or_else(|| format!("{}: not valid UTF-8", relative.display()))?)
                }
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(format!("{}: escapes the staging prefix", relative.display()))
                }
            }
        }
        if segments.is_empty() {
            return Err(format!("{:?}: names no file", relative.display().to_string()));
        }
        let key = format!("{}{}", self.prefix, segments.join("/"));
        if key.len() > MAX_KEY_BYTES {
            return Err(format!("{}: longer than an S3 key may be", relative.display()));
        }
        Ok(key)
    }

    /// The root-relative path a key under the prefix stands for.
    pub fn relative_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str()).filter(|r| !r.is_empty())
    }

    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

#[derive(Clone)]
pub struct StagingSource {
    client: Client,
    location: StagingLocation,
}

impl StagingSource {
    pub fn new(client: Client, location: StagingLocation) -> Self {
        Self { client, location }
    }

    pub fn location(&self) -> &StagingLocation {
        &self.location
    }

    /// Every object under `<prefix><location>` for each storage location (root-relative
    /// directories such as `attachments/`), as root-relative paths with sizes, sorted: the
    /// inventory's orphan scan.
    pub async fn list(&self, locations: &[String]) -> Result<Vec<(String, u64)>, PortError> {
        let mut out = Vec::new();
        for location in locations {
            let prefix = format!("{}{}", self.location.prefix, location.trim_start_matches('/'));
            let mut pages = self.client.list_objects_v2().bucket(&self.location.bucket).prefix(&prefix).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("s3 list_objects_v2 (staging source)", e))?;
                for object in page.contents() {
                    let (Some(key), Some(size)) = (object.key(), object.size()) else { continue };
                    // A "directory marker" (a zero-byte key ending in /) is no file.
                    if key.ends_with('/') {
                        continue;
                    }
                    if let Some(relative) = self.location.relative_of(key) {
                        out.push((relative.to_string(), size.max(0) as u64));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The object's size and ETag, or `None` when there is no such key.
    async fn head(&self, key: &str) -> Result<Option<(u64, String)>, PortError> {
        match self.client.head_object().bucket(&self.location.bucket).key(key).send().await {
            Ok(out) => Ok(Some((out.content_length.unwrap_or(0).max(0) as u64, out.e_tag.unwrap_or_default()))),
            Err(e) if service_code(&e).is_some_and(|(code, status)| status == 404 || code == "NotFound" || code == "NoSuchKey") => Ok(None),
            Err(e) => Err(classify("s3 head_object (staging source)", e)),
        }
    }
}

#[async_trait]
impl FileSource for StagingSource {
    async fn locate(&self, candidates: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError> {
        let mut tried = Vec::new();
        let mut refused = Vec::new();
        for c in candidates {
            let shown = c.relative.display().to_string();
            let key = match self.location.key_for(&c.relative) {
                Ok(key) => key,
                Err(reason) => {
                    refused.push(reason);
                    continue;
                }
            };
            match self.head(&key).await? {
                Some((size, etag)) => {
                    let remote = RemoteObject { bucket: self.location.bucket.clone(), key: key.clone(), etag: etag.clone() };
                    return Ok(Ok(Located {
                        resolved_path: shown,
                        generation: c.generation.clone(),
                        via: c.via.clone(),
                        size,
                        reader: Arc::new(ObjectReader { client: self.client.clone(), remote: remote.clone() }),
                        remote: Some(remote),
                    }));
                }
                None => tried.push(shown),
            }
        }
        if refused.is_empty() {
            Ok(Err(LocateFailure::Missing { tried }))
        } else {
            Ok(Err(LocateFailure::Rejected { reason: refused.join("; ") }))
        }
    }
}

/// Ranged reads of one version of a staging object.
struct ObjectReader {
    client: Client,
    remote: RemoteObject,
}

#[async_trait]
impl RangeReader for ObjectReader {
    async fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, PortError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let RemoteObject { bucket, key, etag } = &self.remote;
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={offset}-{}", offset + len as u64 - 1))
            .if_match(etag)
            .send()
            .await
            .map_err(|e| match service_code(&e) {
                Some((_, 412)) => PortError::retryable("read staging object", format!("{key} changed while it was being read")),
                Some((_, 416)) => PortError::retryable("read staging object", format!("{key}: no bytes at offset {offset} (did it shrink?)")),
                _ => classify("s3 get_object (staging source)", e),
            })?;
        let mut buf = Vec::with_capacity(len);
        let mut body = out.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| PortError::retryable("read staging object", format!("{key}: {e}")))? {
            buf.extend_from_slice(&chunk);
            if buf.len() > len {
                break;
            }
        }
        if buf.len() != len {
            return Err(PortError::retryable(
                "read staging object",
                format!("{key}: {} bytes at offset {offset}, expected {len} (did it shrink?)", buf.len()),
            ));
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn uris_parse_into_a_bucket_and_a_slash_terminated_prefix() {
        let l = StagingLocation::parse("s3://dtx-staging/efsdata").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("dtx-staging", "efsdata/"));
        assert_eq!(StagingLocation::parse("s3://dtx-staging/a/b/").unwrap().prefix, "a/b/");
        assert_eq!(StagingLocation::parse("s3://dtx-staging").unwrap().prefix, "");
        assert_eq!(StagingLocation::parse("s3://dtx-staging/").unwrap().uri(), "s3://dtx-staging/");
        for bad in ["/efsdata", "s3://", "s3://UPPER/x", "s3://ab/x", "s3://bucket/../x", "s3://bucket/a//b", "s3://-bucket/x"] {
            assert!(StagingLocation::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn keys_stay_under_the_prefix() {
        let l = StagingLocation::parse("s3://dtx-staging/efsdata").unwrap();
        assert_eq!(l.key_for(Path::new("attachments/1/a b.pdf")).unwrap(), "efsdata/attachments/1/a b.pdf");
        assert_eq!(l.key_for(Path::new("./logos/x.png")).unwrap(), "efsdata/logos/x.png");
        for escaping in ["../secrets/x", "attachments/../../x", "/etc/passwd", ""] {
            assert!(l.key_for(Path::new(escaping)).is_err(), "{escaping} accepted");
        }
        assert!(l.key_for(&PathBuf::from("a".repeat(1020))).is_err(), "over-long key accepted");
        use std::os::unix::ffi::OsStrExt;
        assert!(l.key_for(Path::new(std::ffi::OsStr::from_bytes(b"attachments/\xff.pdf"))).is_err());
        assert_eq!(l.relative_of("efsdata/logos/x.png"), Some("logos/x.png"));
        assert_eq!(l.relative_of("other/logos/x.png"), None);
        assert_eq!(l.relative_of("efsdata/"), None);
    }
}
