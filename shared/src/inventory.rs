//! The inventory: legacy rows -> one work message per file, keyset-paged with a persisted
//! cursor so it continues across Lambda invocations and resumes after a crash; or, as a dry
//! run, a report of what the move would find on disk.

use crate::error::PortError;
use crate::legacy::{self, LegacyError, Phase};
use crate::manifest::human_bytes;
use crate::message::FileMessage;
use crate::paths::PathRules;
use crate::ports::{FileSource, LocateFailure, ManifestStore, RunState, RunStore, WorkQueue};
use crate::source::LegacySource;
use crate::worker::candidates_for;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const RUN_ID: &str = "inventory";

/// Time kept back before the Lambda deadline: a page (read, check the manifest, send) takes
/// seconds, and Lambda may kill a function shortly after its deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(45);

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub phase: Phase,
    pub after_id: u64,
}

impl Cursor {
    pub fn start() -> Self {
        Cursor { phase: Phase::Attachments, after_id: 0 }
    }
}

/// The invocation payload (Lambda event, or the CLI's arguments).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InventoryRequest {
    pub dry_run: bool,
    /// Re-send files the manifest already settled.
    pub force: bool,
    /// Forget the stored cursor and start from the first row.
    pub restart: bool,
    /// Restrict to some areas (empty = all).
    pub areas: Vec<crate::model::Area>,
    /// Stop after this many pages, keeping the cursor (a bounded step; the next invocation
    /// continues where this one stopped).
    pub max_pages: Option<u64>,
    /// A rerun: send only the files whose manifest status is one of these (e.g. `missing`
    /// after operators restored files on EFS, or `failed`), and nothing else. A rerun keeps
    /// its own cursor ([`InventoryRequest::run_id`]), so it never disturbs the main run's.
    pub rerun: Vec<crate::model::FileStatus>,
    /// The caller invokes again with the cursor (`dtx-migrate inventory --stack`), so the
    /// function must not continue itself as well.
    pub caller_continues: bool,
}

