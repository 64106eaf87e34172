//! Step 6, `certificates`: every legacy `certificate` row becomes one
//! `docutrax_profiles_certificate` (spec: core/agent/insured/holder field tables, Decisions #2,
//! #3, #5 phase 3, #15, #16), and a certificate with an `override_reason` also gets one
//! `docutrax_profiles_manualoverride` (Decision #11).
//!
//! A chunk reads up to `chunk_rows` legacy certificates after the cursor (keyset on id), maps
//! each one in memory, resolves everything it references with one query per kind (id map for
//! the certificates, their requirements groups and overrides; the groups themselves; the file
//! manifest), then writes with one bulk INSERT and one bulk UPDATE per table ([`super::bulk`]:
//! rows as one JSON array, ids from the identity sequence, updates only where a value differs;
//! its Choices apply here). Fast enough for 200K certificates (one round trip per table per chunk).
//! Choice: `current_evaluation_id` (step 8) and `carrier_a_name`…`carrier_f_naic` (Decision #16,
//! backfilled by Area 5) are never written: NULL at insert, untouched by an update, so a rerun
//! after those steps does not erase their work.
//! Choice: a certificate migrated by an earlier run and skipped now (its mapping went away) is
//! left as it is, with the skip issue; a rerun never deletes certificates.
//! Choice: dropped fields (the spec's drop table: jws_Certificate_ID, OCR fields, review
//! workflow, AMBestRatingOK, WCExempt, proper_*_name, Customer1-3, final_pol_expiration,
//! AuthRepAffirm, replacement_id, reviewer_id) are not read. broker_id ("deferred, Area 9") is
//! not read either: the certificate has no column for it and Area 9 reads the legacy table.

use super::files::{self, ManifestRow};
use super::bulk::{self, RowIssues};
use super::{ChunkOutcome, StepContext};
use crate::loader::book::{self, Issue};
use crate::loader::mapping::{self, InsuredName, LegacyDate};
use crate::loader::runner::LoadError;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

pub const STEP: &str = "certificates";
/// id_map entity of the certificates; legacy key = legacy certificate id.
pub const ENTITY: &str = "certificate";
/// id_map entity of the manual overrides; legacy key = legacy certificate id.
pub const OVERRIDE_ENTITY: &str = "manual_override";
/// id_map entity written by the requirements-groups step; key `<customer_id>:<requirements_id>:<document_set_id>`.
pub const GROUP_ENTITY: &str = "requirements_group";

const CERTIFICATE_TABLE: &str = "docutrax_profiles_certificate";
const OVERRIDE_TABLE: &str = "docutrax_profiles_manualoverride";

/// The VARCHAR widths of the certificate's text columns in target_postgres.sql (`None` = TEXT).
/// Checked against the live schema by the integration test.
pub const CERTIFICATE_TEXT_WIDTHS: [(&str, Option<usize>); 27] = [
    ("cert_number", Some(100)),
    ("ops_desc", None),
    ("auth_rep_name", Some(255)),
    ("agent_name", Some(255)),
    ("agent_title", Some(255)),
    ("agent_contact", None),
    ("agent_address", None),
    ("insured_name", Some(512)),
    ("insured_address1", Some(255)),
    ("insured_address2", Some(255)),
    ("insured_city", Some(100)),
    ("insured_state", Some(50)),
    ("insured_zip", Some(20)),
    ("insured_contact", None),
    ("insured_title", Some(255)),
    ("certificate_holder_name", Some(255)),
    ("certificate_holder_address1", Some(255)),
    ("certificate_holder_address2", Some(255)),
    ("certificate_holder_city", Some(100)),
    ("certificate_holder_state", Some(50)),
    ("certificate_holder_zip", Some(20)),
    ("notes", None),
    ("status", Some(20)),
    ("file", Some(1024)),
    ("original_filename", Some(512)),
    ("content_hash", Some(64)),
    ("file_uid", Some(100)),
];

