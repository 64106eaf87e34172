//! `load --rollback <step|all>`: undoes what the given steps did to the target, so a migration
//! rehearsal can be wiped and run again. Everything goes through the bookkeeping:
//! * rows a step created (`dtx_migration.id_map`, `created = true`) are deleted, table by table
//!   in reverse dependency order ([`REGISTRY`]); rows it only reused (`created = false`, e.g. a
//!   DocumentType that existed in DTX 2.0) are kept, only their map entries go;
//! * values a step wrote into rows it did not create are put back: from
//!   `dtx_migration.prior_value` (`book::remember_prior`), and NULL for the columns of
//!   [`COLUMN_RESETS`] (written into rows another migration step inserted without them);
//! * the steps' `id_map`, `issue`, `prior_value` and `step_run` rows are removed, and rolling
//!   back `files` empties the imported `file_manifest`.
//!
//! All in one transaction: a rollback happens whole or not at all, and a dry run does all of it
//! (foreign keys checked too) and then rolls back, answering what it would remove.
//!
//! Before deleting anything the rollback refuses (nothing changed) when a row it would delete
//! is still referenced by a row it would keep: by a later step that is not being rolled back
//! (the error names the steps to include), or by a table outside this migration (the error
//! names the table). Nothing is ever cascaded. Besides foreign keys, the AuditHistory
//! snapshots' (content_type, object_id) references count too ([`SOFT_REFERENCES`]).
//!
//! Choice: the dependency check is done on the rows, through every foreign key PostgreSQL knows
//! (`pg_constraint`), not through a fixed table of step dependencies: Django's other apps add
//! foreign keys to these tables that this tool cannot list, and a later step that created
//! nothing referencing the rows does not block.
//! Choice: a referencing row is charged to the step that wrote the referencing value: the
//! step of its `prior_value` entry, else the [`COLUMN_RESETS`] step of the column, else the
//! step that created the row; a row none of these explains belongs to DTX 2.0 (outside).
//! Choice: rolling back `evaluations` while `current-evaluations` is kept is refused (the
//! certificates' `current_evaluation_id` written by step 8 points at the evaluations), rather
//! than clearing the pointers behind step 8's back.
//! Choice: rolling back `files` alone is allowed: no row references the imported manifest; the
//! file fields later steps copied from it stay until those steps are rolled back or rerun.
//! Choice: the rollback locks `dtx_migration.id_map` against writers (SHARE ROW EXCLUSIVE)
//! for its transaction, so a step running at the same time waits instead of mapping rows the
//! rollback is removing.
//! Choice: identity sequences are not reset: ids are never reused, so ids from an undone
//! rehearsal cannot be confused with a later run's.

use super::book;
use super::runner::{LoadError, Step};
use crate::error::PortError;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, BTreeSet};

/// An id map entity and the Django table its `new_id`s are rows of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub entity: &'static str,
    pub table: &'static str,
}

const fn reg(entity: &'static str, table: &'static str) -> Registered {
    Registered { entity, table }
}

/// Every id map entity the loader writes, in dependency order (a table comes after every table
/// it references, except the circular `certificate.current_evaluation_id`, which is a
/// [`COLUMN_RESETS`] entry). The rollback deletes in the reverse order. An entity found in the
/// id map and missing here is an error: add it (the integration test runs every step and
/// checks that each entity it maps is here).
pub const REGISTRY: [Registered; 15] = [
    // Step 2 (document-types): both entities name DocumentType rows.
    reg("document_type", "docutrax_profiles_documenttype"),
    reg("document_library", "docutrax_profiles_documenttype"),
    // Step 3 (document-risk-profiles).
    reg("document_set", "docutrax_profiles_documentriskprofile"),
    reg("document_risk_profile_document_type", "docutrax_profiles_documentriskprofiledocumenttype"),
    // Step 4 (requirements-groups).
    reg("requirements_group", "docutrax_hierarchy_requirementsgroup"),
    reg("requirements_group_member", "docutrax_hierarchy_requirementsgroupmember"),
    // Step 6 (certificates).
    reg("certificate", "docutrax_profiles_certificate"),
    reg("manual_override", "docutrax_profiles_manualoverride"),
    // Step 7 (evaluations).
    reg("evaluation", "docutrax_profiles_evaluation"),
    reg("evaluation_coverage", "docutrax_profiles_evaluationcoverage"),
    reg("evaluation_detail", "docutrax_profiles_evaluationdetail"),
    // Steps 9-12.
    reg("document", "docutrax_profiles_document"),
    reg("doc_requirement", "docutrax_profiles_docrequirement"),
    reg("document_requirement_fulfillment", "docutrax_profiles_documentrequirementfulfillment"),
    reg("audit_history", "docutrax_profiles_audithistory"),
];