impl InventoryRequest {
    /// The runs-table row holding this run's cursor and totals: `inventory`, or
    /// `rerun:<statuses>` (sorted) for a rerun.
    pub fn run_id(&self) -> String {
        if self.rerun.is_empty() {
            return RUN_ID.to_string();
        }
        let mut statuses: Vec<&str> = self.rerun.iter().map(|s| s.as_str()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        format!("rerun:{}", statuses.join(","))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InventoryCounts {
    /// Legacy rows read.
    pub rows: u64,
    /// Messages sent to the work queue.
    pub sent: u64,
    /// Files skipped because the manifest already has their outcome.
    pub skipped_settled: u64,
    /// Files outside the requested areas.
    pub skipped_area: u64,
    /// A rerun's files whose manifest status is not one it asked for (or that have no row).
    pub skipped_status: u64,
    /// Of the sent messages, those carrying a row problem or no tenant (the worker rejects them).
    pub sent_with_problem: u64,
    pub pages: u64,
}

impl InventoryCounts {
    fn add(&mut self, o: &InventoryCounts) {
        self.rows += o.rows;
        self.sent += o.sent;
        self.skipped_settled += o.skipped_settled;
        self.skipped_area += o.skipped_area;
        self.skipped_status += o.skipped_status;
        self.sent_with_problem += o.sent_with_problem;
        self.pages += o.pages;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InventoryResponse {
    pub done: bool,
    pub cursor: Option<Cursor>,
    /// This invocation's counts.
    pub counts: InventoryCounts,
    /// The whole run's counts so far (persisted; never double-counted).
    pub totals: InventoryCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<DryRunReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Legacy(#[from] LegacyError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("another inventory invocation advanced the run concurrently; rerun to resume from its cursor")]
    Conflict,
}

pub struct Inventory {
    pub legacy: MySqlPool,
    pub accounts: HashMap<u64, String>,
    pub rules: PathRules,
    pub manifest: Arc<dyn ManifestStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub runs: Arc<dyn RunStore>,
    pub page_size: u32,
    pub send_concurrency: usize,
    /// Pause sending while the queue holds more visible messages than this (keeps a local
    /// emulator's queue shallow; unset on AWS).
    pub max_queue_depth: Option<u64>,
    /// The source, for the dry run's existence checks and orphan scan.
    pub source: Option<LegacySource>,
}

impl Inventory {
    /// Runs until done or until `deadline` (minus a margin) is near, then returns the cursor.
    pub async fn run(&self, request: &InventoryRequest, deadline: Option<Instant>) -> Result<InventoryResponse, InventoryError> {
        if request.dry_run {
            let report = self.dry_run(request).await?;
            return Ok(InventoryResponse { done: true, cursor: None, counts: report.counts, totals: report.counts, report: Some(report) });
        }
        let run_id = request.run_id();
        let mut state = match self.runs.load(&run_id).await? {
            Some(s) if !request.restart && !s.done => s,
            // A finished (or restarted) run starts over; settled files are skipped by the manifest.
            Some(s) => RunState { version: s.version, ..Default::default() },
            None => RunState::default(),
        };
        let mut cursor = state.cursor.unwrap_or_else(Cursor::start);
        let mut counts = InventoryCounts::default();
        loop {
            let out_of_pages = request.max_pages.is_some_and(|max| counts.pages >= max);
            if out_of_pages || deadline.is_some_and(|d| Instant::now() + DEADLINE_MARGIN >= d) {
                return Ok(InventoryResponse { done: false, cursor: Some(cursor), counts, totals: state.totals, report: None });
            }
            let page = legacy::read_page(&self.legacy, cursor.phase, cursor.after_id, self.page_size, &self.accounts, &self.rules).await?;
            let mut page_counts = InventoryCounts { rows: page.rows as u64, pages: 1, ..Default::default() };
            let next_cursor = match page.last_id {
                Some(last) if page.rows as u32 == self.page_size => Cursor { phase: cursor.phase, after_id: last },
                _ => match cursor.phase.next() {
                    Some(phase) => Cursor { phase, after_id: 0 },
                    None => cursor,
                },
            };
            let finished = page.last_id.is_none_or(|_| (page.rows as u32) < self.page_size) && cursor.phase.next().is_none();
            self.send_page(page.messages, request, &mut page_counts).await?;

            let mut next_state = RunState {
                cursor: Some(next_cursor),
                done: finished,
                totals: state.totals,
                version: state.version + 1,
            };
            next_state.totals.add(&page_counts);
            if !self.runs.checkpoint(&run_id, state.version, &next_state).await? {
                return Err(InventoryError::Conflict);
            }
            counts.add(&page_counts);
            state = next_state;
            cursor = next_cursor;
            tracing::info!(phase = ?cursor.phase, after_id = cursor.after_id, sent = counts.sent, "inventory page done");
            if finished {
                return Ok(InventoryResponse { done: true, cursor: None, counts, totals: state.totals, report: None });
            }
        }
    }

    async fn send_page(&self, messages: Vec<FileMessage>, request: &InventoryRequest, counts: &mut InventoryCounts) -> Result<(), InventoryError> {
        let (wanted, other): (Vec<FileMessage>, Vec<FileMessage>) =
            messages.into_iter().partition(|m| request.areas.is_empty() || request.areas.contains(&m.area));
        counts.skipped_area += other.len() as u64;
        let keys: Vec<String> = wanted.iter().map(|m| m.source.key()).collect();
        let rerun = !request.rerun.is_empty();
        let settled = if request.force && !rerun { HashMap::new() } else { self.manifest.statuses(&keys).await? };
        let mut bodies = Vec::with_capacity(wanted.len());
        for mut m in wanted {
            let status = settled.get(&m.source.key());
            if rerun {
                if !status.is_some_and(|s| request.rerun.contains(s)) {
                    counts.skipped_status += 1;
                    continue;
                }
            } else if status.is_some_and(|s| s.is_settled()) {
                counts.skipped_settled += 1;
                continue;
            }
            m.force = request.force;
            if m.problem.is_some() || m.account_id.is_none() {
                counts.sent_with_problem += 1;
            }
            bodies.push(m.to_json());
        }
        if let Some(max) = self.max_queue_depth {
            let mut pause = Duration::from_millis(100);
            while self.queue.depth().await?.0 > max {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
        let results: Vec<Result<(), PortError>> = futures::stream::iter(bodies.chunks(10))
            .map(|chunk| self.queue.send_batch(chunk))
            .buffer_unordered(self.send_concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        counts.sent += bodies.len() as u64;
        Ok(())
    }

    /// Reads every row, checks each file on the source without sending anything, and scans
    /// the storage areas for files no row references.
    pub async fn dry_run(&self, request: &InventoryRequest) -> Result<DryRunReport, InventoryError> {
        let source = self
            .source
            .clone()
            .ok_or_else(|| PortError::permanent("dry run", "EFS_ROOT or SOURCE_URI is needed to check the files"))?;
        let mut report = DryRunReport::default();
        let mut referenced: BTreeSet<String> = BTreeSet::new();
        for phase in Phase::ORDER {
            let mut after_id = 0;
            loop {
                let page = legacy::read_page(&self.legacy, phase, after_id, self.page_size, &self.accounts, &self.rules).await?;
                report.counts.rows += page.rows as u64;
                report.counts.pages += 1;
                *report.rows_by_phase.entry(format!("{phase:?}")).or_default() += page.rows as u64;
                let (wanted, other): (Vec<FileMessage>, Vec<FileMessage>) =
                    page.messages.into_iter().partition(|m| request.areas.is_empty() || request.areas.contains(&m.area));
                report.counts.skipped_area += other.len() as u64;
                // Checks overlap: on a staging bucket each is a HEAD request or a few.
                let checked: Vec<(FileMessage, FileCheck)> = futures::stream::iter(wanted)
                    .map(|m| {
                        let source = &source;
                        async move {
                            let check = check_file(&m, &self.rules, source).await;
                            (m, check)
                        }
                    })
                    .buffered(DRY_RUN_CHECKS_AT_ONCE)
                    .collect()
                    .await;
                for (m, check) in checked {
                    match &check {
                        FileCheck::Found { resolved, .. } | FileCheck::Rejected { on_disk: Some(resolved), .. } => {
                            referenced.insert(resolved.clone());
                        }
                        _ => {}
                    }
                    report.add(&m, check);
                }
                match page.last_id {
                    Some(last) if page.rows as u32 == self.page_size => after_id = last,
                    _ => break,
                }
            }
        }
        let on_disk = source.list_storage(&self.rules).await?;
        for (path, size) in on_disk {
            if !referenced.contains(&path) {
                let area = self.rules.area_of(std::path::Path::new(&path)).map(|a| a.as_str()).unwrap_or("other");
                *report.orphans_by_area.entry(area.to_string()).or_default() += 1;
                report.orphan_bytes += size;
                report.orphans.push(path);
            }
        }
        Ok(report)
    }
}

/// What the dry run found for one file.
pub enum FileCheck {
    Found { resolved: String, generation: String, via: String, size: u64 },
    Missing { generation: String },
    /// Not movable; `on_disk` is the root-relative path when the file itself exists (it is
    /// referenced, so it is no orphan).
    Rejected { generation: String, reason: String, on_disk: Option<String> },
}

/// Dry-run file checks in flight at once.
const DRY_RUN_CHECKS_AT_ONCE: usize = 16;

async fn check_file(m: &FileMessage, rules: &PathRules, source: &LegacySource) -> FileCheck {
    let generation = rules.resolve(&m.legacy_path).map(|r| r.generation).unwrap_or_else(|_| "unresolvable".into());
    let located = match candidates_for(m, rules) {
        Ok(c) => Ok(source.locate(&c).await),
        Err(reason) => Err(reason),
    };
    let on_disk = match &located {
        Ok(Ok(Ok(l))) => Some(l.resolved_path.clone()),
        _ => None,
    };
    let rejected = |reason: String| FileCheck::Rejected { generation: generation.clone(), reason, on_disk: on_disk.clone() };
    if let Some(problem) = &m.problem {
        return rejected(problem.clone());
    }
    if m.account_id.is_none() {
        let customer = m.ids.customer_id.map(|c| c.to_string()).unwrap_or_else(|| "(none)".into());
        return rejected(format!("no account mapping for customer {customer}"));
    }
    match located {
        Err(reason) => rejected(reason),
        Ok(Ok(Ok(l))) => FileCheck::Found { resolved: l.resolved_path, generation: l.generation, via: l.via, size: l.size },
        Ok(Ok(Err(LocateFailure::Missing { .. }))) => FileCheck::Missing { generation },
        Ok(Ok(Err(LocateFailure::Rejected { reason }))) => rejected(reason),
        Ok(Err(e)) => rejected(e.to_string()),
    }
}


/// Per-area or per-generation figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub expected: u64,
    pub found: u64,
    pub missing: u64,
    pub rejected: u64,
    pub bytes: u64,
}

pub const SIZE_BUCKETS: [(u64, &str); 8] = [
    (0, "0 B"),
    (10 * 1024, "< 10 KiB"),
    (100 * 1024, "< 100 KiB"),
    (1024 * 1024, "< 1 MiB"),
    (10 * 1024 * 1024, "< 10 MiB"),
    (100 * 1024 * 1024, "< 100 MiB"),
    (1024 * 1024 * 1024, "< 1 GiB"),
    (u64::MAX, ">= 1 GiB"),
];

pub fn size_bucket(size: u64) -> &'static str {
    if size == 0 {
        return SIZE_BUCKETS[0].1;
    }
    SIZE_BUCKETS[1..].iter().find(|(limit, _)| size < *limit).map(|(_, l)| *l).unwrap_or(">= 1 GiB")
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunReport {
    pub counts: InventoryCounts,
    pub rows_by_phase: BTreeMap<String, u64>,
    pub total: Tally,
    pub by_area: BTreeMap<String, Tally>,
    pub by_generation: BTreeMap<String, Tally>,
    pub found_via: BTreeMap<String, u64>,
    pub size_histogram: BTreeMap<String, u64>,
    /// Bytes of the found files per size bucket (the forecast needs them; absent in reports
    /// written before it existed).
    #[serde(default)]
    pub size_histogram_bytes: BTreeMap<String, u64>,
    pub missing: Vec<(String, String)>,
    pub rejected: Vec<(String, String)>,
    pub orphans: Vec<String>,
    pub orphans_by_area: BTreeMap<String, u64>,
    pub orphan_bytes: u64,
}

impl DryRunReport {
    fn add(&mut self, m: &FileMessage, check: FileCheck) {
        let key = m.source.key();
        let generation = match &check {
            FileCheck::Found { generation, .. } | FileCheck::Missing { generation } | FileCheck::Rejected { generation, .. } => generation.clone(),
        };
        let apply = |t: &mut Tally| match &check {
            FileCheck::Found { size, .. } => {
                t.expected += 1;
                t.found += 1;
                t.bytes += size;
            }
            FileCheck::Missing { .. } => {
                t.expected += 1;
                t.missing += 1;
            }
            FileCheck::Rejected { .. } => {
                t.expected += 1;
                t.rejected += 1;
            }
        };
        apply(self.by_area.entry(m.area.as_str().to_string()).or_default());
        apply(self.by_generation.entry(generation).or_default());
        apply(&mut self.total);
        match check {
            FileCheck::Found { size, via, .. } => {
                *self.size_histogram.entry(size_bucket(size).to_string()).or_default() += 1;
                *self.size_histogram_bytes.entry(size_bucket(size).to_string()).or_default() += size;
                *self.found_via.entry(via).or_default() += 1;
            }
            FileCheck::Missing { .. } => self.missing.push((key, m.legacy_path.clone())),
            FileCheck::Rejected { reason, .. } => self.rejected.push((key, reason)),
        }
    }

    pub fn render_text(&self) -> String {
        let mut o = String::new();
        o.push_str("=== DTX 1.0 file inventory - dry run (nothing sent) ===\n");
        o.push_str(&format!("Legacy rows read: {} ({})\n", self.counts.rows, self.rows_by_phase.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")));
        let t = &self.total;
        o.push_str(&format!(
            "Files expected: {}  found: {}  missing: {}  rejected: {}\nTotal bytes found: {}\n",
            t.expected, t.found, t.missing, t.rejected, human_bytes(t.bytes)
        ));
        let table = |o: &mut String, title: &str, rows: &BTreeMap<String, Tally>| {
            o.push_str(&format!("{title}:\n  {:<14} {:>9} {:>9} {:>9} {:>9}  bytes\n", "", "expected", "found", "missing", "rejected"));
            for (k, t) in rows {
                o.push_str(&format!("  {k:<14} {:>9} {:>9} {:>9} {:>9}  {}\n", t.expected, t.found, t.missing, t.rejected, human_bytes(t.bytes)));
            }
        };
        table(&mut o, "By storage area", &self.by_area);
        table(&mut o, "By path generation", &self.by_generation);
        o.push_str("Found via:\n");
        for (via, n) in &self.found_via {
            o.push_str(&format!("  {via:<20} {n}\n"));
        }
        o.push_str("Size distribution (found files):\n");
        for (_, label) in SIZE_BUCKETS {
            if let Some(n) = self.size_histogram.get(label) {
                let bytes = self.size_histogram_bytes.get(label).map(|b| human_bytes(*b)).unwrap_or_default();
                o.push_str(&format!("  {label:<10} {n:>9}  {bytes}\n"));
            }
        }
        o.push_str(&format!("Orphan files (on disk, referenced by no row): {} ({})\n", self.orphans.len(), human_bytes(self.orphan_bytes)));
        for (area, n) in &self.orphans_by_area {
            o.push_str(&format!("  {area:<14} {n}\n"));
        }
        let list = |o: &mut String, title: &str, items: &[(String, String)]| {
            o.push_str(&format!("{title} ({}):\n", items.len()));
            for (k, v) in items.iter().take(50) {
                o.push_str(&format!("  {k}: {v}\n"));
            }
            if items.len() > 50 {
                o.push_str(&format!("  ... {} more in the JSON report\n", items.len() - 50));
            }
        };
        list(&mut o, "Missing files", &self.missing);
        let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (key, reason) in &self.rejected {
            by_reason.entry(reason.as_str()).or_default().push(key.as_str());
        }
        o.push_str(&format!("Rejected files ({}), by reason:\n", self.rejected.len()));
        for (reason, keys) in by_reason {
            let shown: Vec<&str> = keys.iter().take(5).copied().collect();
            let more = if keys.len() > 5 { format!(", ... {} more", keys.len() - 5) } else { String::new() };
            o.push_str(&format!("  {} x {reason}\n      {}{more}\n", keys.len(), shown.join(", ")));
        }
        o.push_str(&crate::forecast::dry_run_section(self));
        o
    }
}

/// Drives the deployed inventory function from an operator's machine: invokes it
/// synchronously, and again while it answers "not done" (it stopped before its deadline; the
/// cursor is in the runs table), until the run is done. `progress` sees every answer. An
/// answer that made no progress (same cursor, no rows) twice in a row is an error, and so is
/// the function's own failure; rerunning continues from the stored cursor.
pub async fn drive_remote(
    client: &aws_sdk_lambda::Client,
    function: &str,
    request: &InventoryRequest,
    mut progress: impl FnMut(&InventoryResponse),
) -> Result<InventoryResponse, PortError> {
    use crate::adapters::lambda::{invoke_json, Invoked};
    const WHAT: &str = "invoking the inventory function";
    let mut request = InventoryRequest { caller_continues: true, ..request.clone() };
    let mut last_cursor = None;
    let mut idle = 0;
    loop {
        let response: InventoryResponse = match invoke_json(client, function, &request, WHAT).await? {
            Invoked::Answer(r) => r,
            Invoked::FunctionError { kind, message } => {
                return Err(PortError::permanent(WHAT, format!("{function} failed ({kind}): {message}; run again to continue from its stored cursor")))
            }
        };
        progress(&response);
        if response.done {
            return Ok(response);
        }
        idle = if response.cursor == last_cursor && response.counts.rows == 0 { idle + 1 } else { 0 };
        if idle >= 2 {
            return Err(PortError::permanent(WHAT, format!("{function} made no progress from cursor {:?} twice", response.cursor)));
        }
        last_cursor = response.cursor;
        // A continuation: never restart again.
        request.restart = false;
    }
}
