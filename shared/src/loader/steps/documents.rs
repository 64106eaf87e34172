//! Step 9, `documents`: every legacy `document` row becomes one `docutrax_profiles_document`
//! (spec: the document field table, Decisions #6, #9, #12 and the error-handling table).
//!
//! A chunk reads up to `chunk_rows` legacy documents after the cursor (keyset on id, with each
//! one's parent row through a self-join), decodes them defensively, checks with one query per
//! table that the mapped accounts, records and users exist in the target (their foreign keys are
//! deferred: a dangling id would only fail at commit and lose the whole chunk), reads the file
//! manifest rows of the chunk's attachments, maps each document in memory, then writes with the
//! shared bulk helpers (ids through the id map, one INSERT and one UPDATE touching only rows
//! whose values differ), so a rerun on unchanged legacy data leaves the table byte-identical.
//!
//! Cursor: `{"after_id": N}` (the last legacy document id done).
//!
//! Choice: a document migrated by an earlier run and skipped now (its mapping went away) is left
//! as it is, with the skip issue; a rerun never deletes documents.
//! Choice: the dropped fields (reviewer_id, source_coi/broker/insured, send_sample,
//! next_review_level, review_status, review_status_date, review_period) are not read;
//! document_library_id is the doc-requirements/fulfillments steps' business, not this one's.
//! Choice: without `id_mapping_records.csv` the step refuses to run (a configuration error)
//! rather than skip every document: each one needs its vendor's Record for `uploaded_by`.
//! Choice: a skipped document carries only its decoding issues and the issues that caused the
//! skip; the status, parent (Decision #9) and DocuSign (Decision #12) issues are recorded for
//! migrated documents (the validate report already lists every DocuSign template and parent).
//! Choice: the counts carry the raw `document_status` distribution of every document read
//! (`status_raw_<value>`, skipped ones included, like the validate report) and the DTX 2.0
//! status of the migrated ones (`status_new`, `status_submitted`, `status_ocr_reject`).
//! Choice: an id map entry whose row is gone is re-inserted under that same id (bulk.rs).

use super::bulk::{self, RowIssues};
use super::files::{self, ManifestRow};
use super::{ChunkOutcome, StepContext};
use crate::error::ConfigError;
use crate::loader::book::{self, Issue};
use crate::loader::mapping::{self, DocumentStatus};
use crate::loader::runner::LoadError;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

pub const STEP: &str = "documents";
/// id_map entity of the documents; legacy key = legacy document id.
pub const ENTITY: &str = "document";

const TABLE: &str = "docutrax_profiles_document";

pub const REASON_NO_CUSTOMER: &str = "customer not mapped";
pub const REASON_ACCOUNT_NOT_NUMERIC: &str = "customer account not numeric";
pub const REASON_ACCOUNT_MISSING: &str = "account not in target";
pub const REASON_NO_VENDOR: &str = "vendor not mapped";
pub const REASON_RECORD_MISSING: &str = "record not in target";
pub const REASON_USER: &str = "user not mapped";
pub const REASON_USER_MISSING: &str = "user not in target";
pub const REASON_USERS_ABSENT: &str = "users mapping absent";
pub const REASON_UNKNOWN_STATUS: &str = "unknown document_status";
pub const REASON_PARENT: &str = "parent document flattened into notes";
pub const REASON_DOCUSIGN: &str = "DocuSign template reference dropped";
pub const REASON_FILE: &str = "attachment file not migrated";
pub const REASON_FILE_FIELDS_TOO_LONG: &str = "attachment file fields too long";
pub const REASON_NO_CREATE_TIME: &str = bulk::REASON_NO_CREATE_TIME;
pub const REASON_ZERO_DATE: &str = bulk::REASON_ZERO_DATE;
pub const REASON_INVALID_DATE: &str = bulk::REASON_INVALID_DATE;
pub const REASON_UTF8: &str = bulk::REASON_UTF8;
pub const REASON_NUL: &str = bulk::REASON_NUL;
pub const REASON_OVERLONG: &str = bulk::REASON_OVERLONG;

