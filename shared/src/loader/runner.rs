//! The step runner: one invocation runs one named step (or continues it from a cursor) and
//! answers with its counts, the same way for the Lambda and the CLI.

use super::book::{self, Issue};
use super::output::ReportSink;
use super::steps::{ChunkOutcome, StepContext};
use super::validate::{self, MappingCoverage};
use crate::error::{ConfigError, PortError};
use crate::legacy::LegacyError;
use crate::mappings::{self, RecordMapping};
use serde::{Deserialize, Serialize};
use sqlx::{MySqlPool, PgPool};
use std::collections::{BTreeMap, HashMap};

/// The migration steps this version runs, numbered as in the spec's 14-step order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// 1. Validate and report (dry run: writes nothing to the target).
    Validate,
    /// 2. DocumentType from document_library (Decision #7).
    DocumentTypes,
    /// 3. DocumentRiskProfile (+ its document types) from document_set (Decision #8).
    DocumentRiskProfiles,
    /// 4. RequirementsGroup (+ members) from the certificate and vendor combos (Decision #1).
    RequirementsGroups,
    /// 5. Import the file move's manifest so later steps can link files.
    Files,
    /// 6. Certificate (+ ManualOverride) with the full field mapping.
    Certificates,
    /// 7. Evaluation / EvaluationCoverage / EvaluationDetail from certificate_status (Decision #4).
    Evaluations,
    /// 8. Certificate.current_evaluation on the latest evaluated certificate per group (Decision #10).
    CurrentEvaluations,
    /// 9. Document with the field mapping and file fields (Decisions #6, #9, #12).
    Documents,
    /// 10. DocRequirement per (RequirementsGroup, DocumentType of its profile) (Decision #8).
    DocRequirements,
    /// 11. DocumentRequirementFulfillment linking each document to its DocRequirement (Decision #8).
    Fulfillments,
    /// 12. AuditHistory snapshots (optional: `all` runs it only when asked).
    AuditHistory,
    /// 13. The id mapping CSVs, the issues CSV and the report.
    ExportMappings,
    /// 14. The spec's validation of the loaded target.
    Verify,
}

impl Step {
    pub const ALL: [Step; 14] = [
        Step::Validate,
        Step::DocumentTypes,
        Step::DocumentRiskProfiles,
        Step::RequirementsGroups,
        Step::Files,
        Step::Certificates,
        Step::Evaluations,
        Step::CurrentEvaluations,
        Step::Documents,
        Step::DocRequirements,
        Step::Fulfillments,
        Step::AuditHistory,
        Step::ExportMappings,
        Step::Verify,
    ];

    pub fn number(self) -> u8 {
        match self {
            Step::Validate => 1,
            Step::DocumentTypes => 2,
            Step::DocumentRiskProfiles => 3,
            Step::RequirementsGroups => 4,
            Step::Files => 5,
            Step::Certificates => 6,
            Step::Evaluations => 7,
            Step::CurrentEvaluations => 8,
            Step::Documents => 9,
            Step::DocRequirements => 10,
            Step::Fulfillments => 11,
            Step::AuditHistory => 12,
            Step::ExportMappings => 13,
            Step::Verify => 14,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::DocumentTypes => "document-types",
            Step::DocumentRiskProfiles => "document-risk-profiles",
            Step::RequirementsGroups => "requirements-groups",
            Step::Files => "files",
            Step::Certificates => "certificates",
            Step::Evaluations => "evaluations",
            Step::CurrentEvaluations => "current-evaluations",
            Step::Documents => "documents",
            Step::DocRequirements => "doc-requirements",
            Step::Fulfillments => "fulfillments",
            Step::AuditHistory => "audit-history",
            Step::ExportMappings => "export-mappings",
            Step::Verify => "verify",
        }
    }

    /// Accepts the step's name or its spec number.
    pub fn parse(text: &str) -> Result<Step, String> {
        let text = text.trim();
        Step::ALL
            .into_iter()
            .find(|s| s.name() == text || s.number().to_string() == text)
            .ok_or_else(|| {
                let known: Vec<String> = Step::ALL.iter().map(|s| format!("{} ({})", s.name(), s.number())).collect();
                format!("unknown step {text:?}; this version runs: {}", known.join(", "))
            })
    }
}

