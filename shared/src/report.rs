//! `dtx-migrate report`: the migration report from the manifest, the queues and the loader's
//! issues, as text or as one self-contained HTML page (inline CSS and SVG, no script, no
//! external resource) that an operator can open offline or attach to a ticket.

use crate::adapters::dlq::DeadLetter;
use crate::manifest::{human_bytes, ManifestRecord};
use crate::model::FileStatus;
use crate::status::MoveStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// File size classes of the distribution chart (upper bounds, exclusive).
const SIZE_CLASSES: [(&str, u64); 7] = [
    ("< 10 KiB", 10 << 10),
    ("10-100 KiB", 100 << 10),
    ("100 KiB-1 MiB", 1 << 20),
    ("1-10 MiB", 10 << 20),
    ("10-64 MiB", 64 << 20),
    ("64 MiB-1 GiB", 1 << 30),
    ("≥ 1 GiB", u64::MAX),
];

/// At most this many bars in the throughput chart; the bucket width grows to fit.
const MAX_TIME_BUCKETS: i64 = 60;

/// Reasons shown in the issues chart (the rest are summed into one bar).
const MAX_REASONS: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    pub generated_at: String,
    pub status: MoveStatus,
    /// Stored files (moved or deduplicated) per size class.
    pub sizes: Vec<(String, u64)>,
    /// Files whose outcome was recorded, per time bucket (start, count).
    pub throughput: Vec<(String, u64)>,
    pub throughput_bucket_seconds: i64,
    /// "dlq: <reason>" and "<step>: <reason>" (the loader's migration_issues.csv), by count.
    pub issues: Vec<(String, u64)>,
}

impl MigrationReport {
    /// `loader_issues` is the loader's `migration_issues.csv`, when there is one.
    pub fn build(status: MoveStatus, records: &[ManifestRecord], dead_letters: &[DeadLetter], loader_issues: Option<&[u8]>, now: DateTime<Utc>) -> Result<Self, csv::Error> {
        let mut sizes: Vec<(String, u64)> = SIZE_CLASSES.iter().map(|(label, _)| (label.to_string(), 0)).collect();
        for r in records.iter().filter(|r| r.status.is_some_and(FileStatus::is_stored)) {
            let size = r.size.unwrap_or(0);
            let class = SIZE_CLASSES.iter().position(|(_, bound)| size < *bound).unwrap_or(SIZE_CLASSES.len() - 1);
            sizes[class].1 += 1;
        }
        let (throughput, throughput_bucket_seconds) = throughput(records);
        let mut issues: BTreeMap<String, u64> = BTreeMap::new();
        // A copy of a dead letter is the same failure, not another one.
        for l in dead_letters.iter().filter(|l| l.duplicate_of.is_none()) {
            *issues.entry(format!("dlq: {}", l.reason)).or_default() += 1;
        }
        if let Some(csv_bytes) = loader_issues {
            let mut reader = csv::Reader::from_reader(csv_bytes);
            let headers = reader.headers()?.clone();
            let column = |name: &str| headers.iter().position(|h| h == name);
            if let (Some(step), Some(reason)) = (column("step"), column("reason")) {
                for row in reader.records() {
                    let row = row?;
                    *issues.entry(format!("{}: {}", &row[step], &row[reason])).or_default() += 1;
                }
            }
        }
        let mut issues: Vec<(String, u64)> = issues.into_iter().collect();
        issues.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if issues.len() > MAX_REASONS {
            let rest: u64 = issues[MAX_REASONS - 1..].iter().map(|(_, n)| n).sum();
            let others = issues.len() - (MAX_REASONS - 1);
            issues.truncate(MAX_REASONS - 1);
            issues.push((format!("({others} other reasons)"), rest));
        }
        Ok(Self { generated_at: now.format("%Y-%m-%d %H:%M:%S UTC").to_string(), status, sizes, throughput, throughput_bucket_seconds, issues })
    }

    pub fn render_text(&self) -> String {
        let mut o = format!("=== DTX 1.0 -> 2.0 file migration report ({}) ===\n", self.generated_at);
        o.push_str(&self.status.render_text());
        o.push_str("Stored files by size:\n");
        for (label, n) in &self.sizes {
            o.push_str(&format!("  {label:<14} {n}\n"));
        }
        o.push_str("Issues by reason:\n");
        for (reason, n) in &self.issues {
            o.push_str(&format!("  {n:>7}  {reason}\n"));
        }
        o
    }

