//! Step 14 `verify`: the spec's validation of the loaded target. It reads only (the legacy
//! database, the target, the bookkeeping and the file bucket) and answers with four checks,
//! each passed or failed with the offending keys (the first [`SHOWN`] and the total):
//!
//! 1. `counts`: per entity, every legacy row is either migrated (an id map entry whose target
//!    row exists) or skipped with a logged issue whose reason means "skipped"; nothing else.
//! 2. `references`: every certificate_id / document_id the other legacy tables use is in the id
//!    map, or explained by an issue (the referenced row was skipped, or the referencing row was
//!    logged as an orphan).
//! 3. `foreign_keys`: every id map entry names an existing row, every foreign key column of the
//!    loader's rows names an existing row, and the links between mapped rows agree (an
//!    evaluation belongs to the certificate of its own legacy key, ...).
//! 4. `files`: every file field of the migrated certificates and documents names an object in
//!    the file bucket whose stored SHA-256 matches the row's content_hash (the file move's own
//!    check, `crate::verify::verify_stored`, over the target's rows).
//!
//! A failed check is not an error: the response has `done = true` and `checks_failed > 0` (the
//! CLI exits non-zero on it) and `verification_report.txt` says what failed. An error means the
//! checks could not be made (a database or the bucket unreachable, no bookkeeping schema).
//!
//! Choice: "migrated" means an id map entry whose target row still exists; an entry whose row is
//! gone counts as not migrated in `counts` and is named again by `foreign_keys`.
//! Choice: a legacy row that is migrated is counted as migrated even when an earlier run left a
//! skip issue for it (issues are never deleted; the id map says what holds now).
//! Choice: a skip is explained by an issue on the row's own entity and key whose reason is one
//! of the skip reasons its step logs (listed below, next to each entity) or ends in
//! "(skipped)" (the convention of the newer steps); other issues (flags on migrated rows) never
//! explain a missing row.
//! Choice: the status rows of a certificate that was not migrated are explained by the
//! evaluations step's certificate-level issue ("certificate not migrated" / "migrated
//! certificate not found"), orphan status rows by its per-row issue.
//! Choice: a reference (NULL and 0 mean none) to a legacy row that does not exist is a failure
//! unless the step that reads the referencing table logged that row (certificate_status,
//! document_requirements, document_status): attachment and repo_file rows naming a certificate
//! or document that does not exist are reported, since nothing links their files.
//! Choice: the foreign keys and the files are checked on the loader's rows only (those in the
//! id map): rows DTX 2.0 made itself are not this migration's to verify.
//! Choice: a file field whose key is no stored row of the imported file manifest fails without
//! a bucket lookup: the manifest's size is part of the file move's check, and the loader only
//! links stored manifest rows. Each distinct key is looked up once (16 at a time).
//! Choice: with no file bucket configured the `files` check fails ("no file bucket configured"),
//! even when no row has a file: an unverified run must not read as a verified one.

use super::runner::{LoadError, LoadResponse, Loader, Step};
use super::steps::{
    audit_history, certificates, doc_requirements, document_risk_profiles as profiles, document_types as types, documents, evaluations, fulfillments,
    requirements_groups as groups,
};
use crate::error::ConfigError;
use crate::legacy::LegacyError;
use crate::manifest::ManifestRecord;
use crate::model::FileStatus;
use serde::Serialize;
use sqlx::{MySqlPool, PgPool, Row};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The report this step writes (through `Loader::reports`).
pub const REPORT_FILE: &str = "verification_report.txt";
pub const DRY_RUN_REPORT_FILE: &str = "verification_report_dry_run.txt";
/// Offending keys listed per check (the total is always given).
pub const SHOWN: usize = 20;

pub const CHECK_COUNTS: &str = "counts";
pub const CHECK_REFERENCES: &str = "references";
pub const CHECK_FOREIGN_KEYS: &str = "foreign_keys";
pub const CHECK_FILES: &str = "files";

/// What `files` says when the loader has no bucket to look in.
pub const NO_BUCKET: &str = "no file bucket configured";

/// The skip reasons of the certificates step (entity `certificate`, key = legacy id).
pub const CERTIFICATE_SKIPS: [&str; 4] = ["customer not mapped", "customer account not numeric", "vendor not mapped", "requirements group not found"];
/// The skip reasons of the requirements-groups step (entity `requirements_group`, key = combination).
pub const GROUP_SKIPS: [&str; 3] = ["customer without account mapping", "account id not numeric", "account not found in target"];
/// The skip reasons of the document-risk-profiles step (entity `document_set`).
pub const SET_SKIPS: [&str; 3] = [profiles::REASON_NO_CUSTOMER, profiles::REASON_ACCOUNT_NOT_NUMERIC, profiles::REASON_ACCOUNT_MISSING];
/// The skip reasons of the document-types step (entity `document_library`).
pub const LIBRARY_SKIPS: [&str; 1] = [types::REASON_NO_NAME];
/// The skip reasons of the documents step (entity `document`, key = legacy id).
pub const DOCUMENT_SKIPS: [&str; 5] = [
    documents::REASON_NO_CUSTOMER,
    documents::REASON_ACCOUNT_NOT_NUMERIC,
    documents::REASON_ACCOUNT_MISSING,
    documents::REASON_NO_VENDOR,
    documents::REASON_RECORD_MISSING,
];
/// The evaluations step's certificate-level reasons: the certificate's status rows were skipped.
pub const STATUS_ROWS_SKIPPED: [&str; 2] = [evaluations::REASON_NOT_MIGRATED, evaluations::REASON_NOT_IN_TARGET];

