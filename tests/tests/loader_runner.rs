//! The step runner itself: a dry run leaves the target byte-for-byte unchanged, a run stopped
//! in the middle of a step and resumed equals an uninterrupted run, and reruns change nothing.

use shared::loader::runner::{LoadRequest, LoadResponse, Loader, LoaderMappings};
use tests::{MysqlFixture, PgFixture};

async fn legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    for sql in [
        "INSERT INTO document_library (id, customer_id, name, create_time) VALUES
            (1, 1, 'W-9', '2019-01-01'), (2, 2, 'w-9 ', '2019-02-01'), (3, 1, 'Good Standing', '2019-03-01'), (4, 2, 'Lien Waiver', '2019-04-01')",
        "INSERT INTO document (id, customer_id, document_library_id) VALUES (10, 1, 1), (11, 1, 3), (12, 2, 2), (13, 2, 4)",
        "INSERT INTO document_set (id, customer_id, name, create_time) VALUES
            (20, 1, 'Standard', '2020-01-01'), (21, 1, 'Light', '2020-01-02'), (22, 2, 'Subs', '2020-01-03'), (23, 9, 'Unmapped', '2020-01-04')",
        "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES
            (1, 20, 10), (2, 20, 11), (3, 21, 11), (4, 22, 12), (5, 22, 13), (6, 23, 10)",
    ] {
        sqlx::query(sql).execute(&db.pool).await.unwrap();
    }
    db
}

async fn target() -> PgFixture {
    let t = PgFixture::new().await;
    sqlx::query("INSERT INTO docutrax_accounts_account (id, name) VALUES (501, 'One'), (502, 'Two')").execute(&t.pool).await.unwrap();
    t
}

fn loader(legacy: &MysqlFixture, target: &PgFixture, reports: &std::path::Path) -> Loader {
    let mut mappings = LoaderMappings::default();
    mappings.accounts.insert(1, "501".into());
    mappings.accounts.insert(2, "502".into());
    tests::loader(legacy, target, mappings, reports, 1)
}

/// Every row of the tables these steps write, in a stable text form.
async fn dump(t: &PgFixture) -> String {
    let mut out = String::new();
    for table in [
        "docutrax_profiles_documenttype",
        "docutrax_profiles_documentriskprofile",
        "docutrax_profiles_documentriskprofiledocumenttype",
        "dtx_migration.id_map",
        "dtx_migration.issue",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT (to_jsonb(t) - 'created_at')::text FROM {table} t ORDER BY 1"
        ))
        .fetch_all(&t.pool)
        .await
        .unwrap();
        out.push_str(&format!("{table}\n{}\n", rows.join("\n")));
    }
    out
}

async fn run(l: &Loader, step: &str, dry_run: bool, max_chunks: Option<u32>) -> LoadResponse {
    l.run(&LoadRequest { step: step.into(), dry_run, cursor: None, max_chunks, ..Default::default() }).await.unwrap_or_else(|e| panic!("{step}: {e}"))
}

