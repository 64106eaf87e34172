//! The file manifest: one durable record per source file, its outcomes, and the
//! `file_manifest.csv` export the loader consumes.

use crate::message::LegacyIds;
use crate::model::{Area, FileStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One manifest row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub source_key: String,
    pub area: Option<Area>,
    pub account_id: Option<String>,
    pub legacy_path: String,
    pub resolved_path: Option<String>,
    pub generation: Option<String>,
    pub resolved_via: Option<String>,
    pub s3_key: Option<String>,
    pub content_hash: Option<String>,
    pub file_uid: Option<String>,
    /// The timestamp half of the file UID, fixed at the first attempt.
    pub uid_ts: Option<String>,
    pub size: Option<u64>,
    pub ids: LegacyIds,
    pub original_filename: String,
    pub legacy_status: Option<String>,
    pub status: Option<FileStatus>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// For deduplicated rows: the source that uploaded the shared object.
    pub dedup_of: Option<String>,
    /// The id of the incoming message last forwarded to the DLQ, so a duplicate delivery of
    /// that same message does not forward it twice.
    pub dlq_for_message: Option<String>,
    pub first_attempt_at: Option<String>,
    pub completed_at: Option<String>,
}

/// Where the bytes were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub resolved_path: String,
    pub generation: String,
    pub via: String,
}

/// What one attempt concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored {
        status: FileStatus, // Moved or Deduplicated
        resolution: Resolution,
        s3_key: String,
        content_hash: String,
        file_uid: String,
        size: u64,
        dedup_of: Option<String>,
        attempts: u32,
        completed_at: String,
    },
    Missing { tried: Vec<String>, attempts: u32, dlq_for_message: Option<String> },
    Rejected { reason: String, attempts: u32, dlq_for_message: Option<String> },
    Failed { error: String, attempts: u32 },
}

impl Outcome {
    pub fn status(&self) -> FileStatus {
        match self {
            Outcome::Stored { status, .. } => *status,
            Outcome::Missing { .. } => FileStatus::Missing,
            Outcome::Rejected { .. } => FileStatus::Rejected,
            Outcome::Failed { .. } => FileStatus::Failed,
        }
    }
}

/// Counts by status and the bytes deduplication saved, derived from the rows (never kept as
/// running counters, which retries would inflate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManifestSummary {
    pub rows: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_area_status: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bytes of files whose own upload happened (status moved).
    pub bytes_moved: u64,
    /// Bytes not uploaded because the content was already stored (status deduplicated).
    pub bytes_deduplicated: u64,
    pub distinct_objects: u64,
}

impl ManifestSummary {
    pub fn from_records(records: &[ManifestRecord]) -> Self {
        let mut summary = ManifestSummary { rows: records.len() as u64, ..Default::default() };
        let mut objects = std::collections::BTreeSet::new();
        for r in records {
            let status = r.status.map(|s| s.as_str()).unwrap_or("unknown");
            *summary.by_status.entry(status.to_string()).or_default() += 1;
            let area = r.area.map(|a| a.as_str()).unwrap_or("unknown");
            *summary.by_area_status.entry(area.to_string()).or_default().entry(status.to_string()).or_default() += 1;
            match r.status {
                Some(FileStatus::Moved) => summary.bytes_moved += r.size.unwrap_or(0),
                Some(FileStatus::Deduplicated) => summary.bytes_deduplicated += r.size.unwrap_or(0),
                _ => {}
            }
            if let (Some(true), Some(key)) = (r.status.map(FileStatus::is_stored), &r.s3_key) {
                objects.insert(key.clone());
            }
        }
        summary.distinct_objects = objects.len() as u64;
        summary
    }