/// The id map entity of the migrated documents (legacy key = document id).
pub const DOCUMENT_ENTITY: &str = documents::ENTITY;

/// Every id map entity and the table its new ids are rows of.
pub const ENTITY_TABLES: [(&str, &str); 15] = [
    (types::ENTITY_TYPE, "docutrax_profiles_documenttype"),
    (types::ENTITY_LIBRARY, "docutrax_profiles_documenttype"),
    (profiles::ENTITY_SET, "docutrax_profiles_documentriskprofile"),
    (profiles::ENTITY_PROFILE_TYPE, "docutrax_profiles_documentriskprofiledocumenttype"),
    (groups::GROUP_ENTITY, "docutrax_hierarchy_requirementsgroup"),
    (groups::MEMBER_ENTITY, "docutrax_hierarchy_requirementsgroupmember"),
    (certificates::ENTITY, "docutrax_profiles_certificate"),
    (certificates::OVERRIDE_ENTITY, "docutrax_profiles_manualoverride"),
    (evaluations::EVALUATION_ENTITY, "docutrax_profiles_evaluation"),
    (evaluations::COVERAGE_ENTITY, "docutrax_profiles_evaluationcoverage"),
    (evaluations::DETAIL_ENTITY, "docutrax_profiles_evaluationdetail"),
    (DOCUMENT_ENTITY, "docutrax_profiles_document"),
    (doc_requirements::ENTITY, doc_requirements::TABLE),
    (fulfillments::ENTITY, fulfillments::TABLE),
    (audit_history::ENTITY, audit_history::TABLE),
];

/// The foreign key columns the loader writes: (id map entity of the rows, column, referenced table).
pub const FOREIGN_KEYS: [(&str, &str, &str); 22] = [
    (profiles::ENTITY_SET, "account_id", "docutrax_accounts_account"),
    (profiles::ENTITY_PROFILE_TYPE, "document_risk_profile_id", "docutrax_profiles_documentriskprofile"),
    (profiles::ENTITY_PROFILE_TYPE, "document_type_id", "docutrax_profiles_documenttype"),
    (groups::GROUP_ENTITY, "account_id", "docutrax_accounts_account"),
    (groups::GROUP_ENTITY, "coi_risk_profile_id", "docutrax_profiles_coiriskprofile"),
    (groups::GROUP_ENTITY, "document_risk_profile_id", "docutrax_profiles_documentriskprofile"),
    (groups::MEMBER_ENTITY, "requirements_group_id", "docutrax_hierarchy_requirementsgroup"),
    (groups::MEMBER_ENTITY, "assignment_id", "docutrax_records_assignment"),
    (certificates::ENTITY, "requirements_group_id", "docutrax_hierarchy_requirementsgroup"),
    (certificates::ENTITY, "current_evaluation_id", "docutrax_profiles_evaluation"),
    (certificates::ENTITY, "created_by_id", "docutrax_users_user"),
    (certificates::OVERRIDE_ENTITY, "requirements_group_id", "docutrax_hierarchy_requirementsgroup"),
    (certificates::OVERRIDE_ENTITY, "coi_risk_profile_id", "docutrax_profiles_coiriskprofile"),
    (evaluations::EVALUATION_ENTITY, "certificate_id", "docutrax_profiles_certificate"),
    (evaluations::EVALUATION_ENTITY, "requirements_group_id", "docutrax_hierarchy_requirementsgroup"),
    (evaluations::COVERAGE_ENTITY, "evaluation_id", "docutrax_profiles_evaluation"),
    (evaluations::DETAIL_ENTITY, "evaluation_coverage_id", "docutrax_profiles_evaluationcoverage"),
    (DOCUMENT_ENTITY, "uploaded_by_id", "docutrax_records_record"),
    (DOCUMENT_ENTITY, "created_by_id", "docutrax_users_user"),
    (DOCUMENT_ENTITY, "account_id", "docutrax_accounts_account"),
    (doc_requirements::ENTITY, "requirements_group_id", "docutrax_hierarchy_requirementsgroup"),
    (doc_requirements::ENTITY, "document_type_id", "docutrax_profiles_documenttype"),
];

/// Foreign keys of the fulfillments (listed apart: the array above is long enough to read).
const FULFILLMENT_KEYS: [(&str, &str, &str); 2] = [
    (fulfillments::ENTITY, "document_id", "docutrax_profiles_document"),
    (fulfillments::ENTITY, "doc_requirement_id", "docutrax_profiles_docrequirement"),
];