#[tokio::test]
async fn dry_run_changes_nothing_and_an_interrupted_step_resumes_to_the_same_result() {
    let legacy = legacy().await;
    let reports = tempfile::tempdir().unwrap();

    // Uninterrupted reference run.
    let reference = target().await;
    let l = loader(&legacy, &reference, reports.path());
    assert!(run(&l, "document-types", false, None).await.done);
    let full = run(&l, "3", false, None).await;
    assert!(full.done);
    assert_eq!(full.counts["profiles_created"], 3);
    let expected = dump(&reference).await;
    assert!(expected.contains("Standard") && !expected.contains("Unmapped\""), "{expected}");

    // Dry run on a fresh target: the step runs in full, then everything rolls back. (Its own
    // database: PostgreSQL sequences are not transactional, so ids a dry run drew stay used.)
    let dry_target = target().await;
    let l3 = loader(&legacy, &dry_target, reports.path());
    assert!(run(&l3, "document-types", false, None).await.done);
    let before_dry = dump(&dry_target).await;
    let dry = run(&l3, "document-risk-profiles", true, None).await;
    assert!(dry.done);
    assert_eq!(dry.counts["profiles_created"], 3, "the dry run counts what it would do");
    assert_eq!(dump(&dry_target).await, before_dry, "a dry run changed the target");
    assert!(reports.path().join("migration_issues_dry_run_document-risk-profiles.csv").exists());
    dry_target.drop_database().await;

    let interrupted = target().await;
    let l2 = loader(&legacy, &interrupted, reports.path());
    assert!(run(&l2, "document-types", false, None).await.done);

    // Stopped after one chunk (as at a Lambda deadline, or killed), then resumed with no cursor.
    let first = run(&l2, "document-risk-profiles", false, Some(1)).await;
    assert!(!first.done);
    assert!(first.cursor.is_some());
    let status: String = sqlx::query_scalar("SELECT status FROM dtx_migration.step_run WHERE step = 'document-risk-profiles'")
        .fetch_one(&interrupted.pool)
        .await
        .unwrap();
    assert_eq!(status, "running");
    let rest = run(&l2, "document-risk-profiles", false, None).await;
    assert!(rest.done);
    assert!(rest.counts["sets_read"] < full.counts["sets_read"], "the resumed run did not start over");
    assert_eq!(dump(&interrupted).await, expected, "interrupted + resumed differs from uninterrupted");

    // A rerun of finished steps changes nothing.
    run(&l2, "document-types", false, None).await;
    run(&l2, "document-risk-profiles", false, None).await;
    assert_eq!(dump(&interrupted).await, expected);
    let issues = std::fs::read_to_string(reports.path().join("migration_issues.csv")).unwrap();
    assert!(issues.starts_with("entity,legacy_id,step,reason,detail"), "{issues}");
    assert!(issues.contains("document_set,23,document-risk-profiles"), "{issues}");

    legacy.drop_database().await;
    reference.drop_database().await;
    interrupted.drop_database().await;
}

/// Waits until PostgreSQL's statistics say `table` has `n` changes since its last ANALYZE
/// (backends report their counts shortly after each transaction, not at once).
async fn await_changes(t: &PgFixture, table: &str, n: i64) {
    for _ in 0..300 {
        let changed: Option<i64> = sqlx::query_scalar("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relid = $1::regclass")
            .bind(table)
            .fetch_optional(&t.pool)
            .await
            .unwrap();
        if changed == Some(n) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{table}: the statistics never showed {n} changes");
}

#[tokio::test]
async fn statistics_are_refreshed_only_for_tables_that_changed_enough() {
    use shared::loader::runner::refresh_statistics;
    let t = target().await;
    shared::loader::book::ensure_schema(&t.pool).await.unwrap();
    const TYPES: &str = "public.docutrax_profiles_documenttype";
    let insert_types = |from: i64, to: i64| {
        format!("INSERT INTO docutrax_profiles_documenttype (id, name, created, modified) SELECT i, 'type ' || i, now(), now() FROM generate_series({from}, {to}) i")
    };
    sqlx::query(&insert_types(1, 5)).execute(&t.pool).await.unwrap();
    await_changes(&t, TYPES, 5).await;
    // Never analyzed and changed: analyzed, however few the changes. Unchanged tables are not.
    let first = refresh_statistics(&t.pool).await.unwrap();
    assert!(first.contains(&TYPES.to_string()), "{first:?}");
    assert!(!first.iter().any(|t| t.ends_with("docutrax_profiles_evaluationdetail")), "an untouched table is not analyzed: {first:?}");
    await_changes(&t, TYPES, 0).await;

    // 999 changes since: below the 1,000-row threshold, left alone.
    sqlx::query(&insert_types(6, 1004)).execute(&t.pool).await.unwrap();
    await_changes(&t, TYPES, 999).await;
    let second = refresh_statistics(&t.pool).await.unwrap();
    assert!(!second.contains(&TYPES.to_string()), "{second:?}");

    // One more makes 1,000 (more than 10% of the table): analyzed, and the count starts over.
    sqlx::query(&insert_types(1005, 1005)).execute(&t.pool).await.unwrap();
    await_changes(&t, TYPES, 1000).await;
    let third = refresh_statistics(&t.pool).await.unwrap();
    assert_eq!(third, vec![TYPES.to_string()]);
    await_changes(&t, TYPES, 0).await;
    assert_eq!(refresh_statistics(&t.pool).await.unwrap(), Vec::<String>::new());
    t.drop_database().await;
}