/// The invocation payload: `{"step": "<name>", "dry_run": bool, "cursor": <opaque or null>}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadRequest {
    pub step: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub cursor: Option<serde_json::Value>,
    /// Stop after this many committed chunks, as if the deadline had come (bounded steps; the
    /// next invocation continues from the stored cursor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chunks: Option<u32>,
    /// Undo the step (`"all"`: every step) instead of running it: rehearsals (see `rollback`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

/// The answer: `{"step", "done", "cursor", "counts"}`; invoke again with `cursor` until done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadResponse {
    pub step: String,
    pub done: bool,
    pub cursor: Option<serde_json::Value>,
    pub counts: BTreeMap<String, u64>,
    /// Where the step's reports were written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    UnknownStep(String),
    #[error(transparent)]
    Legacy(#[from] LegacyError),
    #[error("target database: {0}")]
    Target(#[from] sqlx::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Port(#[from] PortError),
    /// A continuation came back without moving its cursor (see `drive`).
    #[error("step {step} made no progress from cursor {cursor:?}: one chunk does not fit in an invocation; lower the chunk size (CHUNK_ROWS)")]
    Stalled { step: String, cursor: Option<serde_json::Value> },
    /// The deployed loader function failed (see `remote`).
    #[error("loader function {function} failed ({kind}): {message}")]
    Remote { function: String, kind: String, message: String },
}

/// What a step reads besides the two databases.
enum StepInput {
    None,
    ManifestCsv(Vec<u8>),
}

/// The earlier areas' id mappings, as found in `MAPPINGS_DIR`.
#[derive(Debug, Clone, Default)]
pub struct LoaderMappings {
    pub accounts: HashMap<u64, String>,
    pub records: HashMap<u64, RecordMapping>,
    pub users: HashMap<u64, i64>,
    /// Present once Area 6 has run (phased linking of coi_risk_profile).
    pub coi_profiles: Option<HashMap<u64, i64>>,
    /// Mapping files that were not there.
    pub absent: Vec<&'static str>,
}

impl LoaderMappings {
    /// Reads every mapping file present; the accounts mapping is required, the others are
    /// reported as absent (a step that needs one refuses to run without it).
    pub async fn load(s3: &aws_sdk_s3::Client, dir: &str) -> Result<Self, ConfigError> {
        let mut m = LoaderMappings { accounts: mappings::load_accounts(s3, dir).await?, ..Default::default() };
        let read = |file: &'static str| async move {
            if mappings::mapping_exists(s3, dir, file).await? {
                Ok::<_, ConfigError>(Some(mappings::read_mapping_file(s3, dir, file).await?))
            } else {
                Ok(None)
            }
        };
        let origin = |file: &str| format!("{dir}/{file}");
        match read(mappings::RECORDS_FILE).await? {
            Some(text) => m.records = mappings::parse_records(&text, &origin(mappings::RECORDS_FILE))?,
            None => m.absent.push(mappings::RECORDS_FILE),
        }
        match read(mappings::USERS_FILE).await? {
            Some(text) => m.users = mappings::parse_users(&text, &origin(mappings::USERS_FILE))?,
            None => m.absent.push(mappings::USERS_FILE),
        }
        match read(mappings::COI_PROFILES_FILE).await? {
            Some(text) => m.coi_profiles = Some(mappings::parse_coi_profiles(&text, &origin(mappings::COI_PROFILES_FILE))?),
            None => m.absent.push(mappings::COI_PROFILES_FILE),
        }
        Ok(m)
    }
}

#[derive(Clone)]
pub struct Loader {
    pub legacy: MySqlPool,
    pub target: PgPool,
    pub mappings: LoaderMappings,
    pub reports: ReportSink,
    /// Legacy rows per chunk (one transaction each).
    pub chunk_rows: u32,
    /// The migrated files' bucket, for `verify` (every file field must name an object whose
    /// stored checksum matches). None: verify reports that check as not run, and fails.
    pub objects: Option<std::sync::Arc<dyn crate::ports::ObjectStore>>,
}

/// Time kept back before the Lambda deadline: a chunk commits within seconds, and Lambda may
/// kill a function shortly after its deadline.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

impl Loader {
    /// Runs (or continues) one step until it is done or `deadline` is near.
    pub async fn run(&self, request: &LoadRequest) -> Result<LoadResponse, LoadError> {
        self.run_until(request, None).await
    }