/// Links between mapped rows that must agree, beyond existing: (what, SQL returning the offender
/// text and the total, `LIMIT $1`).
const LINKS: [(&str, &str); 4] = [
    (
        "evaluation -> the certificate of its own legacy certificate",
        "SELECT format('evaluation %s (row %s): certificate_id %s, the id map says certificate %s',
                       m.legacy_key, e.id, e.certificate_id, COALESCE(c.new_id::text, 'none')),
                COUNT(*) OVER ()
         FROM dtx_migration.id_map m JOIN docutrax_profiles_evaluation e ON e.id = m.new_id
         LEFT JOIN dtx_migration.id_map c ON c.entity = 'certificate' AND c.legacy_key = m.legacy_key
         WHERE m.entity = 'evaluation' AND c.new_id IS DISTINCT FROM e.certificate_id ORDER BY e.id LIMIT $1",
    ),
    (
        "evaluation -> its certificate's requirements group",
        "SELECT format('evaluation %s (row %s): requirements_group_id %s, its certificate %s has %s',
                       m.legacy_key, e.id, e.requirements_group_id, c.id, c.requirements_group_id),
                COUNT(*) OVER ()
         FROM dtx_migration.id_map m JOIN docutrax_profiles_evaluation e ON e.id = m.new_id
         JOIN docutrax_profiles_certificate c ON c.id = e.certificate_id
         WHERE m.entity = 'evaluation' AND c.requirements_group_id <> e.requirements_group_id ORDER BY e.id LIMIT $1",
    ),
    (
        "certificate.current_evaluation -> an evaluation of that certificate",
        "SELECT format('certificate %s (row %s): current_evaluation_id %s belongs to certificate %s', m.legacy_key, c.id, e.id, e.certificate_id),
                COUNT(*) OVER ()
         FROM dtx_migration.id_map m JOIN docutrax_profiles_certificate c ON c.id = m.new_id
         JOIN docutrax_profiles_evaluation e ON e.id = c.current_evaluation_id
         WHERE m.entity = 'certificate' AND e.certificate_id <> c.id ORDER BY c.id LIMIT $1",
    ),
    (
        "evaluation_coverage -> the evaluation of its legacy certificate",
        "SELECT format('evaluation_coverage %s (row %s): evaluation_id %s, the id map says evaluation %s',
                       m.legacy_key, v.id, v.evaluation_id, COALESCE(e.new_id::text, 'none')),
                COUNT(*) OVER ()
         FROM dtx_migration.id_map m JOIN docutrax_profiles_evaluationcoverage v ON v.id = m.new_id
         LEFT JOIN dtx_migration.id_map e ON e.entity = 'evaluation' AND e.legacy_key = split_part(m.legacy_key, ':', 1)
         WHERE m.entity = 'evaluation_coverage' AND e.new_id IS DISTINCT FROM v.evaluation_id ORDER BY v.id LIMIT $1",
    ),
];

/// One check's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// What holds when the check passes.
    pub rule: &'static str,
    pub passed: bool,
    /// Items looked at (legacy rows, references, id map entries, file fields).
    pub checked: u64,
    /// Figures behind the verdict, one line each.
    pub summary: Vec<String>,
    /// Offending items in all.
    pub offending: u64,
    /// The first [`SHOWN`] of them.
    pub offenders: Vec<String>,
    /// A failure that names no single item (e.g. [`NO_BUCKET`]).
    pub failure: Option<String>,
}

impl Check {
    fn new(name: &'static str, rule: &'static str) -> Self {
        Self { name, rule, ..Default::default() }
    }

    fn offend(&mut self, what: String) {
        self.offending += 1;
        if self.offenders.len() < SHOWN {
            self.offenders.push(what);
        }
    }

    /// Adds `total` offenders of which `shown` are the first ones.
    fn offend_many(&mut self, shown: Vec<String>, total: u64) {
        self.offending += total;
        let room = SHOWN.saturating_sub(self.offenders.len());
        self.offenders.extend(shown.into_iter().take(room));
    }

    fn finish(mut self) -> Self {
        self.passed = self.offending == 0 && self.failure.is_none();
        self
    }
}

/// Every check, and the figures of the response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub checks: Vec<Check>,
    /// Per-entity figures of `counts` (`<entity>_legacy`, `_migrated`, `_skipped`, `_unexplained`).
    pub figures: BTreeMap<String, u64>,
}

impl Verification {
    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The response's counts: `checks`, `checks_failed`, and per check `<name>_failed` (0/1),
    /// `<name>_checked`, `<name>_offending`, then the per-entity figures.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts = self.figures.clone();
        counts.insert("checks".into(), self.checks.len() as u64);
        counts.insert("checks_failed".into(), self.failed().len() as u64);
        for c in &self.checks {
            counts.insert(format!("{}_failed", c.name), u64::from(!c.passed));
            counts.insert(format!("{}_checked", c.name), c.checked);
            counts.insert(format!("{}_offending", c.name), c.offending);
        }
        counts
    }

    pub fn render_text(&self) -> String {
        let mut o = String::new();
        o.push_str("=== DTX 1.0 Certificates & Documents Migration - Verification ===\n");
        let failed = self.failed();
        if failed.is_empty() {
            o.push_str(&format!("Result: PASSED ({} checks)\n", self.checks.len()));
        } else {
            let names: Vec<&str> = failed.iter().map(|c| c.name).collect();
            o.push_str(&format!("Result: FAILED ({} of {} checks failed: {})\n", failed.len(), self.checks.len(), names.join(", ")));
        }
        for c in &self.checks {
            o.push_str(&format!("\n[{}] {}: {}\n", if c.passed { "PASS" } else { "FAIL" }, c.name, c.rule));
            o.push_str(&format!("  checked: {}\n", c.checked));
            for line in &c.summary {
                o.push_str(&format!("  {line}\n"));
            }
            if let Some(f) = &c.failure {
                o.push_str(&format!("  failed: {f}\n"));
            }
            if c.offending > 0 {
                o.push_str(&format!("  offending: {} (the first {} listed)\n", c.offending, c.offenders.len()));
                for what in &c.offenders {
                    o.push_str(&format!("    {what}\n"));
                }
            }
        }
        o
    }
}