/// The VARCHAR widths of the document's text columns in target_postgres.sql (`None` = TEXT).
/// Checked against the live schema by the integration test.
pub const DOCUMENT_TEXT_WIDTHS: [(&str, Option<usize>); 7] = [
    ("name", Some(255)),
    ("supervisor_notes", None),
    ("status", Some(20)),
    ("file", Some(1024)),
    ("original_filename", Some(512)),
    ("content_hash", Some(64)),
    ("file_uid", Some(100)),
];

/// The document columns this step writes, with their type in the JSON record set.
const DOCUMENT_COLUMNS: [(&str, &str); 14] = [
    ("id", "bigint"),
    ("name", "text"),
    ("expiry_date", "date"),
    ("supervisor_notes", "text"),
    ("status", "text"),
    ("uploaded_by_id", "bigint"),
    ("file", "text"),
    ("original_filename", "text"),
    ("content_hash", "text"),
    ("file_uid", "text"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
    ("created_by_id", "bigint"),
    ("account_id", "bigint"),
];

/// One `docutrax_profiles_document` row as written (field names = column names).
/// `created`/`modified` are `None` when the legacy row has no usable time: the load time is
/// used at insert, and an update keeps what is stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct DocumentRow {
    id: i64,
    name: Option<String>,
    expiry_date: Option<NaiveDate>,
    supervisor_notes: Option<String>,
    status: &'static str,
    uploaded_by_id: i64,
    file: Option<String>,
    original_filename: Option<String>,
    content_hash: Option<String>,
    file_uid: Option<String>,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
    created_by_id: Option<i64>,
    account_id: i64,
}

/// `document.document_status` mapped (Decision #6), with what the report needs about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    pub status: DocumentStatus,
    /// The counter of the raw value: `status_raw_<value as stored>`, NULL as `status_raw_(null)`
    /// (the validate report's distribution keys), so the step's counts list the distribution.
    pub raw_counter: String,
    /// Set for a value Decision #6 does not name: the issue detail.
    pub unknown: Option<String>,
}

/// Decision #6 for one legacy `document.document_status`.
///
/// Choice: the recognized spellings are exactly `mapping::document_status`'s (trimmed, ASCII
/// case-insensitive): "0", NEW, NOT_PROVIDED → new; REVIEWED, APPROVED → submitted; REJECTED →
/// ocr_reject. Anything else (NULL, blank, other numeric codes, PROVIDED, OVERRIDE, …) → new
/// with an "unknown document_status" issue, so the step, the validate report's "unknown
/// document_status" figure and the sample's expectations count the same values.
/// Choice: PROVIDED (a document_status-table word) is not read as submitted for the document
/// itself: the spec names it for DocRequirement only, and the review flags it instead.
pub fn document_status(raw: Option<&str>) -> StatusOutcome {
    let mapped = mapping::document_status(raw);
    let shown = raw.map_or_else(|| "(null)".to_string(), str::to_string);
    let unknown = (!mapped.known).then(|| {
        let value = raw.map_or_else(|| "NULL".to_string(), |v| format!("{v:?}"));
        format!("{value}: set to {}", mapped.value.as_str())
    });
    StatusOutcome { status: mapped.value, raw_counter: format!("status_raw_{shown}"), unknown }
}

/// The Decision #9 line for a document whose `parent_document_id` is set.
///
/// Choice: `parent` is the parent row's name when the row exists (`Some(None)` when it has no
/// usable name). A parent without a name is written "(no name)"; a parent id with no legacy row
/// is written "(not found)"; the old id is always kept, so the relationship stays traceable.
pub fn parent_note(parent_id: u64, parent: Option<Option<&str>>) -> String {
    let name = match parent {
        Some(Some(n)) if !n.trim().is_empty() => n.trim().to_string(),
        Some(_) => "(no name)".to_string(),
        None => "(not found)".to_string(),
    };
    format!("[Migrated] Parent document: {name} (old_id: {parent_id})")
}

