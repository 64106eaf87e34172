//! The step runner: one invocation runs one named step (or continues it from a cursor) and
//! answers with its counts, the same way for the Lambda and the CLI.

use super::output::ReportSink;
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
}

impl Step {
    pub const ALL: [Step; 1] = [Step::Validate];

    pub fn number(self) -> u8 {
        match self {
            Step::Validate => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Validate => "validate",
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

pub struct Loader {
    pub legacy: MySqlPool,
    pub target: PgPool,
    pub mappings: LoaderMappings,
    pub reports: ReportSink,
}

impl Loader {
    /// Runs (or continues) one step.
    pub async fn run(&self, request: &LoadRequest) -> Result<LoadResponse, LoadError> {
        let step = Step::parse(&request.step).map_err(LoadError::UnknownStep)?;
        match step {
            Step::Validate => self.validate().await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_by_name_or_number_and_unknown_ones_are_named() {
        assert_eq!(Step::parse("validate"), Ok(Step::Validate));
        assert_eq!(Step::parse(" 1 "), Ok(Step::Validate));
        let err = Step::parse("certificates-please").unwrap_err();
        assert!(err.contains("certificates-please") && err.contains("validate (1)"), "{err}");
        let request: LoadRequest = serde_json::from_str(r#"{"step":"validate"}"#).unwrap();
        assert!(!request.dry_run && request.cursor.is_none());
    }
}