/// Runs the checks, writes `verification_report.txt` (and `migration_report.txt` again, with
/// the result), and answers with the counts. The checks only read; a dry run writes
/// `verification_report_dry_run.txt` and leaves the migration report alone.
pub async fn run(loader: &Loader, dry_run: bool) -> Result<LoadResponse, LoadError> {
    let v = verify(loader).await?;
    let name = if dry_run { DRY_RUN_REPORT_FILE } else { REPORT_FILE };
    let mut outputs = vec![loader.reports.write(name, v.render_text().into_bytes()).await?];
    if !dry_run {
        // migration_report.txt carries "summary statistics and validation results" (spec): the
        // export (step 13) wrote it before this ran, so it is written again with the result.
        outputs.push(super::export::rewrite_report(loader).await?);
    }
    Ok(LoadResponse { step: Step::Verify.name().into(), done: true, cursor: None, counts: v.counts(), outputs })
}

/// Runs every check (reads only).
pub async fn verify(loader: &Loader) -> Result<Verification, LoadError> {
    crate::legacy::validate_schema(&loader.legacy, crate::legacy::LEGACY_DDL, &crate::legacy::LOADER_TABLES).await?;
    let bookkeeping: Option<String> = sqlx::query_scalar("SELECT to_regclass('dtx_migration.id_map')::text").fetch_one(&loader.target).await?;
    if bookkeeping.is_none() {
        return Err(LoadError::Config(ConfigError(
            "verify: the target has no dtx_migration bookkeeping schema; nothing has been loaded to verify".into(),
        )));
    }
    let (legacy, target) = (&loader.legacy, &loader.target);
    let skipped = Skipped {
        certificate: issue_keys(target, certificates::ENTITY, &CERTIFICATE_SKIPS).await?,
        document: issue_keys(target, DOCUMENT_ENTITY, &DOCUMENT_SKIPS).await?,
    };
    let mut v = Verification::default();
    let counts = counts(legacy, target, &skipped, &mut v.figures).await?;
    v.checks.push(counts);
    v.checks.push(references(legacy, target, &skipped).await?);
    v.checks.push(foreign_keys(target).await?);
    v.checks.push(files(loader).await?);
    Ok(v)
}

/// Legacy keys skipped with a logged reason, per referenced entity.
struct Skipped {
    certificate: HashSet<String>,
    document: HashSet<String>,
}

fn legacy_err(e: sqlx::Error) -> LoadError {
    LoadError::Legacy(LegacyError::from(e))
}

/// Keys of `entity` with an issue whose reason is one of `reasons` or ends in "(skipped)".
async fn issue_keys(pool: &PgPool, entity: &str, reasons: &[&str]) -> Result<HashSet<String>, LoadError> {
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT legacy_key FROM dtx_migration.issue WHERE entity = $1 AND (reason = ANY($2) OR reason LIKE '%(skipped)')",
    )
    .bind(entity)
    .bind(reasons)
    .fetch_all(pool)
    .await?;
    Ok(keys.into_iter().collect())
}

/// Keys of `entity` with an issue whose reason is exactly one of `reasons`.
async fn issue_keys_exact(pool: &PgPool, entity: &str, reasons: &[&str]) -> Result<HashSet<String>, LoadError> {
    let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT legacy_key FROM dtx_migration.issue WHERE entity = $1 AND reason = ANY($2)")
        .bind(entity)
        .bind(reasons)
        .fetch_all(pool)
        .await?;
    Ok(keys.into_iter().collect())
}

/// The id map keys of `entity` whose row exists in `table`.
async fn migrated_keys(pool: &PgPool, entity: &str, table: &str) -> Result<HashSet<String>, LoadError> {
    let keys: Vec<String> =
        sqlx::query_scalar(&format!("SELECT m.legacy_key FROM dtx_migration.id_map m JOIN {table} t ON t.id = m.new_id WHERE m.entity = $1"))
            .bind(entity)
            .fetch_all(pool)
            .await?;
    Ok(keys.into_iter().collect())
}

/// Every id map key of `entity`.
async fn mapped_keys(pool: &PgPool, entity: &str) -> Result<HashSet<String>, LoadError> {
    let keys: Vec<String> = sqlx::query_scalar("SELECT legacy_key FROM dtx_migration.id_map WHERE entity = $1").bind(entity).fetch_all(pool).await?;
    Ok(keys.into_iter().collect())
}