    pub fn render_html(&self) -> String {
        let s = &self.status;
        let m = &s.manifest;
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        h.push_str(&format!("<title>DTX migration report {}</title>\n", esc(&self.generated_at)));
        h.push_str(STYLE);
        h.push_str("</head><body>\n<h1>DTX 1.0 → 2.0 file migration</h1>\n");
        h.push_str(&format!("<p class=\"when\">Generated {}</p>\n", esc(&self.generated_at)));

        h.push_str("<table class=\"summary\">\n");
        let total = m.bytes_moved + m.bytes_deduplicated;
        let saved = if total == 0 { 0.0 } else { 100.0 * m.bytes_deduplicated as f64 / total as f64 };
        for (k, v) in [
            ("Manifest rows", m.rows.to_string()),
            ("Settled", s.settled().to_string()),
            ("Distinct S3 objects", m.distinct_objects.to_string()),
            ("Bytes uploaded", human_bytes(m.bytes_moved)),
            ("Dedup savings", format!("{} ({saved:.1}%)", human_bytes(m.bytes_deduplicated))),
            ("Work queue", format!("{} waiting, {} in flight", s.queue_visible, s.queue_in_flight)),
            ("Dead-letter queue", format!("{} waiting, {} in flight", s.dlq_visible, s.dlq_in_flight)),
            ("Last minute", format!("{} files ({:.1}/s)", s.completed_last_minute, s.files_per_second)),
        ] {
            h.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>\n", esc(k), esc(&v)));
        }
        h.push_str("</table>\n");

        h.push_str("<h2>Status by area</h2>\n");
        h.push_str(&stacked_bars(&m.by_area_status));
        h.push_str("<h2>Stored file sizes</h2>\n");
        h.push_str(&bar_chart("sizes", &self.sizes, "files"));
        h.push_str(&format!("<h2>Throughput (files settled per {} s)</h2>\n", self.throughput_bucket_seconds));
        h.push_str(&bar_chart("throughput", &self.throughput, "files"));
        h.push_str("<h2>Issues by reason</h2>\n");
        h.push_str(&horizontal_bars("issues", &self.issues, "records"));
        h.push_str("</body></html>\n");
        h
    }
}

/// Settled files per time bucket, from `completed_at`, with the bucket width in seconds.
fn throughput(records: &[ManifestRecord]) -> (Vec<(String, u64)>, i64) {
    let times: Vec<DateTime<Utc>> = records
        .iter()
        .filter_map(|r| r.completed_at.as_deref())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return (Vec::new(), 60);
    };
    let span = ((*last - *first).num_seconds() + 1).max(1) as u64;
    // Whole minutes, enough of them that at most MAX_TIME_BUCKETS bars cover the span.
    let width = (span.div_ceil(MAX_TIME_BUCKETS as u64).div_ceil(60) * 60).max(60) as i64;
    let start = first.timestamp() - first.timestamp().rem_euclid(60);
    let buckets = ((last.timestamp() - start) / width + 1) as usize;
    let mut counts = vec![0u64; buckets];
    for t in &times {
        counts[((t.timestamp() - start) / width) as usize] += 1;
    }
    let label = |i: usize| DateTime::from_timestamp(start + i as i64 * width, 0).map(|t| t.format("%H:%M").to_string()).unwrap_or_default();
    ((0..buckets).map(|i| (label(i), counts[i])).collect(), width)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