    pub fn count(&self, status: FileStatus) -> u64 {
        self.by_status.get(status.as_str()).copied().unwrap_or(0)
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("Manifest rows: {}\n", self.rows));
        for (status, n) in &self.by_status {
            out.push_str(&format!("  {status:<13} {n}\n"));
        }
        out.push_str("By area:\n");
        for (area, statuses) in &self.by_area_status {
            let parts: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}={n}")).collect();
            out.push_str(&format!("  {area:<13} {}\n", parts.join(" ")));
        }
        out.push_str(&format!("Distinct S3 objects: {}\n", self.distinct_objects));
        out.push_str(&format!("Bytes uploaded: {}\n", human_bytes(self.bytes_moved)));
        let total = self.bytes_moved + self.bytes_deduplicated;
        let pct = if total == 0 { 0.0 } else { 100.0 * self.bytes_deduplicated as f64 / total as f64 };
        out.push_str(&format!(
            "Dedup savings: {} ({pct:.1}% of referenced bytes)\n",
            human_bytes(self.bytes_deduplicated)
        ));
        out
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.2} {} ({n} B)", UNITS[unit])
    }
}

/// The columns of `file_manifest.csv` (spec: "old_path -> S3_key -> content_hash -> file_uid").
pub const CSV_HEADER: [&str; 20] = [
    "source_key",
    "old_path",
    "s3_key",
    "content_hash",
    "file_uid",
    "size",
    "status",
    "area",
    "account_id",
    "customer_id",
    "certificate_id",
    "document_id",
    "repo_file_id",
    "attachment_id",
    "original_filename",
    "resolved_path",
    "generation",
    "resolved_via",
    "dedup_of",
    "last_error",
];

/// Writes the rows as CSV, sorted by source key so two exports of the same state are equal.
pub fn write_csv<W: std::io::Write>(records: &[ManifestRecord], out: W) -> Result<(), csv::Error> {
    let mut sorted: Vec<&ManifestRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.source_key.cmp(&b.source_key));
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    for r in sorted {
        w.write_record([
            r.source_key.clone(),
            r.legacy_path.clone(),
            r.s3_key.clone().unwrap_or_default(),
            r.content_hash.clone().unwrap_or_default(),
            r.file_uid.clone().unwrap_or_default(),
            opt(r.size),
            r.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
            r.area.map(|a| a.as_str().to_string()).unwrap_or_default(),
            r.account_id.clone().unwrap_or_default(),
            opt(r.ids.customer_id),
            opt(r.ids.certificate_id),
            opt(r.ids.document_id),
            opt(r.ids.repo_file_id),
            opt(r.ids.attachment_id),
            r.original_filename.clone(),
            r.resolved_path.clone().unwrap_or_default(),
            r.generation.clone().unwrap_or_default(),
            r.resolved_via.clone().unwrap_or_default(),
            r.dedup_of.clone().unwrap_or_default(),
            r.last_error.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, status: FileStatus, size: u64, s3: &str) -> ManifestRecord {
        ManifestRecord {
            source_key: key.into(),
            area: Some(Area::Documents),
            status: Some(status),
            size: Some(size),
            s3_key: Some(s3.into()),
            ..Default::default()
        }
    }

    #[test]
    fn summary_counts_rows_not_events() {
        let rows = vec![
            row("attachment:1", FileStatus::Moved, 100, "k1"),
            row("attachment:2", FileStatus::Deduplicated, 100, "k1"),
            row("attachment:3", FileStatus::Moved, 7, "k2"),
            ManifestRecord { source_key: "logo:1".into(), status: Some(FileStatus::Missing), ..Default::default() },
        ];
        let s = ManifestSummary::from_records(&rows);
        assert_eq!(s.rows, 4);
        assert_eq!(s.count(FileStatus::Moved), 2);
        assert_eq!(s.count(FileStatus::Missing), 1);
        assert_eq!(s.bytes_moved, 107);
        assert_eq!(s.bytes_deduplicated, 100);
        assert_eq!(s.distinct_objects, 2);
        assert!(s.render_text().contains("Dedup savings: 100 B"));
    }

    #[test]
    fn csv_is_sorted_and_complete() {
        let rows = vec![row("b", FileStatus::Moved, 1, "k"), row("a", FileStatus::Moved, 2, "k")];
        let mut out = Vec::new();
        write_csv(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("source_key,old_path,s3_key,content_hash,file_uid,size,status"));
        assert!(lines[1].starts_with("a,"));
    }
}
