//! Loader steps 2 (`document-types`) and 3 (`document-risk-profiles`) on crafted legacy rows:
//! exact target contents, id map, issues, an identical rerun, and a re-sync after legacy changes.

use chrono::{DateTime, TimeZone, Utc};
use shared::loader::book::{self, Issue};
use shared::loader::runner::LoaderMappings;
use shared::loader::steps::{document_risk_profiles, document_types, StepContext};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tests::{MysqlFixture, PgFixture};

#[derive(Clone, Copy)]
enum Which {
    Types,
    Profiles,
}

struct Run {
    issues: BTreeSet<(String, String, String)>,
    details: Vec<Issue>,
    counts: BTreeMap<String, u64>,
    chunks: usize,
}

/// Drives a step to the end, one committed transaction per chunk (issues recorded like the runner).
async fn run(target: &PgFixture, ctx: &StepContext<'_>, which: Which) -> Run {
    let mut cursor = None;
    let mut r = Run { issues: BTreeSet::new(), details: Vec::new(), counts: BTreeMap::new(), chunks: 0 };
    loop {
        let mut tx = target.pool.begin().await.unwrap();
        let out = match which {
            Which::Types => document_types::chunk(ctx, &mut tx, cursor).await,
            Which::Profiles => document_risk_profiles::chunk(ctx, &mut tx, cursor).await,
        }
        .unwrap_or_else(|e| panic!("{}: {e}", ctx.step));
        book::record_issues(&mut tx, ctx.step, &out.issues).await.expect("issues recordable (no duplicate within a chunk)");
        tx.commit().await.unwrap();
        r.chunks += 1;
        for i in &out.issues {
            assert!(r.issues.insert((i.entity.clone(), i.legacy_key.clone(), i.reason.clone())), "issue twice: {i:?}");
        }
        r.details.extend(out.issues);
        for (k, v) in out.counts {
            *r.counts.entry(k).or_default() += v;
        }
        cursor = out.cursor;
        if cursor.is_none() {
            break;
        }
        assert!(r.chunks < 100, "the step does not finish");
    }
    r
}

