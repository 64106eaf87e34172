//! Steps 10 `doc-requirements` and 11 `fulfillments` (Decision #8) on crafted legacy rows, with
//! steps 2-4 run through the Loader first and the documents of step 9 as stand-ins: every
//! DocRequirementStatus case, the per-vendor / per-group aggregation, unknown values, missing
//! mappings, reuse of rows the loader did not make, find-or-create of DocRequirements by the
//! fulfillments, idempotent reruns, dry runs and chunking.

use shared::loader::book::{self, Issue};
use shared::loader::runner::{LoadRequest, LoaderMappings};
use shared::loader::steps::doc_requirements as dr;
use shared::loader::steps::fulfillments as ff;
use shared::loader::steps::StepContext;
use shared::mappings::RecordMapping;
use std::collections::HashMap;
use tests::{counts, MysqlFixture, PgFixture};

type Time = chrono::DateTime<chrono::Utc>;

fn at(text: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

/// The load time the steps are driven with (rows with no legacy time get it at insert).
const NOW: &str = "2024-05-01T12:00:00Z";

/// Legacy document id -> its stand-in's id in the target.
fn new_document(legacy_id: i64) -> i64 {
    9000 + legacy_id
}

async fn crafted_legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    for sql in [
        "INSERT INTO customer (id, name) VALUES (1, 'Acme'), (99, 'Unmapped')",
        // 4 is the same type as 1 (merged by name); 6 is required by no set.
        "INSERT INTO document_library (id, customer_id, name, create_time) VALUES
            (1, 1, 'W-9', '2018-01-01'), (2, 1, 'Insurance Letter', '2018-01-02'), (3, 1, 'License', '2018-01-03'),
            (4, 1, 'w-9 ', '2018-01-04'), (5, 1, 'Bond', '2018-01-05'), (6, 1, 'Unused', '2018-01-06')",
        // 105 is not migrated, 108's vendor does not exist, 110's library does not exist.
        "INSERT INTO document (id, customer_id, vendor_id, document_library_id, name) VALUES
            (100, 1, 10, 1, 'w9 v10'), (101, 1, 10, 2, 'letter v10'), (102, 1, 11, 3, 'license v11'), (103, 1, 12, NULL, 'no library'),
            (104, 1, 13, 5, 'bond v13'), (105, 1, 10, 1, 'unmigrated'), (106, 1, 13, 1, 'w9 v13'), (107, 1, NULL, 2, 'no vendor'),
            (108, 1, 19, 4, 'ghost vendor'), (109, 1, 10, 1, 'second w9 v10'), (110, 1, 11, 7, 'unknown library'),
            (112, 99, 21, 1, 'unmapped customer')",
        "INSERT INTO document_set (id, customer_id, name, create_time) VALUES
            (7, 1, 'Standard', '2019-01-01'), (8, 1, 'Bonded', '2019-01-02'), (9, 99, 'Unmapped set', '2019-01-03')",
        "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES
            (1, 7, 100), (2, 7, 101), (3, 7, 102), (4, 8, 104), (5, 9, 100), (6, 7, NULL), (7, 7, 103), (8, 7, 105),
            (9, 7, 106), (10, 7, 107), (11, 7, 999), (12, 7, 108), (13, 7, 109), (14, 7, 100), (15, 7, 110), (16, 7, 112)",
        // Groups 1:1:7 (vendors 10, 11), 1:2:7 (12), 1:3:7 (16), 1:4:8 (13), 1:5: (14, no set);
        // 99:1:7 is not migrated (customer 99 has no account).
        "INSERT INTO vendor (id, customer_id, requirements_id, document_set_id) VALUES
            (10, 1, 1, 7), (11, 1, 1, 7), (12, 1, 2, 7), (16, 1, 3, 7), (13, 1, 4, 8), (14, 1, 5, NULL), (21, 99, 1, 7)",
        "INSERT INTO document_status (id, vendor_id, customer_id, document_id, document_library_id, document_status, create_time) VALUES
            (1, 10, 1, NULL, 1, 'APPROVED', '2020-01-10 00:00:00'),
            (2, 11, 1, NULL, 4, 'REJECTED', '2019-05-01 00:00:00'),
            (3, 11, 1, NULL, 1, 'PROVIDED', '2021-03-01 00:00:00'),
            (4, 10, 1, 101, NULL, 'OVERRIDE', '2020-02-01 00:00:00'),
            (5, 11, 1, NULL, 2, 'APPROVED', '2020-02-02 00:00:00'),
            (6, 10, 1, NULL, 3, 'REJECTED', '2020-03-01 00:00:00'),
            (7, 11, 1, NULL, 3, 'NOT_PROVIDED', '2020-03-02 00:00:00'),
            (8, 12, 1, NULL, 1, 'NOT_PROVIDED', '2020-04-01 00:00:00'),
            (9, 12, 1, NULL, 2, 'EXPIRED', '2020-04-02 00:00:00'),
            (10, 12, 1, NULL, 3, 'OVERRIDE', '2020-04-03 00:00:00'),
            (11, 12, 1, NULL, 6, 'APPROVED', '2020-04-04 00:00:00'),
            (12, 12, 1, NULL, 77, 'APPROVED', '2020-04-05 00:00:00'),
            (13, 12, 1, NULL, NULL, 'APPROVED', '2020-04-06 00:00:00'),
            (14, 12, 1, 103, 0, 'APPROVED', '2020-04-07 00:00:00'),
            (15, 12, 1, 998, NULL, 'APPROVED', '2020-04-08 00:00:00'),
            (16, 13, 1, NULL, 5, 'APPROVED', '2020-06-01 00:00:00'),
            (17, 13, 1, NULL, 5, 'REJECTED', '2020-06-01 00:00:00'),
            (18, 13, 1, NULL, 5, 'APPROVED', NULL),
            (20, 14, 1, NULL, 1, 'APPROVED', '2020-07-01 00:00:00'),
            (21, 13, 1, NULL, 5, NULL, '2019-01-01 00:00:00'),
            (22, 21, 99, NULL, 1, 'REJECTED', '2020-08-01 00:00:00')",
    ] {
        sqlx::query(sql).execute(&db.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    db
}

fn mappings() -> LoaderMappings {
    let record = |v: i64| RecordMapping { record_id: 700 + v, assignment_id: 800 + v };
    LoaderMappings {
        accounts: HashMap::from([(1, "1001".into())]),
        records: [10u64, 11, 12, 13, 14, 16].into_iter().map(|v| (v, record(v as i64))).collect(),
        ..Default::default()
    }
}

/// A target with the Area 2/3 stand-ins and steps 2-4 run through the Loader.
async fn steps_2_to_4(legacy: &MysqlFixture, reports: &std::path::Path) -> PgFixture {
    let pg = PgFixture::new().await;
    let vendors = [10, 11, 12, 13, 14, 16];
    let names: Vec<String> = vendors.iter().map(|v| format!("v{v}")).collect();
    let records: Vec<(i64, i64, &str)> = vendors.iter().zip(&names).map(|(v, name)| (700 + v, 1001, name.as_str())).collect();
    let assignments: Vec<(i64, i64, i64)> = vendors.iter().map(|v| (800 + v, 700 + v, 1001)).collect();
    tests::StandIns { accounts: &[(1001, "Acme")], records: &records, assignments: &assignments, ..Default::default() }.insert(&pg).await;
    let loader = tests::loader(legacy, &pg, mappings(), reports, 100);
    for step in ["document-types", "document-risk-profiles", "requirements-groups"] {
        let r = loader.run(&LoadRequest { step: step.into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{step}: {e}"));
        assert!(r.done, "{step}");
    }
    pg
}

/// [`steps_2_to_4`] plus stand-ins for the documents step's output (document rows + id map)
/// for every legacy document but 105.
async fn prepared_target(legacy: &MysqlFixture, reports: &std::path::Path) -> PgFixture {
    let pg = steps_2_to_4(legacy, reports).await;
    let documents: Vec<i64> = vec![100, 101, 102, 103, 104, 106, 107, 108, 109, 110, 112];
    for d in &documents {
        let s = format!(
            "INSERT INTO docutrax_profiles_document (id, name, status, created, modified, account_id)
             VALUES ({}, 'doc {d}', 'new', '2021-01-01T00:00:00Z'::timestamptz + interval '{d} minutes', '2021-06-01Z', 1001)",
            new_document(*d)
        );
        sqlx::query(&s).execute(&pg.pool).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let pairs: Vec<(String, i64)> = documents.iter().map(|d| (d.to_string(), new_document(*d))).collect();
    let mut conn = pg.pool.acquire().await.unwrap();
    book::map_ids(&mut conn, ff::DOCUMENT_ENTITY, "documents", true, &pairs).await.unwrap();
    pg
}

async fn mapped(pool: &sqlx::PgPool, entity: &str, key: &str) -> i64 {
    sqlx::query_scalar("SELECT new_id FROM dtx_migration.id_map WHERE entity = $1 AND legacy_key = $2")
        .bind(entity)
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{entity} {key}: {e}"))
}

/// Drives one step like the runner (a committed transaction per chunk, issues recorded), with
/// a fixed load time; the issues sorted.
async fn drive(legacy: &MysqlFixture, target: &PgFixture, step: &'static str, chunk_rows: u32) -> tests::StepRun {
    let m = mappings();
    let ctx = StepContext { legacy: &legacy.pool, mappings: &m, step, now: at(NOW), chunk_rows, read_ahead: Default::default() };
    let mut run = match step {
        dr::STEP => tests::run_chunks(target, &ctx, dr::chunk).await,
        ff::STEP => tests::run_chunks(target, &ctx, ff::chunk).await,
        other => panic!("not driven here: {other}"),
    };
    run.issues.sort();
    run
}

/// (group key, type name, status, created, modified, id map step, id map created) per DocRequirement.
type RequirementView = (String, String, String, Time, Time, Option<String>, Option<bool>);

async fn requirements(pool: &sqlx::PgPool) -> Vec<RequirementView> {
    sqlx::query_as(
        "SELECT gm.legacy_key, t.name, r.status, r.created, r.modified, m.step, m.created
         FROM docutrax_profiles_docrequirement r
         JOIN dtx_migration.id_map gm ON gm.entity = 'requirements_group' AND gm.new_id = r.requirements_group_id
         JOIN docutrax_profiles_documenttype t ON t.id = r.document_type_id
         LEFT JOIN dtx_migration.id_map m ON m.entity = 'doc_requirement' AND m.new_id = r.id
         ORDER BY gm.legacy_key, t.name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// (legacy document id, group key, type name, created, id map step, id map created) per fulfillment.
type FulfillmentView = (String, String, String, Time, Option<String>, Option<bool>);

async fn fulfillments(pool: &sqlx::PgPool) -> Vec<FulfillmentView> {
    sqlx::query_as(
        "SELECT dm.legacy_key, gm.legacy_key, t.name, f.created, m.step, m.created
         FROM docutrax_profiles_documentrequirementfulfillment f
         JOIN dtx_migration.id_map dm ON dm.entity = 'document' AND dm.new_id = f.document_id
         JOIN docutrax_profiles_docrequirement r ON r.id = f.doc_requirement_id
         JOIN dtx_migration.id_map gm ON gm.entity = 'requirements_group' AND gm.new_id = r.requirements_group_id
         JOIN docutrax_profiles_documenttype t ON t.id = r.document_type_id
         LEFT JOIN dtx_migration.id_map m ON m.entity = 'document_requirement_fulfillment' AND m.new_id = f.id
         ORDER BY dm.legacy_key::int, t.name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn req(key: &str, name: &str, status: &str, created: &str, modified: &str, step: Option<&str>, made: Option<bool>) -> RequirementView {
    (key.into(), name.into(), status.into(), at(created), at(modified), step.map(String::from), made)
}

fn doc_created(legacy_id: i64) -> Time {
    at("2021-01-01T00:00:00Z") + chrono::Duration::minutes(legacy_id)
}

fn keys(issues: &[Issue]) -> Vec<(String, String, String)> {
    issues.iter().map(|i| (i.entity.clone(), i.legacy_key.clone(), i.reason.clone())).collect()
}

fn detail<'a>(issues: &'a [Issue], entity: &str, key: &str, reason: &str) -> &'a str {
    issues
        .iter()
        .find(|i| i.entity == entity && i.legacy_key == key && i.reason == reason)
        .and_then(|i| i.detail.as_deref())
        .unwrap_or_else(|| panic!("no issue {entity} {key} {reason}: {issues:?}"))
}

/// The DocRequirements of the crafted rows (all made by doc-requirements but the reused one).
fn expected_requirements(reused_license: bool) -> Vec<RequirementView> {
    let step = Some(dr::STEP);
    let made = Some(true);
    let mut v = vec![
        // W-9: vendor 10 APPROVED; vendor 11 REJECTED (library 4, merged into W-9) then PROVIDED.
        req("1:1:7", "W-9", "pass", "2019-05-01T00:00:00Z", "2021-03-01T00:00:00Z", step, made),
        // Letter: vendor 10 OVERRIDE (via its document_id), vendor 11 APPROVED: the least favourable.
        req("1:1:7", "Insurance Letter", "override", "2020-02-01T00:00:00Z", "2020-02-02T00:00:00Z", step, made),
        req("1:1:7", "License", "fail", "2020-03-01T00:00:00Z", "2020-03-02T00:00:00Z", step, made),
        req("1:2:7", "W-9", "in_review", "2020-04-01T00:00:00Z", "2020-04-01T00:00:00Z", step, made),
        // EXPIRED is unknown: in_review, flagged.
        req("1:2:7", "Insurance Letter", "in_review", "2020-04-02T00:00:00Z", "2020-04-02T00:00:00Z", step, made),
        // No status row at all: in_review, load time.
        req("1:3:7", "W-9", "in_review", NOW, NOW, step, made),
        req("1:3:7", "Insurance Letter", "in_review", NOW, NOW, step, made),
        req("1:3:7", "License", "in_review", NOW, NOW, step, made),
        // Rows 16/17 share a time: the higher id (REJECTED) is the latest; 18 has no time; 21
        // (NULL status, flagged) is older. created/modified span every dated row.
        req("1:4:8", "Bond", "fail", "2019-01-01T00:00:00Z", "2020-06-01T00:00:00Z", step, made),
    ];
    v.push(if reused_license {
        // A DTX 2.0 row: kept as it is, mapped with created = false.
        req("1:2:7", "License", "pass", "2023-01-01T00:00:00Z", "2023-01-01T00:00:00Z", step, Some(false))
    } else {
        req("1:2:7", "License", "override", "2020-04-03T00:00:00Z", "2020-04-03T00:00:00Z", step, made)
    });
    v.sort();
    v
}

/// Inserts a DTX 2.0 DocRequirement for (1:2:7, License) that no step made.
async fn add_foreign_requirement(pg: &PgFixture) {
    let group = mapped(&pg.pool, "requirements_group", "1:2:7").await;
    let license = mapped(&pg.pool, "document_library", "3").await;
    sqlx::query(
        "INSERT INTO docutrax_profiles_docrequirement (id, requirements_group_id, document_type_id, status, created, modified)
         VALUES (5000, $1, $2, 'pass', '2023-01-01Z', '2023-01-01Z')",
    )
    .bind(group)
    .bind(license)
    .execute(&pg.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn doc_requirements_and_fulfillments_from_crafted_rows() {
    let legacy = crafted_legacy().await;
    let reports = tempfile::tempdir().unwrap();
    let target = prepared_target(&legacy, reports.path()).await;
    add_foreign_requirement(&target).await;

    // ---- Step 10.
    let run = drive(&legacy, &target, dr::STEP, 100).await;
    assert_eq!(run.chunks, 1);
    assert_eq!(
        run.counts,
        counts(&[
            ("groups_read", 5),
            ("groups_without_profile", 1),
            ("status_rows_read", 19),
            ("status_rows_outside_profile", 1),
            ("status_in_review", 5),
            ("status_pass", 1),
            ("status_override", 2),
            ("status_fail", 2),
            ("doc_requirements_created", 9),
            ("doc_requirements_updated", 0),
            ("doc_requirements_unchanged", 0),
            ("doc_requirements_reused", 1),
        ])
    );
    let group_b = mapped(&target.pool, "requirements_group", "1:2:7").await;
    let license = mapped(&target.pool, "document_library", "3").await;
    let reused_key = format!("{group_b}:{license}");
    let mut expected_issues = vec![
        (dr::ENTITY_STATUS, "9", dr::REASON_UNKNOWN_STATUS),
        (dr::ENTITY_STATUS, "21", dr::REASON_UNKNOWN_STATUS),
        (dr::ENTITY_STATUS, "12", dr::REASON_LIBRARY_UNMAPPED),
        (dr::ENTITY_STATUS, "13", dr::REASON_NO_TYPE),
        (dr::ENTITY_STATUS, "14", dr::REASON_NO_TYPE),
        (dr::ENTITY_STATUS, "15", dr::REASON_NO_TYPE),
        (dr::ENTITY, reused_key.as_str(), dr::REASON_REUSED),
    ]
    .into_iter()
    .map(|(e, k, r)| (e.to_string(), k.to_string(), r.to_string()))
    .collect::<Vec<_>>();
    expected_issues.sort();
    assert_eq!(keys(&run.issues), expected_issues);
    assert_eq!(detail(&run.issues, dr::ENTITY_STATUS, "9", dr::REASON_UNKNOWN_STATUS), "vendor 12: \"EXPIRED\"");
    assert_eq!(detail(&run.issues, dr::ENTITY_STATUS, "21", dr::REASON_UNKNOWN_STATUS), "vendor 13: NULL");
    assert_eq!(detail(&run.issues, dr::ENTITY_STATUS, "14", dr::REASON_NO_TYPE), "no document_library_id; document 103 has none either");
    assert_eq!(detail(&run.issues, dr::ENTITY_STATUS, "15", dr::REASON_NO_TYPE), "no document_library_id; document 998 not found");
    assert_eq!(detail(&run.issues, dr::ENTITY, &reused_key, dr::REASON_REUSED), "DocRequirement 5000 keeps status pass; legacy says override");
    assert_eq!(requirements(&target.pool).await, expected_requirements(true));
    // Every id map key names its row's (group, type).
    let bad: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM dtx_migration.id_map m JOIN docutrax_profiles_docrequirement r ON r.id = m.new_id
         WHERE m.entity = 'doc_requirement' AND m.legacy_key <> r.requirements_group_id || ':' || r.document_type_id",
    )
    .fetch_one(&target.pool)
    .await
    .unwrap();
    assert_eq!(bad, 0);

    // ---- Step 11, with a DTX 2.0 fulfillment already linking document 102 to its requirement.
    let group_a = mapped(&target.pool, "requirements_group", "1:1:7").await;
    let license_a = mapped(&target.pool, "doc_requirement", &format!("{group_a}:{license}")).await;
    sqlx::query(
        "INSERT INTO docutrax_profiles_documentrequirementfulfillment (id, document_id, doc_requirement_id, created)
         VALUES (7000, $1, $2, '2023-02-02Z')",
    )
        .bind(new_document(102))
        .bind(license_a)
        .execute(&target.pool)
        .await
        .unwrap();
    let run = drive(&legacy, &target, ff::STEP, 100).await;
    assert_eq!(
        run.counts,
        counts(&[
            ("links_read", 16),
            ("links_skipped", 10),
            ("links_merged", 1),
            ("doc_requirements_found", 4),
            ("fulfillments_created", 4),
            ("fulfillments_updated", 0),
            ("fulfillments_unchanged", 0),
            ("fulfillments_reused", 1),
        ])
    );
    let link = ff::ENTITY_LINK;
    let reused_fulfillment = format!("{}:{license_a}", new_document(102));
    let mut expected_issues = vec![
        (link, "5", ff::REASON_SET_NOT_MIGRATED),
        (link, "6", ff::REASON_NO_DOCUMENT_ID),
        (link, "7", ff::REASON_NO_LIBRARY),
        (link, "8", ff::REASON_DOCUMENT_NOT_MIGRATED),
        (link, "9", ff::REASON_OTHER_SET),
        (link, "10", ff::REASON_NO_VENDOR),
        (link, "11", ff::REASON_DOCUMENT_MISSING),
        (link, "12", ff::REASON_VENDOR_MISSING),
        (link, "15", ff::REASON_LIBRARY_UNMAPPED),
        (link, "16", ff::REASON_GROUP_NOT_MIGRATED),
        (ff::ENTITY, reused_fulfillment.as_str(), ff::REASON_REUSED),
    ]
    .into_iter()
    .map(|(e, k, r)| (e.to_string(), k.to_string(), r.to_string()))
    .collect::<Vec<_>>();
    expected_issues.sort();
    assert_eq!(keys(&run.issues), expected_issues);
    assert_eq!(detail(&run.issues, link, "9", ff::REASON_OTHER_SET), "document 106, vendor 13 is on document_set 8, the link names 7");
    assert_eq!(detail(&run.issues, link, "16", ff::REASON_GROUP_NOT_MIGRATED), "document 112, vendor 21, combination 99:1:7");
    let fstep = Some(ff::STEP.to_string());
    assert_eq!(
        fulfillments(&target.pool).await,
        vec![
            ("100".into(), "1:1:7".into(), "W-9".into(), doc_created(100), fstep.clone(), Some(true)),
            ("101".into(), "1:1:7".into(), "Insurance Letter".into(), doc_created(101), fstep.clone(), Some(true)),
            ("102".into(), "1:1:7".into(), "License".into(), at("2023-02-02T00:00:00Z"), fstep.clone(), Some(false)),
            ("104".into(), "1:4:8".into(), "Bond".into(), doc_created(104), fstep.clone(), Some(true)),
            ("109".into(), "1:1:7".into(), "W-9".into(), doc_created(109), fstep.clone(), Some(true)),
        ]
    );
    // Every DocRequirement was found: the fulfillments step created none.
    assert_eq!(requirements(&target.pool).await, expected_requirements(true));

    // ---- Reruns change nothing (driven, then through the Loader).
    let before = target.dump(&[]).await;
    let again = drive(&legacy, &target, dr::STEP, 100).await;
    assert_eq!(again.counts["doc_requirements_unchanged"], 9);
    assert_eq!(again.counts["doc_requirements_created"] + again.counts["doc_requirements_updated"], 0);
    let again = drive(&legacy, &target, ff::STEP, 100).await;
    assert_eq!(again.counts["fulfillments_unchanged"], 4);
    assert_eq!(again.counts["fulfillments_created"] + again.counts["fulfillments_updated"], 0);
    assert_eq!(target.dump(&[]).await, before, "a rerun changed the target");
    let loader = tests::loader(&legacy, &target, mappings(), reports.path(), 3);
    for step in [dr::STEP, ff::STEP] {
        let r = loader.run(&LoadRequest { step: step.into(), ..Default::default() }).await.unwrap();
        assert!(r.done);
    }
    assert_eq!(target.dump(&["dtx_migration.step_run"]).await, before.into_iter().filter(|(t, _)| t != "dtx_migration.step_run").collect());

    // ---- A changed legacy status is refreshed on the loader's row, never on the reused one.
    sqlx::query("UPDATE document_status SET document_status = 'APPROVED' WHERE id IN (6, 10)").execute(&legacy.pool).await.unwrap();
    let changed = drive(&legacy, &target, dr::STEP, 100).await;
    assert_eq!(changed.counts["doc_requirements_updated"], 1);
    let mut expected = expected_requirements(true);
    for r in expected.iter_mut().filter(|r| r.0 == "1:1:7" && r.1 == "License") {
        r.2 = "in_review".into();
    }
    assert_eq!(requirements(&target.pool).await, expected);
    let reused_issue: Option<String> = sqlx::query_scalar("SELECT detail FROM dtx_migration.issue WHERE step = $1 AND reason = $2")
        .bind(dr::STEP)
        .bind(dr::REASON_REUSED)
        .fetch_one(&target.pool)
        .await
        .unwrap();
    assert_eq!(reused_issue.as_deref(), Some("DocRequirement 5000 keeps status pass; legacy says pass"));

    target.drop_database().await;
    legacy.drop_database().await;
}

#[tokio::test]
async fn fulfillments_create_the_doc_requirements_they_do_not_find() {
    let legacy = crafted_legacy().await;
    let reports = tempfile::tempdir().unwrap();
    let target = prepared_target(&legacy, reports.path()).await;

    // Step 11 before step 10: every DocRequirement it needs is missing.
    let run = drive(&legacy, &target, ff::STEP, 100).await;
    assert_eq!(run.counts["doc_requirements_found"], 0);
    assert_eq!(run.counts["doc_requirements_created"], 4);
    assert_eq!(run.counts["fulfillments_created"], 5);
    // The unknown status of a created requirement's pair is flagged here too.
    assert!(keys(&run.issues).contains(&(dr::ENTITY_STATUS.into(), "21".into(), dr::REASON_UNKNOWN_STATUS.into())), "{:?}", run.issues);
    let made_here: Vec<RequirementView> = expected_requirements(false)
        .into_iter()
        .filter(|r| (r.0 == "1:1:7") || r.0 == "1:4:8")
        .map(|r| (r.0, r.1, r.2, r.3, r.4, Some(ff::STEP.to_string()), Some(true)))
        .collect();
    assert_eq!(requirements(&target.pool).await, made_here, "same statuses as step 10 computes, mapped under fulfillments");

    // Step 10 afterwards finds them unchanged and adds the rest; the mappings keep their step.
    let run = drive(&legacy, &target, dr::STEP, 100).await;
    assert_eq!(run.counts["doc_requirements_unchanged"], 4);
    assert_eq!(run.counts["doc_requirements_created"], 6);
    let expected: Vec<RequirementView> = expected_requirements(false)
        .into_iter()
        .map(|r| {
            let step = if r.0 == "1:1:7" || r.0 == "1:4:8" { ff::STEP } else { dr::STEP };
            (r.0, r.1, r.2, r.3, r.4, Some(step.to_string()), Some(true))
        })
        .collect();
    assert_eq!(requirements(&target.pool).await, expected);

    // A DocRequirement whose row was deleted is re-created under its mapped id.
    let group_d = mapped(&target.pool, "requirements_group", "1:4:8").await;
    let bond = mapped(&target.pool, "document_library", "5").await;
    let bond_req = mapped(&target.pool, "doc_requirement", &format!("{group_d}:{bond}")).await;
    sqlx::query("DELETE FROM docutrax_profiles_documentrequirementfulfillment WHERE doc_requirement_id = $1")
        .bind(bond_req)
        .execute(&target.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM docutrax_profiles_docrequirement WHERE id = $1").bind(bond_req).execute(&target.pool).await.unwrap();
    let run = drive(&legacy, &target, ff::STEP, 100).await;
    assert_eq!(run.counts["doc_requirements_created"], 1);
    assert_eq!(run.counts["fulfillments_created"], 1);
    assert_eq!(mapped(&target.pool, "doc_requirement", &format!("{group_d}:{bond}")).await, bond_req);
    assert_eq!(requirements(&target.pool).await, expected);

    target.drop_database().await;
    legacy.drop_database().await;
}

#[tokio::test]
async fn dry_runs_leave_the_target_unchanged() {
    let legacy = crafted_legacy().await;
    let reports = tempfile::tempdir().unwrap();
    let target = prepared_target(&legacy, reports.path()).await;
    let before = target.dump(&[]).await;
    let loader = tests::loader(&legacy, &target, mappings(), reports.path(), 2);
    let r = loader.run(&LoadRequest { step: dr::STEP.into(), dry_run: true, ..Default::default() }).await.unwrap();
    assert!(r.done);
    assert_eq!(r.counts["doc_requirements_created"], 10, "the dry run counts what it would do: {:?}", r.counts);
    assert_eq!(target.dump(&[]).await, before, "a dry run of doc-requirements changed the target");
    let r = loader.run(&LoadRequest { step: ff::STEP.into(), dry_run: true, ..Default::default() }).await.unwrap();
    assert!(r.done);
    assert_eq!(r.counts["fulfillments_created"], 5, "{:?}", r.counts);
    assert_eq!(target.dump(&[]).await, before, "a dry run of fulfillments changed the target");
    assert!(reports.path().join("migration_issues_dry_run_fulfillments.csv").exists());
    target.drop_database().await;
    legacy.drop_database().await;
}

/// Every row and id map entry of the two steps, and their issues.
async fn result(pool: &sqlx::PgPool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT to_jsonb(t)::text FROM docutrax_profiles_docrequirement t ORDER BY id",
        "SELECT to_jsonb(t)::text FROM docutrax_profiles_documentrequirementfulfillment t ORDER BY id",
        "SELECT (to_jsonb(t) - 'created_at')::text FROM dtx_migration.id_map t
         WHERE entity IN ('doc_requirement', 'document_requirement_fulfillment') ORDER BY entity, legacy_key",
        "SELECT concat_ws(' | ', step, entity, legacy_key, reason, detail) FROM dtx_migration.issue
         WHERE step IN ('doc-requirements', 'fulfillments') ORDER BY 1",
    ] {
        out.push(sqlx::query_scalar(sql).fetch_all(pool).await.unwrap());
    }
    out
}

#[tokio::test]
async fn one_row_chunks_give_the_same_result() {
    let legacy = crafted_legacy().await;
    let reports = tempfile::tempdir().unwrap();
    let whole = prepared_target(&legacy, reports.path()).await;
    let chunked = prepared_target(&legacy, reports.path()).await;
    for target in [&whole, &chunked] {
        add_foreign_requirement(target).await;
    }
    drive(&legacy, &whole, dr::STEP, 1000).await;
    drive(&legacy, &whole, ff::STEP, 1000).await;
    let r10 = drive(&legacy, &chunked, dr::STEP, 1).await;
    assert_eq!(r10.chunks, 6, "5 groups, then an empty chunk");
    let r11 = drive(&legacy, &chunked, ff::STEP, 1).await;
    assert_eq!(r11.chunks, 17, "16 links, then an empty chunk");
    let expected = result(&whole.pool).await;
    assert_eq!(expected[0].len(), 10);
    assert_eq!(expected[1].len(), 5);
    assert_eq!(result(&chunked.pool).await, expected);
    for t in [whole, chunked] {
        t.drop_database().await;
    }
    legacy.drop_database().await;
}

#[tokio::test]
async fn the_chain_through_the_loader_with_the_documents_step() {
    let legacy = crafted_legacy().await;
    let reports = tempfile::tempdir().unwrap();
    let target = steps_2_to_4(&legacy, reports.path()).await;
    let loader = tests::loader(&legacy, &target, mappings(), reports.path(), 4);
    for step in ["documents", dr::STEP, ff::STEP] {
        let r = loader.run(&LoadRequest { step: step.into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{step}: {e}"));
        assert!(r.done, "{step}");
    }
    // The documents of mapped vendors are migrated (105 included this time); those on a set
    // of their group fulfill its requirement of their type.
    let linked: Vec<(String, String, String)> =
        fulfillments(&target.pool).await.into_iter().map(|f| (f.0, f.1, f.2)).collect();
    let expected: Vec<(String, String, String)> = [
        ("100", "1:1:7", "W-9"),
        ("101", "1:1:7", "Insurance Letter"),
        ("102", "1:1:7", "License"),
        ("104", "1:4:8", "Bond"),
        ("105", "1:1:7", "W-9"),
        ("109", "1:1:7", "W-9"),
    ]
    .into_iter()
    .map(|(d, g, t)| (d.to_string(), g.to_string(), t.to_string()))
    .collect();
    assert_eq!(linked, expected);
    // Each fulfillment's created is its document's.
    let off: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM docutrax_profiles_documentrequirementfulfillment f JOIN docutrax_profiles_document d ON d.id = f.document_id
         WHERE f.created <> d.created",
    )
    .fetch_one(&target.pool)
    .await
    .unwrap();
    assert_eq!(off, 0);
    let statuses: Vec<(String, String, String)> = requirements(&target.pool).await.into_iter().map(|r| (r.0, r.1, r.2)).collect();
    let expected: Vec<(String, String, String)> = expected_requirements(false).into_iter().map(|r| (r.0, r.1, r.2)).collect();
    assert_eq!(statuses, expected);

    // A rerun of the three steps leaves every table as it was.
    let before = target.dump(&["dtx_migration.step_run"]).await;
    for step in ["documents", dr::STEP, ff::STEP] {
        loader.run(&LoadRequest { step: step.into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{step}: {e}"));
    }
    assert_eq!(target.dump(&["dtx_migration.step_run"]).await, before);
    target.drop_database().await;
    legacy.drop_database().await;
}