    pub async fn run_until(&self, request: &LoadRequest, deadline: Option<std::time::Instant>) -> Result<LoadResponse, LoadError> {
        if request.rollback {
            return self.rollback(request).await;
        }
        let step = Step::parse(&request.step).map_err(LoadError::UnknownStep)?;
        match step {
            Step::Validate => self.validate().await,
            Step::ExportMappings => super::export::run(self, request.dry_run).await,
            Step::Verify => super::verify::run(self, request.dry_run).await,
            _ => self.run_writing(step, request, deadline).await,
        }
    }

    /// A writing step: chunk after chunk, each in its own transaction (a dry run: all in one
    /// transaction, rolled back, so the target is left exactly as it was).
    async fn run_writing(&self, step: Step, request: &LoadRequest, deadline: Option<std::time::Instant>) -> Result<LoadResponse, LoadError> {
        crate::legacy::validate_schema(&self.legacy, crate::legacy::LEGACY_DDL, &crate::legacy::LOADER_TABLES).await?;
        book::ensure_schema(&self.target).await?;
        refresh_statistics(&self.target).await?;
        let name = step.name();
        let ctx = StepContext { legacy: &self.legacy, mappings: &self.mappings, step: name, now: chrono::Utc::now(), chunk_rows: self.chunk_rows, read_ahead: Default::default() };
        let input = self.step_input(step).await?;

        // Continue from the request's cursor, or from where a crashed run stopped.
        let stored: Option<(String, Option<serde_json::Value>, serde_json::Value)> =
            sqlx::query_as("SELECT status, cursor, counts FROM dtx_migration.step_run WHERE step = $1")
                .bind(name)
                .fetch_optional(&self.target)
                .await?;
        let resuming = !request.dry_run && (request.cursor.is_some() || stored.as_ref().is_some_and(|(s, c, _)| s == "running" && c.is_some()));
        let mut cursor = match (&request.cursor, &stored) {
            (Some(c), _) => Some(c.clone()),
            (None, Some((status, c, _))) if !request.dry_run && status == "running" => c.clone(),
            _ => None,
        };
        let mut totals: BTreeMap<String, u64> = match (&stored, resuming) {
            (Some((_, _, counts)), true) => serde_json::from_value(counts.clone()).unwrap_or_default(),
            _ => BTreeMap::new(),
        };
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut issues_seen: Vec<(String, Issue)> = Vec::new();
        let mut tx = self.target.begin().await?;
        book::step_started(&mut tx, name, request.dry_run).await?;
        let mut chunks = 0u32;
        let done = loop {
            let outcome = self.chunk(step, &ctx, &mut tx, cursor.clone(), &input).await?;
            book::record_issues(&mut tx, name, &outcome.issues).await?;
            for (k, v) in &outcome.counts {
                *counts.entry(k.clone()).or_default() += v;
                *totals.entry(k.clone()).or_default() += v;
            }
            *counts.entry("issues".into()).or_default() += outcome.issues.len() as u64;
            *totals.entry("issues".into()).or_default() += outcome.issues.len() as u64;
            issues_seen.extend(outcome.issues.into_iter().map(|i| (name.to_string(), i)));
            cursor = outcome.cursor;
            let done = cursor.is_none();
            let totals_json = serde_json::to_value(&totals).map_err(|e| PortError::permanent("step counts", e))?;
            book::step_progress(&mut tx, name, done, cursor.as_ref(), &totals_json).await?;
            if done || request.dry_run {
                if done {
                    break true;
                }
                continue;
            }
            // Commit the chunk, then stop before the deadline or go on in a new transaction.
            let finished = std::mem::replace(&mut tx, self.target.begin().await?);
            finished.commit().await?;
            chunks += 1;
            // The step's own inserts change the tables it reads as it goes.
            if chunks.is_multiple_of(STATISTICS_EVERY_CHUNKS) {
                refresh_statistics(&self.target).await?;
            }
            let out_of_chunks = request.max_chunks.is_some_and(|max| chunks >= max);
            if out_of_chunks || deadline.is_some_and(|d| std::time::Instant::now() + DEADLINE_MARGIN >= d) {
                break false;
            }
        };
        let mut outputs = Vec::new();
        if request.dry_run {
            tx.rollback().await?;
            outputs.push(self.reports.write(&format!("migration_issues_dry_run_{name}.csv"), book::render_issues_csv(&issues_seen)).await?);
        } else {
            // When paused, `tx` is the fresh, empty transaction opened after the last commit.
            tx.commit().await?;
            outputs.push(self.reports.write("migration_issues.csv", book::issues_csv(&self.target).await?).await?);
        }
        Ok(LoadResponse { step: name.into(), done, cursor: if done { None } else { cursor }, counts, outputs })
    }

