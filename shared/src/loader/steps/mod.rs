//! The writing steps. Each is a `chunk` function: it processes the rows after `cursor` (a
//! bounded amount of work) inside the transaction it is given, records the new rows in the
//! id map, returns the issues it found and the cursor to continue from. The runner commits
//! each chunk (or, for a dry run, rolls everything back at the end), persists the cursor,
//! and stops before the Lambda deadline; every chunk is an upsert keyed by the id map, so a
//! rerun or a resumed run converges on the same rows.

use super::book::Issue;
use super::runner::LoaderMappings;
use std::collections::BTreeMap;
pub mod evaluations;
pub mod current_evaluations;
pub mod document_risk_profiles;
pub mod document_types;
pub mod certificates;
pub mod requirements_groups;
pub mod files;
pub mod bulk;
pub mod documents;
pub mod doc_requirements;
pub mod fulfillments;
pub mod audit_history;
pub mod logos;

/// What a step reads besides the target transaction.
pub struct StepContext<'a> {
    pub legacy: &'a sqlx::MySqlPool,
    pub mappings: &'a LoaderMappings,
    /// The step's name, as recorded in the id map and the issues.
    pub step: &'static str,
    /// Stamped on `created`/`modified` of rows with no legacy time.
    pub now: chrono::DateTime<chrono::Utc>,
    /// Legacy rows per chunk.
    pub chunk_rows: u32,
    /// The next chunk's legacy rows, read while this chunk is written.
    pub read_ahead: bulk::ReadAhead,
}

/// The result of one chunk.
#[derive(Debug, Clone, Default)]
pub struct ChunkOutcome {
    pub counts: BTreeMap<String, u64>,
    pub issues: Vec<Issue>,
    /// Where the next chunk starts; None when the step is done.
    pub cursor: Option<serde_json::Value>,
}

impl ChunkOutcome {
    pub fn add(&mut self, counter: &str, n: u64) {
        *self.counts.entry(counter.to_string()).or_default() += n;
    }
}

/// The legacy id a keyset step continues after: 0 for no cursor, N for `{"after_id": N}`;
/// any other cursor is a configuration error naming `step`.
pub(crate) fn after_id(step: &str, cursor: Option<&serde_json::Value>) -> Result<u64, super::runner::LoadError> {
    let Some(c) = cursor else { return Ok(0) };
    c.get("after_id").and_then(serde_json::Value::as_u64).ok_or_else(|| {
        super::runner::LoadError::Config(crate::error::ConfigError(format!("{step}: bad cursor {c}, expected {{\"after_id\": N}}")))
    })
}
