//! Step 5, `files`: imports the file move's `file_manifest.csv` into
//! `dtx_migration.file_manifest`, so the certificate and document steps can join on it, and
//! reports coverage: every attachment a certificate or document references must have a row.

use super::ChunkOutcome;
use crate::legacy::LegacyError;
use crate::loader::book::Issue;
use crate::loader::runner::LoadError;
use sqlx::{MySqlPool, PgConnection, Row};
use std::collections::HashSet;

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