    /// Undoes the requested steps (`"all"`, one step, or a comma-separated list), in one
    /// transaction; a dry run reports what would go and changes nothing.
    async fn rollback(&self, request: &LoadRequest) -> Result<LoadResponse, LoadError> {
        let steps = super::rollback::parse_steps(&request.step).map_err(LoadError::UnknownStep)?;
        let report = super::rollback::rollback(&self.target, &steps, request.dry_run).await?;
        let mut counts = report.counts();
        counts.insert("steps_rolled_back".into(), steps.len() as u64);
        Ok(LoadResponse { step: request.step.clone(), done: true, cursor: None, counts, outputs: Vec::new() })
    }

    /// Inputs a step needs beyond the databases.
    async fn step_input(&self, step: Step) -> Result<StepInput, LoadError> {
        Ok(match step {
            Step::Files => StepInput::ManifestCsv(self.reports.read("file_manifest.csv").await?.0),
            _ => StepInput::None,
        })
    }

    async fn chunk(
        &self,
        step: Step,
        ctx: &StepContext<'_>,
        tx: &mut sqlx::PgConnection,
        cursor: Option<serde_json::Value>,
        input: &StepInput,
    ) -> Result<ChunkOutcome, LoadError> {
        use super::steps::*;
        match (step, input) {
            (Step::DocumentTypes, _) => document_types::chunk(ctx, tx, cursor).await,
            (Step::DocumentRiskProfiles, _) => document_risk_profiles::chunk(ctx, tx, cursor).await,
            (Step::RequirementsGroups, _) => requirements_groups::chunk(ctx, tx, cursor).await,
            // The manifest imports whole, in one chunk.
            (Step::Files, StepInput::ManifestCsv(csv)) if cursor.is_none() => {
                let mut out = files::import(tx, ctx.legacy, csv).await?;
                // Account.logo from the just-imported manifest, in the same transaction.
                logos::link(ctx, tx, &mut out).await?;
                Ok(out)
            }
            (Step::Certificates, _) => certificates::chunk(ctx, tx, cursor).await,
            (Step::Evaluations, _) => evaluations::chunk(ctx, tx, cursor).await,
            (Step::CurrentEvaluations, _) => current_evaluations::chunk(ctx, tx, cursor).await,
            (Step::Documents, _) => documents::chunk(ctx, tx, cursor).await,
            (Step::DocRequirements, _) => doc_requirements::chunk(ctx, tx, cursor).await,
            (Step::Fulfillments, _) => fulfillments::chunk(ctx, tx, cursor).await,
            (Step::AuditHistory, _) => audit_history::chunk(ctx, tx, cursor).await,
            (step, _) => Err(LoadError::UnknownStep(format!("step {} cannot run from cursor {cursor:?}", step.name()))),
        }
    }

    async fn validate(&self) -> Result<LoadResponse, LoadError> {
        crate::legacy::validate_schema(&self.legacy, crate::legacy::LEGACY_DDL, &crate::legacy::LOADER_TABLES).await?;
        let coverage = MappingCoverage::from_maps(&self.mappings.accounts, &self.mappings.records, &self.mappings.users);
        let report = validate::build_report(&self.legacy, &coverage, self.manifest_bytes().await?).await?;
        let mut text = report.render_text();
        for absent in &self.mappings.absent {
            text.push_str(&format!("Mapping file not found in MAPPINGS_DIR: {absent}\n"));
        }
        let json = serde_json::to_vec_pretty(&report).map_err(|e| PortError::permanent("validate report", e))?;
        let outputs = vec![
            self.reports.write("migration_report.txt", text.into_bytes()).await?,
            self.reports.write("migration_report.json", json).await?,
        ];
        let counts = BTreeMap::from([
            ("certificates".to_string(), report.certificates.total),
            ("certificate_status_rows".to_string(), report.status_rows.total),
            ("documents".to_string(), report.documents.total),
            ("requirements_group_combos".to_string(), report.requirements_group_combos),
            ("issues_flagged".to_string(), report.issues.values().sum()),
            ("certificates_to_skip".to_string(), report.certificates_to_skip),
            ("documents_to_skip".to_string(), report.documents_to_skip),
        ]);
        Ok(LoadResponse { step: Step::Validate.name().into(), done: true, cursor: None, counts, outputs })
    }

