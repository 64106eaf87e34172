//! Step 9 `documents` on crafted legacy rows: every field mapping (each Decision #6 status
//! spelling and unknown ones, Decision #9 parents present / missing / nameless, Decision #12
//! DocuSign templates), the file links from the manifest (stored, missing, unlisted, unusable),
//! every skipped or flagged case (missing customer / vendor mapping, mapped ids absent from the
//! target, unmapped user, zero and invalid dates, invalid UTF-8, NUL, overlong text), chunking,
//! reruns that leave every table identical, a dry run through the runner that changes nothing,
//! and a run stopped after one chunk that resumes to the same tables as an uninterrupted one.

use serde_json::{json, Value};
use shared::loader::book::Issue;
use shared::loader::runner::{LoadError, LoadRequest, LoadResponse, LoaderMappings};
use shared::loader::steps::documents as step;
use shared::loader::steps::StepContext;
use shared::mappings::RecordMapping;
use std::collections::{BTreeMap, HashMap};
use tests::{MysqlFixture, PgFixture};

type Time = chrono::DateTime<chrono::Utc>;

fn at(text: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

const NOW1: &str = "2030-01-02T03:04:05Z";
const NOW2: &str = "2031-06-07T08:09:10Z";

/// Sixteen documents: 1-9 and 16 migrate, 10-15 are skipped.
async fn crafted_legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    db.execute_all([
        // A live comments column whose bytes are not UTF-8 (latin1), a name column wider than
        // DTX 2.0's; zero dates and partial dates ('2019-04-00') need a lax session.
        "ALTER TABLE document MODIFY comments TEXT CHARACTER SET latin1 NULL".to_string(),
        "ALTER TABLE document MODIFY name VARCHAR(400) NULL".into(),
        "SET SESSION sql_mode = ''".into(),
        // 1: every field, a stored file (two manifest rows), a mapped user, dropped fields set.
        "INSERT INTO document (id, customer_id, vendor_id, attachment_id, name, create_time, update_time, expiration_date, comments,
            document_status, document_library_id, reviewer_id, user_id, source_coi, source_broker, source_insured, send_sample,
            next_review_level, review_status, review_status_date, review_period) VALUES
            (1, 1, 10, 100, ' W-9 2019 ', '2019-01-02 03:04:05', '2019-02-03 04:05:06', '2020-01-01', ' signed copy ',
            '0', 5, 77, 50, 1, 0, 0, 1, 'L1', 'APPROVED', '2019-01-05 00:00:00', 30)"
            .to_string(),
        // 2: lower-case "new"; a file the move could not find; an unmapped user; no update_time.
        "INSERT INTO document (id, customer_id, vendor_id, attachment_id, user_id, document_status, create_time) VALUES
            (2, 1, 10, 101, 51, 'new', '2019-05-01 00:00:00')"
            .into(),
        // 3: no name; NOT_PROVIDED; an attachment without manifest row; a user mapped to no target user.
        "INSERT INTO document (id, customer_id, vendor_id, attachment_id, user_id, document_status, create_time) VALUES
            (3, 2, 11, 102, 52, 'NOT_PROVIDED', '2019-06-01 00:00:00')"
            .into(),
        // 4: reviewed (padded) with comments and a parent that exists; attachment 0 is none.
        "INSERT INTO document (id, customer_id, vendor_id, attachment_id, document_status, comments, parent_document_id, create_time) VALUES
            (4, 1, 10, 0, ' reviewed ', 'see parent', 1, '2019-07-01 00:00:00')"
            .into(),
        // 5: APPROVED; a parent with no legacy row; a DocuSign template.
        "INSERT INTO document (id, customer_id, vendor_id, document_status, parent_document_id, docusign_template_id, create_time) VALUES
            (5, 1, 10, 'APPROVED', 999, ' abc-123 ', '2019-08-01 00:00:00')"
            .into(),
        // 6: Rejected; a parent without name; zero create_time (update_time used) and expiration.
        "INSERT INTO document (id, customer_id, vendor_id, document_status, parent_document_id, create_time, update_time, expiration_date) VALUES
            (6, 1, 10, 'Rejected', 3, '0000-00-00 00:00:00', '2021-06-01 10:00:00', '0000-00-00')"
            .into(),
        // 7: an unknown numeric code; no times at all.
        "INSERT INTO document (id, customer_id, vendor_id, document_status) VALUES (7, 1, 10, '3')".into(),
        // 8: NULL status; a partial date.
        "INSERT INTO document (id, customer_id, vendor_id, create_time, expiration_date) VALUES (8, 1, 10, '2022-01-01 00:00:00', '2019-04-00')"
            .into(),
        // 9: latin1 'Café' in comments, a NUL in the name; PROVIDED (not a Decision #6 document value).
        "INSERT INTO document (id, customer_id, vendor_id, name, comments, document_status, create_time) VALUES
            (9, 2, 11, X'410042', X'436166E9', 'PROVIDED', '2023-01-01 00:00:00')"
            .into(),
        // 10: customer without account mapping; 11: neither customer nor vendor; 12: account
        // mapping not numeric; 13: account not in the target.
        "INSERT INTO document (id, customer_id, vendor_id, document_status, create_time) VALUES
            (10, 99, 10, '0', '2019-01-01'), (11, NULL, 0, '0', '2019-01-01'), (12, 3, 10, '0', '2019-01-01'), (13, 4, 10, '0', '2019-01-01')"
            .into(),
        // 14: vendor without record mapping (its template and status are not flagged: skipped);
        // 15: record not in the target.
        "INSERT INTO document (id, customer_id, vendor_id, document_status, docusign_template_id, create_time) VALUES
            (14, 1, 12, 'weird', 'xyz', '2019-01-01'), (15, 1, 13, '0', NULL, '2019-01-01')"
            .into(),
        // 16: a 300-character name; a stored file whose content hash is too long to link.
        format!(
            "INSERT INTO document (id, customer_id, vendor_id, attachment_id, name, document_status, create_time) VALUES
            (16, 2, 11, 103, '{}', '0', '2023-02-01 00:00:00')",
            "N".repeat(300)
        ),
    ])
    .await;
    db
}