async fn legacy_ids(pool: &MySqlPool, table: &str) -> Result<Vec<u64>, LoadError> {
    sqlx::query_scalar(&format!("SELECT CAST(id AS UNSIGNED) FROM {table} ORDER BY id")).fetch_all(pool).await.map_err(legacy_err)
}

fn table_of(entity: &str) -> &'static str {
    ENTITY_TABLES.iter().find(|(e, _)| *e == entity).map(|(_, t)| *t).expect("every entity verify names is in ENTITY_TABLES")
}

/// Tallies one entity: each legacy row is migrated, else explained, else an offender.
fn tally(check: &mut Check, figures: &mut BTreeMap<String, u64>, entity: &str, rows: impl Iterator<Item = (String, bool, bool)>) {
    let (mut legacy, mut migrated, mut skipped, mut unexplained) = (0u64, 0u64, 0u64, 0u64);
    for (key, is_migrated, is_explained) in rows {
        legacy += 1;
        if is_migrated {
            migrated += 1;
        } else if is_explained {
            skipped += 1;
        } else {
            unexplained += 1;
            check.offend(format!("{entity} {key}: neither migrated nor skipped with a logged reason"));
        }
    }
    check.checked += legacy;
    check.summary.push(format!("{entity}: {legacy} legacy = {migrated} migrated + {skipped} skipped with a logged reason (+ {unexplained} unexplained)"));
    for (what, n) in [("legacy", legacy), ("migrated", migrated), ("skipped", skipped), ("unexplained", unexplained)] {
        figures.insert(format!("{entity}_{what}"), n);
    }
}