/// A column a step writes into rows that another migration step created (`created = true`,
/// entity `entity`) without that column: its value before the step is NULL, so undoing the
/// step sets it back to NULL (no `prior_value` is recorded for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnReset {
    pub step: Step,
    pub entity: &'static str,
    pub table: &'static str,
    pub column: &'static str,
}

/// Choice: step 8 sets `current_evaluation_id` only on certificates step 6 inserted with NULL,
/// so NULL is the value to restore (a certificate DTX 2.0 made itself is never touched by it).
pub const COLUMN_RESETS: [ColumnReset; 1] = [ColumnReset {
    step: Step::CurrentEvaluations,
    entity: "certificate",
    table: "docutrax_profiles_certificate",
    column: "current_evaluation_id",
}];

/// A reference PostgreSQL does not know as a foreign key: rows of `table` name a row by
/// (`type_column`, `id_column`) = (content type, id), as Django's generic relations do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftReference {
    pub table: &'static str,
    pub type_column: &'static str,
    pub id_column: &'static str,
    /// (content type, id map entity, table) of the rows it can name.
    pub targets: &'static [(&'static str, &'static str, &'static str)],
}

/// AuditHistory snapshots (step 12, or DTX 2.0's own) name certificates, evaluations and
/// documents by content type: rolling those back while snapshots of them are kept is refused
/// like a foreign key would be.
pub const SOFT_REFERENCES: [SoftReference; 1] = [SoftReference {
    table: super::steps::audit_history::TABLE,
    type_column: "content_type",
    id_column: "object_id",
    targets: &super::steps::audit_history::OBJECTS,
}];

/// The Django table of an id map entity.
pub fn table_of(entity: &str) -> Option<&'static str> {
    REGISTRY.iter().find(|r| r.entity == entity).map(|r| r.table)
}

/// `all` (every step), one step by name or number, or several separated by commas
/// (`evaluations,current-evaluations`).
pub fn parse_steps(text: &str) -> Result<Vec<Step>, String> {
    if text.trim() == "all" {
        return Ok(Step::ALL.to_vec());
    }
    let mut steps = text.split(',').map(Step::parse).collect::<Result<Vec<_>, _>>()?;
    steps.sort();
    steps.dedup();
    Ok(steps)
}

/// What a rollback removed and restored (or, for a dry run, would have).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollbackReport {
    /// The steps rolled back, in step order.
    pub steps: Vec<String>,
    pub dry_run: bool,
    /// Rows deleted per Django table (only tables with rows to delete).
    pub deleted: BTreeMap<String, u64>,
    /// Values put back per `table.column` (prior values and [`COLUMN_RESETS`]).
    pub restored: BTreeMap<String, u64>,
    /// Id map entries removed per entity.
    pub map_entries: BTreeMap<String, u64>,
    /// Of those, entries of reused rows (`created = false`), whose rows were kept.
    pub kept_reused: BTreeMap<String, u64>,
    pub issues: u64,
    pub prior_values: u64,
    pub step_runs: u64,
    /// Rows of the imported file manifest removed (rolling back `files`).
    pub manifest_rows: u64,
}

