//! Step 12 `audit-history` (snapshots of the migrated certificates, evaluations and documents)
//! and the logo link of step 5 `files` (Account.logo from the stored logos), on crafted rows:
//! exact rows, chunking, reruns that leave every table identical, dry runs that change nothing,
//! the prior logo kept for the undo, and every flagged case.

use serde_json::{json, Value};
use shared::loader::book;
use shared::loader::runner::{LoadRequest, LoaderMappings};
use shared::loader::steps::{audit_history as audit, logos, StepContext};
use shared::manifest::ManifestRecord;
use shared::message::LegacyIds;
use shared::model::{Area, FileStatus};
use std::collections::{BTreeMap, HashMap};
use tests::{MysqlFixture, PgFixture};

type Time = chrono::DateTime<chrono::Utc>;

fn at(text: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

async fn exec(target: &PgFixture, sql: &str) {
    sqlx::query(sql).execute(&target.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn map(target: &PgFixture, entity: &str, step: &str, pairs: &[(&str, i64)]) {
    let pairs: Vec<(String, i64)> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut conn = target.pool.acquire().await.unwrap();
    book::map_ids(&mut conn, entity, step, true, &pairs).await.unwrap();
}

/// Two certificates (legacy 7 and 3), one evaluation, one document, one certificate entry whose
/// row is gone, and one certificate DTX 2.0 made itself (not in the id map).
async fn migrated_target() -> PgFixture {
    let target = PgFixture::new().await;
    for sql in [
        "INSERT INTO docutrax_accounts_account (id, name) VALUES (501, 'Acme')",
        "INSERT INTO docutrax_hierarchy_requirementsgroup (id, account_id, name, created, modified) VALUES (31, 501, 'G1', '2024-01-01Z', '2024-01-01Z')",
        "INSERT INTO docutrax_profiles_certificate (id, cert_number, status, requirements_group_id, created, modified) VALUES
         (41, 'C-7', 'evaluated', 31, '2019-01-02T03:04:05Z', '2019-02-03T04:05:06Z'),
         (42, NULL, 'manual_review', 31, '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z'),
         (43, 'own', 'ready', 31, '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')",
        "INSERT INTO docutrax_profiles_evaluation (id, certificate_id, requirements_group_id, status, evaluation_date, created, modified) VALUES
         (51, 41, 31, 'pass', '2019-01-05T00:00:00Z', '2019-01-05T00:00:00Z', '2019-01-05T00:00:00Z')",
        "UPDATE docutrax_profiles_certificate SET current_evaluation_id = 51 WHERE id = 41",
        "INSERT INTO docutrax_profiles_document (id, name, status, created, modified) VALUES (61, 'W-9 form', 'new', '2021-03-04T05:06:07Z', '2021-03-04T05:06:07Z')",
    ] {
        exec(&target, sql).await;
    }
    map(&target, "certificate", "certificates", &[("7", 41), ("3", 42), ("9", 999)]).await;
    map(&target, "evaluation", "evaluations", &[("7", 51)]).await;
    map(&target, "document", "documents", &[("12", 61)]).await;
    target
}

/// Runs the whole audit-history step like the runner (each chunk committed), with the session
/// in `time_zone`; returns the summed counts, the issues and the number of chunks.
async fn run_audit(target: &PgFixture, now: &str, time_zone: &str) -> (BTreeMap<String, u64>, Vec<book::Issue>, usize) {
    let legacy_pool = sqlx::MySqlPool::connect_lazy("mysql://unused@127.0.0.1:1/unused").unwrap();
    let mappings = LoaderMappings::default();
    let ctx = StepContext { legacy: &legacy_pool, mappings: &mappings, step: audit::STEP, now: at(now), chunk_rows: 1, read_ahead: Default::default() };
    let (mut counts, mut issues, mut chunks, mut cursor) = (BTreeMap::new(), Vec::new(), 0, None);
    loop {
        let mut tx = target.pool.begin().await.unwrap();
        sqlx::query(&format!("SET LOCAL TIME ZONE '{time_zone}'")).execute(&mut *tx).await.unwrap();
        let out = audit::chunk(&ctx, &mut tx, cursor).await.expect("chunk");
        book::record_issues(&mut tx, audit::STEP, &out.issues).await.unwrap();
        tx.commit().await.unwrap();
        chunks += 1;
        for (k, v) in out.counts {
            *counts.entry(k).or_insert(0) += v;
        }
        issues.extend(out.issues);
        cursor = out.cursor;
        if cursor.is_none() {
            return (counts, issues, chunks);
        }
        assert!(chunks < 50, "the step does not end");
    }
}

/// (content_type, object_id, snapshot, created) of every AuditHistory row, by id.
async fn audit_rows(target: &PgFixture) -> Vec<(String, i64, Value, Time)> {
    sqlx::query_as("SELECT content_type, object_id, snapshot, created FROM docutrax_profiles_audithistory ORDER BY id")
        .fetch_all(&target.pool)
        .await
        .unwrap()
}

async fn columns(target: &PgFixture, table: &str) -> Vec<String> {
    let mut c: Vec<String> = sqlx::query_scalar("SELECT column_name::text FROM information_schema.columns WHERE table_name = $1")
        .bind(table)
        .fetch_all(&target.pool)
        .await
        .unwrap();
    c.push("migration".into());
    c.sort();
    c
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn audit_history_snapshots_every_migrated_row_once_and_reruns_identically() {
    let target = migrated_target().await;
    let (counts, issues, chunks) = run_audit(&target, "2030-01-02T03:04:05Z", "America/New_York").await;
    assert_eq!(
        counts,
        BTreeMap::from([
            ("certificate_not_in_target".to_string(), 1),
            ("certificate_snapshots_created".to_string(), 2),
            ("certificate_snapshots_updated".to_string(), 0),
            ("certificate_snapshots_unchanged".to_string(), 0),
            ("evaluation_not_in_target".to_string(), 0),
            ("evaluation_snapshots_created".to_string(), 1),
            ("evaluation_snapshots_updated".to_string(), 0),
            ("evaluation_snapshots_unchanged".to_string(), 0),
            ("document_not_in_target".to_string(), 0),
            ("document_snapshots_created".to_string(), 1),
            ("document_snapshots_updated".to_string(), 0),
            ("document_snapshots_unchanged".to_string(), 0),
        ])
    );
    assert!(chunks >= 5, "one object per chunk: {chunks}");
    assert_eq!(issues.len(), 1);
    assert_eq!((issues[0].entity.as_str(), issues[0].legacy_key.as_str(), issues[0].reason.as_str()), ("certificate", "9", audit::REASON_NOT_IN_TARGET));

    let rows = audit_rows(&target).await;
    let summary: Vec<(&str, i64)> = rows.iter().map(|(c, o, _, _)| (c.as_str(), *o)).collect();
    assert_eq!(summary, [("certificate", 41), ("certificate", 42), ("evaluation", 51), ("document", 61)], "certificate 43 is not migrated");
    assert!(rows.iter().all(|r| r.3 == at("2030-01-02T03:04:05Z")), "created = the run's time");
    let (cert, eval, doc) = (&rows[0].2, &rows[2].2, &rows[3].2);
    assert_eq!(keys(cert), columns(&target, "docutrax_profiles_certificate").await, "every column plus migration");
    assert_eq!(keys(doc), columns(&target, "docutrax_profiles_document").await);
    assert_eq!(cert["id"], 41);
    assert_eq!(cert["cert_number"], "C-7");
    assert_eq!(cert["current_evaluation_id"], 51);
    assert_eq!(cert["created"], "2019-01-02T03:04:05+00:00", "UTC, whatever the session's time zone");
    assert_eq!(cert["migration"], json!({"legacy_id": 7, "step": "certificates", "source": "dtx-1.0-migration"}));
    assert_eq!(rows[1].2["cert_number"], Value::Null);
    assert_eq!(eval["migration"], json!({"legacy_id": 7, "step": "evaluations", "source": "dtx-1.0-migration"}));
    assert_eq!(eval["evaluation_date"], "2019-01-05T00:00:00+00:00");
    assert_eq!(doc["name"], "W-9 form");
    assert_eq!(doc["migration"]["legacy_id"], 12);
    let mapped: Vec<(String, i64)> =
        sqlx::query_as("SELECT m.legacy_key, m.new_id FROM dtx_migration.id_map m WHERE m.entity = 'audit_history' AND m.step = 'audit-history' ORDER BY new_id")
            .fetch_all(&target.pool)
            .await
            .unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM docutrax_profiles_audithistory ORDER BY id").fetch_all(&target.pool).await.unwrap();
    assert_eq!(mapped.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["certificate:41", "certificate:42", "evaluation:51", "document:61"]);
    assert_eq!(mapped.iter().map(|(_, id)| *id).collect::<Vec<_>>(), ids);

    // A rerun (another time, another session time zone) changes nothing at all.
    let dump = target.dump(&[]).await;
    let (counts, _, _) = run_audit(&target, "2031-01-01T00:00:00Z", "Asia/Tokyo").await;
    assert_eq!(counts["certificate_snapshots_unchanged"], 2);
    assert_eq!(counts["certificate_snapshots_created"] + counts["certificate_snapshots_updated"], 0);
    assert_eq!(target.dump(&[]).await, dump, "a rerun changed a table");

    // A changed row gets a new snapshot; its created stays.
    exec(&target, "UPDATE docutrax_profiles_certificate SET cert_number = 'C-7b' WHERE id = 41").await;
    let (counts, _, _) = run_audit(&target, "2032-01-01T00:00:00Z", "UTC").await;
    assert_eq!((counts["certificate_snapshots_updated"], counts["certificate_snapshots_unchanged"]), (1, 1));
    assert_eq!(counts["evaluation_snapshots_unchanged"] + counts["document_snapshots_unchanged"], 2);
    let rows = audit_rows(&target).await;
    assert_eq!(rows[0].2["cert_number"], "C-7b");
    assert_eq!(rows[0].3, at("2030-01-02T03:04:05Z"));
    assert_eq!(rows.len(), 4);
    target.drop_database().await;
}

#[tokio::test]
async fn an_audit_history_dry_run_through_the_runner_leaves_the_target_unchanged() {
    let legacy = MysqlFixture::with_legacy_schema().await;
    let target = migrated_target().await;
    let dir = tempfile::tempdir().unwrap();
    let loader = tests::loader(&legacy, &target, LoaderMappings::default(), dir.path(), 2);
    book::ensure_schema(&target.pool).await.unwrap();
    let before = target.dump(&[]).await;
    let dry = loader.run(&LoadRequest { step: "audit-history".into(), dry_run: true, ..Default::default() }).await.unwrap();
    assert!(dry.done);
    assert_eq!(dry.counts["certificate_snapshots_created"], 2);
    assert_eq!(target.dump(&[]).await, before, "a dry run changed the target");

    let real = loader.run(&LoadRequest { step: "12".into(), ..Default::default() }).await.unwrap();
    assert_eq!(real.counts["document_snapshots_created"], 1);
    let after = target.dump(&["dtx_migration.step_run"]).await;
    let again = loader.run(&LoadRequest { step: "audit-history".into(), ..Default::default() }).await.unwrap();
    assert_eq!(again.counts["certificate_snapshots_unchanged"] + again.counts["evaluation_snapshots_unchanged"] + again.counts["document_snapshots_unchanged"], 4);
    assert_eq!(target.dump(&["dtx_migration.step_run"]).await, after, "a rerun through the runner changed a table");
    legacy.drop_database().await;
    target.drop_database().await;
}

// ---- logos -----------------------------------------------------------------------------------

fn logo(customer: u64, account: Option<&str>, status: FileStatus, s3_key: Option<&str>) -> ManifestRecord {
    ManifestRecord {
        source_key: format!("logo:{customer}"),
        area: Some(Area::Logos),
        account_id: account.map(String::from),
        legacy_path: format!("/efsdata/logos/logo_{customer}.png"),
        s3_key: s3_key.map(String::from),
        content_hash: s3_key.map(|_| "c".repeat(64)),
        size: s3_key.map(|_| 10),
        ids: LegacyIds { customer_id: Some(customer), ..Default::default() },
        original_filename: format!("logo_{customer}.png"),
        status: Some(status),
        last_error: (!status.is_stored()).then(|| "no candidate path exists".to_string()),
        ..Default::default()
    }
}

fn manifest(dir: &std::path::Path, records: &[ManifestRecord]) {
    let mut csv = Vec::new();
    shared::manifest::write_csv(records, &mut csv).unwrap();
    std::fs::write(dir.join("file_manifest.csv"), csv).unwrap();
}

type Prior = (String, String, i64, String, Value);

async fn priors(target: &PgFixture) -> Vec<Prior> {
    sqlx::query_as("SELECT step, table_name, row_id, column_name, value FROM dtx_migration.prior_value ORDER BY row_id")
        .fetch_all(&target.pool)
        .await
        .unwrap()
}

async fn logos_of(target: &PgFixture) -> Vec<(i64, Option<String>)> {
    sqlx::query_as("SELECT id, logo FROM docutrax_accounts_account ORDER BY id").fetch_all(&target.pool).await.unwrap()
}

#[tokio::test]
async fn the_files_step_links_stored_logos_to_accounts_once_and_flags_the_rest() {
    let legacy = MysqlFixture::with_legacy_schema().await;
    sqlx::query(
        "INSERT INTO customer (id, name, logo) VALUES (1, 'A', 'a.png'), (2, 'B', 'b.png'), (3, 'C', 'c.png'), (4, 'D', 'd.png'),
         (5, 'E', 'e.png'), (6, 'F', 'f.png'), (7, 'G', 'g.png'), (8, 'H', 'h.png'), (9, 'I', 'i.png'), (10, 'J', 'j.png'), (11, 'K', NULL)",
    )
    .execute(&legacy.pool)
    .await
    .unwrap();
    let target = PgFixture::new().await;
    exec(
        &target,
        "INSERT INTO docutrax_accounts_account (id, name, logo) VALUES (501, 'A', NULL), (502, 'B', 'old.png'), (503, 'C', 'org_503/logos/c.png'),
         (504, 'D', NULL), (507, 'G', NULL), (508, 'G2', NULL), (509, 'other', 'keep.png')",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut records = vec![
        // 1: linked (its second stored file in area logos is flagged, not linked).
        logo(1, Some("501"), FileStatus::Moved, Some("org_501/logos/a.png")),
        ManifestRecord {
            source_key: "repo_file:77".into(),
            area: Some(Area::Logos),
            account_id: Some("501".into()),
            s3_key: Some("org_501/logos/other.png".into()),
            ids: LegacyIds { customer_id: Some(1), repo_file_id: Some(77), ..Default::default() },
            status: Some(FileStatus::Moved),
            ..Default::default()
        },
        // 2: linked over an older value (kept for the undo); 3: already set.
        logo(2, Some("502"), FileStatus::Deduplicated, Some("org_502/logos/b.png")),
        logo(3, Some("503"), FileStatus::Moved, Some("org_503/logos/c.png")),
        // 4: the file was not found; 5: customer not in the accounts mapping now; 6: account not
        // in the target; 7: stored for another account; 8: same account as 1 (1 wins);
        // 9: no manifest row; 10: account id not numeric.
        logo(4, Some("504"), FileStatus::Missing, None),
        logo(5, Some("505"), FileStatus::Moved, Some("org_505/logos/e.png")),
        logo(6, Some("506"), FileStatus::Moved, Some("org_506/logos/f.png")),
        logo(7, Some("508"), FileStatus::Moved, Some("org_508/logos/g.png")),
        logo(8, Some("501"), FileStatus::Moved, Some("org_501/logos/h.png")),
        logo(10, None, FileStatus::Moved, Some("org_x/logos/j.png")),
    ];
    manifest(dir.path(), &records);
    let accounts: HashMap<u64, String> = [(1, "501"), (2, "502"), (3, "503"), (4, "504"), (6, "506"), (7, "507"), (8, "501"), (9, "509"), (10, "abc")]
        .into_iter()
        .map(|(c, a)| (c, a.to_string()))
        .collect();
    let loader = tests::loader(&legacy, &target, LoaderMappings { accounts, ..Default::default() }, dir.path(), 100);
    let original = logos_of(&target).await;

    let before = target.dump(&[]).await;
    let dry = loader.run(&LoadRequest { step: "files".into(), dry_run: true, ..Default::default() }).await.unwrap();
    assert_eq!(dry.counts["logos_linked"], 2);
    assert_eq!(target.dump(&[]).await, before, "a dry run changed the target");

    let first = loader.run(&LoadRequest { step: "files".into(), ..Default::default() }).await.unwrap();
    assert_eq!((first.counts["logos_linked"], first.counts["logos_unchanged"], first.counts["logos_not_linked"]), (2, 1, 6));
    assert_eq!(first.counts["manifest_rows"], 10);
    let linked = vec![
        (501, Some("org_501/logos/a.png".to_string())),
        (502, Some("org_502/logos/b.png".to_string())),
        (503, Some("org_503/logos/c.png".to_string())),
        (504, None),
        (507, None),
        (508, None),
        (509, Some("keep.png".to_string())),
    ];
    assert_eq!(logos_of(&target).await, linked);
    let expected_priors: Vec<Prior> = vec![
        ("files".into(), logos::ACCOUNT_TABLE.into(), 501, "logo".into(), Value::Null),
        ("files".into(), logos::ACCOUNT_TABLE.into(), 502, "logo".into(), json!("old.png")),
    ];
    assert_eq!(priors(&target).await, expected_priors, "only the changed accounts' old values");
    let issues: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT step, entity, legacy_key, reason FROM dtx_migration.issue ORDER BY legacy_key::int, reason").fetch_all(&target.pool).await.unwrap();
    let want = |key: &str, reason: &str| ("files".to_string(), "logo".to_string(), key.to_string(), reason.to_string());
    assert_eq!(
        issues,
        vec![
            want("1", logos::REASON_SEVERAL_FOR_CUSTOMER),
            want("4", logos::REASON_NOT_STORED),
            want("5", logos::REASON_CUSTOMER_NOT_MAPPED),
            want("6", logos::REASON_ACCOUNT_MISSING),
            want("7", logos::REASON_OTHER_ACCOUNT),
            want("8", logos::REASON_SEVERAL_FOR_ACCOUNT),
            want("9", logos::REASON_NOT_IN_MANIFEST),
            want("10", logos::REASON_ACCOUNT_NOT_NUMERIC),
        ]
    );
    let detail: String = sqlx::query_scalar("SELECT detail FROM dtx_migration.issue WHERE legacy_key = '4'").fetch_one(&target.pool).await.unwrap();
    assert_eq!(detail, "logo:4 missing: no candidate path exists");

    // A rerun changes nothing and records no prior value again.
    let dump = target.dump(&["dtx_migration.step_run"]).await;
    let second = loader.run(&LoadRequest { step: "files".into(), ..Default::default() }).await.unwrap();
    assert_eq!((second.counts["logos_linked"], second.counts["logos_unchanged"]), (0, 3));
    assert_eq!(target.dump(&["dtx_migration.step_run"]).await, dump, "a rerun changed a table");

    // A new stored logo for customer 2 moves the link; the first old value is still the prior.
    records[2] = logo(2, Some("502"), FileStatus::Moved, Some("org_502/logos/b2.png"));
    manifest(dir.path(), &records);
    let third = loader.run(&LoadRequest { step: "files".into(), ..Default::default() }).await.unwrap();
    assert_eq!(third.counts["logos_linked"], 1);
    assert_eq!(logos_of(&target).await[1], (502, Some("org_502/logos/b2.png".to_string())));
    assert_eq!(priors(&target).await, expected_priors, "the prior value is the one before the first link");
    assert_ne!(logos_of(&target).await, original);
    legacy.drop_database().await;
    target.drop_database().await;
}