    /// Bytes of stored files from the imported file manifest, when the `files` step has run
    /// (the bookkeeping table may not exist yet: then the size is unknown).
    async fn manifest_bytes(&self) -> Result<Option<u64>, LoadError> {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('dtx_migration.file_manifest')::text").fetch_one(&self.target).await?;
        if exists.is_none() {
            return Ok(None);
        }
        let bytes: Option<i64> = sqlx::query_scalar(
            "SELECT SUM(size)::BIGINT FROM dtx_migration.file_manifest WHERE status IN ('moved', 'deduplicated')",
        )
        .fetch_one(&self.target)
        .await?;
        Ok(bytes.map(|b| b.max(0) as u64))
    }
}

/// Chunks between two statistics refreshes within one invocation.
const STATISTICS_EVERY_CHUNKS: u32 = 10;

/// A table's statistics are refreshed once this many rows changed since its last ANALYZE...
const STATISTICS_STALE_ROWS: i64 = 1_000;
/// ...or this fraction of its live rows, whichever is more.
const STATISTICS_STALE_FRACTION: f64 = 0.1;

/// Refreshes the planner's statistics of the tables the steps read and write that changed
/// enough since they were last analyzed. Steps bulk-insert hundreds of thousands of rows and
/// the next step reads them at once, long before autovacuum analyzes them: with the statistics
/// of the empty table the planner picks nested loops over whole tables (measured: one
/// 5,000-certificate chunk of the evaluations step took 16 s instead of milliseconds, at 200K
/// certificates). ANALYZE changes no table's rows. Returns the tables analyzed.
/// Choice: only the tables with more than [`STATISTICS_STALE_ROWS`] and
/// [`STATISTICS_STALE_FRACTION`] of their rows changed since their last ANALYZE (or never
/// analyzed, with changes) are analyzed, as autovacuum would, only sooner: analyzing all of
/// them on every call took 14 of the 74 s of the loader benchmark at 50K certificates.
pub async fn refresh_statistics(target: &sqlx::PgPool) -> Result<Vec<String>, LoadError> {
    let mut tables: Vec<&str> = super::rollback::REGISTRY.iter().map(|r| r.table).collect();
    tables.extend(["dtx_migration.id_map", "dtx_migration.issue", "dtx_migration.file_manifest", "dtx_migration.prior_value"]);
    tables.sort_unstable();
    tables.dedup();
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables
         WHERE relid IN (SELECT to_regclass(t) FROM UNNEST($1::text[]) AS t) AND n_mod_since_analyze > 0
           AND (COALESCE(last_analyze, last_autoanalyze) IS NULL OR n_mod_since_analyze >= GREATEST($2, $3 * n_live_tup))
         ORDER BY 1",
    )
    .bind(&tables)
    .bind(STATISTICS_STALE_ROWS)
    .bind(STATISTICS_STALE_FRACTION)
    .fetch_all(target)
    .await?;
    if !stale.is_empty() {
        tracing::debug!(tables = %stale.join(", "), "refreshing planner statistics");
        sqlx::query(&format!("ANALYZE {}", stale.join(", "))).execute(target).await?;
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_by_name_or_number_and_unknown_ones_are_named() {
        assert_eq!(Step::parse("validate"), Ok(Step::Validate));
        assert_eq!(Step::parse(" 1 "), Ok(Step::Validate));
        assert_eq!(Step::parse("6"), Ok(Step::Certificates));
        assert_eq!(Step::parse("document-risk-profiles"), Ok(Step::DocumentRiskProfiles));
        let err = Step::parse("certificates-please").unwrap_err();
        assert!(err.contains("certificates-please") && err.contains("validate (1)") && err.contains("certificates (6)"), "{err}");
        let numbers: Vec<u8> = Step::ALL.iter().map(|s| s.number()).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "steps are listed in the spec's order");
        let request: LoadRequest = serde_json::from_str(r#"{"step":"validate"}"#).unwrap();
        assert!(!request.dry_run && request.cursor.is_none());
    }
}