impl RollbackReport {
    /// Flat counts for `LoadResponse::counts`: `deleted.<table>`, `restored.<table>.<column>`,
    /// `map_entries.<entity>`, `kept_reused.<entity>`, `issues`, `prior_values`, `step_runs`,
    /// `manifest_rows`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (prefix, map) in [("deleted", &self.deleted), ("restored", &self.restored), ("map_entries", &self.map_entries), ("kept_reused", &self.kept_reused)] {
            for (k, v) in map {
                counts.insert(format!("{prefix}.{k}"), *v);
            }
        }
        counts.insert("issues".into(), self.issues);
        counts.insert("prior_values".into(), self.prior_values);
        counts.insert("step_runs".into(), self.step_runs);
        counts.insert("manifest_rows".into(), self.manifest_rows);
        counts
    }
}

/// Rows the rollback would delete that a kept row still references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// The step that wrote the reference; None: a row outside this migration.
    pub step: Option<String>,
    /// The referencing `table.column`; for `reuse`, the id map entity.
    pub from: String,
    /// Id map entries of another step that reuse the rows (created = false), not a column.
    pub reuse: bool,
    /// The table whose rows would be deleted.
    pub to: String,
    pub rows: u64,
    /// One referencing row's id (for `reuse`: one reused row's id in `to`).
    pub example_id: Option<i64>,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by = match &self.step {
            Some(step) => format!("step {step}"),
            None => "DTX 2.0 (not this migration)".to_string(),
        };
        if self.reuse {
            let example = self.example_id.map(|id| format!(", e.g. {} id {id}", self.to)).unwrap_or_default();
            return write!(f, "{} id map entr(ies) of {} written by {by} reuse rows of {} it would delete{example}", self.rows, self.from, self.to);
        }
        let table = self.from.split('.').next().unwrap_or_default();
        let example = self.example_id.map(|id| format!(", e.g. {table} id {id}")).unwrap_or_default();
        write!(f, "{} row(s) of {} written by {by} reference rows of {} it would delete{example}", self.rows, self.from, self.to)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// Kept rows reference rows the rollback would delete; nothing was changed.
    #[error("{}", referenced_message(.steps, .blockers))]
    Referenced { steps: Vec<String>, blockers: Vec<Blocker> },
    /// The id map has entries of an entity the rollback does not know the table of.
    #[error("{}", unregistered_message(.0))]
    UnregisteredEntities(Vec<(String, String, i64)>),
    /// `all`, and the bookkeeping names steps this version does not know.
    #[error("the id map has entries of step(s) {0:?}, which this version does not know; they would survive `all`: roll them back with the version that made them")]
    UnknownSteps(Vec<String>),
    /// A table or column named by the id map or prior_value is not in the target.
    #[error("{0}")]
    MissingTarget(String),
    /// A foreign key still failed when checked (a row added meanwhile, or a check this module
    /// missed); everything was rolled back.
    #[error("rollback undone: table {table} still references deleted rows (constraint {constraint}): {detail}")]
    StillReferenced { table: String, constraint: String, detail: String },
    #[error("target database: {0}")]
    Target(#[from] sqlx::Error),
}