.when{color:#666}
table.summary{border-collapse:collapse}table.summary th{text-align:left;padding:2px 1em 2px 0;font-weight:600}
svg text{font-size:11px;fill:#333}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
</style>
";

const STATUS_COLORS: [(&str, &str); 7] = [
    ("moved", "#2e7d32"),
    ("deduplicated", "#66bb6a"),
    ("missing", "#ef6c00"),
    ("rejected", "#c62828"),
    ("failed", "#8e24aa"),
    ("in_progress", "#1e88e5"),
    ("unknown", "#9e9e9e"),
];

fn status_color(status: &str) -> &'static str {
    STATUS_COLORS.iter().find(|(s, _)| *s == status).map_or("#9e9e9e", |(_, c)| c)
}

const NO_DATA: &str = "<p class=\"empty\">No data.</p>\n";

fn svg_open(id: &str, width: f64, height: f64) -> String {
    format!("<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{id} chart\">\n")
}

/// Vertical bars, one per (label, value), with the value above each bar.
fn bar_chart(id: &str, bars: &[(String, u64)], unit: &str) -> String {
    if bars.is_empty() {
        return NO_DATA.into();
    }
    let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    // The rotated labels reach left of their bar: the first bar starts after a margin.
    let (bar_w, gap, chart_h, label_h, margin) = (28.0, 8.0, 160.0, 90.0, 70.0);
    let width = margin + bars.len() as f64 * (bar_w + gap) + gap;
    let mut svg = svg_open(id, width, chart_h + label_h + 20.0);
    for (i, (label, n)) in bars.iter().enumerate() {
        let x = margin + gap + i as f64 * (bar_w + gap);
        let h = chart_h * *n as f64 / max as f64;
        let y = 16.0 + chart_h - h;
        svg.push_str(&format!("<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"{h:.1}\" fill=\"#1e88e5\"><title>{}: {n} {unit}</title></rect>\n",
            esc(label)));
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>\n", x + bar_w / 2.0, y - 3.0));
        let (lx, ly) = (x + bar_w / 2.0, 16.0 + chart_h + 12.0);
        svg.push_str(&format!("<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" transform=\"rotate(-40 {lx:.1} {ly:.1})\">{}</text>\n", esc(label)));
    }
    svg.push_str("</svg>\n");
    svg
}

/// One horizontal bar per (label, value), labels on the left: for long labels.
fn horizontal_bars(id: &str, bars: &[(String, u64)], unit: &str) -> String {
    if bars.is_empty() {
        return NO_DATA.into();
    }
    let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (380.0, 360.0, 20.0);
    let mut svg = svg_open(id, label_w + bar_w + 60.0, bars.len() as f64 * row_h + 10.0);
    for (row, (label, n)) in bars.iter().enumerate() {
        let y = 5.0 + row as f64 * row_h;
        let w = bar_w * *n as f64 / max as f64;
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n", label_w - 6.0, y + 12.0, esc(label)));
        svg.push_str(&format!(
            "<rect x=\"{label_w:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"15\" fill=\"#1e88e5\"><title>{}: {n} {unit}</title></rect>\n",
            esc(label)
        ));
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\">{n}</text>\n", label_w + w + 4.0, y + 12.0));
    }
    svg.push_str("</svg>\n");
    svg
}