/// `docutrax_profiles_manualoverride.reason` is TEXT; `coverage_type` is VARCHAR(50).
const OVERRIDE_COVERAGE_TYPE: &str = "General";

/// The certificate columns this step writes, with their type in the JSON record set.
const CERTIFICATE_COLUMNS: [(&str, &str); 34] = [
    ("id", "bigint"),
    ("cert_number", "text"),
    ("expiration_date", "date"),
    ("ops_desc", "text"),
    ("auth_rep_name", "text"),
    ("auth_date", "date"),
    ("agent_name", "text"),
    ("agent_title", "text"),
    ("agent_contact", "text"),
    ("agent_address", "text"),
    ("insured_name", "text"),
    ("insured_address1", "text"),
    ("insured_address2", "text"),
    ("insured_city", "text"),
    ("insured_state", "text"),
    ("insured_zip", "text"),
    ("insured_contact", "text"),
    ("insured_title", "text"),
    ("certificate_holder_name", "text"),
    ("certificate_holder_address1", "text"),
    ("certificate_holder_address2", "text"),
    ("certificate_holder_city", "text"),
    ("certificate_holder_state", "text"),
    ("certificate_holder_zip", "text"),
    ("notes", "text"),
    ("status", "text"),
    ("file", "text"),
    ("original_filename", "text"),
    ("content_hash", "text"),
    ("file_uid", "text"),
    ("requirements_group_id", "bigint"),
    ("created_by_id", "bigint"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

const OVERRIDE_COLUMNS: [(&str, &str); 8] = [
    ("id", "bigint"),
    ("requirements_group_id", "bigint"),
    ("coi_risk_profile_id", "bigint"),
    ("coverage_type", "text"),
    ("reason", "text"),
    ("approved_at", "timestamptz"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

/// One `docutrax_profiles_certificate` row as written (field names = column names).
/// `created`/`modified` are `None` when the legacy row has no usable time: the load time is
/// used at insert, and an update keeps what is stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct CertificateRow {
    id: i64,
    cert_number: Option<String>,
    expiration_date: Option<NaiveDate>,
    ops_desc: Option<String>,
    auth_rep_name: Option<String>,
    auth_date: Option<NaiveDate>,
    agent_name: Option<String>,
    agent_title: Option<String>,
    agent_contact: Option<String>,
    agent_address: Option<String>,
    insured_name: Option<String>,
    insured_address1: Option<String>,
    insured_address2: Option<String>,
    insured_city: Option<String>,
    insured_state: Option<String>,
    insured_zip: Option<String>,
    insured_contact: Option<String>,
    insured_title: Option<String>,
    certificate_holder_name: Option<String>,
    certificate_holder_address1: Option<String>,
    certificate_holder_address2: Option<String>,
    certificate_holder_city: Option<String>,
    certificate_holder_state: Option<String>,
    certificate_holder_zip: Option<String>,
    notes: Option<String>,
    status: &'static str,
    file: Option<String>,
    original_filename: Option<String>,
    content_hash: Option<String>,
    file_uid: Option<String>,
    requirements_group_id: i64,
    created_by_id: Option<i64>,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct OverrideRow {
    id: i64,
    requirements_group_id: i64,
    coi_risk_profile_id: Option<i64>,
    coverage_type: &'static str,
    reason: String,
    approved_at: Option<DateTime<Utc>>,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
}

/// Legacy reference ids read as `CAST(x AS UNSIGNED)`.
const LEGACY_IDS: [&str; 7] = ["id", "customer_id", "vendor_id", "attachment_id", "requirements_id", "document_set_id", "user_id"];
/// Legacy dates read as `CAST(x AS CHAR)`.
const LEGACY_DATES: [&str; 5] = ["create_time", "update_time", "certificate_expiration", "AuthDate", "review_time"];
/// Legacy text read as `CAST(x AS BINARY)`. Dropped columns (spec's drop table) are not read,
/// except `CertRevNo` (kept in notes) and `override_reason`/`review_time` (Decision #11).
const LEGACY_TEXT: [&str; 43] = [
    "CertNo",
    "OpsDesc",
    "AuthRepName",
    "ProdName",
    "ProdTitle",
    "ProdContact",
    "ProdAddr1",
    "ProdAddr2",
    "ProdCity",
    "ProdState",
    "ProdZip",
    "ProdPhone",
    "ProdPhoneExtension",
    "ProdFax",
    "ProdEmail",
    "InsName",
    "InsName1",
    "InsAddr1",
    "InsAddr2",
    "InsCity",
    "InsState",
    "InsZip",
    "InsContact",
    "InsTitle",
    "InsPhone",
    "InsPhoneExtension",
    "InsFax",
    "InsMobilePhone",
    "InsEmail",
    "HolderName",
    "HolderAddr1",
    "HolderAddr2",
    "HolderCity",
    "HolderState",
    "HolderZip",
    "HolderContact",
    "HolderTitle",
    "HolderPhone",
    "HolderFax",
    "HolderEmail",
    "CertRevNo",
    "override_reason",
    "certificate_status",
];

fn legacy_select() -> String {
    let mut cols: Vec<String> = Vec::new();
    cols.extend(LEGACY_IDS.iter().map(|c| format!("CAST({c} AS UNSIGNED) AS {c}")));
    cols.extend(LEGACY_DATES.iter().map(|c| format!("CAST({c} AS CHAR) AS {c}")));
    cols.extend(LEGACY_TEXT.iter().map(|c| format!("CAST({c} AS BINARY) AS {c}")));
    format!("SELECT {} FROM certificate WHERE id > ? ORDER BY id LIMIT ?", cols.join(", "))
}

/// One legacy certificate, decoded (text already valid UTF-8 and NUL-free).
#[derive(Debug, Default)]
struct Legacy {
    id: u64,
    ids: HashMap<&'static str, Option<u64>>,
    dates: HashMap<&'static str, Option<String>>,
    text: HashMap<&'static str, Option<String>>,
}

impl Legacy {
    /// A reference id; Choice: 0 is read as NULL for every reference (legacy uses 0 for
    /// "none", as the validate report does for attachment_id).
    fn id_ref(&self, col: &str) -> Option<u64> {
        self.ids.get(col).copied().flatten().filter(|v| *v != 0)
    }
    fn t(&self, col: &str) -> Option<&str> {
        self.text.get(col).and_then(|v| v.as_deref())
    }
    fn date(&self, col: &str) -> Option<&str> {
        self.dates.get(col).and_then(|v| v.as_deref())
    }
}

/// Reads one legacy row (its issues keyed by its id).
fn decode_row(row: &sqlx::mysql::MySqlRow, issues: &mut RowIssues) -> Result<Legacy, sqlx::Error> {
    let mut legacy = Legacy { id: row.try_get::<u64, _>("id")?, ..Default::default() };
    issues.key = legacy.id.to_string();
    for col in LEGACY_IDS {
        legacy.ids.insert(col, row.try_get::<Option<u64>, _>(col)?);
    }
    for col in LEGACY_DATES {
        legacy.dates.insert(col, row.try_get::<Option<String>, _>(col)?);
    }
    for col in LEGACY_TEXT {
        legacy.text.insert(col, issues.text(col, row.try_get(col)?));
    }
    Ok(legacy)
}

/// The requirements-groups step's key, so both steps agree by construction.
pub fn group_key(customer_id: u64, requirements_id: Option<u64>, document_set_id: Option<u64>) -> String {
    super::requirements_groups::group_key(Some(customer_id), requirements_id, document_set_id)
}

/// Choice: CertRevNo ("store in notes if needed") is kept as a line "[Migrated] Certificate
/// revision: N" after the holder extras (the "[Migrated] …" style of Decision #9's notes), so
/// the revision stays visible without a column of its own.
pub fn certificate_notes(holder_notes: Option<String>, cert_rev_no: Option<&str>) -> Option<String> {
    let revision = cert_rev_no.map(str::trim).filter(|v| !v.is_empty()).map(|v| format!("[Migrated] Certificate revision: {v}"));
    match (holder_notes, revision) {
        (Some(h), Some(r)) => Some(format!("{h}\n{r}")),
        (h, r) => h.or(r),
    }
}

/// Choice: legacy DATETIMEs carry no zone; they are read as UTC.
fn utc(v: chrono::NaiveDateTime) -> DateTime<Utc> {
    v.and_utc()
}

/// A certificate ready to write, with its override (if any).
struct Prepared {
    legacy_id: u64,
    row: CertificateRow,
    override_reason: Option<String>,
    approved_at: Option<DateTime<Utc>>,
    /// The group's coi_risk_profile_id (NULL until Area 6 fills it in), for the override.
    coi_risk_profile_id: Option<i64>,
}

/// The requirements groups of a chunk's certificates.
#[derive(Default)]
struct Groups {
    /// key → (group id, coi_risk_profile_id), for the groups that exist.
    found: HashMap<String, (i64, Option<i64>)>,
    /// key → group id, for id map entries whose group row is gone.
    stale: HashMap<String, i64>,
}

/// Maps one legacy certificate, or returns None when it must be skipped (the issues say why).
fn prepare(
    ctx: &StepContext<'_>,
    legacy: &Legacy,
    groups: &Groups,
    manifest: &HashMap<i64, Vec<ManifestRow>>,
    users_absent: bool,
    issues: &mut RowIssues,
    out: &mut ChunkOutcome,
) -> Option<Prepared> {
    // Skip rules (error table): customer without account, vendor without record.
    let mut skip = false;
    let customer = legacy.id_ref("customer_id");
    match customer.map(|c| (c, ctx.mappings.accounts.get(&c))) {
        None => {
            issues.add("customer not mapped", "customer_id NULL");
            skip = true;
        }
        Some((c, None)) => {
            issues.add("customer not mapped", format!("customer_id {c}"));
            skip = true;
        }
        // Choice: an account mapping that is not a number is unusable like a missing one (the
        // requirements-groups step cannot have made a group for it): skip + its own issue.
        Some((c, Some(account))) if account.trim().parse::<i64>().is_err() => {
            issues.add("customer account not numeric", format!("customer_id {c} maps to account {account:?}"));
            skip = true;
        }
        Some(_) => {}
    }
    match legacy.id_ref("vendor_id") {
        None => {
            issues.add("vendor not mapped", "vendor_id NULL");
            skip = true;
        }
        Some(v) if !ctx.mappings.records.contains_key(&v) => {
            issues.add("vendor not mapped", format!("vendor_id {v}"));
            skip = true;
        }
        Some(_) => {}
    }
    // Choice: the group is only looked for when customer and vendor are mapped, so a skipped
    // certificate carries only the issues that caused the skip.
    let customer = customer.filter(|_| !skip)?;
    let key = group_key(customer, legacy.id_ref("requirements_id"), legacy.id_ref("document_set_id"));
    let Some(&(group_id, coi_risk_profile_id)) = groups.found.get(&key) else {
        let detail = match groups.stale.get(&key) {
            Some(id) => format!("key {key} maps to group {id}, which does not exist"),
            None => format!("key {key}"),
        };
        issues.add("requirements group not found", detail);
        return None;
    };

    let mut row = CertificateRow { requirements_group_id: group_id, ..Default::default() };

    // Core fields.
    row.cert_number = issues.fit("cert_number", legacy.t("CertNo"));
    row.expiration_date = issues.date("certificate_expiration", legacy.date("certificate_expiration")).map(|d| d.date());
    row.ops_desc = issues.fit("ops_desc", legacy.t("OpsDesc"));
    row.auth_rep_name = issues.fit("auth_rep_name", legacy.t("AuthRepName"));
    row.auth_date = issues.date("AuthDate", legacy.date("AuthDate")).map(|d| d.date());

    // created/modified. Choice: a missing create_time falls back to update_time when there is
    // one (a real legacy time, and created <= modified holds), else to the load time at
    // insert; a missing update_time falls back to created (the brief's rule).
    let create_raw = legacy.date("create_time");
    let create = match mapping::legacy_date(create_raw) {
        Ok(LegacyDate::Value(v)) => Ok(utc(v)),
        Ok(LegacyDate::Null) => Err("NULL".to_string()),
        Ok(LegacyDate::Zero) => Err(format!("zero date {:?}", create_raw.unwrap_or_default())),
        Err(e) => Err(e),
    };
    let update = issues.date("update_time", legacy.date("update_time")).map(utc);
    match create {
        Ok(c) => row.created = Some(c),
        Err(why) => {
            row.created = update;
            let fallback = if update.is_some() { "created set to update_time" } else { "created set to the load time" };
            issues.add("no create_time", format!("create_time {why}: {fallback}"));
        }
    }
    row.modified = update.or(row.created);

    // Producer (agent), Decision #3.
    row.agent_name = issues.fit("agent_name", legacy.t("ProdName"));
    row.agent_title = issues.fit("agent_title", legacy.t("ProdTitle"));
    let address = mapping::agent_address(
        legacy.t("ProdAddr1"),
        legacy.t("ProdAddr2"),
        legacy.t("ProdCity"),
        legacy.t("ProdState"),
        legacy.t("ProdZip"),
    );
    row.agent_address = issues.fit("agent_address", address.as_deref());
    let contact = mapping::agent_contact(
        legacy.t("ProdContact"),
        legacy.t("ProdPhone"),
        legacy.t("ProdPhoneExtension"),
        legacy.t("ProdFax"),
        legacy.t("ProdEmail"),
    );
    row.agent_contact = issues.fit("agent_contact", contact.as_deref());

    // Insured, Decisions #3 and #15.
    let name = mapping::insured_name(legacy.t("InsName"), legacy.t("InsName1"));
    match &name {
        InsuredName::Combined(_) => issues.add(
            "InsName and InsName1 differ",
            format!("InsName: {:?} | InsName1: {:?}", legacy.t("InsName").unwrap_or_default().trim(), legacy.t("InsName1").unwrap_or_default().trim()),
        ),
        InsuredName::Missing => issues.add("no insured name", "InsName and InsName1 are empty"),
        InsuredName::Single(_) => {}
    }
    row.insured_name = issues.fit("insured_name", name.value());
    row.insured_address1 = issues.fit("insured_address1", legacy.t("InsAddr1"));
    row.insured_address2 = issues.fit("insured_address2", legacy.t("InsAddr2"));
    row.insured_city = issues.fit("insured_city", legacy.t("InsCity"));
    row.insured_state = issues.fit("insured_state", legacy.t("InsState"));
    row.insured_zip = issues.fit("insured_zip", legacy.t("InsZip"));
    row.insured_title = issues.fit("insured_title", legacy.t("InsTitle"));
    let contact = mapping::insured_contact(
        legacy.t("InsContact"),
        legacy.t("InsPhone"),
        legacy.t("InsPhoneExtension"),
        legacy.t("InsFax"),
        legacy.t("InsMobilePhone"),
        legacy.t("InsEmail"),
    );
    row.insured_contact = issues.fit("insured_contact", contact.as_deref());

    // Certificate holder; extras (and CertRevNo) into notes.
    row.certificate_holder_name = issues.fit("certificate_holder_name", legacy.t("HolderName"));
    row.certificate_holder_address1 = issues.fit("certificate_holder_address1", legacy.t("HolderAddr1"));
    row.certificate_holder_address2 = issues.fit("certificate_holder_address2", legacy.t("HolderAddr2"));
    row.certificate_holder_city = issues.fit("certificate_holder_city", legacy.t("HolderCity"));
    row.certificate_holder_state = issues.fit("certificate_holder_state", legacy.t("HolderState"));
    row.certificate_holder_zip = issues.fit("certificate_holder_zip", legacy.t("HolderZip"));
    let holder = mapping::holder_notes(
        legacy.t("HolderContact"),
        legacy.t("HolderTitle"),
        legacy.t("HolderPhone"),
        legacy.t("HolderFax"),
        legacy.t("HolderEmail"),
    );
    let notes = certificate_notes(holder, legacy.t("CertRevNo"));
    row.notes = issues.fit("notes", notes.as_deref());

    // Status, Decision #2.
    let status = mapping::certificate_status(legacy.t("certificate_status"));
    if !status.known {
        let value = legacy.t("certificate_status").map_or("NULL".to_string(), |v| format!("{v:?}"));
        issues.add("unknown certificate_status", format!("{value}: set to manual_review"));
    }
    row.status = status.value.as_str();

    // created_by via the users mapping. Choice: user_id NULL/0 is no user (no issue); when the
    // users mapping file is absent, one issue per chunk says so instead of one per row.
    if let Some(user) = legacy.id_ref("user_id") {
        match ctx.mappings.users.get(&user) {
            Some(id) => row.created_by_id = Some(*id),
            None if users_absent => {}
            None => issues.add("user not mapped", format!("user_id {user}: created_by left NULL")),
        }
    }

    // File fields, Decision #5 phase 3.
    if let Some(attachment) = legacy.id_ref("attachment_id") {
        match files::pick_file(attachment, manifest.get(&(attachment as i64))) {
            Ok(file) => {
                // Choice: the key, hash and uid are references that a cut would break: if one is
                // longer than its column the file is not linked (issue) rather than truncated.
                let too_long = [("file", &file.s3_key, 1024), ("content_hash", &file.content_hash, 64), ("file_uid", &file.file_uid, 100)]
                    .into_iter()
                    .filter(|(_, v, w)| v.as_deref().is_some_and(|v| v.chars().count() > *w))
                    .map(|(c, _, w)| format!("{c} longer than {w}"))
                    .collect::<Vec<_>>();
                if too_long.is_empty() {
                    row.file = file.s3_key.as_deref().map(|v| v.trim().to_string());
                    row.original_filename = issues.fit("original_filename", file.original_filename.as_deref());
                    row.content_hash = file.content_hash.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
                    row.file_uid = file.file_uid.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
                    out.add("files_linked", 1);
                } else {
                    issues.add("attachment file fields too long", format!("{}: {}", file.source_key, too_long.join(", ")));
                    out.add("files_not_migrated", 1);
                }
            }
            Err(detail) => {
                issues.add("attachment file not migrated", detail);
                out.add("files_not_migrated", 1);
            }
        }
    }

    // ManualOverride, Decision #11: a non-blank override_reason.
    // Choice: the reason is stored trimmed; a blank (whitespace-only) reason is no override.
    let override_reason = mapping::fit_text(legacy.t("override_reason"), usize::MAX).value;
    let approved_at = match override_reason {
        Some(_) => issues.date("review_time", legacy.date("review_time")).map(utc),
        None => None,
    };
    Some(Prepared { legacy_id: legacy.id, row, override_reason, approved_at, coi_risk_profile_id })
}

/// Processes the certificates after `cursor` (`{"after_id": N}`).
pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let after_id = super::after_id(ctx.step, cursor.as_ref())?;
    let rows = bulk::legacy_chunk(ctx, &legacy_select(), after_id, |last| last.try_get::<u64, _>("id")).await?;
    let mut out = ChunkOutcome::default();
    if rows.is_empty() {
        return Ok(out);
    }
    let mut all_issues: Vec<Issue> = Vec::new();

    // Decode.
    let mut legacy_rows: Vec<(Legacy, RowIssues)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut issues = RowIssues::new(ENTITY, "", &CERTIFICATE_TEXT_WIDTHS);
        let legacy = decode_row(row, &mut issues).map_err(bulk::legacy)?;
        legacy_rows.push((legacy, issues));
    }
    let last_id = legacy_rows.last().map_or(after_id, |(l, _)| l.id);
    out.add("certificates_read", legacy_rows.len() as u64);

    // Requirements groups of the chunk: id map, then the group rows themselves.
    // Choice: a stale id map entry whose group row is gone counts as "not found" (skip), since
    // the certificate's NOT NULL foreign key could not be satisfied.
    let keys: Vec<String> = legacy_rows
        .iter()
        .filter_map(|(l, _)| l.id_ref("customer_id").map(|c| group_key(c, l.id_ref("requirements_id"), l.id_ref("document_set_id"))))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let group_ids = bulk::mapped_ids(tx, GROUP_ENTITY, &keys).await?;
    let ids: Vec<i64> = group_ids.values().copied().collect();
    let group_rows: Vec<(i64, Option<i64>)> = if ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as("SELECT id, coi_risk_profile_id FROM docutrax_hierarchy_requirementsgroup WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
    };
    let group_rows: HashMap<i64, Option<i64>> = group_rows.into_iter().collect();
    let mut groups = Groups::default();
    for (key, id) in group_ids {
        match group_rows.get(&id) {
            Some(coi) => {
                groups.found.insert(key, (id, *coi));
            }
            None => {
                groups.stale.insert(key, id);
            }
        }
    }

    // The file manifest rows of the chunk's attachments, by attachment id, lowest source_key first.
    let attachments: Vec<i64> = legacy_rows.iter().filter_map(|(l, _)| l.id_ref("attachment_id")).map(|a| a as i64).collect();
    let manifest = files::manifest_rows_for_attachments(tx, &attachments).await?;

    let users_absent = ctx.mappings.absent.contains(&crate::mappings::USERS_FILE);
    if users_absent && legacy_rows.iter().any(|(l, _)| l.id_ref("user_id").is_some()) {
        all_issues.push(
            Issue::new(ENTITY, "", "users mapping absent")
                .with_detail(format!("{} not found: created_by left NULL", crate::mappings::USERS_FILE)),
        );
    }

    // Map.
    let mut prepared: Vec<Prepared> = Vec::new();
    for (legacy, mut issues) in legacy_rows {
        match prepare(ctx, &legacy, &groups, &manifest, users_absent, &mut issues, &mut out) {
            Some(p) => prepared.push(p),
            None => out.add("certificates_skipped", 1),
        }
        all_issues.extend(issues.issues);
    }

    // Certificates: update the mapped rows that exist, insert the rest (a mapped id whose row
    // is gone is re-inserted under that same id).
    let keys: Vec<String> = prepared.iter().map(|p| p.legacy_id.to_string()).collect();
    let ids = bulk::resolve_ids(tx, CERTIFICATE_TABLE, ENTITY, &keys).await?;
    for (p, key) in prepared.iter_mut().zip(&keys) {
        p.row.id = ids.id(key)?;
    }
    let rows: Vec<CertificateRow> = prepared.iter().map(|p| p.row.clone()).collect();
    bulk::write_rows(tx, CERTIFICATE_TABLE, &CERTIFICATE_COLUMNS, &rows, |r| r.id, &ids.present, ctx.now, "certificates", &mut out).await?;
    book::map_fresh_ids(tx, ENTITY, ctx.step, &ids.new_pairs).await?;

    // Manual overrides (Decision #11), keyed by legacy certificate id.
    let (with_reason, without): (Vec<&Prepared>, Vec<&Prepared>) = prepared.iter().partition(|p| p.override_reason.is_some());
    let keys: Vec<String> = with_reason.iter().map(|p| p.legacy_id.to_string()).collect();
    let ids = bulk::resolve_ids(tx, OVERRIDE_TABLE, OVERRIDE_ENTITY, &keys).await?;
    let mut rows: Vec<OverrideRow> = Vec::with_capacity(with_reason.len());
    for (p, key) in with_reason.iter().zip(&keys) {
        rows.push(OverrideRow {
            id: ids.id(key)?,
            requirements_group_id: p.row.requirements_group_id,
            coi_risk_profile_id: p.coi_risk_profile_id,
            coverage_type: OVERRIDE_COVERAGE_TYPE,
            reason: p.override_reason.clone().unwrap_or_default(),
            approved_at: p.approved_at,
            created: p.row.created,
            modified: p.row.modified,
        });
    }
    bulk::write_rows(tx, OVERRIDE_TABLE, &OVERRIDE_COLUMNS, &rows, |r| r.id, &ids.present, ctx.now, "manual_overrides", &mut out).await?;
    book::map_fresh_ids(tx, OVERRIDE_ENTITY, ctx.step, &ids.new_pairs).await?;

    // Choice: an override this step made for a certificate whose legacy override_reason is now
    // blank is removed (row and id map entry), so a rerun converges on the legacy data.
    let keys: Vec<String> = without.iter().map(|p| p.legacy_id.to_string()).collect();
    let stale: Vec<(String, i64)> = bulk::mapped_ids(tx, OVERRIDE_ENTITY, &keys).await?.into_iter().collect();
    if !stale.is_empty() {
        let ids: Vec<i64> = stale.iter().map(|(_, id)| *id).collect();
        let keys: Vec<String> = stale.iter().map(|(k, _)| k.clone()).collect();
        let removed = sqlx::query(&format!("DELETE FROM {OVERRIDE_TABLE} WHERE id = ANY($1)")).bind(&ids).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM dtx_migration.id_map WHERE entity = $1 AND legacy_key = ANY($2)")
            .bind(OVERRIDE_ENTITY)
            .bind(&keys)
            .execute(&mut *tx)
            .await?;
        out.add("manual_overrides_removed", removed.rows_affected());
    }

    out.issues = bulk::merge_issues(all_issues);
    out.cursor = Some(serde_json::json!({ "after_id": last_id }));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_names_every_field_of_the_rows() {
        bulk::assert_columns_match::<CertificateRow>(&CERTIFICATE_COLUMNS);
        bulk::assert_columns_match::<OverrideRow>(&OVERRIDE_COLUMNS);
        for (c, _) in CERTIFICATE_TEXT_WIDTHS {
            assert!(CERTIFICATE_COLUMNS.iter().any(|(n, t)| *n == c && *t == "text"), "{c}");
        }
    }

    #[test]
    fn group_keys_leave_null_and_zero_parts_empty() {
        assert_eq!(group_key(12, Some(7), None), "12:7:");
        assert_eq!(group_key(12, Some(0), Some(3)), "12::3");
        assert_eq!(group_key(1, None, None), "1::");
    }

    #[test]
    fn notes_join_holder_extras_and_revision() {
        assert_eq!(certificate_notes(Some("[Migrated Holder Contact] Email: a".into()), Some(" 3 ")).as_deref(), Some("[Migrated Holder Contact] Email: a\n[Migrated] Certificate revision: 3"));
        assert_eq!(certificate_notes(None, Some("2")).as_deref(), Some("[Migrated] Certificate revision: 2"));
        assert_eq!(certificate_notes(None, Some("  ")), None);
        assert_eq!(certificate_notes(Some("x".into()), None).as_deref(), Some("x"));
    }
}