fn referenced_message(steps: &[String], blockers: &[Blocker]) -> String {
    let mut later: Vec<&str> = blockers.iter().filter_map(|b| b.step.as_deref()).collect();
    let order = |name: &str| Step::parse(name).map(|s| s.number()).unwrap_or(u8::MAX);
    later.sort_by_key(|s| (order(s), s.to_string()));
    later.dedup();
    let outside: BTreeSet<&str> = blockers.iter().filter(|b| b.step.is_none() && !b.reuse).map(|b| b.from.split('.').next().unwrap_or_default()).collect();
    let mut text = format!("rollback of {} refused, nothing changed: ", steps.join(", "));
    text.push_str(&blockers.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("; "));
    if !later.is_empty() {
        text.push_str(&format!(". Include the later step(s) {} (roll them back first, or together)", later.join(", ")));
    }
    if !outside.is_empty() {
        text.push_str(&format!(
            ". Table(s) {} outside this migration reference migrated rows: remove or repoint those rows first",
            outside.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    text
}

fn unregistered_message(entries: &[(String, String, i64)]) -> String {
    let list: Vec<String> = entries.iter().map(|(e, s, n)| format!("{e:?} (step {s}, {n} entries)")).collect();
    format!(
        "id map entit{} {} not in the rollback registry (shared/src/loader/rollback.rs REGISTRY): add the Django table of each; nothing changed",
        if entries.len() == 1 { "y" } else { "ies" },
        list.join(", ")
    )
}

impl From<RollbackError> for LoadError {
    fn from(e: RollbackError) -> Self {
        match e {
            RollbackError::Target(e) => LoadError::Target(e),
            other => LoadError::Port(PortError::permanent("rollback", other)),
        }
    }
}

/// Undoes `steps` (see the module doc) in one transaction; `dry_run` does the same and rolls
/// it back. Steps that wrote nothing (validate, export-mappings, verify) only lose their
/// `step_run` and `issue` rows.
pub async fn rollback(target: &PgPool, steps: &[Step], dry_run: bool) -> Result<RollbackReport, RollbackError> {
    let mut steps = steps.to_vec();
    steps.sort();
    steps.dedup();
    let names: Vec<String> = steps.iter().map(|s| s.name().to_string()).collect();
    let mut report = RollbackReport { steps: names.clone(), dry_run, ..Default::default() };
    // No bookkeeping schema: no step ever ran here, nothing to undo (and nothing is created).
    let bookkept: Option<String> = sqlx::query_scalar("SELECT to_regclass('dtx_migration.id_map')::text").fetch_one(target).await?;
    if bookkept.is_none() || steps.is_empty() {
        return Ok(report);
    }

    // An older bookkeeping schema gains what it lacks (prior_value), as before every step.
    book::ensure_schema(target).await?;
    let mut tx = target.begin().await?;
    sqlx::query("LOCK TABLE dtx_migration.id_map IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    check_registered(&mut tx, &steps, &names).await?;
    let doomed_tables = collect_doomed(&mut tx, &names).await?;

    let mut blockers = reuse_blockers(&mut tx, &names).await?;
    blockers.extend(reference_blockers(&mut tx, &names, &doomed_tables).await?);
    if !blockers.is_empty() {
        return Err(RollbackError::Referenced { steps: names, blockers });
    }

    restore_values(&mut tx, &steps, &names, &mut report).await?;
    delete_rows(&mut tx, &doomed_tables, &mut report).await?;
    forget(&mut tx, &steps, &names, &mut report).await?;

    // The deferred foreign keys are checked now, so a dry run is checked as fully as a real one.
    sqlx::query("SET CONSTRAINTS ALL IMMEDIATE").execute(&mut *tx).await.map_err(still_referenced)?;
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await.map_err(still_referenced)?;
    }
    Ok(report)
}

/// Every id map entity of the steps has a table; with `all`, every step is known.
async fn check_registered(tx: &mut PgConnection, steps: &[Step], names: &[String]) -> Result<(), RollbackError> {
    let entities: Vec<&str> = REGISTRY.iter().map(|r| r.entity).collect();
    let unknown: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT entity, step, COUNT(*) FROM dtx_migration.id_map WHERE step = ANY($1) AND NOT (entity = ANY($2))
         GROUP BY entity, step ORDER BY entity, step",
    )
    .bind(names)
    .bind(&entities)
    .fetch_all(&mut *tx)
    .await?;
    if !unknown.is_empty() {
        return Err(RollbackError::UnregisteredEntities(unknown));
    }
    if steps.len() == Step::ALL.len() {
        let others: Vec<String> = sqlx::query_scalar("SELECT DISTINCT step FROM dtx_migration.id_map WHERE NOT (step = ANY($1)) ORDER BY 1")
            .bind(names)
            .fetch_all(&mut *tx)
            .await?;
        if !others.is_empty() {
            return Err(RollbackError::UnknownSteps(others));
        }
    }
    Ok(())
}

/// Fills the temporary table `rollback_doomed (table_name, id)` with the rows the steps created;
/// returns the tables with rows in it, in deletion order (reverse dependency order).
async fn collect_doomed(tx: &mut PgConnection, names: &[String]) -> Result<Vec<&'static str>, RollbackError> {
    sqlx::query("CREATE TEMP TABLE rollback_doomed (table_name TEXT NOT NULL, id BIGINT NOT NULL, PRIMARY KEY (table_name, id)) ON COMMIT DROP")
        .execute(&mut *tx)
        .await?;
    let entities: Vec<&str> = REGISTRY.iter().map(|r| r.entity).collect();
    let tables: Vec<&str> = REGISTRY.iter().map(|r| r.table).collect();
    sqlx::query(
        "INSERT INTO rollback_doomed (table_name, id)
         SELECT DISTINCT r.table_name, m.new_id FROM dtx_migration.id_map m
         JOIN UNNEST($2::text[], $3::text[]) AS r(entity, table_name) ON r.entity = m.entity
         WHERE m.step = ANY($1) AND m.created",
    )
    .bind(names)
    .bind(&entities)
    .bind(&tables)
    .execute(&mut *tx)
    .await?;
    // A temporary table has no statistics until analyzed; the checks below join on it.
    sqlx::query("ANALYZE rollback_doomed").execute(&mut *tx).await?;
    let present: Vec<String> = sqlx::query_scalar("SELECT DISTINCT table_name FROM rollback_doomed").fetch_all(&mut *tx).await?;
    let mut order: Vec<&'static str> = Vec::new();
    for r in REGISTRY.iter().rev() {
        if present.iter().any(|t| t == r.table) && !order.contains(&r.table) {
            order.push(r.table);
        }
    }
    let missing: Vec<String> = sqlx::query_scalar("SELECT DISTINCT table_name FROM rollback_doomed WHERE to_regclass(table_name) IS NULL")
        .fetch_all(&mut *tx)
        .await?;
    if !missing.is_empty() {
        return Err(RollbackError::MissingTarget(format!("the id map names rows of table(s) {missing:?}, which the target does not have")));
    }
    Ok(order)
}

/// Id map entries of other steps that reuse (or also map) rows the rollback would delete.
async fn reuse_blockers(tx: &mut PgConnection, names: &[String]) -> Result<Vec<Blocker>, RollbackError> {
    let entities: Vec<&str> = REGISTRY.iter().map(|r| r.entity).collect();
    let tables: Vec<&str> = REGISTRY.iter().map(|r| r.table).collect();
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT m.step, m.entity, r.table_name, COUNT(*), MIN(m.new_id) FROM dtx_migration.id_map m
         JOIN UNNEST($2::text[], $3::text[]) AS r(entity, table_name) ON r.entity = m.entity
         JOIN rollback_doomed d ON d.table_name = r.table_name AND d.id = m.new_id
         WHERE NOT (m.step = ANY($1)) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind(names)
    .bind(&entities)
    .bind(&tables)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(step, entity, table, n, example)| Blocker {
            step: Some(step),
            from: entity,
            reuse: true,
            to: table,
            rows: n.max(0) as u64,
            example_id: Some(example),
        })
        .collect())
}

