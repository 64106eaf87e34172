//! The work-queue message: one per source file, versioned JSON that carries everything the
//! worker needs, so the worker never reads the legacy database.

use crate::model::Area;
use serde::{Deserialize, Serialize};

pub const MESSAGE_VERSION: u32 = 1;

/// Identifies one source file across the inventory, the worker and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum SourceRef {
    /// An `attachment` row (its primary `repo_file`, if any, supplies the path).
    Attachment(u64),
    /// A `repo_file` row that is not the primary of an attachment.
    RepoFile(u64),
    /// A customer's logo.
    Logo(u64),
}

impl SourceRef {
    /// The manifest's partition key, e.g. `attachment:42`.
    pub fn key(&self) -> String {
        match self {
            SourceRef::Attachment(id) => format!("attachment:{id}"),
            SourceRef::RepoFile(id) => format!("repo_file:{id}"),
            SourceRef::Logo(id) => format!("logo:{id}"),
        }
    }

    pub fn parse_key(key: &str) -> Option<SourceRef> {
        let (kind, id) = key.split_once(':')?;
        let id: u64 = id.parse().ok()?;
        match kind {
            "attachment" => Some(SourceRef::Attachment(id)),
            "repo_file" => Some(SourceRef::RepoFile(id)),
            "logo" => Some(SourceRef::Logo(id)),
            _ => None,
        }
    }
}

/// Legacy identifiers carried for the loader and the reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_file_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMessage {
    /// Schema version; the worker rejects versions it does not know.
    pub v: u32,
    pub source: SourceRef,
    pub area: Area,
    /// The path as the legacy database has it (or as constructed by the spec's rule).
    pub legacy_path: String,
    /// Other legacy paths worth probing when the first is absent (e.g. the constructed path
    /// of an attachment whose repo_filepath is stale).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_paths: Vec<String>,
    /// The DTX 2.0 account (tenant); `None` when the customer has no mapping, which the worker
    /// rejects with that reason so it shows up in the DLQ and the manifest.
    pub account_id: Option<String>,
    pub original_filename: String,
    #[serde(default)]
    pub ids: LegacyIds,
    /// The legacy repo_file status (SUBMITTED, DELETED, ...), kept for the reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_status: Option<String>,
    /// Set by the inventory when the legacy row itself is unusable (no path can be built);
    /// the worker rejects the file with this reason so it is recorded, not dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Process even when the manifest says the file is already stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message is not valid JSON for version {MESSAGE_VERSION}: {0}")]
    Malformed(String),
    #[error("unsupported message version {0} (this worker understands {MESSAGE_VERSION})")]
    UnsupportedVersion(u32),
    #[error("message is too large ({0} bytes)")]
    TooLarge(usize),
}

/// The most a message body may be; real ones are well under 2 KiB.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

impl FileMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a FileMessage always serializes")
    }

    pub fn parse(body: &str) -> Result<FileMessage, MessageError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(MessageError::TooLarge(body.len()));
        }
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version: Version =
            serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if version.v != MESSAGE_VERSION {
            return Err(MessageError::UnsupportedVersion(version.v));
        }
        serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))
    }

    /// The source key of a body that cannot be parsed whole, so a rejection can still be
    /// recorded against the right manifest row.
    pub fn salvage_source_key(body: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let source: SourceRef = serde_json::from_value(value.get("source")?.clone()).ok()?;
        Some(source.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileMessage {
        FileMessage {
            v: 1,
            source: SourceRef::Attachment(7),
            area: Area::Certificates,
            legacy_path: "/efsdata/attachments/certificate_management/3/a.pdf".into(),
            fallback_paths: vec![],
            account_id: Some("5003".into()),
            original_filename: "a.pdf".into(),
            ids: LegacyIds { certificate_id: Some(3), attachment_id: Some(7), ..Default::default() },
            legacy_status: None,
            problem: None,
            force: false,
        }
    }

    #[test]
    fn round_trips_and_names_its_source() {
        let m = sample();
        let json = m.to_json();
        assert!(json.contains(r#""source":{"kind":"attachment","id":7}"#), "{json}");
        assert_eq!(FileMessage::parse(&json).unwrap(), m);
        assert_eq!(m.source.key(), "attachment:7");
        assert_eq!(SourceRef::parse_key("repo_file:9"), Some(SourceRef::RepoFile(9)));
        assert_eq!(SourceRef::parse_key("nope:9"), None);
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let json = sample().to_json().replacen(r#""v":1"#, r#""v":2"#, 1);
        assert_eq!(FileMessage::parse(&json), Err(MessageError::UnsupportedVersion(2)));
        assert!(matches!(FileMessage::parse("{"), Err(MessageError::Malformed(_))));
        assert!(matches!(FileMessage::parse(r#"{"v":1}"#), Err(MessageError::Malformed(_))));
        let salvaged = FileMessage::salvage_source_key(r#"{"v":1,"source":{"kind":"logo","id":4}}"#);
        assert_eq!(salvaged.as_deref(), Some("logo:4"));
        assert!(matches!(FileMessage::parse(&" ".repeat(70_000)), Err(MessageError::TooLarge(_))));
    }
}
