//! Where the legacy files are read from: the mounted file system (`EFS_ROOT`, files confined to
//! it) or, when the workers cannot mount DTX 1.0's EFS, a staging bucket the files were synced
//! to (`SOURCE_URI=s3://bucket/prefix`, see `adapters::staging`). [`LegacySource`] is either;
//! everything else (path resolution, the worker, the inventory's dry run) is the same for both.

use crate::error::PortError;
use crate::paths::{confine, open_confined, Candidate, ConfineError};
use crate::ports::{FileSource, LocateFailure, Located, RangeReader};
use async_trait::async_trait;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct MountedSource {
    root: PathBuf,
}

impl MountedSource {
    /// `root` must exist; it is canonicalized once so confinement compares like with like.
    pub fn new(root: &Path) -> Result<Self, crate::error::ConfigError> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| crate::error::ConfigError(format!("EFS_ROOT {}: {e}", root.display())))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Synchronous lookup (the worker's, on the blocking pool).
    pub fn locate_blocking(&self, candidates: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError> {
        let mut tried = Vec::new();
        let mut refused = Vec::new();
        for c in candidates {
            let shown = c.relative.display().to_string();
            match confine(&self.root, &c.relative) {
                Ok((canonical, size)) => {
                    let file = open_confined(&canonical).map_err(|e| PortError::retryable("open source file", format!("{shown}: {e}")))?;
                    // A file that changed between stat and open is caught by the size check here
                    // and by the checksum comparisons later.
                    let size_now = file.metadata().map_err(|e| PortError::retryable("stat source file", e))?.len();
                    if size_now != size {
                        return Err(PortError::retryable("open source file", format!("{shown}: size changed while opening")));
                    }
                    let located = Located {
                        resolved_path: shown,
                        generation: c.generation.clone(),
                        via: c.via.clone(),
                        size,
                        reader: Arc::new(FileReader { file: Arc::new(file) }),
                        remote: None,
                    };
                    return Ok(Ok(located));
                }
                Err(ConfineError::NotFound) => tried.push(shown),
                Err(ConfineError::Io(e)) => return Err(PortError::retryable("inspect source file", format!("{shown}: {e}"))),
                Err(refusal) => refused.push(format!("{shown}: {refusal}")),
            }
        }
        if refused.is_empty() {
            Ok(Err(LocateFailure::Missing { tried }))
        } else {
            Ok(Err(LocateFailure::Rejected { reason: refused.join("; ") }))
        }
    }
}

impl MountedSource {
    /// Every regular file under the storage locations, root-relative, with its size, sorted.
    /// Symlinks are not followed (a link out of the root is not an orphan of ours).
    pub fn walk_blocking(&self, locations: &[String]) -> Result<Vec<(String, u64)>, PortError> {
        let mut out = Vec::new();
        let mut stack: Vec<PathBuf> = locations.iter().map(|l| self.root.join(l)).collect();
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(PortError::retryable("orphan scan", format!("{}: {e}", dir.display()))),
            };
            for entry in entries {
                let entry = entry.map_err(|e| PortError::retryable("orphan scan", e))?;
                let ft = entry.file_type().map_err(|e| PortError::retryable("orphan scan", e))?;
                let path = entry.path();
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() {
                    let size = entry.metadata().map_err(|e| PortError::retryable("orphan scan", format!("{}: {e}", path.display())))?.len();
                    if let Ok(rel) = path.strip_prefix(&self.root) {
                        out.push((rel.display().to_string(), size));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The legacy files' source, as configured: `EFS_ROOT` or `SOURCE_URI`.
#[derive(Clone)]
pub enum LegacySource {
    Mounted(MountedSource),
    Staging(crate::adapters::staging::StagingSource),
}

impl LegacySource {
    /// `source_uri` (`s3://bucket/prefix`) when given, else `efs_root`; `None` when neither is.
    pub fn configure(efs_root: Option<&Path>, source_uri: Option<&str>, s3: &aws_sdk_s3::Client) -> Result<Option<Self>, crate::error::ConfigError> {
        match (source_uri.filter(|u| !u.is_empty()), efs_root.filter(|r| !r.as_os_str().is_empty())) {
            (Some(_), Some(root)) => Err(crate::error::ConfigError(format!(
                "both SOURCE_URI and EFS_ROOT ({}) are set: choose one source",
                root.display()
            ))),
            (Some(uri), None) => {
                let location = crate::adapters::staging::StagingLocation::parse(uri)?;
                Ok(Some(Self::Staging(crate::adapters::staging::StagingSource::new(s3.clone(), location))))
            }
            (None, Some(root)) => Ok(Some(Self::Mounted(MountedSource::new(root)?))),
            (None, None) => Ok(None),
        }
    }

    /// From the environment (`SOURCE_URI`, else `EFS_ROOT`), which must name one.
    pub fn from_env(s3: &aws_sdk_s3::Client) -> Result<Self, crate::error::ConfigError> {
        let uri = std::env::var("SOURCE_URI").ok();
        let root = std::env::var_os("EFS_ROOT").map(PathBuf::from);
        Self::configure(root.as_deref(), uri.as_deref(), s3)?
            .ok_or_else(|| crate::error::ConfigError("neither EFS_ROOT nor SOURCE_URI is set: the legacy files' source".into()))
    }

    /// What the files are read from, for reports and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Mounted(m) => m.root().display().to_string(),
            Self::Staging(s) => s.location().uri(),
        }
    }

    /// Every file under the storage locations (root-relative paths, sizes), sorted: the
    /// inventory's orphan scan walks the file system or lists the staging prefix.
    pub async fn list_storage(&self, rules: &crate::paths::PathRules) -> Result<Vec<(String, u64)>, PortError> {
        let locations = rules.storage_locations();
        match self {
            Self::Mounted(m) => {
                let m = m.clone();
                tokio::task::spawn_blocking(move || m.walk_blocking(&locations))
                    .await
                    .map_err(|e| PortError::retryable("orphan scan", e))?
            }
            Self::Staging(s) => s.list(&locations).await,
        }
    }
}

#[async_trait]
impl FileSource for LegacySource {
    async fn locate(&self, candidates: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError> {
        match self {
            Self::Mounted(m) => m.locate(candidates).await,
            Self::Staging(s) => s.locate(candidates).await,
        }
    }
}

#[async_trait]
impl FileSource for MountedSource {
    async fn locate(&self, candidates: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError> {
        let this = self.clone();
        let candidates = candidates.to_vec();
        tokio::task::spawn_blocking(move || this.locate_blocking(&candidates))
            .await
            .map_err(|e| PortError::retryable("locate source file", e))?
    }
}

struct FileReader {
    file: Arc<std::fs::File>,
}

#[async_trait]
impl RangeReader for FileReader {
    async fn read_range(&self, offset: u64, len: usize) -> Result<Vec<u8>, PortError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, offset).map(|()| buf)
        })
        .await
        .map_err(|e| PortError::retryable("read source file", e))?
        .map_err(|e| PortError::retryable("read source file", format!("at offset {offset}: {e} (did the file shrink?)")))
    }

    async fn read_all_hashed(&self, len: usize) -> Result<(Vec<u8>, crate::hashing::Sha256Digest), PortError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            let mut hasher = crate::hashing::Sha256::new();
            crate::hashing::read_hashing(|b, at| file.read_exact_at(b, at), &mut buf, 0, &mut [&mut hasher])?;
            Ok::<_, std::io::Error>((buf, hasher.finish()))
        })
        .await
        .map_err(|e| PortError::retryable("read source file", e))?
        .map_err(|e| PortError::retryable("read source file", format!("{e} (did the file shrink?)")))
    }

    async fn read_range_hashed(
        &self,
        offset: u64,
        len: usize,
        mut hasher: crate::hashing::StreamingSha256,
        part_digest: bool,
    ) -> Result<(Vec<u8>, crate::hashing::StreamingSha256, Option<crate::hashing::Sha256Digest>), PortError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            let mut part = crate::hashing::Sha256::new();
            let read = |b: &mut [u8], at: u64| file.read_exact_at(b, at);
            if part_digest {
                crate::hashing::read_hashing(read, &mut buf, offset, &mut [&mut hasher.0, &mut part])?;
            } else {
                crate::hashing::read_hashing(read, &mut buf, offset, &mut [&mut hasher.0])?;
            }
            Ok::<_, std::io::Error>((buf, hasher, part_digest.then(|| part.finish())))
        })
        .await
        .map_err(|e| PortError::retryable("read source file", e))?
        .map_err(|e| PortError::retryable("read source file", format!("at offset {offset}: {e} (did the file shrink?)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::PathRules;

    /// Reading in cache-sized slices and hashing each as it arrives gives the same bytes and
    /// digests as reading and hashing whole, across slice boundaries and uneven ranges.
    #[tokio::test]
    async fn hashing_while_reading_equals_hashing_the_bytes_read() {
        use crate::hashing::{sha256, StreamingSha256, HASH_SLICE};
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(2 * HASH_SLICE + 12_345) as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let rules = PathRules::from_json(r#"[{"generation":"gen3","family":"attachments","legacy_prefix":"/efsdata/attachments/","location":"attachments/"}]"#).unwrap();
        std::fs::create_dir_all(dir.path().join("attachments")).unwrap();
        std::fs::write(dir.path().join("attachments/big.bin"), &data).unwrap();
        let candidates = rules.resolve("/efsdata/attachments/big.bin").unwrap().candidates;
        let located = MountedSource::new(dir.path()).unwrap().locate(&candidates).await.unwrap().unwrap();

        let (bytes, digest) = located.reader.read_all_hashed(data.len()).await.unwrap();
        assert!(bytes == data && digest == sha256(&data));

        let mut hasher = StreamingSha256::default();
        let (mut offset, part) = (0, HASH_SLICE + 7);
        while offset < data.len() {
            let len = part.min(data.len() - offset);
            let (bytes, next, digest) = located.reader.read_range_hashed(offset as u64, len, hasher, true).await.unwrap();
            assert!(bytes == data[offset..offset + len], "bytes at {offset}");
            assert_eq!(digest, Some(sha256(&data[offset..offset + len])), "part digest at {offset}");
            hasher = next;
            offset += len;
        }
        assert_eq!(hasher.finish(), sha256(&data));
        let (_, whole, none) = located.reader.read_range_hashed(0, data.len(), StreamingSha256::default(), false).await.unwrap();
        assert_eq!((whole.finish(), none), (sha256(&data), None));
        match located.reader.read_range_hashed(data.len() as u64 - 10, 20, StreamingSha256::default(), false).await {
            Err(err) => assert!(err.to_string().contains("did the file shrink?"), "{err}"),
            Ok(_) => panic!("a read past the end must fail"),
        }
    }

    #[tokio::test]
    async fn probes_another_generations_location_and_says_which_matched() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("legacy-gen1/certificate_management/5");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("coi.pdf"), b"old server copy").unwrap();
        let rules = PathRules::from_json(
            r#"[{"generation":"gen1","family":"attachments","legacy_prefix":"/home/wwwriskt/public_html/attachments/","location":"legacy-gen1/"},
                {"generation":"gen3","family":"attachments","legacy_prefix":"/efsdata/attachments/","location":"attachments/"}]"#,
        )
        .unwrap();
        // The database says gen3, the bytes are still where gen1 kept them.
        let candidates = rules.resolve("/efsdata/attachments/certificate_management/5/coi.pdf").unwrap().candidates;
        let source = MountedSource::new(dir.path()).unwrap();
        let located = source.locate(&candidates).await.unwrap().unwrap();
        assert_eq!(located.via, "probe:gen1");
        assert_eq!(located.generation, "gen1");
        assert_eq!(located.resolved_path, "legacy-gen1/certificate_management/5/coi.pdf");
        assert_eq!(located.reader.read_range(0, located.size as usize).await.unwrap(), b"old server copy");
        let (bytes, digest) = located.reader.read_all_hashed(located.size as usize).await.unwrap();
        assert_eq!((bytes.as_slice(), digest), (&b"old server copy"[..], crate::hashing::sha256(b"old server copy")));

        let missing = rules.resolve("/efsdata/attachments/certificate_management/6/none.pdf").unwrap().candidates;
        match source.locate(&missing).await.unwrap() {
            Err(LocateFailure::Missing { tried }) => assert_eq!(tried.len(), 2, "both generations probed: {tried:?}"),
            other => panic!("expected missing, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_file_that_shrinks_after_locating_is_a_read_error_not_short_data() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logos")).unwrap();
        std::fs::write(dir.path().join("logos/l.png"), vec![1u8; 1000]).unwrap();
        let source = MountedSource::new(dir.path()).unwrap();
        let c = PathRules::default().resolve("/efsdata/logos/l.png").unwrap().candidates;
        let located = source.locate(&c).await.unwrap().unwrap();
        std::fs::write(dir.path().join("logos/l.png"), vec![1u8; 10]).unwrap();
        let err = located.reader.read_range(0, 1000).await.unwrap_err();
        assert!(err.message.contains("shrink"), "{err}");
        let err = located.reader.read_all_hashed(1000).await.unwrap_err();
        assert!(err.message.contains("shrink"), "{err}");
    }
}
