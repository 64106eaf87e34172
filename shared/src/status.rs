//! `dtx-migrate status`: where the file move stands, from the queues' depths and the manifest's
//! rows (counts are always derived from the rows, never kept as counters).

use crate::manifest::{human_bytes, ManifestRecord, ManifestSummary};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The window throughput is measured over.
pub const THROUGHPUT_WINDOW_SECONDS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoveStatus {
    pub queue_visible: u64,
    pub queue_in_flight: u64,
    pub dlq_visible: u64,
    pub dlq_in_flight: u64,
    pub manifest: ManifestSummary,
    /// Files whose outcome was recorded in the last [`THROUGHPUT_WINDOW_SECONDS`], and their bytes.
    pub completed_last_minute: u64,
    pub bytes_last_minute: u64,
    pub files_per_second: f64,
    /// Messages still to process divided by the last minute's rate; `None` while nothing is
    /// moving (or nothing is left).
    pub eta_seconds: Option<u64>,
}

impl MoveStatus {
    pub fn new(queue: (u64, u64), dlq: (u64, u64), records: &[ManifestRecord], now: DateTime<Utc>) -> Self {
        let since = now - chrono::Duration::seconds(THROUGHPUT_WINDOW_SECONDS);
        let mut completed = 0;
        let mut bytes = 0;
        for r in records {
            let recent = r
                .completed_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t.with_timezone(&Utc) > since && t.with_timezone(&Utc) <= now);
            if recent {
                completed += 1;
                bytes += r.size.unwrap_or(0);
            }
        }
        let files_per_second = completed as f64 / THROUGHPUT_WINDOW_SECONDS as f64;
        let remaining = queue.0 + queue.1;
        let eta_seconds = (remaining > 0 && completed > 0).then(|| (remaining as f64 / files_per_second).ceil() as u64);
        MoveStatus {
            queue_visible: queue.0,
            queue_in_flight: queue.1,
            dlq_visible: dlq.0,
            dlq_in_flight: dlq.1,
            manifest: ManifestSummary::from_records(records),
            completed_last_minute: completed,
            bytes_last_minute: bytes,
            files_per_second,
            eta_seconds,
        }
    }

    /// Manifest rows with a final outcome (stored, missing or rejected).
    pub fn settled(&self) -> u64 {
        use crate::model::FileStatus::*;
        [Moved, Deduplicated, Missing, Rejected].iter().map(|s| self.manifest.count(*s)).sum()
    }

    pub fn render_text(&self) -> String {
        let mut o = String::new();
        o.push_str(&format!("Work queue: {} visible, {} in flight\n", self.queue_visible, self.queue_in_flight));
        o.push_str(&format!("Dead-letter queue: {} visible, {} in flight\n", self.dlq_visible, self.dlq_in_flight));
        o.push_str(&self.manifest.render_text());
        o.push_str(&format!(
            "Last minute: {} files, {} ({:.1} files/s)\n",
            self.completed_last_minute,
            human_bytes(self.bytes_last_minute),
            self.files_per_second
        ));
        let eta = match self.eta_seconds {
            Some(s) => format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60),
            None if self.queue_visible + self.queue_in_flight == 0 => "queue empty".into(),
            None => "unknown (nothing completed in the last minute)".into(),
        };
        o.push_str(&format!("ETA: {eta}\n"));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FileStatus;

    fn row(key: &str, status: FileStatus, size: u64, completed_at: Option<&str>) -> ManifestRecord {
        ManifestRecord {
            source_key: key.into(),
            status: Some(status),
            size: Some(size),
            s3_key: status.is_stored().then(|| format!("k/{key}")),
            completed_at: completed_at.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn throughput_counts_only_the_last_minute_and_the_eta_follows_from_it() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let rows = vec![
            row("a:1", FileStatus::Moved, 100, Some("2026-12-01T09:59:30Z")),
            row("a:2", FileStatus::Deduplicated, 50, Some("2026-12-01T09:59:01Z")),
            row("a:3", FileStatus::Moved, 7, Some("2026-12-01T09:58:59Z")),
            row("a:4", FileStatus::Missing, 0, Some("2026-12-01T09:59:59Z")),
            row("a:5", FileStatus::Failed, 0, None),
        ];
        let s = MoveStatus::new((5, 1), (1, 0), &rows, now);
        assert_eq!((s.completed_last_minute, s.bytes_last_minute), (3, 150));
        assert_eq!(s.files_per_second, 0.05);
        assert_eq!(s.eta_seconds, Some(120), "6 messages left at 3 per minute");
        assert_eq!(s.settled(), 4);
        assert!(s.render_text().contains("ETA: 0h02m00s"), "{}", s.render_text());

        let idle = MoveStatus::new((0, 0), (0, 0), &rows, now + chrono::Duration::hours(1));
        assert_eq!((idle.completed_last_minute, idle.eta_seconds), (0, None));
        assert!(idle.render_text().contains("ETA: queue empty"));
        let stalled = MoveStatus::new((3, 0), (0, 0), &rows, now + chrono::Duration::hours(1));
        assert!(stalled.render_text().contains("ETA: unknown"));
    }
}