/// A reference the rollback must follow: rows of `from_table` whose `condition` (SQL on alias
/// `r`, `$1` = the referenced table's name in `rollback_doomed`) holds point at `to_table`.
struct Reference {
    from_table: String,
    /// The referencing column, unquoted (prior values, resets, messages).
    column: String,
    condition: String,
    to_table: String,
    has_id: bool,
}

/// Rows the rollback keeps that reference rows it would delete: through every foreign key
/// PostgreSQL knows, and through the [`SOFT_REFERENCES`].
async fn reference_blockers(tx: &mut PgConnection, names: &[String], doomed_tables: &[&str]) -> Result<Vec<Blocker>, RollbackError> {
    if doomed_tables.is_empty() {
        return Ok(Vec::new());
    }
    // (constraint, referencing table, quoted column, column, referenced table, key columns, has id)
    type ForeignKey = (String, String, String, String, String, i32, bool);
    let keys: Vec<ForeignKey> = sqlx::query_as(
        "SELECT c.conname::text, c.conrelid::regclass::text, quote_ident(a.attname), a.attname::text, c.confrelid::regclass::text,
                cardinality(c.conkey), EXISTS (SELECT 1 FROM pg_attribute i WHERE i.attrelid = c.conrelid AND i.attname = 'id' AND NOT i.attisdropped)
         FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         WHERE c.contype = 'f' AND c.confrelid = ANY(SELECT to_regclass(t) FROM UNNEST($1::text[]) AS t)
         ORDER BY 2, 4, 1",
    )
    .bind(doomed_tables)
    .fetch_all(&mut *tx)
    .await?;
    let mut blockers = Vec::new();
    let mut references = Vec::new();
    for (constraint, from_table, column_sql, column, to_table, width, has_id) in keys {
        if width != 1 {
            // Django makes single-column keys only; one this check cannot follow is not ignored.
            blockers.push(Blocker { step: None, from: format!("{from_table}.({constraint})"), reuse: false, to: to_table, rows: 0, example_id: None });
            continue;
        }
        let condition = format!("r.{column_sql} IN (SELECT d.id FROM rollback_doomed d WHERE d.table_name = $1)");
        references.push(Reference { from_table, column, condition, to_table, has_id });
    }
    for soft in &SOFT_REFERENCES {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text").bind(soft.table).fetch_one(&mut *tx).await?;
        if exists.is_none() {
            continue;
        }
        for (content_type, _, to_table) in soft.targets.iter().filter(|t| doomed_tables.contains(&t.2)) {
            let condition = format!(
                "r.{} = '{}' AND r.{} IN (SELECT d.id FROM rollback_doomed d WHERE d.table_name = $1)",
                soft.type_column,
                content_type.replace('\'', "''"),
                soft.id_column
            );
            references.push(Reference { from_table: soft.table.into(), column: soft.id_column.into(), condition, to_table: to_table.to_string(), has_id: true });
        }
    }

    for Reference { from_table, column, condition, to_table, has_id } in references {
        let entities: Vec<&str> = REGISTRY.iter().filter(|r| r.table == from_table).map(|r| r.entity).collect();
        let reset = COLUMN_RESETS.iter().find(|c| c.table == from_table && c.column == column);
        let found: Vec<(Option<String>, i64, Option<i64>)> = if has_id {
            sqlx::query_as(&format!(
                "SELECT x.blocker, COUNT(*), MIN(x.ref_id) FROM (
                     SELECT r.id AS ref_id, COALESCE(
                         (SELECT p.step FROM dtx_migration.prior_value p WHERE p.table_name = $2 AND p.row_id = r.id AND p.column_name = $3),
                         CASE WHEN EXISTS (SELECT 1 FROM dtx_migration.id_map w WHERE w.entity = $4::text AND w.new_id = r.id AND w.created)
                              THEN $5::text END,
                         (SELECT MIN(o.step) FROM dtx_migration.id_map o WHERE o.entity = ANY($6) AND o.new_id = r.id AND o.created)
                     ) AS blocker
                     FROM {from_table} r
                     WHERE {condition} AND NOT EXISTS (SELECT 1 FROM rollback_doomed k WHERE k.table_name = $2 AND k.id = r.id)
                 ) x
                 WHERE x.blocker IS NULL OR NOT (x.blocker = ANY($7))
                 GROUP BY x.blocker ORDER BY x.blocker NULLS LAST"
            ))
            .bind(&to_table)
            .bind(&from_table)
            .bind(&column)
            .bind(reset.map(|c| c.entity))
            .bind(reset.map(|c| c.step.name()))
            .bind(&entities)
            .bind(names)
            .fetch_all(&mut *tx)
            .await?
        } else {
            // No id column: not a table of this migration, every reference is from outside.
            sqlx::query_as(&format!("SELECT NULL::text, COUNT(*), NULL::bigint FROM {from_table} r WHERE {condition} HAVING COUNT(*) > 0"))
                .bind(&to_table)
                .fetch_all(&mut *tx)
                .await?
        };
        for (step, n, example) in found {
            blockers.push(Blocker { step, from: format!("{from_table}.{column}"), reuse: false, to: to_table.clone(), rows: n.max(0) as u64, example_id: example });
        }
    }
    Ok(blockers)
}