/// The stand-ins of Areas 1-3 and the imported file manifest.
async fn prepared_target() -> PgFixture {
    let pg = PgFixture::new().await;
    tests::StandIns {
        users: &[(1, "u1@example.com")],
        accounts: &[(501, "Acme"), (502, "Beta")],
        records: &[(610, 501, "Vendor A"), (611, 502, "Vendor B")],
        ..Default::default()
    }
    .insert(&pg)
    .await;
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    pg.execute_all([
        // attachment 100 has two stored rows (the lowest source_key wins); 101 was not found;
        // 103's content hash is longer than the column.
        format!(
            "INSERT INTO dtx_migration.file_manifest (source_key, s3_key, content_hash, file_uid, size, status, attachment_id, original_filename) VALUES
            ('repo_file:7', 'acct/501/other.pdf', '{b}', '{b}_20240101000000000000', 10, 'deduplicated', 100, 'other.pdf'),
            ('attachment:100', 'acct/501/w9.pdf', '{a}', '{a}_20240101000000000000', 10, 'moved', 100, ' w9.pdf '),
            ('attachment:101', NULL, NULL, NULL, NULL, 'missing', 101, 'lost.pdf'),
            ('attachment:103', 'acct/502/x.pdf', '{a}a', 'uid', 10, 'moved', 103, 'x.pdf')"
        ),
    ])
    .await;
    pg
}

fn mappings() -> LoaderMappings {
    let record = |record_id, assignment_id| RecordMapping { record_id, assignment_id };
    LoaderMappings {
        accounts: HashMap::from([(1, "501".into()), (2, " 502 ".into()), (3, "abc".into()), (4, "504".into())]),
        records: HashMap::from([(10, record(610, 710)), (11, record(611, 711)), (13, record(613, 713))]),
        users: HashMap::from([(50, 1), (52, 99)]),
        coi_profiles: None,
        absent: Vec::new(),
    }
}

/// Runs the whole step calling `chunk` directly (each chunk committed), like the runner.
async fn run(
    legacy: &MysqlFixture,
    target: &PgFixture,
    mappings: &LoaderMappings,
    now: &str,
    chunk_rows: u32,
) -> (BTreeMap<String, u64>, Vec<Issue>, usize) {
    let ctx = StepContext { legacy: &legacy.pool, mappings, step: step::STEP, now: at(now), chunk_rows, read_ahead: Default::default() };
    let run = tests::run_chunks(target, &ctx, step::chunk).await;
    (run.counts, run.issues, run.chunks)
}

