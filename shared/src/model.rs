//! Vocabulary shared by the inventory, the worker, the manifest and the reports.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The four storage areas of the legacy EFS (spec: "Attachment -> S3 file migration").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Certificates,
    Documents,
    Filerepo,
    Logos,
}

impl Area {
    pub const ALL: [Area; 4] = [Area::Certificates, Area::Documents, Area::Filerepo, Area::Logos];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::Certificates => "certificates",
            Area::Documents => "documents",
            Area::Filerepo => "filerepo",
            Area::Logos => "logos",
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Area {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Area::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown area {s:?} (expected certificates, documents, filerepo or logos)"))
    }
}

/// The outcome recorded in the manifest for one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// A worker has started on the file and not yet reached an outcome.
    InProgress,
    /// This file's bytes were uploaded by this file's own worker.
    Moved,
    /// The same content was already stored (same tenant, or globally); this file references it.
    Deduplicated,
    /// No candidate path exists on the source; permanent until files are restored.
    Missing,
    /// The message or the path cannot be accepted (malformed, escapes the root, not a regular
    /// file, no tenant mapping); permanent until the input is fixed.
    Rejected,
    /// The last attempt hit an error that may pass; SQS retries it.
    Failed,
}

impl FileStatus {
    pub const ALL: [FileStatus; 6] = [
        FileStatus::InProgress,
        FileStatus::Moved,
        FileStatus::Deduplicated,
        FileStatus::Missing,
        FileStatus::Rejected,
        FileStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::InProgress => "in_progress",
            FileStatus::Moved => "moved",
            FileStatus::Deduplicated => "deduplicated",
            FileStatus::Missing => "missing",
            FileStatus::Rejected => "rejected",
            FileStatus::Failed => "failed",
        }
    }

    /// Stored in S3 and referenced: nothing more to do unless forced.
    pub fn is_stored(self) -> bool {
        matches!(self, FileStatus::Moved | FileStatus::Deduplicated)
    }

    /// An outcome the inventory does not re-send on a plain rerun. Missing and rejected files
    /// are re-sent only on request (`--force`, or an operator's rerun), so a rerun of the whole
    /// job leaves the queue and the DLQ as they were.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            FileStatus::Moved | FileStatus::Deduplicated | FileStatus::Missing | FileStatus::Rejected
        )
    }
}

impl fmt::Display for FileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FileStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FileStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown file status {s:?}"))
    }
}

/// Why a message was forwarded to the dead-letter queue (the `reason` message attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    Missing,
    Rejected,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Missing => "missing",
            DeadLetterReason::Rejected => "rejected",
        }
    }
}