/// Check 1: legacy rows = migrated + skipped with a logged reason, per entity.
async fn counts(legacy: &MySqlPool, target: &PgPool, skipped: &Skipped, figures: &mut BTreeMap<String, u64>) -> Result<Check, LoadError> {
    let mut check = Check::new(CHECK_COUNTS, "per entity, legacy rows = migrated + skipped with a logged reason");

    // Certificates.
    let ids = legacy_ids(legacy, "certificate").await?;
    let migrated = migrated_keys(target, certificates::ENTITY, table_of(certificates::ENTITY)).await?;
    let rows = ids.iter().map(|id| {
        let key = id.to_string();
        let (m, s) = (migrated.contains(&key), skipped.certificate.contains(&key));
        (key, m, s)
    });
    tally(&mut check, figures, "certificate", rows);

    // Status rows: one evaluation detail each, or skipped with their certificate, or orphans.
    let status: Vec<(u64, Option<u64>)> =
        sqlx::query("SELECT CAST(id AS UNSIGNED) AS id, CAST(certificate_id AS UNSIGNED) AS certificate_id FROM certificate_status ORDER BY id")
            .fetch_all(legacy)
            .await
            .map_err(legacy_err)?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("certificate_id")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(legacy_err)?;
    let details = migrated_keys(target, evaluations::DETAIL_ENTITY, table_of(evaluations::DETAIL_ENTITY)).await?;
    let orphans = issue_keys_exact(target, evaluations::STATUS_ROW, &[evaluations::REASON_ORPHAN]).await?;
    let not_migrated = issue_keys_exact(target, evaluations::CERTIFICATE, &STATUS_ROWS_SKIPPED).await?;
    let rows = status.iter().map(|(id, certificate)| {
        let key = id.to_string();
        let explained = orphans.contains(&key) || certificate.is_some_and(|c| not_migrated.contains(&c.to_string()));
        (key.clone(), details.contains(&key), explained)
    });
    tally(&mut check, figures, evaluations::STATUS_ROW, rows);

    // Documents, libraries, sets: one row each.
    for (table, entity, explained) in [
        ("document", DOCUMENT_ENTITY, None),
        ("document_library", types::ENTITY_LIBRARY, Some(&LIBRARY_SKIPS[..])),
        ("document_set", profiles::ENTITY_SET, Some(&SET_SKIPS[..])),
    ] {
        let ids = legacy_ids(legacy, table).await?;
        let migrated = migrated_keys(target, entity, table_of(entity)).await?;
        let explained = match explained {
            Some(reasons) => issue_keys(target, entity, reasons).await?,
            None => skipped.document.clone(),
        };
        let rows = ids.iter().map(|id| {
            let key = id.to_string();
            let (m, s) = (migrated.contains(&key), explained.contains(&key));
            (key, m, s)
        });
        tally(&mut check, figures, entity, rows);
    }

    // Requirements groups: the legacy (customer, requirements, document set) combinations, as the
    // requirements-groups step reads them (0 and NULL are one "none").
    let combos = sqlx::query(
        "SELECT CAST(cid AS UNSIGNED) AS cid, CAST(rid AS UNSIGNED) AS rid, CAST(dsid AS UNSIGNED) AS dsid
         FROM (SELECT NULLIF(customer_id, 0) AS cid, NULLIF(requirements_id, 0) AS rid, NULLIF(document_set_id, 0) AS dsid FROM certificate
               UNION SELECT NULLIF(customer_id, 0), NULLIF(requirements_id, 0), NULLIF(document_set_id, 0) FROM vendor) c
         ORDER BY cid, rid, dsid",
    )
    .fetch_all(legacy)
    .await
    .map_err(legacy_err)?;
    let keys: Vec<String> = combos
        .iter()
        .map(|r| Ok(groups::group_key(r.try_get("cid")?, r.try_get("rid")?, r.try_get("dsid")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(legacy_err)?;
    let migrated = migrated_keys(target, groups::GROUP_ENTITY, table_of(groups::GROUP_ENTITY)).await?;
    let explained = issue_keys(target, groups::GROUP_ENTITY, &GROUP_SKIPS).await?;
    let rows = keys.into_iter().map(|key| {
        let (m, s) = (migrated.contains(&key), explained.contains(&key));
        (key, m, s)
    });
    tally(&mut check, figures, groups::GROUP_ENTITY, rows);
    Ok(check.finish())
}

/// A legacy column that references certificates or documents.
struct Reference {
    table: &'static str,
    column: &'static str,
    /// The referenced legacy table (and id map entity).
    referenced: &'static str,
    /// Issue entity and reasons under which the referencing row's step logged it as an orphan.
    orphan: Option<(&'static str, &'static [&'static str])>,
}

const STATUS_ORPHAN: [&str; 1] = [evaluations::REASON_ORPHAN];
/// A link to a document that does not exist, as the document-risk-profiles and fulfillments
/// steps log it ("document not migrated" is not one: the document's own skip must explain that).
const REQUIREMENT_ORPHAN: [&str; 2] = [profiles::REASON_DOCUMENT_MISSING, fulfillments::REASON_DOCUMENT_MISSING];
/// The doc-requirements step logs a status row whose document it needed and did not find this way.
const DOCUMENT_STATUS_ORPHAN: [&str; 1] = [doc_requirements::REASON_NO_TYPE];

const REFERENCES: [Reference; 7] = [
    Reference {
        table: "certificate_status",
        column: "certificate_id",
        referenced: "certificate",
        orphan: Some((evaluations::STATUS_ROW, &STATUS_ORPHAN)),
    },
    Reference { table: "attachment", column: "certificate_id", referenced: "certificate", orphan: None },
    Reference { table: "repo_file", column: "certificate_id", referenced: "certificate", orphan: None },
    Reference { table: "attachment", column: "document_id", referenced: "document", orphan: None },
    Reference { table: "repo_file", column: "document_id", referenced: "document", orphan: None },
    Reference {
        table: "document_requirements",
        column: "document_id",
        referenced: "document",
        orphan: Some((profiles::ENTITY_REQUIREMENT, &REQUIREMENT_ORPHAN)),
    },
    Reference {
        table: "document_status",
        column: "document_id",
        referenced: "document",
        orphan: Some((doc_requirements::ENTITY_STATUS, &DOCUMENT_STATUS_ORPHAN)),
    },
];

/// Integers as an SQL list (ids only: nothing to escape).
fn id_list(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Check 2: every referenced certificate_id / document_id is mapped or explained.
async fn references(legacy: &MySqlPool, target: &PgPool, skipped: &Skipped) -> Result<Check, LoadError> {
    let mut check = Check::new(
        CHECK_REFERENCES,
        "every certificate_id and document_id used by other legacy tables is in the id map, or explained by an issue",
    );
    let certificates_mapped = mapped_keys(target, certificates::ENTITY).await?;
    let documents_mapped = mapped_keys(target, DOCUMENT_ENTITY).await?;
    for r in &REFERENCES {
        let (mapped, skips) = match r.referenced {
            "certificate" => (&certificates_mapped, &skipped.certificate),
            _ => (&documents_mapped, &skipped.document),
        };
        let used = sqlx::query(&format!(
            "SELECT CAST({c} AS UNSIGNED) AS ref, COUNT(*) AS n FROM {t} WHERE {c} IS NOT NULL AND {c} <> 0 GROUP BY {c} ORDER BY {c}",
            c = r.column,
            t = r.table
        ))
        .fetch_all(legacy)
        .await
        .map_err(legacy_err)?;
        let (mut rows, mut in_map, mut by_skip) = (0u64, 0u64, 0u64);
        let mut unresolved: Vec<u64> = Vec::new();
        for row in &used {
            let id: u64 = row.try_get("ref").map_err(legacy_err)?;
            let n = row.try_get::<i64, _>("n").map_err(legacy_err)?.max(0) as u64;
            rows += n;
            let key = id.to_string();
            if mapped.contains(&key) {
                in_map += n;
            } else if skips.contains(&key) {
                by_skip += n;
            } else {
                unresolved.push(id);
            }
        }
        check.checked += rows;

        // The rows behind the unresolved ids: logged as orphans by their own step, or offenders.
        let orphan_keys = match r.orphan {
            Some((entity, reasons)) if !unresolved.is_empty() => issue_keys_exact(target, entity, reasons).await?,
            _ => HashSet::new(),
        };
        let (mut orphans_logged, mut unexplained) = (0u64, 0u64);
        for ids in unresolved.chunks(1000) {
            let existing: HashSet<u64> =
                sqlx::query_scalar(&format!("SELECT CAST(id AS UNSIGNED) FROM {} WHERE id IN ({})", r.referenced, id_list(ids)))
                    .fetch_all(legacy)
                    .await
                    .map_err(legacy_err)?
                    .into_iter()
                    .collect();
            let referencing = sqlx::query(&format!(
                "SELECT CAST(id AS UNSIGNED) AS id, CAST({c} AS UNSIGNED) AS ref FROM {t} WHERE {c} IN ({}) ORDER BY id",
                id_list(ids),
                c = r.column,
                t = r.table
            ))
            .fetch_all(legacy)
            .await
            .map_err(legacy_err)?;
            for row in referencing {
                let id: u64 = row.try_get("id").map_err(legacy_err)?;
                let referenced: u64 = row.try_get("ref").map_err(legacy_err)?;
                if orphan_keys.contains(&id.to_string()) {
                    orphans_logged += 1;
                    continue;
                }
                unexplained += 1;
                let why = if existing.contains(&referenced) {
                    format!("legacy {} {referenced} is neither migrated nor skipped with a logged reason", r.referenced)
                } else {
                    format!("no legacy {} {referenced}, and no issue logs this row", r.referenced)
                };
                check.offend(format!("{} {id}: {} {referenced}: {why}", r.table, r.column));
            }
        }
        check.summary.push(format!(
            "{}.{}: {rows} rows: {in_map} in the id map, {by_skip} to a row skipped with a logged reason, \
             {orphans_logged} logged as orphans, {unexplained} unexplained",
            r.table, r.column
        ));
    }
    Ok(check.finish())
}

/// Runs an offender query (`LIMIT $1`, rows of (text, total)) into `check`.
async fn offenders(pool: &PgPool, check: &mut Check, sql: &str) -> Result<u64, LoadError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).bind(SHOWN as i64).fetch_all(pool).await?;
    let total = rows.first().map_or(0, |(_, n)| (*n).max(0) as u64);
    check.offend_many(rows.into_iter().map(|(what, _)| what).collect(), total);
    Ok(total)
}

/// Check 3: id map entries name rows, the loader's foreign keys resolve, mapped links agree.
async fn foreign_keys(target: &PgPool) -> Result<Check, LoadError> {
    let mut check = Check::new(CHECK_FOREIGN_KEYS, "every id map entry names an existing row, every foreign key of the loader's rows resolves");
    let entries: Vec<(String, i64)> =
        sqlx::query_as("SELECT entity, COUNT(*) FROM dtx_migration.id_map GROUP BY entity ORDER BY entity").fetch_all(target).await?;
    let mut unknown = Vec::new();
    for (entity, n) in &entries {
        check.checked += (*n).max(0) as u64;
        let Some((_, table)) = ENTITY_TABLES.iter().find(|(e, _)| e == entity) else {
            unknown.push(entity.as_str());
            continue;
        };
        let dangling = offenders(
            target,
            &mut check,
            &format!(
                "SELECT format('id map %s %s -> %s %s: no such row', m.entity, m.legacy_key, '{table}', m.new_id), COUNT(*) OVER ()
                 FROM dtx_migration.id_map m LEFT JOIN {table} t ON t.id = m.new_id
                 WHERE m.entity = '{entity}' AND t.id IS NULL ORDER BY m.new_id, m.legacy_key LIMIT $1"
            ),
        )
        .await?;
        check.summary.push(format!("id map {entity}: {n} entries, {dangling} without their {table} row"));
    }
    if !unknown.is_empty() {
        check.summary.push(format!("id map entities verify does not know (not checked): {}", unknown.join(", ")));
    }
    for (entity, column, referenced) in FOREIGN_KEYS.iter().chain(FULFILLMENT_KEYS.iter()) {
        let table = table_of(entity);
        let broken = offenders(
            target,
            &mut check,
            &format!(
                "SELECT format('%s %s (%s %s): {column} %s not in {referenced}', '{table}', t.id, m.entity, m.legacy_key, t.{column}), COUNT(*) OVER ()
                 FROM dtx_migration.id_map m JOIN {table} t ON t.id = m.new_id LEFT JOIN {referenced} r ON r.id = t.{column}
                 WHERE m.entity = '{entity}' AND t.{column} IS NOT NULL AND r.id IS NULL ORDER BY t.id LIMIT $1"
            ),
        )
        .await?;
        if broken > 0 {
            check.summary.push(format!("{table}.{column} -> {referenced}: {broken} rows of the loader's name no row"));
        }
    }
    for (what, sql) in LINKS {
        let broken = offenders(target, &mut check, sql).await?;
        if broken > 0 {
            check.summary.push(format!("{what}: {broken} rows disagree"));
        }
    }
    // AuditHistory names its object by (content_type, object_id), not by a foreign key.
    for (content_type, _, table) in audit_history::OBJECTS {
        let broken = offenders(
            target,
            &mut check,
            &format!(
                "SELECT format('{ah} %s (audit_history %s): object_id %s not in {table}', a.id, m.legacy_key, a.object_id), COUNT(*) OVER ()
                 FROM dtx_migration.id_map m JOIN {ah} a ON a.id = m.new_id LEFT JOIN {table} o ON o.id = a.object_id
                 WHERE m.entity = '{entity}' AND a.content_type = '{content_type}' AND o.id IS NULL ORDER BY a.id LIMIT $1",
                ah = audit_history::TABLE,
                entity = audit_history::ENTITY
            ),
        )
        .await?;
        if broken > 0 {
            check.summary.push(format!("{} -> {table} ({content_type}): {broken} snapshots name no row", audit_history::TABLE));
        }
    }
    Ok(check.finish())
}

/// A migrated row with a file field, and the imported manifest's size of that key.
#[derive(sqlx::FromRow)]
struct FileRow {
    entity: String,
    legacy_key: String,
    id: i64,
    file: String,
    content_hash: Option<String>,
    size: Option<i64>,
}

/// Check 4: every file field names an object whose stored SHA-256 matches its content_hash.
async fn files(loader: &Loader) -> Result<Check, LoadError> {
    let mut check = Check::new(
        CHECK_FILES,
        "every file field of the migrated certificates and documents names an object whose stored SHA-256 matches its content_hash",
    );
    let mut rows: Vec<FileRow> = Vec::new();
    for entity in [certificates::ENTITY, DOCUMENT_ENTITY] {
        let table = table_of(entity);
        let found: Vec<FileRow> = sqlx::query_as(&format!(
            "SELECT m.entity, m.legacy_key, t.id, t.file, t.content_hash, f.size
             FROM dtx_migration.id_map m JOIN {table} t ON t.id = m.new_id
             LEFT JOIN (SELECT s3_key, MAX(size) AS size FROM dtx_migration.file_manifest
                        WHERE status IN ('moved', 'deduplicated') AND s3_key IS NOT NULL GROUP BY s3_key) f ON f.s3_key = t.file
             WHERE m.entity = $1 AND t.file IS NOT NULL ORDER BY t.id"
        ))
        .bind(entity)
        .fetch_all(&loader.target)
        .await?;
        check.summary.push(format!("{table}: {} migrated rows with a file", found.len()));
        rows.extend(found);
    }
    check.checked = rows.len() as u64;

    let mut records: Vec<ManifestRecord> = Vec::with_capacity(rows.len());
    for r in rows {
        let source_key = format!("{} {} ({} {})", r.entity, r.legacy_key, table_of(&r.entity), r.id);
        match (r.content_hash, r.size) {
            (None, _) => check.offend(format!("{source_key}: file {} has no content_hash", r.file)),
            (Some(_), None) => check.offend(format!("{source_key}: file {} is no stored object of the imported file manifest", r.file)),
            (Some(hash), Some(size)) => records.push(ManifestRecord {
                source_key,
                s3_key: Some(r.file),
                content_hash: Some(hash),
                size: Some(size.max(0) as u64),
                status: Some(FileStatus::Moved),
                ..Default::default()
            }),
        }
    }
    let Some(objects) = &loader.objects else {
        check.failure = Some(NO_BUCKET.into());
        return Ok(check.finish());
    };
    let report = crate::verify::verify_stored(&records, objects.as_ref()).await?;
    check.summary.push(format!(
        "{} distinct objects looked up, {} downloaded to hash (multipart checksums)",
        report.objects_checked, report.downloaded
    ));
    // Lookups finish in any order: sort for a stable report.
    let problems: BTreeSet<String> = report.problems.into_iter().collect();
    for p in problems {
        check.offend(p);
    }
    Ok(check.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_fails_on_any_offender_or_failure_and_lists_the_first_ones() {
        let mut c = Check::new("x", "rule");
        assert!(c.clone().finish().passed);
        for i in 0..(SHOWN + 5) {
            c.offend(format!("k{i}"));
        }
        let c = c.finish();
        assert!(!c.passed);
        assert_eq!((c.offending, c.offenders.len()), (SHOWN as u64 + 5, SHOWN));
        assert_eq!(c.offenders[0], "k0");
        let mut c = Check::new("y", "rule");
        c.failure = Some(NO_BUCKET.into());
        assert!(!c.finish().passed);
    }

    #[test]
    fn counts_say_which_checks_failed() {
        let mut ok = Check::new(CHECK_COUNTS, "r");
        ok.checked = 3;
        let mut bad = Check::new(CHECK_FILES, "r");
        bad.offend("certificate 1: gone".into());
        let v = Verification { checks: vec![ok.finish(), bad.finish()], figures: BTreeMap::from([("certificate_legacy".into(), 3)]) };
        let counts = v.counts();
        assert_eq!(counts["checks"], 2);
        assert_eq!(counts["checks_failed"], 1);
        assert_eq!((counts["counts_failed"], counts["files_failed"], counts["files_offending"]), (0, 1, 1));
        assert_eq!(counts["certificate_legacy"], 3);
        let text = v.render_text();
        assert!(text.contains("Result: FAILED (1 of 2 checks failed: files)"), "{text}");
        assert!(text.contains("[PASS] counts") && text.contains("[FAIL] files") && text.contains("    certificate 1: gone"), "{text}");
    }

    #[test]
    fn every_entity_with_foreign_keys_has_a_table() {
        for (entity, column, _) in FOREIGN_KEYS.iter().chain(FULFILLMENT_KEYS.iter()) {
            assert!(ENTITY_TABLES.iter().any(|(e, _)| e == entity), "{entity}.{column}");
        }
    }
}