/// Puts back what the steps wrote into rows they did not create.
async fn restore_values(tx: &mut PgConnection, steps: &[Step], names: &[String], report: &mut RollbackReport) -> Result<(), RollbackError> {
    for reset in COLUMN_RESETS.iter().filter(|c| steps.contains(&c.step)) {
        let (table, column) = (reset.table, reset.column);
        let n = sqlx::query(&format!(
            "UPDATE {table} t SET {column} = NULL
             WHERE t.{column} IS NOT NULL
               AND t.id IN (SELECT m.new_id FROM dtx_migration.id_map m WHERE m.entity = $1 AND m.created)
               AND NOT EXISTS (SELECT 1 FROM dtx_migration.prior_value p WHERE p.table_name = $2 AND p.row_id = t.id AND p.column_name = $3)"
        ))
        .bind(reset.entity)
        .bind(table)
        .bind(column)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            *report.restored.entry(format!("{table}.{column}")).or_default() += n;
        }
    }

    let columns: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT p.table_name, p.column_name, to_regclass(p.table_name)::text,
                (SELECT quote_ident(a.attname) FROM pg_attribute a
                 WHERE a.attrelid = to_regclass(p.table_name) AND a.attname = p.column_name AND a.attnum > 0 AND NOT a.attisdropped)
         FROM (SELECT DISTINCT table_name, column_name FROM dtx_migration.prior_value WHERE step = ANY($1)) p ORDER BY 1, 2",
    )
    .bind(names)
    .fetch_all(&mut *tx)
    .await?;
    for (table, column, table_sql, column_sql) in columns {
        let (Some(table_sql), Some(column_sql)) = (table_sql, column_sql) else {
            return Err(RollbackError::MissingTarget(format!("prior values of {table}.{column} cannot be restored: the target has no such column")));
        };
        // jsonb_populate_record turns the stored JSON back into the column's own type.
        let n = sqlx::query(&format!(
            "UPDATE {table_sql} t SET {column_sql} = (jsonb_populate_record(NULL::{table_sql}, jsonb_build_object($2::text, p.value))).{column_sql}
             FROM dtx_migration.prior_value p
             WHERE p.table_name = $1 AND p.column_name = $2 AND p.step = ANY($3) AND t.id = p.row_id"
        ))
        .bind(&table)
        .bind(&column)
        .bind(names)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            *report.restored.entry(format!("{table}.{column}")).or_default() += n;
        }
    }
    Ok(())
}

