//! Step 7, `evaluations` (Decision #4): the legacy `certificate_status` rows of each migrated
//! certificate become one `docutrax_profiles_evaluation`, one
//! `docutrax_profiles_evaluationcoverage` per coverage type found in them, and one
//! `docutrax_profiles_evaluationdetail` per status row.
//!
//! A chunk reads, in one legacy query, every status row of the next `chunk_rows` certificate ids
//! that have status rows (keyset on certificate_id, so a certificate is never split across
//! chunks), with whether the legacy certificate exists; it resolves the migrated certificates
//! with one target query, maps everything in memory, then writes each of the three tables with
//! one bulk INSERT and one bulk UPDATE (rows as a JSON array through `jsonb_to_recordset`, ids
//! taken up front from the identity sequence, updates only where a value differs, as the
//! certificates step does), so a rerun on unchanged legacy data leaves every table
//! byte-identical. A last phase flags the status rows whose certificate_id is NULL.
//!
//! Cursor: `{"after_certificate_id": N}` (the certificate phase; `None` = start, certificate id
//! 0 included), then `{"null_certificate_after": <status row id>}` (the NULL phase).
//!
//! Choice: Decision #4's "e. Set Certificate.current_evaluation = created Evaluation" is
//! superseded by Decision #10 (only the latest evaluated certificate of a RequirementsGroup
//! gets it): this step never writes `current_evaluation_id`; step 8 `current-evaluations` does.
//! Choice: status rows are grouped by their certificate_id as stored; certificate_id 0 is an
//! ordinary key (no legacy certificate has id 0, so its rows are flagged as orphans).
//! Choice: a certificate migrated by an earlier run whose status rows are all gone now keeps its
//! evaluation (never seen again, never deleted: removing rows is the undo's job). Within a
//! certificate that is seen, the coverages and details this step made whose legacy rows are
//! gone are removed (rows and id map entries), so a rerun converges on the legacy data.
//! Choice: an id map entry whose row is gone is re-inserted under that same id.

use super::bulk::{self, RowIssues};
use super::{ChunkOutcome, StepContext};
use crate::error::ConfigError;
use crate::loader::book::{self, Issue};
use crate::loader::mapping::{self, EvalStatus, LegacyDate};
use crate::loader::runner::LoadError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{BTreeMap, HashMap};

pub const STEP: &str = "evaluations";
/// id map entity of the evaluations; legacy key = legacy certificate id.
pub const EVALUATION_ENTITY: &str = "evaluation";
/// id map entity of the coverages; legacy key `<certificate_id>:<coverage_type>`.
pub const COVERAGE_ENTITY: &str = "evaluation_coverage";
/// id map entity of the details; legacy key = certificate_status id.
pub const DETAIL_ENTITY: &str = "evaluation_detail";
/// id map entity written by the certificates step; legacy key = legacy certificate id.
pub const CERTIFICATE_ENTITY: &str = super::certificates::ENTITY;

/// Issue entity of row-level issues (legacy key = certificate_status id).
pub const STATUS_ROW: &str = "certificate_status";
/// Issue entity of certificate-level issues (legacy key = legacy certificate id).
pub const CERTIFICATE: &str = "certificate";

pub const REASON_ORPHAN: &str = "certificate_status row without certificate";
pub const REASON_NOT_MIGRATED: &str = "certificate not migrated";
pub const REASON_NOT_IN_TARGET: &str = "migrated certificate not found";
pub const REASON_UNKNOWN_FIELD: &str = "unknown field_name";
pub const REASON_NO_FIELD: &str = "no field_name";
pub const REASON_NO_STATUS_CODE: &str = "no status_code";
pub const REASON_NO_DATE: &str = "no evaluation date";
pub const REASON_ZERO_DATE: &str = "zero create_time ignored";
pub const REASON_INVALID_DATE: &str = bulk::REASON_INVALID_DATE;
pub const REASON_UTF8: &str = bulk::REASON_UTF8;
pub const REASON_OVERLONG: &str = bulk::REASON_OVERLONG;

/// `requirement_name` of a detail whose status row has no field_name.
pub const NO_FIELD_NAME: &str = "(no field name)";

const EVALUATION_TABLE: &str = "docutrax_profiles_evaluation";
const COVERAGE_TABLE: &str = "docutrax_profiles_evaluationcoverage";
const DETAIL_TABLE: &str = "docutrax_profiles_evaluationdetail";

