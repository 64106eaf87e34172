//! The mounted-filesystem source: legacy files under `EFS_ROOT`, confined to it.

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

    /// Synchronous lookup, shared by the worker and the inventory's dry run.
    pub fn locate_blocking(&self, candidates: &[Candidate]) -> Result<Result<(Located, ()), LocateFailure>, PortError> {
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
                    };
                    return Ok(Ok((located, ())));
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

#[async_trait]
impl FileSource for MountedSource {
    async fn locate(&self, candidates: &[Candidate]) -> Result<Result<Located, LocateFailure>, PortError> {
        let this = self.clone();
        let candidates = candidates.to_vec();
        let found = tokio::task::spawn_blocking(move || this.locate_blocking(&candidates))
            .await
            .map_err(|e| PortError::retryable("locate source file", e))??;
        Ok(found.map(|(located, ())| located))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::PathRules;

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
    }
}