/// `supervisor_notes`: the legacy comments, then the parent line on a line of its own.
/// Choice: the comments are trimmed and blank comments count as none (as every copied text).
pub fn supervisor_notes(comments: Option<&str>, parent_line: Option<&str>) -> Option<String> {
    let comments = comments.map(str::trim).filter(|c| !c.is_empty());
    match (comments, parent_line) {
        (Some(c), Some(p)) => Some(format!("{c}\n{p}")),
        (c, p) => c.or(p).map(String::from),
    }
}

/// Legacy columns read as `CAST(x AS UNSIGNED)`, `CAST(x AS CHAR)` and `CAST(x AS BINARY)`.
const LEGACY_SELECT: &str = "SELECT CAST(d.id AS UNSIGNED) AS id, CAST(d.customer_id AS UNSIGNED) AS customer_id,
        CAST(d.vendor_id AS UNSIGNED) AS vendor_id, CAST(d.attachment_id AS UNSIGNED) AS attachment_id,
        CAST(d.user_id AS UNSIGNED) AS user_id, CAST(d.parent_document_id AS UNSIGNED) AS parent_document_id,
        CAST(d.create_time AS CHAR) AS create_time, CAST(d.update_time AS CHAR) AS update_time,
        CAST(d.expiration_date AS CHAR) AS expiration_date,
        CAST(d.name AS BINARY) AS name, CAST(d.comments AS BINARY) AS comments,
        CAST(d.document_status AS BINARY) AS document_status, CAST(d.docusign_template_id AS BINARY) AS docusign_template_id,
        CAST(p.id AS UNSIGNED) AS parent_found, CAST(p.name AS BINARY) AS parent_name
    FROM document d LEFT JOIN document p ON p.id = d.parent_document_id
    WHERE d.id > ? ORDER BY d.id LIMIT ?";

/// One legacy document, decoded (text valid UTF-8 and NUL-free).
#[derive(Debug, Default)]
struct Legacy {
    id: u64,
    customer_id: Option<u64>,
    vendor_id: Option<u64>,
    attachment_id: Option<u64>,
    user_id: Option<u64>,
    parent_document_id: Option<u64>,
    parent_found: bool,
    parent_name: Option<String>,
    create_time: Option<String>,
    update_time: Option<String>,
    expiration_date: Option<String>,
    name: Option<String>,
    comments: Option<String>,
    document_status: Option<String>,
    docusign_template_id: Option<String>,
}

/// Choice: 0 is read as NULL for every reference (legacy uses both for "none").
fn nonzero(id: Option<u64>) -> Option<u64> {
    id.filter(|&i| i != 0)
}

fn decode_row(row: &sqlx::mysql::MySqlRow, issues: &mut RowIssues) -> Result<Legacy, sqlx::Error> {
    let id: u64 = row.try_get("id")?;
    issues.key = id.to_string();
    let mut text = |col: &str| -> Result<Option<String>, sqlx::Error> { Ok(issues.text(col, row.try_get(col)?)) };
    let name = text("name")?;
    let comments = text("comments")?;
    let document_status = text("document_status")?;
    let docusign_template_id = text("docusign_template_id")?;
    let parent_name = text("parent_name")?;
    Ok(Legacy {
        id,
        customer_id: nonzero(row.try_get("customer_id")?),
        vendor_id: nonzero(row.try_get("vendor_id")?),
        attachment_id: nonzero(row.try_get("attachment_id")?),
        user_id: nonzero(row.try_get("user_id")?),
        parent_document_id: nonzero(row.try_get("parent_document_id")?),
        parent_found: row.try_get::<Option<u64>, _>("parent_found")?.is_some(),
        parent_name,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
        expiration_date: row.try_get("expiration_date")?,
        name,
        comments,
        document_status,
        docusign_template_id,
    })
}