/// The tables' contents, comparable across two databases: the bookkeeping rows without their
/// own timestamps and issue ids, everything else whole.
async fn comparable(target: &PgFixture) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let tables = target.dump(&["dtx_migration.id_map", "dtx_migration.issue", "dtx_migration.step_run"]).await;
    let mut rows = Vec::new();
    for sql in [
        "SELECT (to_jsonb(m) - 'created_at')::text FROM dtx_migration.id_map m",
        "SELECT (to_jsonb(i) - 'created_at' - 'id')::text FROM dtx_migration.issue i",
        "SELECT jsonb_build_object('step', step, 'status', status, 'cursor', cursor, 'counts', counts)::text FROM dtx_migration.step_run",
    ] {
        let mut part: Vec<String> = sqlx::query_scalar(sql).fetch_all(&target.pool).await.unwrap();
        part.sort();
        rows.extend(part);
    }
    (tables, rows)
}

/// The document migrated from `legacy_id`, as JSON, times rendered in UTC.
async fn document(target: &PgFixture, legacy_id: u64) -> Value {
    tests::migrated_row(target, "docutrax_profiles_document", "document", legacy_id).await
}

fn assert_fields(legacy_id: u64, actual: &Value, expected: Value) {
    tests::assert_fields(&format!("document {legacy_id}"), actual, expected);
}

/// (key, reason, detail) of every issue in the table, sorted by key then reason.
async fn issues(target: &PgFixture) -> Vec<(String, String, String)> {
    tests::step_issues(target, "documents", "document").await
}