/// Deletes the created rows, table by table in reverse dependency order.
async fn delete_rows(tx: &mut PgConnection, doomed_tables: &[&str], report: &mut RollbackReport) -> Result<(), RollbackError> {
    for table in doomed_tables {
        let n = sqlx::query(&format!("DELETE FROM {table} WHERE id IN (SELECT d.id FROM rollback_doomed d WHERE d.table_name = $1)"))
            .bind(table)
            .execute(&mut *tx)
            .await
            .map_err(still_referenced)?
            .rows_affected();
        if n > 0 {
            report.deleted.insert(table.to_string(), n);
        }
    }
    Ok(())
}

/// Removes the steps' bookkeeping: map entries, issues, prior values, progress, the manifest.
async fn forget(tx: &mut PgConnection, steps: &[Step], names: &[String], report: &mut RollbackReport) -> Result<(), RollbackError> {
    let entries: Vec<(String, i64, i64)> = sqlx::query_as(
        "WITH gone AS (DELETE FROM dtx_migration.id_map WHERE step = ANY($1) RETURNING entity, created)
         SELECT entity, COUNT(*), COUNT(*) FILTER (WHERE NOT created) FROM gone GROUP BY entity ORDER BY entity",
    )
    .bind(names)
    .fetch_all(&mut *tx)
    .await?;
    for (entity, n, reused) in entries {
        report.map_entries.insert(entity.clone(), n.max(0) as u64);
        if reused > 0 {
            report.kept_reused.insert(entity, reused as u64);
        }
    }
    let delete = |table: &'static str| format!("DELETE FROM dtx_migration.{table} WHERE step = ANY($1)");
    report.issues = sqlx::query(&delete("issue")).bind(names).execute(&mut *tx).await?.rows_affected();
    report.prior_values = sqlx::query(&delete("prior_value")).bind(names).execute(&mut *tx).await?.rows_affected();
    report.step_runs = sqlx::query(&delete("step_run")).bind(names).execute(&mut *tx).await?.rows_affected();
    if steps.contains(&Step::Files) {
        report.manifest_rows = sqlx::query("DELETE FROM dtx_migration.file_manifest").execute(&mut *tx).await?.rows_affected();
    }
    Ok(())
}