/// What the chunk's documents reference in the target: the ids that exist there, and the file
/// manifest rows of their attachments.
struct Targets {
    accounts: HashSet<i64>,
    records: HashSet<i64>,
    users: HashSet<i64>,
    manifest: HashMap<i64, Vec<ManifestRow>>,
    users_absent: bool,
}

/// Which of `ids` exist in `table`.
async fn present(tx: &mut PgConnection, table: &str, ids: HashSet<i64>) -> Result<HashSet<i64>, sqlx::Error> {
    bulk::existing_ids(tx, table, &ids.into_iter().collect::<Vec<_>>()).await
}

/// The account a customer maps to: Err((reason, detail)) when it cannot be used.
fn account_of(ctx: &StepContext<'_>, customer: Option<u64>) -> Result<i64, (&'static str, String)> {
    let Some(c) = customer else {
        return Err((REASON_NO_CUSTOMER, "customer_id NULL".into()));
    };
    let Some(account) = ctx.mappings.accounts.get(&c) else {
        return Err((REASON_NO_CUSTOMER, format!("customer_id {c}")));
    };
    // Choice: an account mapping that is not a number is unusable like a missing one: skip + its own issue.
    account.trim().parse::<i64>().map_err(|_| (REASON_ACCOUNT_NOT_NUMERIC, format!("customer_id {c} maps to account {account:?}")))
}