#[tokio::test]
async fn documents_map_every_field_flag_every_bad_row_and_rerun_identically() {
    let legacy = crafted_legacy().await;
    let target = prepared_target().await;
    let mappings = mappings();

    // The widths the step fits text to are the target's.
    let widths: Vec<(String, Option<i32>)> = sqlx::query_as(
        "SELECT column_name::text, character_maximum_length FROM information_schema.columns
         WHERE table_name = 'docutrax_profiles_document' AND data_type IN ('character varying', 'text')",
    )
    .fetch_all(&target.pool)
    .await
    .unwrap();
    let widths: HashMap<String, Option<usize>> = widths.into_iter().map(|(c, w)| (c, w.map(|w| w as usize))).collect();
    assert_eq!(widths.len(), step::DOCUMENT_TEXT_WIDTHS.len());
    for (column, width) in step::DOCUMENT_TEXT_WIDTHS {
        assert_eq!(widths.get(column), Some(&width), "{column}");
    }

    let (counts, _, chunks) = run(&legacy, &target, &mappings, NOW1, 2).await;
    assert_eq!(chunks, 9, "8 chunks of 2 rows, then the empty one that ends the step");
    let expected_counts = tests::counts(&[
        ("documents_read", 16),
        ("documents_created", 10),
        ("documents_updated", 0),
        ("documents_unchanged", 0),
        ("documents_skipped", 6),
        ("files_linked", 1),
        ("files_not_migrated", 3),
        ("parent_documents_noted", 3),
        ("docusign_templates_dropped", 1),
        ("status_new", 7),
        ("status_submitted", 2),
        ("status_ocr_reject", 1),
        ("status_raw_0", 7),
        ("status_raw_new", 1),
        ("status_raw_NOT_PROVIDED", 1),
        ("status_raw_ reviewed ", 1),
        ("status_raw_APPROVED", 1),
        ("status_raw_Rejected", 1),
        ("status_raw_3", 1),
        ("status_raw_(null)", 1),
        ("status_raw_PROVIDED", 1),
        ("status_raw_weird", 1),
    ]);
    assert_eq!(counts, expected_counts);

    // New ids follow the legacy ids; skipped documents have none.
    let map: Vec<(String, i64, String, bool)> =
        sqlx::query_as("SELECT legacy_key, new_id, step, created FROM dtx_migration.id_map WHERE entity = 'document' ORDER BY new_id")
            .fetch_all(&target.pool)
            .await
            .unwrap();
    let expected: Vec<(String, i64, String, bool)> =
        [("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 5), ("6", 6), ("7", 7), ("8", 8), ("9", 9), ("16", 10)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v, "documents".to_string(), true))
            .collect();
    assert_eq!(map, expected);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM docutrax_profiles_document").fetch_one(&target.pool).await.unwrap();
    assert_eq!(n, 10);

    let a = "a".repeat(64);
    assert_fields(
        1,
        &document(&target, 1).await,
        json!({
            "id": 1, "name": "W-9 2019", "expiry_date": "2020-01-01", "supervisor_notes": "signed copy", "status": "new",
            "uploaded_by_id": 610, "account_id": 501, "created_by_id": 1,
            "file": "acct/501/w9.pdf", "original_filename": "w9.pdf", "content_hash": a, "file_uid": format!("{a}_20240101000000000000"),
            "created": "2019-01-02 03:04:05", "modified": "2019-02-03 04:05:06",
        }),
    );
    assert_fields(
        2,
        &document(&target, 2).await,
        json!({
            "name": null, "status": "new", "uploaded_by_id": 610, "account_id": 501, "created_by_id": null, "supervisor_notes": null,
            "file": null, "original_filename": null, "content_hash": null, "file_uid": null, "expiry_date": null,
            "created": "2019-05-01 00:00:00", "modified": "2019-05-01 00:00:00",
        }),
    );
    assert_fields(
        3,
        &document(&target, 3).await,
        json!({ "name": null, "status": "new", "uploaded_by_id": 611, "account_id": 502, "created_by_id": null, "file": null }),
    );
    assert_fields(
        4,
        &document(&target, 4).await,
        json!({ "status": "submitted", "supervisor_notes": "see parent\n[Migrated] Parent document: W-9 2019 (old_id: 1)", "file": null }),
    );
    assert_fields(
        5,
        &document(&target, 5).await,
        json!({ "status": "submitted", "supervisor_notes": "[Migrated] Parent document: (not found) (old_id: 999)" }),
    );
    assert_fields(
        6,
        &document(&target, 6).await,
        json!({
            "status": "ocr_reject", "supervisor_notes": "[Migrated] Parent document: (no name) (old_id: 3)", "expiry_date": null,
            "created": "2021-06-01 10:00:00", "modified": "2021-06-01 10:00:00",
        }),
    );
    assert_fields(7, &document(&target, 7).await, json!({ "status": "new", "created": "2030-01-02 03:04:05", "modified": "2030-01-02 03:04:05" }));
    assert_fields(8, &document(&target, 8).await, json!({ "status": "new", "expiry_date": null, "created": "2022-01-01 00:00:00" }));
    assert_fields(9, &document(&target, 9).await, json!({ "status": "new", "name": "AB", "supervisor_notes": "Caf\u{FFFD}", "account_id": 502 }));
    assert_fields(16, &document(&target, 16).await, json!({ "id": 10, "name": "N".repeat(255), "file": null, "content_hash": null, "file_uid": null }));

    let s = |k: &str, r: &str, d: &str| (k.to_string(), r.to_string(), d.to_string());
    let expected_issues = vec![
        s("2", "attachment file not migrated", "attachment_id 101: attachment:101 missing"),
        s("2", "user not mapped", "user_id 51: created_by left NULL"),
        s("3", "attachment file not migrated", "attachment_id 102: no file manifest row (missing)"),
        s("3", "user not in target", "user_id 52 maps to user 99, which is not in docutrax_users_user: created_by left NULL"),
        s("4", "parent document flattened into notes", "parent_document_id 1: [Migrated] Parent document: W-9 2019 (old_id: 1)"),
        s("5", "DocuSign template reference dropped", "docusign_template_id abc-123"),
        s(
            "5",
            "parent document flattened into notes",
            "parent_document_id 999 has no legacy row: [Migrated] Parent document: (not found) (old_id: 999)",
        ),
        s("6", "no create_time", "create_time zero date \"0000-00-00 00:00:00\": created set to update_time"),
        s("6", "parent document flattened into notes", "parent_document_id 3: [Migrated] Parent document: (no name) (old_id: 3)"),
        s("6", "zero date", "expiration_date"),
        s("7", "no create_time", "create_time NULL: created set to the load time"),
        s("7", "unknown document_status", "\"3\": set to new"),
        s("8", "invalid date", "expiration_date: invalid legacy date \"2019-04-00\""),
        s("8", "unknown document_status", "NULL: set to new"),
        s("9", "NUL character removed", "name: \"AB\""),
        s("9", "invalid UTF-8", "comments: \"Caf\u{FFFD}\""),
        s("9", "unknown document_status", "\"PROVIDED\": set to new"),
        s("10", "customer not mapped", "customer_id 99"),
        s("11", "customer not mapped", "customer_id NULL"),
        s("11", "vendor not mapped", "vendor_id NULL"),
        s("12", "customer account not numeric", "customer_id 3 maps to account \"abc\""),
        s("13", "account not in target", "customer_id 4 maps to account 504, which is not in docutrax_accounts_account"),
        s("14", "vendor not mapped", "vendor_id 12"),
        s("15", "record not in target", "vendor_id 13 maps to record 613, which is not in docutrax_records_record"),
        s("16", "attachment file fields too long", "attachment:103: content_hash longer than 64"),
        s("16", "overlong text", "name: 300 characters, cut to 255"),
    ];
    assert_eq!(issues(&target).await, expected_issues);

    // Rerun (another load time): nothing changes, not even the created of rows without a time.
    let before = target.dump(&[]).await;
    let (counts, rerun_issues, _) = run(&legacy, &target, &mappings, NOW2, 2).await;
    assert_eq!(target.dump(&[]).await, before, "a rerun changed the target");
    assert_eq!((counts["documents_created"], counts["documents_unchanged"], counts["documents_updated"]), (0, 10, 0));
    assert_eq!(rerun_issues.len(), expected_issues.len());

    // A changed legacy row updates its document in place, and its child's parent line.
    sqlx::query("UPDATE document SET name = 'W-9 2020', document_status = 'REJECTED' WHERE id = 1").execute(&legacy.pool).await.unwrap();
    let (counts, _, _) = run(&legacy, &target, &mappings, NOW2, 2).await;
    assert_eq!((counts["documents_created"], counts["documents_updated"], counts["documents_unchanged"]), (0, 2, 8));
    assert_fields(1, &document(&target, 1).await, json!({ "id": 1, "name": "W-9 2020", "status": "ocr_reject", "modified": "2019-02-03 04:05:06" }));
    assert_fields(4, &document(&target, 4).await, json!({ "id": 4, "supervisor_notes": "see parent\n[Migrated] Parent document: W-9 2020 (old_id: 1)" }));

    // A document migrated earlier and skipped now (its vendor mapping went away) is left as is.
    let kept = document(&target, 3).await;
    let mut fewer = mappings.clone();
    fewer.records.remove(&11);
    let (counts, _, _) = run(&legacy, &target, &fewer, NOW2, 2).await;
    assert_eq!((counts["documents_skipped"], counts["documents_updated"], counts["documents_unchanged"]), (9, 0, 7));
    assert_eq!(document(&target, 3).await, kept);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM docutrax_profiles_document").fetch_one(&target.pool).await.unwrap();
    assert_eq!(n, 10);
    let skip: Option<String> =
        sqlx::query_scalar("SELECT detail FROM dtx_migration.issue WHERE legacy_key = '3' AND reason = 'vendor not mapped'")
            .fetch_optional(&target.pool)
            .await
            .unwrap();
    assert_eq!(skip.as_deref(), Some("vendor_id 11"));

    legacy.drop_database().await;
    target.drop_database().await;
}

/// One legacy row per chunk ends with the same tables as one chunk for everything.
#[tokio::test]
async fn one_row_chunks_give_the_same_tables_as_one_big_chunk() {
    let legacy = crafted_legacy().await;
    let (small, big) = (prepared_target().await, prepared_target().await);
    let (counts_small, _, chunks) = run(&legacy, &small, &mappings(), NOW1, 1).await;
    assert_eq!(chunks, 17);
    let (counts_big, _, chunks) = run(&legacy, &big, &mappings(), NOW1, 1000).await;
    assert_eq!(chunks, 2);
    assert_eq!(counts_small, counts_big);
    assert_eq!(comparable(&small).await, comparable(&big).await);
    legacy.drop_database().await;
    small.drop_database().await;
    big.drop_database().await;
}

/// Without the users mapping file, one issue says so (not one per document); without the
/// records mapping file the step refuses to run.
#[tokio::test]
async fn absent_mapping_files() {
    let legacy = crafted_legacy().await;
    let target = prepared_target().await;
    let mut no_users = mappings();
    no_users.users.clear();
    no_users.absent.push(shared::mappings::USERS_FILE);
    let (counts, issues, _) = run(&legacy, &target, &no_users, NOW1, 2).await;
    assert_eq!(counts["documents_created"], 10);
    assert!(issues.iter().all(|i| !i.reason.starts_with("user not")), "{issues:?}");
    let absent: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT legacy_key, detail FROM dtx_migration.issue WHERE reason = 'users mapping absent'")
            .fetch_all(&target.pool)
            .await
            .unwrap();
    assert_eq!(absent, vec![(String::new(), Some("id_mapping_users.csv not found: created_by left NULL".to_string()))]);
    assert_fields(1, &document(&target, 1).await, json!({ "created_by_id": null }));

    let mut no_records = mappings();
    no_records.records.clear();
    no_records.absent.push(shared::mappings::RECORDS_FILE);
    let ctx = StepContext { legacy: &legacy.pool, mappings: &no_records, step: step::STEP, now: at(NOW1), chunk_rows: 2, read_ahead: Default::default() };
    let mut tx = target.pool.begin().await.unwrap();
    match step::chunk(&ctx, &mut tx, None).await {
        Err(LoadError::Config(e)) => assert!(e.0.contains("id_mapping_records.csv"), "{e}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    tx.rollback().await.unwrap();
    let bad = step::chunk(&StepContext { mappings: &mappings(), ..ctx }, &mut target.pool.acquire().await.unwrap(), Some(json!({"after": 1}))).await;
    assert!(matches!(bad, Err(LoadError::Config(_))), "{bad:?}");

    legacy.drop_database().await;
    target.drop_database().await;
}

async fn load(l: &shared::loader::runner::Loader, dry_run: bool, max_chunks: Option<u32>) -> LoadResponse {
    l.run(&LoadRequest { step: "documents".into(), dry_run, cursor: None, max_chunks, ..Default::default() }).await.expect("documents step")
}

/// Through the runner: a dry run leaves the target as it was; a run stopped after one chunk
/// and continued from its stored cursor ends with the same tables as an uninterrupted run.
#[tokio::test]
async fn dry_run_changes_nothing_and_an_interrupted_run_resumes_to_the_same_tables() {
    let legacy = crafted_legacy().await;
    // The load time is the runner's clock: leave out the one document that would take it.
    sqlx::query("DELETE FROM document WHERE id = 7").execute(&legacy.pool).await.unwrap();
    let reports = tempfile::tempdir().unwrap();

    // Dry run.
    let dry = prepared_target().await;
    let before = dry.dump(&[]).await;
    let l = tests::loader(&legacy, &dry, mappings(), reports.path(), 2);
    let response = load(&l, true, None).await;
    assert!(response.done && response.cursor.is_none());
    assert_eq!((response.counts["documents_created"], response.counts["documents_skipped"]), (9, 6));
    assert_eq!(dry.dump(&[]).await, before, "a dry run changed the target");
    let csv = std::fs::read_to_string(reports.path().join("migration_issues_dry_run_documents.csv")).unwrap();
    assert!(csv.contains("document,5,documents,DocuSign template reference dropped,docusign_template_id abc-123"), "{csv}");

    // Uninterrupted reference.
    let reference = prepared_target().await;
    let l = tests::loader(&legacy, &reference, mappings(), reports.path(), 2);
    let response = load(&l, false, None).await;
    assert!(response.done);
    assert_eq!(response.counts["documents_created"], 9);

    // Stopped after one chunk (documents 1 and 2), then continued from the stored cursor.
    let resumed = prepared_target().await;
    let l = tests::loader(&legacy, &resumed, mappings(), reports.path(), 2);
    let first = load(&l, false, Some(1)).await;
    assert!(!first.done);
    assert_eq!(first.cursor, Some(json!({ "after_id": 2 })));
    assert_eq!(first.counts["documents_created"], 2);
    let stored: (String, Option<Value>) =
        sqlx::query_as("SELECT status, cursor FROM dtx_migration.step_run WHERE step = 'documents'").fetch_one(&resumed.pool).await.unwrap();
    assert_eq!(stored, ("running".to_string(), Some(json!({ "after_id": 2 }))));
    let rest = load(&l, false, None).await;
    assert!(rest.done);
    assert_eq!(rest.counts["documents_created"], 7);
    assert_eq!(comparable(&resumed).await, comparable(&reference).await);

    // A rerun of the finished step changes nothing.
    let before = resumed.dump(&["dtx_migration.step_run"]).await;
    let again = load(&l, false, None).await;
    assert_eq!((again.counts["documents_created"], again.counts["documents_unchanged"]), (0, 9));
    assert_eq!(resumed.dump(&["dtx_migration.step_run"]).await, before);

    legacy.drop_database().await;
    for t in [dry, reference, resumed] {
        t.drop_database().await;
    }
}

/// The generated sample (shared::sample) through the step: the documents it says migrate do,
/// with the statuses, parents and DocuSign templates it states, and the others are skipped
/// with the error table's reason. No file manifest is imported here: every attachment is
/// reported as not migrated and the documents are still created.
#[tokio::test]
async fn the_generated_sample_migrates_as_its_summary_states() {
    let spec = shared::sample::SampleSpec { large_file_bytes: 0, max_small_file_bytes: 8 * 1024, ..Default::default() };
    let sample = tests::generated_sample(&spec).await;
    let (legacy, target) = (&sample.legacy, &sample.target);
    let mappings = sample.load_mappings().await;
    let d = &sample.summary.records.documents;
    assert!(d.migrated > 20 && d.skipped > 0, "{d:?}");

    let (counts, _, _) = run(legacy, target, &mappings, NOW1, 7).await;
    assert_eq!((counts["documents_read"], counts["documents_created"], counts["documents_skipped"]), (d.total, d.migrated, d.skipped));
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status::text, COUNT(*) FROM docutrax_profiles_document GROUP BY 1 ORDER BY 1").fetch_all(&target.pool).await.unwrap();
    let statuses: BTreeMap<String, u64> = statuses.into_iter().map(|(s, n)| (s, n as u64)).collect();
    assert_eq!(statuses, d.migrated_status);

    let mut migrated: Vec<u64> = sqlx::query_scalar::<_, String>("SELECT legacy_key FROM dtx_migration.id_map WHERE entity = 'document'")
        .fetch_all(&target.pool)
        .await
        .unwrap()
        .iter()
        .map(|k| k.parse().unwrap())
        .collect();
    migrated.sort_unstable();
    assert_eq!(migrated.len() as u64, d.migrated);
    assert!(d.skipped_ids.iter().all(|id| !migrated.contains(id)));

    let keys = |reason: &'static str| {
        let pool = target.pool.clone();
        async move {
            let mut k: Vec<u64> = sqlx::query_scalar::<_, String>("SELECT legacy_key FROM dtx_migration.issue WHERE reason = $1")
                .bind(reason)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|k| k.parse().unwrap())
                .collect();
            k.sort_unstable();
            k
        }
    };
    let migrated_only = |ids: Vec<u64>| -> Vec<u64> { ids.into_iter().filter(|id| migrated.contains(id)).collect() };
    assert_eq!(keys("parent document flattened into notes").await, migrated_only(d.with_parent_document_id.clone()));
    let docusign: Vec<u64> = migrated_only(d.docusign_templates.iter().map(|(id, _)| *id).collect());
    assert!(!docusign.is_empty());
    assert_eq!(keys("DocuSign template reference dropped").await, docusign);
    for id in migrated_only(d.parent_missing_ids.clone()) {
        let notes = document(target, id).await["supervisor_notes"].as_str().unwrap_or_default().to_string();
        assert!(notes.contains("[Migrated] Parent document: (not found) (old_id: "), "document {id}: {notes:?}");
    }
    let mut skip_issues = keys("customer not mapped").await;
    skip_issues.extend(keys("vendor not mapped").await);
    skip_issues.sort_unstable();
    skip_issues.dedup();
    assert_eq!(skip_issues, d.skipped_ids);

    sample.drop_databases().await;
}
