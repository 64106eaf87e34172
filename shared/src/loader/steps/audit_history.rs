//! Step 12 `audit-history` (optional, "for the compliance trail"): one
//! `docutrax_profiles_audithistory` row per migrated certificate, evaluation and document (id
//! map entities `certificate`, `evaluation`, `document`), holding a JSON snapshot of the target
//! row as the migration left it.
//!
//! A chunk takes the next `chunk_rows` id map entries of one kind (keyset on the new id; the
//! kinds in the order certificate, evaluation, document), resolves their AuditHistory ids through
//! the id map (entity `audit_history`, legacy key `<content_type>:<new object id>`), and writes
//! with one INSERT ... SELECT and one UPDATE ... FROM that build the snapshots in SQL from the
//! target rows themselves.
//!
//! Cursor: `{"content_type": "certificate" | "evaluation" | "document", "after_id": <new object id>}`.
//!
//! Choice: `content_type` is the DTX 2.0 model name in lower case (`certificate`, `evaluation`,
//! `document`), as Django's ContentType.model spells it.
//! Choice: the snapshot is `to_jsonb(<target row>)` (every column, under its column name) plus
//! one key `migration`: `{"legacy_id": <the id map's legacy key: the legacy certificate id for a
//! certificate and its evaluation, the legacy document id for a document; a number when
//! numeric>, "step": <the loader step that wrote the row>, "source": "dtx-1.0-migration"}`.
//! Timestamps in the snapshot are rendered in UTC (the chunk sets its transaction's time zone),
//! so the snapshot does not depend on the session's settings.
//! Choice: `created` is the time the snapshot was first taken (`ctx.now` of that run); a rerun
//! keeps it and rewrites `snapshot` only where it differs (e.g. a later step changed the row),
//! so a rerun on an unchanged target leaves the table byte-identical.
//! Choice: every id map entry is snapshotted, also a reused DTX 2.0 row (created = false): it is
//! a migrated record all the same. An entry whose target row is gone gets no snapshot and is
//! flagged; an AuditHistory row whose object has gone is left (removing rows is the undo's job).
//! Choice: when several legacy keys map to the same new row (not expected), one snapshot is
//! taken, with the shortest, then lowest, legacy key.

use super::{bulk, ChunkOutcome, StepContext};
use crate::error::ConfigError;
use crate::loader::book::{self, Issue};
use crate::loader::runner::LoadError;
use serde::Serialize;
use sqlx::PgConnection;

pub const STEP: &str = "audit-history";
/// id map entity; legacy key `<content_type>:<new object id>`.
pub const ENTITY: &str = "audit_history";
pub const TABLE: &str = "docutrax_profiles_audithistory";
/// `migration.source` of every snapshot.
pub const SOURCE: &str = "dtx-1.0-migration";
/// (content_type, id map entity of the object, its table), in the order the step runs them.
pub const OBJECTS: [(&str, &str, &str); 3] = [
    ("certificate", super::certificates::ENTITY, "docutrax_profiles_certificate"),
    ("evaluation", super::evaluations::EVALUATION_ENTITY, "docutrax_profiles_evaluation"),
    ("document", "document", "docutrax_profiles_document"),
];

pub const REASON_NOT_IN_TARGET: &str = "migrated row not found (no audit snapshot)";

/// One snapshot to write, as the SQL reads it through `jsonb_to_recordset`.
#[derive(Debug, Clone, Serialize)]
struct Snapshot {
    id: i64,
    object_id: i64,
    legacy_key: String,
    step: String,
}

const SNAPSHOT_RECORD: &str = "t(id bigint, object_id bigint, legacy_key text, step text)";

/// The snapshot of the object row `o` for the record `t`.
fn snapshot_sql() -> String {
    "to_jsonb(o) || jsonb_build_object('migration', jsonb_build_object(
         'legacy_id', CASE WHEN t.legacy_key ~ '^[0-9]{1,18}$' THEN to_jsonb(t.legacy_key::bigint) ELSE to_jsonb(t.legacy_key) END,
         'step', t.step, 'source', $3::text))"
        .to_string()
}

fn parse_cursor(cursor: Option<&serde_json::Value>) -> Result<(usize, i64), LoadError> {
    let Some(c) = cursor else {
        return Ok((0, 0));
    };
    let bad = || LoadError::Config(ConfigError(format!("{STEP}: bad cursor {c}, expected {{\"content_type\": \"certificate\", \"after_id\": N}}")));
    let kind = c.get("content_type").and_then(|v| v.as_str()).ok_or_else(bad)?;
    let phase = OBJECTS.iter().position(|(ct, _, _)| *ct == kind).ok_or_else(bad)?;
    let after = c.get("after_id").and_then(|v| v.as_i64()).ok_or_else(bad)?;
    Ok((phase, after))
}