/// Maps one legacy document, or returns None when it must be skipped (the issues say why).
fn prepare(ctx: &StepContext<'_>, legacy: &Legacy, targets: &Targets, issues: &mut RowIssues, out: &mut ChunkOutcome) -> Option<DocumentRow> {
    // Skip rules (error table): customer without account, vendor without record.
    // Choice: the mapped account and record must also exist in the target (else skip + issue).
    let account = match account_of(ctx, legacy.customer_id) {
        Ok(a) if targets.accounts.contains(&a) => Some(a),
        Ok(a) => {
            issues.add(REASON_ACCOUNT_MISSING, format!("customer_id {} maps to account {a}, which is not in docutrax_accounts_account", legacy.customer_id.unwrap_or_default()));
            None
        }
        Err((reason, detail)) => {
            issues.add(reason, detail);
            None
        }
    };
    let record = match legacy.vendor_id {
        None => {
            issues.add(REASON_NO_VENDOR, "vendor_id NULL");
            None
        }
        Some(v) => match ctx.mappings.records.get(&v) {
            None => {
                issues.add(REASON_NO_VENDOR, format!("vendor_id {v}"));
                None
            }
            Some(r) if !targets.records.contains(&r.record_id) => {
                issues.add(REASON_RECORD_MISSING, format!("vendor_id {v} maps to record {}, which is not in docutrax_records_record", r.record_id));
                None
            }
            Some(r) => Some(r.record_id),
        },
    };
    let (account_id, uploaded_by_id) = (account?, record?);

    let mut row = DocumentRow { account_id, uploaded_by_id, ..Default::default() };
    row.name = issues.fit("name", legacy.name.as_deref());
    row.expiry_date = issues.date("expiration_date", legacy.expiration_date.as_deref()).map(|d| d.date());

    // created/modified: the certificates' fallbacks (bulk.rs), legacy times read as UTC.
    (row.created, row.modified) = issues.created_modified(legacy.create_time.as_deref(), legacy.update_time.as_deref());

    // Status, Decision #6.
    let status = document_status(legacy.document_status.as_deref());
    if let Some(detail) = status.unknown {
        issues.add(REASON_UNKNOWN_STATUS, detail);
    }
    row.status = status.status.as_str();
    out.add(&format!("status_{}", row.status), 1);

    // Hierarchy, Decision #9: flattened into supervisor_notes, the relationship logged.
    let parent_line = legacy.parent_document_id.map(|p| {
        let parent = legacy.parent_found.then_some(legacy.parent_name.as_deref());
        let line = parent_note(p, parent);
        let detail = match parent {
            Some(_) => format!("parent_document_id {p}: {line}"),
            None => format!("parent_document_id {p} has no legacy row: {line}"),
        };
        issues.add(REASON_PARENT, detail);
        out.add("parent_documents_noted", 1);
        line
    });
    let notes = supervisor_notes(legacy.comments.as_deref(), parent_line.as_deref());
    row.supervisor_notes = issues.fit("supervisor_notes", notes.as_deref());

    // DocuSign, Decision #12: dropped, logged for reference (the export's report lists the
    // issues whose reason names DocuSign, with their detail).
    if let Some(template) = legacy.docusign_template_id.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        issues.add(REASON_DOCUSIGN, format!("docusign_template_id {template}"));
        out.add("docusign_templates_dropped", 1);
    }

    // created_by via the users mapping. Choice: user_id NULL/0 is no user (no issue); when the
    // users mapping file is absent, one issue per chunk says so instead of one per row.
    if let Some(user) = legacy.user_id {
        match ctx.mappings.users.get(&user) {
            Some(id) if targets.users.contains(id) => row.created_by_id = Some(*id),
            Some(id) => issues.add(REASON_USER_MISSING, format!("user_id {user} maps to user {id}, which is not in docutrax_users_user: created_by left NULL")),
            None if targets.users_absent => {}
            None => issues.add(REASON_USER, format!("user_id {user}: created_by left NULL")),
        }
    }

    // File fields (Decision #5 for documents): a missing file leaves them NULL, flagged.
    if let Some(attachment) = legacy.attachment_id {
        match files::pick_file(attachment, targets.manifest.get(&(attachment as i64))) {
            Ok(file) => match file_fields(file) {
                Ok((key, hash, uid)) => {
                    row.file = Some(key);
                    row.content_hash = hash;
                    row.file_uid = uid;
                    row.original_filename = issues.fit("original_filename", file.original_filename.as_deref());
                    out.add("files_linked", 1);
                }
                Err(too_long) => {
                    issues.add(REASON_FILE_FIELDS_TOO_LONG, format!("{}: {too_long}", file.source_key));
                    out.add("files_not_migrated", 1);
                }
            },
            Err(detail) => {
                issues.add(REASON_FILE, detail);
                out.add("files_not_migrated", 1);
            }
        }
    }
    Some(row)
}

/// The S3 key, content hash and file uid of a stored manifest row, trimmed (blank → NULL).
/// Choice (as certificates): these are references a cut would break, so when one is longer
/// than its column the file is not linked (Err lists which) rather than truncated.
fn file_fields(file: &ManifestRow) -> Result<(String, Option<String>, Option<String>), String> {
    let clean = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    let (key, hash, uid) = (clean(&file.s3_key), clean(&file.content_hash), clean(&file.file_uid));
    let too_long: Vec<String> = [("file", &key), ("content_hash", &hash), ("file_uid", &uid)]
        .into_iter()
        .filter_map(|(column, v)| {
            let width = DOCUMENT_TEXT_WIDTHS.iter().find(|(c, _)| *c == column).and_then(|(_, w)| *w)?;
            v.as_deref().is_some_and(|v| v.chars().count() > width).then(|| format!("{column} longer than {width}"))
        })
        .collect();
    match (key, too_long.is_empty()) {
        (Some(key), true) => Ok((key, hash, uid)),
        // pick_file only returns rows with a non-blank key.
        (None, true) => Err("no s3_key".into()),
        (_, false) => Err(too_long.join(", ")),
    }
}

