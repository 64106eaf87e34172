//! Step 5, `files`: imports the file move's `file_manifest.csv` into
//! `dtx_migration.file_manifest`, so the certificate and document steps can join on it, and
//! reports coverage: every attachment a certificate or document references must have a row.

use super::ChunkOutcome;
use crate::legacy::LegacyError;
use crate::loader::book::Issue;
use crate::loader::runner::LoadError;
use sqlx::{MySqlPool, PgConnection, Row};
use std::collections::{HashMap, HashSet};

/// Replaces the imported manifest with `csv` (the whole export: a re-import reflects the
/// manifest as it is now) and checks which referenced attachments it lacks.
pub async fn import(tx: &mut PgConnection, legacy: &MySqlPool, csv: &[u8]) -> Result<ChunkOutcome, LoadError> {
    let header = csv.split(|b| *b == b'\n').next().unwrap_or_default();
    let expected = crate::manifest::CSV_HEADER.join(",");
    if String::from_utf8_lossy(header).trim_end() != expected {
        return Err(LoadError::Config(crate::error::ConfigError(format!(
            "file_manifest.csv header is {:?}, expected {expected:?} (export it with `dtx-migrate manifest export`)",
            String::from_utf8_lossy(header)
        ))));
    }
    sqlx::query("CREATE TEMP TABLE file_manifest_import (LIKE dtx_migration.file_manifest) ON COMMIT DROP")
        .execute(&mut *tx)
        .await?;
    let mut copy = tx.copy_in_raw("COPY file_manifest_import FROM STDIN WITH (FORMAT csv, HEADER MATCH)").await?;
    copy.send(csv).await?;
    let rows = copy.finish().await?;
    sqlx::query("DELETE FROM dtx_migration.file_manifest").execute(&mut *tx).await?;
    sqlx::query("INSERT INTO dtx_migration.file_manifest SELECT * FROM file_manifest_import").execute(&mut *tx).await?;

    let mut out = ChunkOutcome::default();
    out.add("manifest_rows", rows);
    let by_status: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM dtx_migration.file_manifest GROUP BY 1 ORDER BY 1").fetch_all(&mut *tx).await?;
    for (status, n) in by_status {
        out.add(&format!("status_{}", status.unwrap_or_else(|| "unknown".into())), n.max(0) as u64);
    }
    let stored: HashSet<i64> = sqlx::query_scalar(
        "SELECT DISTINCT attachment_id FROM dtx_migration.file_manifest WHERE attachment_id IS NOT NULL",
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    for table in ["certificate", "document"] {
        let rows = sqlx::query(&format!(
            "SELECT CAST(id AS UNSIGNED) AS id, CAST(attachment_id AS UNSIGNED) AS attachment_id FROM {table}
             WHERE attachment_id IS NOT NULL AND attachment_id <> 0 ORDER BY id"
        ))
        .fetch_all(legacy)
        .await
        .map_err(LegacyError::from)?;
        let mut uncovered = 0;
        for row in rows {
            let id: u64 = row.try_get("id").map_err(LegacyError::from)?;
            let attachment: u64 = row.try_get("attachment_id").map_err(LegacyError::from)?;
            if !stored.contains(&(attachment as i64)) {
                uncovered += 1;
                out.issues.push(
                    Issue::new(table, id, "attachment not in file manifest")
                        .with_detail(format!("attachment_id {attachment} has no row in file_manifest.csv")),
                );
            }
        }
        out.add(&format!("{table}_attachments_not_in_manifest"), uncovered);
    }
    Ok(out)
}

/// What the file manifest holds for one attachment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ManifestRow {
    pub attachment_id: i64,
    pub source_key: String,
    pub status: Option<String>,
    pub s3_key: Option<String>,
    pub original_filename: Option<String>,
    pub content_hash: Option<String>,
    pub file_uid: Option<String>,
}

/// The imported manifest rows of `attachment_ids`, by attachment id, lowest source_key (byte
/// order) first, as `pick_file` expects.
pub(crate) async fn manifest_rows_for_attachments(
    tx: &mut PgConnection,
    attachment_ids: &[i64],
) -> Result<HashMap<i64, Vec<ManifestRow>>, sqlx::Error> {
    let mut manifest: HashMap<i64, Vec<ManifestRow>> = HashMap::new();
    if attachment_ids.is_empty() {
        return Ok(manifest);
    }
    let rows: Vec<ManifestRow> = sqlx::query_as(
        "SELECT attachment_id, source_key, status, s3_key, original_filename, content_hash, file_uid
         FROM dtx_migration.file_manifest WHERE attachment_id = ANY($1) ORDER BY attachment_id, source_key COLLATE \"C\"",
    )
    .bind(attachment_ids)
    .fetch_all(&mut *tx)
    .await?;
    for row in rows {
        manifest.entry(row.attachment_id).or_default().push(row);
    }
    Ok(manifest)
}

/// The stored file of an attachment (its manifest rows as `manifest_rows_for_attachments`
/// returns them), or the issue detail why there is none.
/// Choice: when several stored manifest rows share the attachment_id (an `attachment:N` row and
/// a `repo_file:M` row for the same file), the one with the lowest source_key (byte order) is
/// used: `attachment:…` sorts before `repo_file:…`, so the attachment's own row wins.
/// Choice: a stored row without an s3_key does not count as stored.
pub(crate) fn pick_file(attachment_id: u64, rows: Option<&Vec<ManifestRow>>) -> Result<&ManifestRow, String> {
    let rows = rows.map(Vec::as_slice).unwrap_or_default();
    let stored = |r: &&ManifestRow| {
        matches!(r.status.as_deref(), Some("moved" | "deduplicated")) && r.s3_key.as_deref().is_some_and(|k| !k.trim().is_empty())
    };
    if let Some(row) = rows.iter().find(stored) {
        return Ok(row);
    }
    if rows.is_empty() {
        return Err(format!("attachment_id {attachment_id}: no file manifest row (missing)"));
    }
    let statuses: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.source_key, r.status.as_deref().unwrap_or("(no status)")))
        .collect();
    Err(format!("attachment_id {attachment_id}: {}", statuses.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_stored_manifest_row_is_picked() {
        let row = |k: &str, s: Option<&str>, key: Option<&str>| ManifestRow {
            attachment_id: 5,
            source_key: k.into(),
            status: s.map(String::from),
            s3_key: key.map(String::from),
            original_filename: None,
            content_hash: None,
            file_uid: None,
        };
        let rows = vec![row("attachment:5", Some("missing"), None), row("repo_file:1", Some("deduplicated"), Some("k1")), row("repo_file:2", Some("moved"), Some("k2"))];
        assert_eq!(pick_file(5, Some(&rows)).unwrap().source_key, "repo_file:1");
        assert_eq!(pick_file(5, None).unwrap_err(), "attachment_id 5: no file manifest row (missing)");
        let rows = vec![row("attachment:5", Some("failed"), None), row("repo_file:1", None, None), row("repo_file:3", Some("moved"), None)];
        assert_eq!(pick_file(5, Some(&rows)).unwrap_err(), "attachment_id 5: attachment:5 failed, repo_file:1 (no status), repo_file:3 moved");
    }
}