/// Snapshots the next `chunk_rows` migrated objects of the cursor's kind.
pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let (phase, after_id) = parse_cursor(cursor.as_ref())?;
    let (content_type, entity, table) = OBJECTS[phase];
    let mut out = ChunkOutcome::default();
    sqlx::query("SET LOCAL TIME ZONE 'UTC'").execute(&mut *tx).await?;

    let limit = i64::from(ctx.chunk_rows.max(1));
    let mapped: Vec<(i64, String, String, bool)> = sqlx::query_as(&format!(
        "SELECT DISTINCT ON (m.new_id) m.new_id, m.legacy_key, m.step, o.id IS NOT NULL
         FROM dtx_migration.id_map m LEFT JOIN {table} o ON o.id = m.new_id
         WHERE m.entity = $1 AND m.new_id > $2
         ORDER BY m.new_id, length(m.legacy_key), m.legacy_key COLLATE \"C\" LIMIT $3"
    ))
    .bind(entity)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;

    let mut snapshots: Vec<Snapshot> = Vec::with_capacity(mapped.len());
    for (object_id, legacy_key, step, exists) in &mapped {
        if *exists {
            snapshots.push(Snapshot { id: 0, object_id: *object_id, legacy_key: legacy_key.clone(), step: step.clone() });
        } else {
            out.issues.push(
                Issue::new(content_type, legacy_key, REASON_NOT_IN_TARGET).with_detail(format!("id map {entity} {legacy_key} -> {table} id {object_id}")),
            );
        }
    }
    out.add(&format!("{content_type}_not_in_target"), out.issues.len() as u64);

    let keys: Vec<String> = snapshots.iter().map(|s| format!("{content_type}:{}", s.object_id)).collect();
    let ids = bulk::resolve_ids(tx, TABLE, ENTITY, &keys).await?;
    for (s, key) in snapshots.iter_mut().zip(&keys) {
        s.id = ids.id(key)?;
    }
    let (updates, inserts): (Vec<Snapshot>, Vec<Snapshot>) = snapshots.into_iter().partition(|s| ids.present.contains(&s.id));
    let snapshot = snapshot_sql();
    let to_json = |rows: &[Snapshot]| serde_json::to_string(rows).map_err(|e| bulk::internal("snapshots to JSON", e));
    let created = if inserts.is_empty() {
        0
    } else {
        sqlx::query(&format!(
            "INSERT INTO {TABLE} (id, content_type, object_id, snapshot, created)
             SELECT t.id, $2, t.object_id, {snapshot}, $4
             FROM jsonb_to_recordset($1::jsonb) AS {SNAPSHOT_RECORD} JOIN {table} o ON o.id = t.object_id ORDER BY t.id"
        ))
        .bind(to_json(&inserts)?)
        .bind(content_type)
        .bind(SOURCE)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    };
    let updated = if updates.is_empty() {
        0
    } else {
        sqlx::query(&format!(
            "UPDATE {TABLE} AS a SET content_type = $2::text, object_id = s.object_id, snapshot = s.snapshot
             FROM (SELECT t.id, t.object_id, {snapshot} AS snapshot
                   FROM jsonb_to_recordset($1::jsonb) AS {SNAPSHOT_RECORD} JOIN {table} o ON o.id = t.object_id) s
             WHERE a.id = s.id AND (a.content_type::text, a.object_id, a.snapshot) IS DISTINCT FROM ($2::text, s.object_id, s.snapshot)"
        ))
        .bind(to_json(&updates)?)
        .bind(content_type)
        .bind(SOURCE)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    };
    book::map_fresh_ids(tx, ENTITY, ctx.step, &ids.new_pairs).await?;
    out.add(&format!("{content_type}_snapshots_created"), created);
    out.add(&format!("{content_type}_snapshots_updated"), updated);
    out.add(&format!("{content_type}_snapshots_unchanged"), (updates.len() as u64).saturating_sub(updated));

    out.cursor = match mapped.last() {
        Some((last, ..)) if mapped.len() as i64 == limit => Some(serde_json::json!({ "content_type": content_type, "after_id": last })),
        _ => OBJECTS.get(phase + 1).map(|(next, _, _)| serde_json::json!({ "content_type": next, "after_id": 0 })),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_name_the_kind_and_the_last_object() {
        assert_eq!(parse_cursor(None).unwrap(), (0, 0));
        assert_eq!(parse_cursor(Some(&serde_json::json!({"content_type": "document", "after_id": 42}))).unwrap(), (2, 42));
        assert!(parse_cursor(Some(&serde_json::json!({"content_type": "vendor", "after_id": 1}))).is_err());
        assert!(parse_cursor(Some(&serde_json::json!({"after_id": 1}))).is_err());
    }
}
