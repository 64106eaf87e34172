//! Step 8, `current-evaluations` (Decision #10): `docutrax_profiles_certificate.current_evaluation_id`
//! is set only on the most recent evaluated certificate of each RequirementsGroup, to that
//! certificate's Evaluation (id map `evaluation`, written by step 7), and cleared (NULL) on the
//! group's other migrated certificates, so a rerun after new data moves the pointer.
//!
//! Choice: one chunk, one set-based statement pair (a summary SELECT for the counts and issues,
//! then one UPDATE of the rows whose value differs): 200K certificates are one indexed join, and
//! a rerun on unchanged data writes nothing.
//! Choice: only the certificates in id map `certificate` (migrated) are read and written; a
//! certificate DTX 2.0 made itself is neither a candidate nor touched. The clearing is further
//! restricted to the id map entries this migration created (`created = true`).
//! Choice: "evaluated" means "has an Evaluation" (id map `evaluation` under the certificate's
//! legacy key, whose row exists and belongs to that certificate), not `status = 'evaluated'`:
//! the pointer must name an Evaluation, and a FINISHED certificate without status rows has none.
//! Choice: "most recent" is the Certificate's `created` (the legacy create_time); a tie goes to
//! the higher legacy certificate id (the later legacy row).

use super::{ChunkOutcome, StepContext};
use crate::loader::book::Issue;
use crate::loader::runner::LoadError;
use sqlx::PgConnection;

pub const STEP: &str = "current-evaluations";
/// Issue entity; legacy key = the requirements-groups step's key of the group.
pub const GROUP_ENTITY: &str = super::requirements_groups::GROUP_ENTITY;
pub const REASON_NO_EVALUATION: &str = "no evaluated certificate";

/// The migrated certificates, each with its group, legacy id, and Evaluation (or NULL).
const MIGRATED: &str = "migrated AS (
        SELECT c.id, c.requirements_group_id AS grp, c.created, mc.created AS ours, c.current_evaluation_id AS current,
               CASE WHEN mc.legacy_key ~ '^[0-9]{1,30}$' THEN mc.legacy_key::numeric END AS legacy_id, e.id AS evaluation_id
        FROM dtx_migration.id_map mc
        JOIN docutrax_profiles_certificate c ON c.id = mc.new_id
        LEFT JOIN dtx_migration.id_map me ON me.entity = 'evaluation' AND me.legacy_key = mc.legacy_key
        LEFT JOIN docutrax_profiles_evaluation e ON e.id = me.new_id AND e.certificate_id = c.id
        WHERE mc.entity = 'certificate'),
    latest AS (
        SELECT DISTINCT ON (grp) grp, id, evaluation_id FROM migrated WHERE evaluation_id IS NOT NULL
        ORDER BY grp, created DESC, legacy_id DESC NULLS LAST, id DESC)";

/// Sets the current evaluations (the whole step, one chunk).
pub async fn chunk(_ctx: &StepContext<'_>, tx: &mut PgConnection, _cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let mut out = ChunkOutcome::default();

    // Per group: how many migrated certificates, how many evaluated; the group's legacy key.
    let groups: Vec<(i64, Option<String>, i64, i64)> = sqlx::query_as(&format!(
        "WITH {MIGRATED}
         SELECT s.grp, (SELECT MIN(g.legacy_key) FROM dtx_migration.id_map g WHERE g.entity = $1 AND g.new_id = s.grp), s.n, s.evaluated
         FROM (SELECT grp, COUNT(*) AS n, COUNT(evaluation_id) AS evaluated FROM migrated GROUP BY grp) s ORDER BY s.grp"
    ))
    .bind(GROUP_ENTITY)
    .fetch_all(&mut *tx)
    .await?;
    out.add("groups", groups.len() as u64);
    for (grp, key, certificates, evaluated) in &groups {
        if *evaluated == 0 {
            // Choice: the issue's key is the group's id map key; a group the id map does not know
            // (made outside the migration) is keyed `id:<new id>`.
            let key = key.clone().unwrap_or_else(|| format!("id:{grp}"));
            out.issues.push(
                Issue::new(GROUP_ENTITY, key, REASON_NO_EVALUATION)
                    .with_detail(format!("requirements group {grp}: {certificates} migrated certificate(s), none has an evaluation")),
            );
        }
    }
    out.add("groups_without_evaluation", out.issues.len() as u64);

    // The pointer: the latest evaluated certificate gets its Evaluation, the group's other
    // certificates (made by this migration) get NULL; only differing rows are written.
    let changed: Vec<(i64, Option<i64>)> = sqlx::query_as(&format!(
        "WITH {MIGRATED},
         wanted AS (
             SELECT m.id, l.evaluation_id AS current FROM migrated m LEFT JOIN latest l ON l.id = m.id
             WHERE l.id IS NOT NULL OR m.ours)
         UPDATE docutrax_profiles_certificate c SET current_evaluation_id = w.current FROM wanted w
         WHERE c.id = w.id AND c.current_evaluation_id IS DISTINCT FROM w.current
         RETURNING c.id, w.current"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let set = changed.iter().filter(|(_, e)| e.is_some()).count() as u64;
    out.add("certificates_set_current", set);
    out.add("certificates_cleared", changed.len() as u64 - set);
    out.add("certificates_current", groups.iter().filter(|g| g.3 > 0).count() as u64);
    out.cursor = None;
    Ok(out)
}