/// One horizontal bar per area, split by status, with a legend.
fn stacked_bars(by_area: &BTreeMap<String, BTreeMap<String, u64>>) -> String {
    if by_area.is_empty() {
        return NO_DATA.into();
    }
    let max = by_area.values().map(|s| s.values().sum::<u64>()).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (110.0, 520.0, 26.0);
    let mut svg = svg_open("areas", label_w + bar_w + 60.0, by_area.len() as f64 * row_h + 10.0);
    for (row, (area, statuses)) in by_area.iter().enumerate() {
        let y = 5.0 + row as f64 * row_h;
        svg.push_str(&format!("<text x=\"0\" y=\"{:.1}\">{}</text>\n", y + 15.0, esc(area)));
        let mut x = label_w;
        for (status, n) in statuses {
            let w = bar_w * *n as f64 / max as f64;
            svg.push_str(&format!("<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"20\" fill=\"{}\"><title>{}: {} {n}</title></rect>\n",
                status_color(status),
                esc(area),
                esc(status)));
            x += w;
        }
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n", x + 4.0, y + 15.0, statuses.values().sum::<u64>()));
    }
    svg.push_str("</svg>\n<p class=\"legend\">");
    let present: std::collections::BTreeSet<&str> = by_area.values().flat_map(|s| s.keys().map(String::as_str)).collect();
    for (status, color) in STATUS_COLORS.iter().filter(|(s, _)| present.contains(s)) {
        svg.push_str(&format!("<span><i style=\"background:{color}\"></i>{status}</span>"));
    }
    svg.push_str("</p>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Area;

    fn row(key: &str, area: Area, status: FileStatus, size: u64, completed_at: &str) -> ManifestRecord {
        ManifestRecord {
            source_key: key.into(),
            area: Some(area),
            status: Some(status),
            size: Some(size),
            s3_key: status.is_stored().then(|| format!("k/{key}")),
            completed_at: Some(completed_at.into()),
            ..Default::default()
        }
    }

    fn sample() -> MigrationReport {
        let rows = vec![
            row("attachment:1", Area::Certificates, FileStatus::Moved, 5_000, "2026-12-01T10:00:05Z"),
            row("attachment:2", Area::Certificates, FileStatus::Deduplicated, 5_000, "2026-12-01T10:00:50Z"),
            row("attachment:3", Area::Documents, FileStatus::Moved, 70 << 20, "2026-12-01T10:02:10Z"),
            row("attachment:4", Area::Documents, FileStatus::Missing, 0, "2026-12-01T10:02:11Z"),
        ];
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:02:30Z").unwrap().with_timezone(&Utc);
        let status = MoveStatus::new((0, 0), (1, 0), &rows, now);
        let letters: Vec<DeadLetter> = serde_json::from_value(serde_json::json!([{
            "message_id": "m1", "reason": "missing", "detail": null, "source_key": "attachment:4", "legacy_path": "/efsdata/x<y>.pdf",
            "area": "documents", "ids": {}, "receive_count": 1, "sent_ms": 0
        }]))
        .unwrap();
        let issues = b"entity,legacy_id,step,reason,detail\ncertificate,3,certificates,customer not mapped,\ncertificate,4,certificates,customer not mapped,\ndocument,5,documents,zero date,\n";
        MigrationReport::build(status, &rows, &letters, Some(issues), now).unwrap()
    }

    #[test]
    fn figures_come_from_the_rows_the_dlq_and_the_loader_issues() {
        let r = sample();
        let sizes: BTreeMap<&str, u64> = r.sizes.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        assert_eq!((sizes["< 10 KiB"], sizes["64 MiB-1 GiB"], sizes.values().sum::<u64>()), (2, 1, 3), "stored files only");
        assert_eq!(r.throughput_bucket_seconds, 60);
        assert_eq!(r.throughput, vec![("10:00".to_string(), 2), ("10:01".to_string(), 0), ("10:02".to_string(), 2)]);
        assert_eq!(
            r.issues,
            vec![("certificates: customer not mapped".to_string(), 2), ("dlq: missing".to_string(), 1), ("documents: zero date".to_string(), 1)]
        );
        assert!(r.render_text().contains("      2  certificates: customer not mapped"), "{}", r.render_text());
    }

    #[test]
    fn the_page_is_self_contained_escaped_and_has_every_chart() {
        let html = sample().render_html();
        for id in ["id=\"areas\"", "id=\"sizes\"", "id=\"throughput\"", "id=\"issues\""] {
            assert!(html.contains(id), "{id}");
        }
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="), "no script or external resource");
        assert!(html.contains("<title>certificates: moved 1</title>"), "{html}");
        assert!(!html.contains("x<y>"), "labels are escaped");
    }

    #[test]
    fn a_long_run_gets_wider_buckets_and_many_reasons_are_folded() {
        let rows: Vec<ManifestRecord> = (0..300)
            .map(|i| row(&format!("attachment:{i}"), Area::Certificates, FileStatus::Moved, 1, &format!("2026-12-01T{:02}:{:02}:00Z", 8 + i / 60, i % 60)))
            .collect();
        let (buckets, width) = throughput(&rows);
        assert_eq!(width, 300, "5 hours in at most 60 bars of whole minutes");
        assert_eq!(buckets.len(), 60);
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 300);
        let csv: String = std::iter::once("entity,legacy_id,step,reason,detail\n".to_string())
            .chain((0..30).map(|i| format!("document,{i},documents,reason {i:02},\n")))
            .collect();
        let status = MoveStatus::new((0, 0), (0, 0), &[], Utc::now());
        let r = MigrationReport::build(status, &[], &[], Some(csv.as_bytes()), Utc::now()).unwrap();
        assert_eq!(r.issues.len(), MAX_REASONS);
        assert_eq!(r.issues.last().unwrap(), &("(11 other reasons)".to_string(), 11));
    }
}
