//! The loader's `files` step through the runner: manifest import, coverage issues, dry run,
//! rerun.

use shared::loader::runner::{LoadRequest, LoaderMappings};
use shared::manifest::ManifestRecord;
use shared::message::LegacyIds;
use shared::model::{Area, FileStatus};
use tests::{MysqlFixture, PgFixture};

/// source_key, s3_key, size, original_filename, account_id, attachment_id
type ImportedRow = (String, Option<String>, Option<i64>, Option<String>, Option<i64>, Option<i64>);

fn row(key: &str, attachment: u64, status: FileStatus, size: u64) -> ManifestRecord {
    ManifestRecord {
        source_key: key.into(),
        area: Some(Area::Certificates),
        account_id: Some("501".into()),
        legacy_path: format!("/efsdata/attachments/certificate_management/1/{key}.pdf"),
        s3_key: status.is_stored().then(|| format!("org_501/certificates/{key}.pdf")),
        content_hash: status.is_stored().then(|| "ab".repeat(32)),
        size: status.is_stored().then_some(size),
        ids: LegacyIds { attachment_id: Some(attachment), certificate_id: Some(1), ..Default::default() },
        original_filename: "a, \"quoted\" name.pdf".into(),
        status: Some(status),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_manifest_imports_reports_uncovered_attachments_and_reruns_identically() {
    let legacy = MysqlFixture::with_legacy_schema().await;
    sqlx::query("INSERT INTO certificate (id, customer_id, attachment_id) VALUES (1, 1, 100), (2, 1, 101), (3, 1, 0), (4, 1, 102)")
        .execute(&legacy.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO document (id, customer_id, attachment_id) VALUES (7, 1, 103)").execute(&legacy.pool).await.unwrap();
    let target = PgFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("id_mapping_accounts.csv"), "old_customer_id,new_account_id\n1,501\n").unwrap();
    let mut csv = Vec::new();
    shared::manifest::write_csv(
        &[row("attachment:100", 100, FileStatus::Moved, 10), row("attachment:101", 101, FileStatus::Missing, 0), row("attachment:103", 103, FileStatus::Deduplicated, 5)],
        &mut csv,
    )
    .unwrap();
    std::fs::write(dir.path().join("file_manifest.csv"), &csv).unwrap();
    let s3 = shared::config::AwsClients::for_endpoint("http://127.0.0.1:1").await.s3;
    let mappings = LoaderMappings::load(&s3, dir.path().to_str().unwrap()).await.unwrap();
    let loader = tests::loader(&legacy, &target, mappings, dir.path(), 100);

    let before = target.table_counts().await;
    let dry = loader.run(&LoadRequest { step: "files".into(), dry_run: true, ..Default::default() }).await.unwrap();
    assert!(dry.done);
    assert_eq!(dry.counts["manifest_rows"], 3);
    assert_eq!(target.table_counts().await, before, "a dry run changed the target");
    let dry_issues = std::fs::read_to_string(dir.path().join("migration_issues_dry_run_files.csv")).unwrap();
    assert!(dry_issues.contains("certificate,4,files,attachment not in file manifest"), "{dry_issues}");

    let first = loader.run(&LoadRequest { step: "5".into(), dry_run: false, ..Default::default() }).await.unwrap();
    assert_eq!(first.counts["manifest_rows"], 3);
    assert_eq!(first.counts["status_moved"], 1);
    assert_eq!(first.counts["certificate_attachments_not_in_manifest"], 1, "certificate 4's attachment 102");
    assert_eq!(first.counts["document_attachments_not_in_manifest"], 0);
    let dump = || async {
        let rows: Vec<ImportedRow> = sqlx::query_as(
            "SELECT source_key, s3_key, size, original_filename, account_id, attachment_id FROM dtx_migration.file_manifest ORDER BY source_key",
        )
        .fetch_all(&target.pool)
        .await
        .unwrap();
        rows
    };
    let imported = dump().await;
    assert_eq!(imported.len(), 3);
    assert_eq!(imported[0].1.as_deref(), Some("org_501/certificates/attachment:100.pdf"));
    assert_eq!(imported[0].3.as_deref(), Some("a, \"quoted\" name.pdf"), "CSV quoting survives");
    assert_eq!(imported[1].2, None, "an empty CSV field is NULL");
    let status: (String, serde_json::Value) =
        sqlx::query_as("SELECT status, counts FROM dtx_migration.step_run WHERE step = 'files'").fetch_one(&target.pool).await.unwrap();
    assert_eq!(status.0, "done");
    assert_eq!(status.1["manifest_rows"], 3);
    let issues = std::fs::read_to_string(dir.path().join("migration_issues.csv")).unwrap();
    assert_eq!(issues.lines().count(), 2, "{issues}");

    let second = loader.run(&LoadRequest { step: "files".into(), dry_run: false, ..Default::default() }).await.unwrap();
    assert_eq!(second.counts, first.counts);
    assert_eq!(dump().await, imported);
    let n_issues: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dtx_migration.issue").fetch_one(&target.pool).await.unwrap();
    assert_eq!(n_issues, 1, "a rerun records each issue once");

    std::fs::write(dir.path().join("file_manifest.csv"), "wrong,header\n").unwrap();
    let err = loader.run(&LoadRequest { step: "files".into(), dry_run: false, ..Default::default() }).await.unwrap_err();
    assert!(err.to_string().contains("header"), "{err}");
    legacy.drop_database().await;
    target.drop_database().await;
}