/// `docutrax_profiles_evaluationdetail.requirement_name` VARCHAR(255), `field_key` VARCHAR(100).
pub const REQUIREMENT_NAME_MAX: usize = 255;
pub const FIELD_KEY_MAX: usize = 100;

const EVALUATION_COLUMNS: [(&str, &str); 7] = [
    ("id", "bigint"),
    ("certificate_id", "bigint"),
    ("requirements_group_id", "bigint"),
    ("status", "text"),
    ("evaluation_date", "timestamptz"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

const COVERAGE_COLUMNS: [(&str, &str); 6] = [
    ("id", "bigint"),
    ("evaluation_id", "bigint"),
    ("coverage_type", "text"),
    ("status", "text"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

const DETAIL_COLUMNS: [(&str, &str); 9] = [
    ("id", "bigint"),
    ("evaluation_coverage_id", "bigint"),
    ("requirement_name", "text"),
    ("status", "text"),
    ("required_value", "text"),
    ("provided_value", "text"),
    ("field_key", "text"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

/// Every row of this step carries its times (never NULL), so the bulk writes' NULL-time
/// fallbacks never apply: a rerun rewrites the times from legacy like any other column.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct EvaluationRow {
    id: i64,
    certificate_id: i64,
    requirements_group_id: i64,
    status: &'static str,
    evaluation_date: DateTime<Utc>,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct CoverageRow {
    id: i64,
    evaluation_id: i64,
    coverage_type: &'static str,
    status: &'static str,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct DetailRow {
    id: i64,
    evaluation_coverage_id: i64,
    requirement_name: String,
    status: &'static str,
    required_value: Option<String>,
    provided_value: Option<String>,
    field_key: Option<String>,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
}

/// `certificate_status.field_name` as a human-readable `requirement_name`.
///
/// Choice: the CamelCase legacy name is split into words and nothing else is changed:
/// "GLPolExpDate" → "GL Pol Exp Date", "UMBPolExpDate" → "UMB Pol Exp Date", "gl_each_occ" →
/// "gl each occ". A word boundary is a lower-case letter or digit followed by an upper-case one,
/// or the last capital of an upper-case run followed by a lower-case letter (the end of an
/// acronym); `_` and `-` become spaces; runs of blanks collapse. Abbreviations are not expanded
/// ("Pol" → "Policy" would be a guess about legacy names nobody has listed); the raw name stays
/// in `field_key`. Blank → [`NO_FIELD_NAME`].
pub fn requirement_name(field_name: &str) -> String {
    let chars: Vec<char> = field_name.trim().chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
    let mut out = String::with_capacity(chars.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push(' ');
            }
        }
        out.push(c);
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    if words.is_empty() {
        NO_FIELD_NAME.to_string()
    } else {
        words.join(" ")
    }
}

/// One legacy certificate_status row, decoded (text valid UTF-8 and NUL-free).
#[derive(Debug, Clone)]
struct StatusRow {
    id: u64,
    status_code: Option<String>,
    field_name: Option<String>,
    minimum: Option<String>,
    actual: Option<String>,
    create_time: Option<String>,
}

/// The status rows of one certificate id.
struct Group {
    certificate_id: u64,
    /// Whether the legacy certificate exists.
    exists: bool,
    rows: Vec<StatusRow>,
}

const LEGACY_SELECT: &str = "SELECT CAST(s.id AS UNSIGNED) AS id, CAST(s.certificate_id AS UNSIGNED) AS certificate_id,
        CAST(c.id AS UNSIGNED) AS legacy_certificate,
        CAST(s.status_code AS BINARY) AS status_code, CAST(s.field_name AS BINARY) AS field_name,
        CAST(s.minimum AS BINARY) AS minimum, CAST(s.actual AS BINARY) AS actual, CAST(s.create_time AS CHAR) AS create_time
    FROM (SELECT DISTINCT certificate_id FROM certificate_status WHERE certificate_id >= ? ORDER BY certificate_id LIMIT ?) k
    JOIN certificate_status s ON s.certificate_id = k.certificate_id
    LEFT JOIN certificate c ON c.id = k.certificate_id
    ORDER BY s.certificate_id, s.id";

/// Runs the next chunk (see the module doc for the cursor).
pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let bad = |c: &serde_json::Value| {
        LoadError::Config(ConfigError(format!(
            "{}: bad cursor {c}, expected {{\"after_certificate_id\": N}} or {{\"null_certificate_after\": N}}",
            ctx.step
        )))
    };
    match &cursor {
        None => certificates(ctx, tx, 0).await,
        Some(c) => {
            if let Some(after) = c.get("after_certificate_id").and_then(serde_json::Value::as_u64) {
                certificates(ctx, tx, after.saturating_add(1)).await
            } else if let Some(after) = c.get("null_certificate_after").and_then(serde_json::Value::as_u64) {
                null_certificate_rows(ctx, after).await
            } else {
                Err(bad(c))
            }
        }
    }
}

/// The NULL phase: status rows without a certificate_id, flagged and skipped.
async fn null_certificate_rows(ctx: &StepContext<'_>, after: u64) -> Result<ChunkOutcome, LoadError> {
    let ids: Vec<u64> = sqlx::query_scalar(
        "SELECT CAST(id AS UNSIGNED) FROM certificate_status WHERE certificate_id IS NULL AND id > ? ORDER BY id LIMIT ?",
    )
    .bind(after)
    .bind(ctx.chunk_rows.max(1))
    .fetch_all(ctx.legacy)
    .await
    .map_err(bulk::legacy)?;
    let mut out = ChunkOutcome::default();
    let Some(&last) = ids.last() else {
        return Ok(out);
    };
    out.add("status_rows_read", ids.len() as u64);
    out.add("status_rows_orphan", ids.len() as u64);
    out.issues = ids.iter().map(|id| Issue::new(STATUS_ROW, id, REASON_ORPHAN).with_detail("certificate_id NULL")).collect();
    out.cursor = Some(serde_json::json!({ "null_certificate_after": last }));
    Ok(out)
}

/// A certificate id map entry and its target row (NULLs when the row is gone).
#[derive(sqlx::FromRow)]
struct MappedCertificate {
    legacy_key: String,
    new_id: i64,
    requirements_group_id: Option<i64>,
    created: Option<DateTime<Utc>>,
}

/// A migrated certificate as the target has it.
struct Target {
    id: i64,
    requirements_group_id: i64,
    created: DateTime<Utc>,
}

/// One coverage to write: its status and its details (with their status row ids).
#[derive(Default)]
struct Coverage {
    status: Option<EvalStatus>,
    details: Vec<(u64, DetailRow)>,
}

/// One evaluation to write, with its coverages (by type, in name order) and their details.
struct Prepared {
    legacy_id: u64,
    row: EvaluationRow,
    coverages: BTreeMap<&'static str, Coverage>,
}

/// The certificate phase: the status rows of the next certificate ids from `from` (inclusive).
async fn certificates(ctx: &StepContext<'_>, tx: &mut PgConnection, from: u64) -> Result<ChunkOutcome, LoadError> {
    // The next chunk starts after this chunk's last certificate id (the key is inclusive).
    let next = |last: &sqlx::mysql::MySqlRow| Ok(last.try_get::<Option<u64>, _>("certificate_id")?.unwrap_or_default().saturating_add(1));
    let rows = bulk::legacy_chunk(ctx, LEGACY_SELECT, from, next).await?;
    if rows.is_empty() {
        return null_certificate_rows(ctx, 0).await;
    }
    let mut out = ChunkOutcome::default();
    let mut issues = Vec::new();

    // Decode and group by certificate id (rows arrive ordered by certificate_id, id).
    let mut groups: Vec<Group> = Vec::new();
    for row in &rows {
        let decode = |issues: &mut Vec<Issue>| -> Result<(u64, bool, StatusRow), sqlx::Error> {
            let id: u64 = row.try_get("id")?;
            let certificate_id: u64 = row.try_get::<Option<u64>, _>("certificate_id")?.unwrap_or_default();
            let exists = row.try_get::<Option<u64>, _>("legacy_certificate")?.is_some();
            let mut decoded = RowIssues::new(STATUS_ROW, id, &[]);
            let status = StatusRow {
                id,
                status_code: decoded.text("status_code", row.try_get("status_code")?),
                field_name: decoded.text("field_name", row.try_get("field_name")?),
                minimum: decoded.text("minimum", row.try_get("minimum")?),
                actual: decoded.text("actual", row.try_get("actual")?),
                create_time: row.try_get("create_time")?,
            };
            issues.extend(decoded.issues);
            Ok((certificate_id, exists, status))
        };
        let (certificate_id, exists, status) = decode(&mut issues).map_err(bulk::legacy)?;
        match groups.last_mut() {
            Some(g) if g.certificate_id == certificate_id => g.rows.push(status),
            _ => groups.push(Group { certificate_id, exists, rows: vec![status] }),
        }
    }
    let last_certificate = groups.last().map_or(from, |g| g.certificate_id);
    out.add("status_rows_read", rows.len() as u64);
    out.add("certificates_read", groups.len() as u64);

    // The migrated certificates of the chunk (id map + the target row).
    let keys: Vec<String> = groups.iter().filter(|g| g.exists).map(|g| g.certificate_id.to_string()).collect();
    let found: Vec<MappedCertificate> = sqlx::query_as(
        "SELECT m.legacy_key, m.new_id, c.requirements_group_id, c.created
         FROM dtx_migration.id_map m LEFT JOIN docutrax_profiles_certificate c ON c.id = m.new_id
         WHERE m.entity = $1 AND m.legacy_key = ANY($2)",
    )
    .bind(CERTIFICATE_ENTITY)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    let found: HashMap<String, MappedCertificate> = found.into_iter().map(|m| (m.legacy_key.clone(), m)).collect();

    // Map.
    let mut prepared: Vec<Prepared> = Vec::new();
    for group in &groups {
        let key = group.certificate_id.to_string();
        let row_ids = || group.rows.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(", ");
        if !group.exists {
            // Choice: one issue per orphan status row (the spec's error table: "log, skip").
            for r in &group.rows {
                issues.push(Issue::new(STATUS_ROW, r.id, REASON_ORPHAN).with_detail(format!("certificate_id {}", group.certificate_id)));
            }
            out.add("status_rows_orphan", group.rows.len() as u64);
            continue;
        }
        let target = match found.get(&key) {
            Some(MappedCertificate { new_id, requirements_group_id: Some(group), created: Some(created), .. }) => {
                Target { id: *new_id, requirements_group_id: *group, created: *created }
            }
            Some(MappedCertificate { new_id: id, .. }) => {
                // Choice: a stale certificate id map entry (its row is gone) skips the rows like an
                // unmigrated certificate: the evaluation's NOT NULL foreign key cannot be met.
                issues.push(
                    Issue::new(CERTIFICATE, &key, REASON_NOT_IN_TARGET)
                        .with_detail(format!("maps to certificate {id}, which does not exist; status rows {} skipped", row_ids())),
                );
                out.add("certificates_not_migrated", 1);
                out.add("status_rows_not_migrated", group.rows.len() as u64);
                continue;
            }
            None => {
                // Choice: one issue per certificate (not per status row); the detail lists the rows.
                issues.push(Issue::new(CERTIFICATE, &key, REASON_NOT_MIGRATED).with_detail(format!("status rows {} skipped", row_ids())));
                out.add("certificates_not_migrated", 1);
                out.add("status_rows_not_migrated", group.rows.len() as u64);
                continue;
            }
        };
        prepared.push(prepare(group, &target, &mut issues));
    }

    write(ctx, tx, &mut prepared, &mut out).await?;

    out.issues = bulk::merge_issues(issues);
    out.cursor = Some(serde_json::json!({ "after_certificate_id": last_certificate }));
    Ok(out)
}

/// Maps one migrated certificate's status rows.
fn prepare(group: &Group, target: &Target, issues: &mut Vec<Issue>) -> Prepared {
    let key = group.certificate_id;

    // evaluation_date = min(create_time); zero/NULL dates ignored.
    // Choice: an unparsable create_time (e.g. a partial zero date "2019-00-00") is ignored too,
    // with an "invalid date" issue on its row.
    let (mut min, mut zero, mut null, mut invalid) = (None, Vec::new(), Vec::new(), Vec::new());
    for r in &group.rows {
        match mapping::legacy_date(r.create_time.as_deref()) {
            Ok(LegacyDate::Value(v)) => min = Some(min.map_or(v, |m: chrono::NaiveDateTime| m.min(v))),
            Ok(LegacyDate::Zero) => zero.push(r.id.to_string()),
            Ok(LegacyDate::Null) => null.push(r.id.to_string()),
            Err(e) => {
                issues.push(Issue::new(STATUS_ROW, r.id, REASON_INVALID_DATE).with_detail(format!("create_time: {e}")));
                invalid.push(r.id.to_string());
            }
        }
    }
    // Choice: legacy DATETIMEs carry no zone; they are read as UTC (as the certificates step does).
    let date = match min {
        Some(v) => {
            // Choice: zero create_times next to a usable one are ignored, with one issue per
            // certificate naming the rows (a zero date is always logged).
            if !zero.is_empty() {
                issues.push(Issue::new(CERTIFICATE, key, REASON_ZERO_DATE).with_detail(format!("status rows {}", zero.join(", "))));
            }
            v.and_utc()
        }
        None => {
            // Choice (brief): no usable create_time → the certificate's `created`, flagged. The
            // DDL would allow NULL, but created/modified (NOT NULL) need a time anyway, and the
            // certificate's is the best evidence of when the checks ran.
            let why: Vec<String> = [("zero", &zero), ("NULL", &null), ("invalid", &invalid)]
                .into_iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(what, rows)| format!("{what}: status rows {}", rows.join(", ")))
                .collect();
            issues.push(Issue::new(CERTIFICATE, key, REASON_NO_DATE).with_detail(format!(
                    "no usable create_time ({}): evaluation_date set to the certificate's created {}",
                    why.join("; "),
                    target.created.format("%Y-%m-%d %H:%M:%S")
                )));
            target.created
        }
    };

    // Choice: an unknown field_name is reported once per certificate, in one issue whose detail
    // names each distinct unknown field_name with its row count (one issue row per
    // (entity, key, reason), so per-name issues of one certificate would merge anyway).
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let mut coverages: BTreeMap<&'static str, Coverage> = BTreeMap::new();
    let mut codes: BTreeMap<&'static str, Vec<Option<&str>>> = BTreeMap::new();
    for r in &group.rows {
        let field = r.field_name.as_deref().map(str::trim).filter(|f| !f.is_empty());
        let coverage = match field {
            Some(f) => {
                let mapped = mapping::coverage_type(f);
                if !mapped.known {
                    *unknown.entry(f.to_string()).or_default() += 1;
                }
                mapped.value
            }
            None => {
                issues.push(
                    Issue::new(STATUS_ROW, r.id, REASON_NO_FIELD)
                        .with_detail(format!("{}; requirement_name {NO_FIELD_NAME:?}", mapping::OTHER_COVERAGE)),
                );
                mapping::OTHER_COVERAGE
            }
        };
        if r.status_code.as_deref().is_none_or(|c| c.trim().is_empty()) {
            // Choice: a NULL/blank status_code is not COMPLIANT (fail), and flagged: it is a
            // failed check with no evidence of what failed.
            issues.push(Issue::new(STATUS_ROW, r.id, REASON_NO_STATUS_CODE).with_detail("status fail"));
        }
        let name = mapping::fit_text(Some(&requirement_name(field.unwrap_or_default())), REQUIREMENT_NAME_MAX);
        if let Some(from) = name.truncated_from {
            issues.push(
                Issue::new(STATUS_ROW, r.id, REASON_OVERLONG)
                    .with_detail(format!("requirement_name: {from} characters, cut to {REQUIREMENT_NAME_MAX}")),
            );
        }
        // Choice: field_key is the field_name trimmed (blank → NULL), not humanized.
        let field_key = mapping::fit_text(field, FIELD_KEY_MAX);
        if let Some(from) = field_key.truncated_from {
            issues.push(
                Issue::new(STATUS_ROW, r.id, REASON_OVERLONG)
                    .with_detail(format!("field_key: {from} characters, cut to {FIELD_KEY_MAX}")),
            );
        }
        // Choice: coverages and details are stamped with their evaluation's date (created =
        // modified = evaluation_date): the evaluation is one event in DTX 2.0, and the stamps
        // stay stable across reruns.
        let detail = DetailRow {
            id: 0,
            evaluation_coverage_id: 0,
            requirement_name: name.value.unwrap_or_else(|| NO_FIELD_NAME.to_string()),
            status: mapping::evaluation_status([r.status_code.as_deref()]).as_str(),
            // Choice: minimum/actual are trimmed, blank → NULL (TEXT columns, nothing is cut).
            required_value: mapping::fit_text(r.minimum.as_deref(), usize::MAX).value,
            provided_value: mapping::fit_text(r.actual.as_deref(), usize::MAX).value,
            field_key: field_key.value,
            created: date,
            modified: date,
        };
        coverages.entry(coverage).or_default().details.push((r.id, detail));
        codes.entry(coverage).or_default().push(r.status_code.as_deref());
    }
    for (coverage_type, codes) in codes {
        if let Some(c) = coverages.get_mut(coverage_type) {
            c.status = Some(mapping::evaluation_status(codes));
        }
    }
    if !unknown.is_empty() {
        let names: Vec<String> =
            unknown.iter().map(|(n, c)| format!("{n:?} ({c} row{})", if *c == 1 { "" } else { "s" })).collect();
        issues.push(
            Issue::new(CERTIFICATE, key, REASON_UNKNOWN_FIELD)
                .with_detail(format!("{}: {}", names.join(", "), mapping::OTHER_COVERAGE)),
        );
    }

    let status: EvalStatus = mapping::evaluation_status(group.rows.iter().map(|r| r.status_code.as_deref()));
    let row = EvaluationRow {
        id: 0,
        certificate_id: target.id,
        requirements_group_id: target.requirements_group_id,
        status: status.as_str(),
        evaluation_date: date,
        created: date,
        modified: date,
    };
    Prepared { legacy_id: key, row, coverages }
}

/// Writes the chunk's evaluations, coverages and details; removes the stale coverages/details.
async fn write(ctx: &StepContext<'_>, tx: &mut PgConnection, prepared: &mut [Prepared], out: &mut ChunkOutcome) -> Result<(), LoadError> {
    if prepared.is_empty() {
        return Ok(());
    }

    // Evaluations.
    let keys: Vec<String> = prepared.iter().map(|p| p.legacy_id.to_string()).collect();
    let ids = bulk::resolve_ids(tx, EVALUATION_TABLE, EVALUATION_ENTITY, &keys).await?;
    for p in prepared.iter_mut() {
        p.row.id = ids.id(&p.legacy_id.to_string())?;
    }
    let rows: Vec<EvaluationRow> = prepared.iter().map(|p| p.row.clone()).collect();
    bulk::write_rows(tx, EVALUATION_TABLE, &EVALUATION_COLUMNS, &rows, |r| r.id, &ids.present, ctx.now, "evaluations", out).await?;
    book::map_fresh_ids(tx, EVALUATION_ENTITY, ctx.step, &ids.new_pairs).await?;
    // Only an evaluation that existed before this chunk can have coverages and details that
    // are not this chunk's (the foreign keys hold at every commit), so only those are swept for
    // stale rows: none on a first run.
    let evaluation_ids: Vec<i64> = rows.iter().map(|r| r.id).filter(|id| ids.present.contains(id)).collect();

    // Coverages, keyed `<certificate_id>:<coverage_type>`.
    let keys: Vec<String> = prepared.iter().flat_map(|p| p.coverages.keys().map(move |t| format!("{}:{t}", p.legacy_id))).collect();
    let ids = bulk::resolve_ids(tx, COVERAGE_TABLE, COVERAGE_ENTITY, &keys).await?;
    let mut coverage_rows: Vec<CoverageRow> = Vec::new();
    for p in prepared.iter_mut() {
        let evaluation_id = p.row.id;
        let date = p.row.evaluation_date;
        let legacy_id = p.legacy_id;
        for (coverage_type, coverage) in p.coverages.iter_mut() {
            let id = ids.id(&format!("{legacy_id}:{coverage_type}"))?;
            let status = coverage.status.unwrap_or(EvalStatus::Fail).as_str();
            coverage_rows.push(CoverageRow { id, evaluation_id, coverage_type, status, created: date, modified: date });
            for (_, d) in coverage.details.iter_mut() {
                d.evaluation_coverage_id = id;
            }
        }
    }
    bulk::write_rows(tx, COVERAGE_TABLE, &COVERAGE_COLUMNS, &coverage_rows, |r| r.id, &ids.present, ctx.now, "coverages", out).await?;
    book::map_fresh_ids(tx, COVERAGE_ENTITY, ctx.step, &ids.new_pairs).await?;
    let coverage_ids: Vec<i64> = coverage_rows.iter().map(|r| r.id).collect();

    // Details, keyed by certificate_status id. Choice: fresh detail ids follow the status row ids.
    let mut details: Vec<&(u64, DetailRow)> = prepared.iter().flat_map(|p| p.coverages.values().flat_map(|c| &c.details)).collect();
    details.sort_by_key(|(status_id, _)| *status_id);
    let keys: Vec<String> = details.iter().map(|(status_id, _)| status_id.to_string()).collect();
    let ids = bulk::resolve_ids(tx, DETAIL_TABLE, DETAIL_ENTITY, &keys).await?;
    let mut detail_rows: Vec<DetailRow> = Vec::with_capacity(details.len());
    for (status_id, d) in details {
        detail_rows.push(DetailRow { id: ids.id(&status_id.to_string())?, ..d.clone() });
    }
    bulk::write_rows(tx, DETAIL_TABLE, &DETAIL_COLUMNS, &detail_rows, |r| r.id, &ids.present, ctx.now, "details", out).await?;
    book::map_fresh_ids(tx, DETAIL_ENTITY, ctx.step, &ids.new_pairs).await?;
    let detail_ids: Vec<i64> = detail_rows.iter().map(|r| r.id).collect();

    // Stale rows this step made under the chunk's evaluations: details first, then the coverages
    // left without any detail (a coverage someone else filled is kept).
    if evaluation_ids.is_empty() {
        out.add("details_removed", 0);
        out.add("coverages_removed", 0);
        return Ok(());
    }
    let removed: Vec<i64> = sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM docutrax_profiles_evaluationdetail d USING dtx_migration.id_map m, docutrax_profiles_evaluationcoverage c
             WHERE m.entity = $1 AND m.new_id = d.id AND c.id = d.evaluation_coverage_id
               AND c.evaluation_id = ANY($2)
               AND NOT EXISTS (SELECT 1 FROM UNNEST($3::bigint[]) AS k(id) WHERE k.id = d.id)
             RETURNING d.id)
         DELETE FROM dtx_migration.id_map WHERE entity = $1 AND new_id IN (SELECT id FROM gone) RETURNING new_id",
    )
    .bind(DETAIL_ENTITY)
    .bind(&evaluation_ids)
    .bind(&detail_ids)
    .fetch_all(&mut *tx)
    .await?;
    out.add("details_removed", removed.len() as u64);
    let removed: Vec<i64> = sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM docutrax_profiles_evaluationcoverage c USING dtx_migration.id_map m
             WHERE m.entity = $1 AND m.new_id = c.id AND c.evaluation_id = ANY($2)
               AND NOT EXISTS (SELECT 1 FROM UNNEST($3::bigint[]) AS k(id) WHERE k.id = c.id)
               AND NOT EXISTS (SELECT 1 FROM docutrax_profiles_evaluationdetail d WHERE d.evaluation_coverage_id = c.id)
             RETURNING c.id)
         DELETE FROM dtx_migration.id_map WHERE entity = $1 AND new_id IN (SELECT id FROM gone) RETURNING new_id",
    )
    .bind(COVERAGE_ENTITY)
    .bind(&evaluation_ids)
    .bind(&coverage_ids)
    .fetch_all(&mut *tx)
    .await?;
    out.add("coverages_removed", removed.len() as u64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names_split_camel_case_and_keep_acronyms() {
        assert_eq!(requirement_name("GLPolExpDate"), "GL Pol Exp Date");
        assert_eq!(requirement_name("AutoPolExpDate"), "Auto Pol Exp Date");
        assert_eq!(requirement_name("WCPolExpDate"), "WC Pol Exp Date");
        assert_eq!(requirement_name("UMBPolExpDate"), "UMB Pol Exp Date");
        assert_eq!(requirement_name("LLPolExpDate"), "LL Pol Exp Date");
        assert_eq!(requirement_name("PropPolExpDate"), "Prop Pol Exp Date");
        assert_eq!(requirement_name("GLEachOcc2Limit"), "GL Each Occ2 Limit");
        assert_eq!(requirement_name("Auto2Limit"), "Auto2 Limit");
        assert_eq!(requirement_name(" gl_each__occ-limit "), "gl each occ limit");
        assert_eq!(requirement_name("AMBest"), "AM Best");
        assert_eq!(requirement_name("GL"), "GL");
        assert_eq!(requirement_name("x"), "x");
        assert_eq!(requirement_name("  "), NO_FIELD_NAME);
        assert_eq!(requirement_name(""), NO_FIELD_NAME);
    }

    #[test]
    fn the_column_lists_name_every_field_of_the_rows() {
        bulk::assert_columns_match::<EvaluationRow>(&EVALUATION_COLUMNS);
        bulk::assert_columns_match::<CoverageRow>(&COVERAGE_COLUMNS);
        bulk::assert_columns_match::<DetailRow>(&DETAIL_COLUMNS);
    }
}