/// A foreign key violation, named by its table; other errors pass through.
fn still_referenced(e: sqlx::Error) -> RollbackError {
    if let sqlx::Error::Database(db) = &e {
        if db.code().as_deref() == Some("23503") {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            return RollbackError::StillReferenced {
                table: pg.and_then(|p| p.table()).unwrap_or("(unknown)").to_string(),
                constraint: db.constraint().unwrap_or("(unknown)").to_string(),
                detail: pg.and_then(|p| p.detail()).unwrap_or(db.message()).to_string(),
            };
        }
    }
    RollbackError::Target(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_as_all_one_or_a_list() {
        assert_eq!(parse_steps("all").unwrap(), Step::ALL.to_vec());
        assert_eq!(parse_steps("7").unwrap(), vec![Step::Evaluations]);
        assert_eq!(parse_steps("current-evaluations,evaluations,7").unwrap(), vec![Step::Evaluations, Step::CurrentEvaluations]);
        assert!(parse_steps("evaluations,nope").unwrap_err().contains("nope"));
    }

    #[test]
    fn every_entity_is_registered_once_and_resets_name_registered_tables() {
        let entities: BTreeSet<&str> = REGISTRY.iter().map(|r| r.entity).collect();
        assert_eq!(entities.len(), REGISTRY.len(), "an entity registered twice");
        for reset in COLUMN_RESETS {
            assert_eq!(table_of(reset.entity), Some(reset.table));
        }
        for soft in SOFT_REFERENCES {
            assert!(REGISTRY.iter().any(|r| r.table == soft.table), "{}", soft.table);
            for (_, entity, table) in soft.targets {
                assert_eq!(table_of(entity), Some(*table), "{entity}");
            }
        }
        assert_eq!(table_of("document_library"), Some("docutrax_profiles_documenttype"));
        assert_eq!(table_of("no_such_entity"), None);
    }

    #[test]
    fn a_refusal_names_the_later_steps_and_the_outside_tables() {
        let blockers = vec![
            Blocker { step: Some("current-evaluations".into()), from: "a.x".into(), reuse: false, to: "b".into(), rows: 2, example_id: Some(9) },
            Blocker { step: Some("evaluations".into()), from: "e".into(), reuse: true, to: "b".into(), rows: 1, example_id: Some(5) },
            Blocker { step: None, from: "notes.certificate_id".into(), reuse: false, to: "b".into(), rows: 3, example_id: Some(4) },
        ];
        let text = RollbackError::Referenced { steps: vec!["certificates".into()], blockers }.to_string();
        assert!(text.starts_with("rollback of certificates refused, nothing changed: 2 row(s) of a.x written by step current-evaluations"), "{text}");
        assert!(text.contains("written by step current-evaluations reference rows of b it would delete, e.g. a id 9"), "{text}");
        assert!(text.contains("1 id map entr(ies) of e written by step evaluations reuse rows of b it would delete, e.g. b id 5"), "{text}");
        assert!(text.contains("3 row(s) of notes.certificate_id written by DTX 2.0 (not this migration)"), "{text}");
        assert!(text.contains("Include the later step(s) evaluations, current-evaluations (roll them back first, or together)"), "{text}");
        assert!(text.contains("Table(s) notes outside this migration"), "{text}");
        let counts = RollbackReport { deleted: BTreeMap::from([("t".to_string(), 3)]), issues: 2, ..Default::default() }.counts();
        assert_eq!(counts["deleted.t"], 3);
        assert_eq!(counts["issues"], 2);
    }
}