/// Processes the documents after `cursor` (`{"after_id": N}`).
pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let after_id = super::after_id(ctx.step, cursor.as_ref())?;
    if ctx.mappings.absent.contains(&crate::mappings::RECORDS_FILE) {
        return Err(LoadError::Config(ConfigError(format!(
            "{}: {} not found in MAPPINGS_DIR; every document needs its vendor's Record (uploaded_by)",
            ctx.step,
            crate::mappings::RECORDS_FILE
        ))));
    }
    // Choice: NUL characters (PostgreSQL text cannot hold them) are removed and flagged.
    let new_issues = || RowIssues::new(ENTITY, "", &DOCUMENT_TEXT_WIDTHS).flagging_nul();
    let legacy_rows = bulk::read_decoded(ctx, LEGACY_SELECT, after_id, new_issues, decode_row).await?;
    let mut out = ChunkOutcome::default();
    let Some(last_id) = legacy_rows.last().map(|(l, _)| l.id) else {
        return Ok(out);
    };
    let mut all_issues: Vec<Issue> = Vec::new();
    // The raw status distribution counts every document read.
    for (doc, _) in &legacy_rows {
        out.add(&document_status(doc.document_status.as_deref()).raw_counter, 1);
    }
    out.add("documents_read", legacy_rows.len() as u64);

    // What the documents reference, checked in the target with one query per table.
    let accounts: HashSet<i64> = legacy_rows.iter().filter_map(|(l, _)| account_of(ctx, l.customer_id).ok()).collect();
    let records: HashSet<i64> =
        legacy_rows.iter().filter_map(|(l, _)| l.vendor_id.and_then(|v| ctx.mappings.records.get(&v)).map(|r| r.record_id)).collect();
    let users: HashSet<i64> = legacy_rows.iter().filter_map(|(l, _)| l.user_id.and_then(|u| ctx.mappings.users.get(&u)).copied()).collect();
    let attachments: Vec<i64> = legacy_rows.iter().filter_map(|(l, _)| l.attachment_id).map(|a| a as i64).collect();
    let targets = Targets {
        accounts: present(tx, "docutrax_accounts_account", accounts).await?,
        records: present(tx, "docutrax_records_record", records).await?,
        users: present(tx, "docutrax_users_user", users).await?,
        manifest: files::manifest_rows_for_attachments(tx, &attachments).await?,
        users_absent: ctx.mappings.absent.contains(&crate::mappings::USERS_FILE),
    };
    if targets.users_absent && legacy_rows.iter().any(|(l, _)| l.user_id.is_some()) {
        all_issues.push(
            Issue::new(ENTITY, "", REASON_USERS_ABSENT).with_detail(format!("{} not found: created_by left NULL", crate::mappings::USERS_FILE)),
        );
    }

    // Map.
    let mut prepared: Vec<(String, DocumentRow)> = Vec::with_capacity(legacy_rows.len());
    for (doc, mut issues) in legacy_rows {
        match prepare(ctx, &doc, &targets, &mut issues, &mut out) {
            Some(row) => prepared.push((doc.id.to_string(), row)),
            None => out.add("documents_skipped", 1),
        }
        all_issues.extend(issues.issues);
    }

    // Write: mapped rows that exist are updated, the rest inserted (keys in legacy id order, so
    // fresh ids follow the legacy ids).
    let keys: Vec<String> = prepared.iter().map(|(k, _)| k.clone()).collect();
    let ids = bulk::resolve_ids(tx, TABLE, ENTITY, &keys).await?;
    let mut rows = Vec::with_capacity(prepared.len());
    for (key, mut row) in prepared {
        row.id = ids.id(&key)?;
        rows.push(row);
    }
    bulk::write_rows(tx, TABLE, &DOCUMENT_COLUMNS, &rows, |r| r.id, &ids.present, ctx.now, "documents", &mut out).await?;
    book::map_fresh_ids(tx, ENTITY, ctx.step, &ids.new_pairs).await?;

    out.issues = bulk::merge_issues(all_issues);
    out.cursor = Some(serde_json::json!({ "after_id": last_id }));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_names_every_field_of_the_row() {
        bulk::assert_columns_match::<DocumentRow>(&DOCUMENT_COLUMNS);
        for (c, _) in DOCUMENT_TEXT_WIDTHS {
            assert!(DOCUMENT_COLUMNS.iter().any(|(n, t)| *n == c && *t == "text"), "{c}");
        }
    }

    #[test]
    fn statuses_map_by_decision_6_and_count_their_raw_value() {
        let status = |raw: Option<&str>| {
            let s = document_status(raw);
            (s.status.as_str(), s.unknown.is_none())
        };
        for raw in ["0", "new", "NEW", " New ", "NOT_PROVIDED", "not_provided"] {
            assert_eq!(status(Some(raw)), ("new", true), "{raw:?}");
        }
        for raw in ["REVIEWED", "reviewed", "APPROVED", " Approved "] {
            assert_eq!(status(Some(raw)), ("submitted", true), "{raw:?}");
        }
        for raw in ["REJECTED", "rejected", "Rejected\t"] {
            assert_eq!(status(Some(raw)), ("ocr_reject", true), "{raw:?}");
        }
        for raw in [None, Some(""), Some("  "), Some("3"), Some("00"), Some("PROVIDED"), Some("OVERRIDE"), Some("NOT PROVIDED")] {
            assert_eq!(status(raw), ("new", false), "{raw:?}");
        }
        let unknown = document_status(Some("3"));
        assert_eq!(unknown.unknown.as_deref(), Some("\"3\": set to new"));
        assert_eq!(unknown.raw_counter, "status_raw_3");
        let null = document_status(None);
        assert_eq!(null.unknown.as_deref(), Some("NULL: set to new"));
        assert_eq!(null.raw_counter, "status_raw_(null)");
        assert_eq!(document_status(Some(" approved")).raw_counter, "status_raw_ approved");
    }

    #[test]
    fn the_parent_line_names_the_parent_or_says_why_not() {
        assert_eq!(parent_note(7, Some(Some(" W-9 2019 "))), "[Migrated] Parent document: W-9 2019 (old_id: 7)");
        assert_eq!(parent_note(7, Some(None)), "[Migrated] Parent document: (no name) (old_id: 7)");
        assert_eq!(parent_note(7, Some(Some("  "))), "[Migrated] Parent document: (no name) (old_id: 7)");
        assert_eq!(parent_note(8, None), "[Migrated] Parent document: (not found) (old_id: 8)");
    }

    #[test]
    fn notes_put_the_parent_line_after_the_comments() {
        assert_eq!(supervisor_notes(Some(" signed copy \n"), Some("[Migrated] P")).as_deref(), Some("signed copy\n[Migrated] P"));
        assert_eq!(supervisor_notes(Some("  "), Some("[Migrated] P")).as_deref(), Some("[Migrated] P"));
        assert_eq!(supervisor_notes(Some("c"), None).as_deref(), Some("c"));
        assert_eq!(supervisor_notes(None, None), None);
    }

    #[test]
    fn file_fields_are_trimmed_and_never_cut() {
        let row = |key: &str, hash: &str, uid: &str| ManifestRow {
            attachment_id: 1,
            source_key: "attachment:1".into(),
            status: Some("moved".into()),
            s3_key: Some(key.into()),
            original_filename: None,
            content_hash: Some(hash.into()),
            file_uid: Some(uid.into()),
        };
        assert_eq!(file_fields(&row(" k ", "h", " ")), Ok(("k".to_string(), Some("h".to_string()), None)));
        assert_eq!(file_fields(&row("k", &"h".repeat(65), &"u".repeat(101))), Err("content_hash longer than 64, file_uid longer than 100".to_string()));
        assert_eq!(file_fields(&row(&"k".repeat(1025), "h", "u")), Err("file longer than 1024".to_string()));
    }
}