async fn exec(conn: &mut sqlx::MySqlConnection, sql: &str) {
    sqlx::query(sql).execute(&mut *conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn crafted_legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    let mut conn = db.pool.acquire().await.unwrap();
    // Zero and partial dates, as legacy rows hold them.
    exec(&mut conn, "SET SESSION sql_mode = ''").await;
    // Live columns may be wider / of a neighbouring type than the DDL says.
    exec(&mut conn, "ALTER TABLE document_library MODIFY name VARCHAR(400) NULL").await;
    exec(&mut conn, "ALTER TABLE document_set MODIFY description BLOB NULL").await;
    for sql in [
        "INSERT INTO document_library (id, customer_id, name, description, create_time) VALUES
            (1, 1, 'W-9', 'IRS form', '2019-01-01 10:00:00'),
            (2, 2, ' w-9 ', 'Tax form', '2018-05-05 00:00:00'),
            (3, 2, '   ', 'blank', NULL),
            (4, 3, 'Lonely \t Doc', NULL, '0000-00-00 00:00:00'),
            (5, 1, 'certificate of   good standing', 'desc', '2020-01-01'),
            (6, 3, REPEAT('x', 300), NULL, '2021-02-02'),
            (7, 1, NULL, NULL, NULL),
            (8, 2, 'Insurance Binder', '  ', '2019-03-03'),
            (9, 1, 'Partial', NULL, '2019-00-00 00:00:00')",
        "INSERT INTO document (id, customer_id, document_library_id) VALUES
            (10, 1, 1), (11, 2, 2), (12, 1, 5), (13, 3, 6), (14, 1, NULL), (15, 1, 3), (16, 1, 1), (17, 2, 99), (18, 1, 0), (20, 1, 9)",
        "INSERT INTO document_status (id, vendor_id, document_library_id, document_status) VALUES (1, 10, 8, 'NOT_PROVIDED')",
        "INSERT INTO document_set (id, customer_id, name, description, create_time) VALUES
            (1, 1, 'Standard', ' Std desc ', '2019-06-01 08:00:00'),
            (2, 2, '  ', NULL, NULL),
            (3, 1, 'Empty set', X'4F6BFF', '2020-01-01'),
            (4, 9, 'Unmapped', NULL, '2020-01-01'),
            (5, 3, 'Bad account', NULL, '2020-01-01'),
            (6, 4, 'Ghost account', NULL, '2020-01-01'),
            (7, NULL, 'No customer', NULL, '2020-01-01'),
            (8, 2, 'Only bad', NULL, '0000-00-00 00:00:00'),
            (10, 1, 'After gap', NULL, '2021-01-01')",
        "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES
            (5, 1, 10), (3, 1, 12), (7, 1, 16), (8, 1, 14), (9, 1, 999), (10, 1, NULL), (11, 1, 15), (12, 1, 18),
            (13, 2, 13), (14, 2, 11), (15, 4, 10), (16, 8, 17), (17, 9, 10), (18, NULL, 10), (19, 10, 20), (20, 10, 13),
            (21, 1, 0)",
    ] {
        exec(&mut conn, sql).await;
    }
    drop(conn);
    db
}

fn ts(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
}

type TypeRow = (i64, String, Option<String>, DateTime<Utc>, DateTime<Utc>);
type ProfileRow = (i64, i64, String, Option<String>, DateTime<Utc>, DateTime<Utc>);

async fn types(pool: &sqlx::PgPool) -> Vec<TypeRow> {
    sqlx::query_as("SELECT id, name, description, created, modified FROM docutrax_profiles_documenttype ORDER BY id").fetch_all(pool).await.unwrap()
}
async fn profiles(pool: &sqlx::PgPool) -> Vec<ProfileRow> {
    sqlx::query_as("SELECT id, account_id, name, description, created, modified FROM docutrax_profiles_documentriskprofile ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}
async fn junction(pool: &sqlx::PgPool) -> Vec<(i64, i64, i64, i32)> {
    sqlx::query_as(
        "SELECT id, document_risk_profile_id, document_type_id, \"order\" FROM docutrax_profiles_documentriskprofiledocumenttype ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}
async fn id_map(pool: &sqlx::PgPool, entity: &str) -> BTreeMap<String, (i64, String, bool)> {
    let rows: Vec<(String, i64, String, bool)> =
        sqlx::query_as("SELECT legacy_key, new_id, step, created FROM dtx_migration.id_map WHERE entity = $1").bind(entity).fetch_all(pool).await.unwrap();
    rows.into_iter().map(|(k, id, step, created)| (k, (id, step, created))).collect()
}

/// Every table the steps touch, as text, for the rerun comparison.
async fn dump(pool: &sqlx::PgPool) -> String {
    let mut s = String::new();
    for sql in [
        "SELECT t::text FROM docutrax_profiles_documenttype t ORDER BY id",
        "SELECT t::text FROM docutrax_profiles_documentriskprofile t ORDER BY id",
        "SELECT t::text FROM docutrax_profiles_documentriskprofiledocumenttype t ORDER BY id",
        "SELECT concat_ws('|', entity, legacy_key, new_id, step, created) FROM dtx_migration.id_map ORDER BY entity, legacy_key",
        "SELECT concat_ws('|', step, entity, legacy_key, reason, detail) FROM dtx_migration.issue ORDER BY id",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
        s.push_str(&rows.join("\n"));
        s.push_str("\n--\n");
    }
    s
}

fn keys(list: &[(&str, u64, &str)]) -> BTreeSet<(String, String, String)> {
    list.iter().map(|(e, k, r)| (e.to_string(), k.to_string(), r.to_string())).collect()
}

#[tokio::test]
async fn document_types_and_risk_profiles_migrate_rerun_identically_and_resync() {
    let legacy = crafted_legacy().await;
    let target = PgFixture::new().await;
    let now = ts(2024, 6, 1, 12);
    let old = ts(2020, 1, 1, 0);
    for sql in [
        "INSERT INTO docutrax_accounts_account (id, name) VALUES (501, 'A1'), (502, 'A2')",
        "INSERT INTO docutrax_profiles_documenttype (id, name, description, created, modified)
            VALUES (900, 'Certificate of Good Standing', 'pre-existing', '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')",
    ] {
        sqlx::query(sql).execute(&target.pool).await.unwrap();
    }
    let mappings = LoaderMappings {
        accounts: HashMap::from([(1, "501".to_string()), (2, " 502 ".to_string()), (3, "abc".to_string()), (4, "504".to_string())]),
        ..Default::default()
    };
    let types_ctx = StepContext { legacy: &legacy.pool, mappings: &mappings, step: "document-types", now, chunk_rows: 2, read_ahead: Default::default() };
    let profiles_ctx = StepContext { legacy: &legacy.pool, mappings: &mappings, step: "document-risk-profiles", now, chunk_rows: 2, read_ahead: Default::default() };

    // ---- step 2 ----
    let t = run(&target, &types_ctx, Which::Types).await;
    assert_eq!(t.chunks, 1);
    let x255 = "x".repeat(255);
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        types(&target.pool).await,
        vec![
            (1, "W-9".into(), s("IRS form"), ts(2018, 5, 5, 0), ts(2019, 1, 1, 10)),
            (2, "Lonely Doc".into(), None, now, now),
            (3, x255.clone(), None, ts(2021, 2, 2, 0), ts(2021, 2, 2, 0)),
            (4, "Insurance Binder".into(), None, ts(2019, 3, 3, 0), ts(2019, 3, 3, 0)),
            (5, "Partial".into(), None, now, now),
            (900, "Certificate of Good Standing".into(), s("pre-existing"), old, old),
        ]
    );
    let step2 = "document-types".to_string();
    let lib = id_map(&target.pool, "document_library").await;
    let expected_lib: BTreeMap<String, (i64, String, bool)> =
        [("1", 1, true), ("2", 1, true), ("4", 2, true), ("5", 900, false), ("6", 3, true), ("8", 4, true), ("9", 5, true)]
            .into_iter()
            .map(|(k, id, c)| (k.to_string(), (id, step2.clone(), c)))
            .collect();
    assert_eq!(lib, expected_lib);
    let ty = id_map(&target.pool, "document_type").await;
    let expected_ty: BTreeMap<String, (i64, String, bool)> = [
        ("w-9", 1, true),
        ("lonely doc", 2, true),
        ("certificate of good standing", 900, false),
        (x255.as_str(), 3, true),
        ("insurance binder", 4, true),
        ("partial", 5, true),
    ]
    .into_iter()
    .map(|(k, id, c)| (k.to_string(), (id, step2.clone(), c)))
    .collect();
    assert_eq!(ty, expected_ty);
    let l = "document_library";
    assert_eq!(
        t.issues,
        keys(&[
            (l, 1, "duplicate name (merged)"),
            (l, 2, "duplicate name (merged)"),
            (l, 3, "no name (skipped)"),
            (l, 4, "zero create_time"),
            (l, 4, "no create_time (import time used)"),
            (l, 4, "referenced by no document (potentially orphaned)"),
            (l, 5, "existing DocumentType reused"),
            (l, 6, "overlong name (truncated)"),
            (l, 7, "no name (skipped)"),
            (l, 9, "invalid create_time"),
            (l, 9, "no create_time (import time used)"),
        ])
    );
    let merged = t.details.iter().find(|i| i.legacy_key == "2" && i.reason == "duplicate name (merged)").unwrap();
    let detail = merged.detail.as_deref().unwrap();
    assert!(detail.contains("\"W-9\"") && detail.contains("libraries 1, 2") && detail.contains("customers 1, 2") && detail.contains("\" w-9 \""), "{detail}");
    let overlong = t.details.iter().find(|i| i.reason == "overlong name (truncated)").unwrap();
    assert_eq!(overlong.detail.as_deref(), Some("300 characters, cut to 255"));
    let c = &t.counts;
    assert_eq!(
        (c["libraries_read"], c["libraries_skipped"], c["libraries_mapped"], c["libraries_merged"], c["libraries_orphaned"]),
        (9, 2, 7, 2, 1)
    );
    assert_eq!((c["types_created"], c["types_reused"], c["types_updated"], c["types_unchanged"]), (5, 1, 0, 0));

    // ---- step 3 ----
    let p = run(&target, &profiles_ctx, Which::Profiles).await;
    assert_eq!(p.chunks, 5, "sets 1,2 | 3,4 | 5,6 | 7,8 | 10");
    assert_eq!(
        profiles(&target.pool).await,
        vec![
            (1, 501, "Standard".into(), s("Std desc"), ts(2019, 6, 1, 8), ts(2019, 6, 1, 8)),
            (2, 502, "Document set 2".into(), None, now, now),
            (3, 501, "Empty set".into(), s("Ok\u{FFFD}"), old, old),
            (4, 502, "Only bad".into(), None, now, now),
            (5, 501, "After gap".into(), None, ts(2021, 1, 1, 0), ts(2021, 1, 1, 0)),
        ]
    );
    // Set 1: requirement 3 (type 900) comes before requirement 5 (W-9); 7 repeats W-9.
    assert_eq!(junction(&target.pool).await, vec![(1, 1, 900, 0), (2, 1, 1, 1), (3, 2, 3, 0), (4, 2, 1, 1), (5, 5, 5, 0), (6, 5, 3, 1)]);
    let step3 = "document-risk-profiles".to_string();
    let sets = id_map(&target.pool, "document_set").await;
    assert_eq!(
        sets,
        [("1", 1), ("2", 2), ("3", 3), ("8", 4), ("10", 5)].into_iter().map(|(k, id)| (k.to_string(), (id, step3.clone(), true))).collect()
    );
    let pt = id_map(&target.pool, "document_risk_profile_document_type").await;
    assert_eq!(
        pt,
        [("1:900", 1), ("1:1", 2), ("2:3", 3), ("2:1", 4), ("10:5", 5), ("10:3", 6)]
            .into_iter()
            .map(|(k, id)| (k.to_string(), (id, step3.clone(), true)))
            .collect()
    );
    let (ds, dr) = ("document_set", "document_requirements");
    assert_eq!(
        p.issues,
        keys(&[
            (ds, 2, "no name (placeholder used)"),
            (ds, 2, "no create_time (import time used)"),
            (ds, 3, "invalid UTF-8 in description (replaced)"),
            (ds, 3, "no requirements (empty profile)"),
            (ds, 4, "customer not mapped (skipped)"),
            (ds, 5, "account id not numeric (skipped)"),
            (ds, 6, "account not in target (skipped)"),
            (ds, 7, "customer not mapped (skipped)"),
            (ds, 8, "zero create_time (import time used)"),
            (ds, 8, "no requirement resolved to a document type (empty profile)"),
            (dr, 8, "document has no document_library_id"),
            (dr, 9, "document not found"),
            (dr, 10, "no document_id"),
            (dr, 11, "document_library not mapped"),
            (dr, 12, "document has no document_library_id"),
            (dr, 16, "document_library not mapped"),
            (dr, 17, "document_set not found"),
            (dr, 18, "document_set not found"),
            (dr, 21, "no document_id"),
        ])
    );
    let c = &p.counts;
    assert_eq!((c["sets_read"], c["sets_skipped"], c["profiles_created"], c["empty_profiles"]), (9, 4, 5, 2));
    assert_eq!((c["requirements_read"], c["requirements_unresolved"], c["requirements_without_set"]), (14, 7, 2));
    assert_eq!((c["profile_types_created"], c["profile_types_removed"]), (6, 0));

    // ---- rerun both: nothing changes ----
    let before = dump(&target.pool).await;
    let t2 = run(&target, &types_ctx, Which::Types).await;
    let p2 = run(&target, &profiles_ctx, Which::Profiles).await;
    assert_eq!(dump(&target.pool).await, before, "a rerun changed the target");
    assert_eq!((t2.issues, p2.issues), (t.issues, p.issues));
    assert_eq!((t2.counts["types_created"], t2.counts["types_unchanged"], t2.counts["types_reused"]), (0, 5, 1));
    assert_eq!((p2.counts["profiles_created"], p2.counts["profiles_unchanged"], p2.counts["profile_types_unchanged"]), (0, 5, 6));
    assert!(!p2.counts.contains_key("profiles_updated") || p2.counts["profiles_updated"] == 0);

    // ---- legacy changes: set 1 renamed, its DocumentType 900 requirement gone, Lonely Doc added ----
    let mut conn = legacy.pool.acquire().await.unwrap();
    for sql in [
        "UPDATE document_set SET name = 'Standard v2' WHERE id = 1",
        "DELETE FROM document_requirements WHERE id = 3",
        "INSERT INTO document (id, customer_id, document_library_id) VALUES (19, 1, 4)",
        "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES (22, 1, 19)",
    ] {
        exec(&mut conn, sql).await;
    }
    drop(conn);
    // A junction row added in DTX 2.0 (not the step's): kept.
    sqlx::query("INSERT INTO docutrax_profiles_documentriskprofiledocumenttype (id, document_risk_profile_id, document_type_id, \"order\") VALUES (100, 2, 4, 5)")
        .execute(&target.pool)
        .await
        .unwrap();
    let p3 = run(&target, &profiles_ctx, Which::Profiles).await;
    assert_eq!(profiles(&target.pool).await[0], (1, 501, "Standard v2".into(), s("Std desc"), ts(2019, 6, 1, 8), ts(2019, 6, 1, 8)));
    assert_eq!(
        junction(&target.pool).await,
        vec![(2, 1, 1, 0), (3, 2, 3, 0), (4, 2, 1, 1), (5, 5, 5, 0), (6, 5, 3, 1), (7, 1, 2, 1), (100, 2, 4, 5)]
    );
    let pt = id_map(&target.pool, "document_risk_profile_document_type").await;
    assert!(!pt.contains_key("1:900"));
    assert_eq!(pt["1:2"], (7, step3.clone(), true));
    assert_eq!(pt.len(), 6, "the manual row is not mapped");
    let c = &p3.counts;
    assert_eq!(
        (c["profiles_updated"], c["profile_types_created"], c["profile_types_updated"], c["profile_types_removed"]),
        (1, 1, 1, 1)
    );
    // The pre-existing DocumentType was never touched.
    assert_eq!(types(&target.pool).await[5], (900, "Certificate of Good Standing".into(), s("pre-existing"), old, old));

    legacy.drop_database().await;
    target.drop_database().await;
}

#[tokio::test]
async fn reruns_refresh_own_types_never_rename_onto_another_and_adopt_rows_made_in_dtx2() {
    let legacy = MysqlFixture::with_legacy_schema().await;
    let mut conn = legacy.pool.acquire().await.unwrap();
    for sql in [
        "INSERT INTO document_library (id, customer_id, name, description, create_time) VALUES
            (1, 1, 'W-9', 'd1', '2019-01-01'), (2, 1, 'Binder', NULL, '2019-01-01'), (3, 1, 'Permit', NULL, '2019-01-01')",
        "INSERT INTO document (id, customer_id, document_library_id) VALUES (10, 1, 1), (11, 1, 2), (12, 1, 3)",
        "INSERT INTO document_set (id, customer_id, name, create_time) VALUES (1, 1, 'S', '2019-01-01')",
        "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES (1, 1, 10), (2, 1, 11)",
    ] {
        exec(&mut conn, sql).await;
    }
    let target = PgFixture::new().await;
    sqlx::query("INSERT INTO docutrax_accounts_account (id, name) VALUES (501, 'A1')").execute(&target.pool).await.unwrap();
    let mappings = LoaderMappings { accounts: HashMap::from([(1, "501".to_string())]), ..Default::default() };
    let now = ts(2024, 6, 1, 12);
    let types_ctx = StepContext { legacy: &legacy.pool, mappings: &mappings, step: "document-types", now, chunk_rows: 1, read_ahead: Default::default() };
    let profiles_ctx = StepContext { legacy: &legacy.pool, mappings: &mappings, step: "document-risk-profiles", now, chunk_rows: 1, read_ahead: Default::default() };
    run(&target, &types_ctx, Which::Types).await;
    run(&target, &profiles_ctx, Which::Profiles).await;
    assert_eq!(junction(&target.pool).await, vec![(1, 1, 1, 0), (2, 1, 2, 1)]);

    // A row made in DTX 2.0 for a type legacy starts to require: adopted (not re-inserted), re-ordered.
    sqlx::query("INSERT INTO docutrax_profiles_documentriskprofiledocumenttype (id, document_risk_profile_id, document_type_id, \"order\") VALUES (100, 1, 3, 9)")
        .execute(&target.pool)
        .await
        .unwrap();
    exec(&mut conn, "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES (3, 1, 12)").await;
    let p = run(&target, &profiles_ctx, Which::Profiles).await;
    assert_eq!(junction(&target.pool).await, vec![(1, 1, 1, 0), (2, 1, 2, 1), (100, 1, 3, 2)]);
    assert_eq!(id_map(&target.pool, "document_risk_profile_document_type").await["1:3"], (100, "document-risk-profiles".into(), false));
    assert_eq!((p.counts["profile_types_adopted"], p.counts["profile_types_created"]), (1, 0));

    // Legacy now spells W-9 "w-9" and another DTX 2.0 type holds that exact name: no rename, flagged;
    // the description is refreshed.
    sqlx::query("INSERT INTO docutrax_profiles_documenttype (id, name, created, modified) VALUES (950, 'w-9', now(), now())")
        .execute(&target.pool)
        .await
        .unwrap();
    exec(&mut conn, "UPDATE document_library SET name = 'w-9', description = 'd2' WHERE id = 1").await;
    let t = run(&target, &types_ctx, Which::Types).await;
    let w9: TypeRow = sqlx::query_as("SELECT id, name, description, created, modified FROM docutrax_profiles_documenttype WHERE id = 1")
        .fetch_one(&target.pool)
        .await
        .unwrap();
    assert_eq!(w9, (1, "W-9".into(), Some("d2".into()), ts(2019, 1, 1, 0), ts(2019, 1, 1, 0)));
    assert!(t.issues.contains(&("document_library".into(), "1".into(), "name taken by another DocumentType (not renamed)".into())));
    assert_eq!(id_map(&target.pool, "document_library").await["1"].0, 1, "still its own type, not 950");
    assert_eq!((t.counts["types_updated"], t.counts["types_unchanged"]), (1, 2));

    // The requirement goes away: the adopted row stays (it is not the step's), only its mapping goes.
    exec(&mut conn, "DELETE FROM document_requirements WHERE id = 3").await;
    let p = run(&target, &profiles_ctx, Which::Profiles).await;
    assert_eq!(junction(&target.pool).await, vec![(1, 1, 1, 0), (2, 1, 2, 1), (100, 1, 3, 2)]);
    assert!(!id_map(&target.pool, "document_risk_profile_document_type").await.contains_key("1:3"));
    assert_eq!(p.counts["profile_types_removed"], 0);
    drop(conn);
    legacy.drop_database().await;
    target.drop_database().await;
}
