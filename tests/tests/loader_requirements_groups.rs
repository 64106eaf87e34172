//! Step 4 `requirements-groups` (Decision #1) on crafted legacy rows: the combinations from
//! certificates AND vendors (0 = NULL), every skipped/flagged case, the members (chunked by
//! vendor), idempotent reruns and the phased linking of the COI risk profiles.

use shared::loader::book::{self, Issue};
use shared::loader::runner::LoaderMappings;
use shared::loader::steps::requirements_groups as rg;
use shared::loader::steps::StepContext;
use shared::mappings::RecordMapping;
use std::collections::{BTreeMap, HashMap};
use tests::{MysqlFixture, PgFixture};

type Time = chrono::DateTime<chrono::Utc>;
/// (key, account, coi profile, document profile, name, created, modified) of a group.
type GroupRow = (String, i64, Option<i64>, Option<i64>, String, Time, Time);

fn at(text: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

async fn crafted_legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    let long_name = "G".repeat(250);
    for sql in [
        format!("INSERT INTO customer (id, name) VALUES (1, 'Acme Corp'), (2, NULL), (3, '{long_name}'), (4, 'Delta'), (5, 'Epsilon')"),
        "INSERT INTO document_set (id, customer_id, name) VALUES (7, 1, 'Standard'), (8, 3, 'Unmigrated set'), (9, 2, 'Beta docs')".into(),
        // (customer, requirements, document_set); 0 means none like NULL.
        "INSERT INTO certificate (id, customer_id, vendor_id, requirements_id, document_set_id) VALUES
            (1, 1, 10, 5, 7), (2, 1, 10, 5, 7), (3, 1, 11, 5, NULL), (4, 1, 11, 5, 0),
            (5, 99, 14, 6, NULL), (6, NULL, NULL, 5, 7), (7, 3, NULL, 0, 8), (8, 4, NULL, 1, NULL),
            (9, 2, 12, 77, 9), (10, 0, NULL, 5, 7)"
            .into(),
        // 12 (2:8:9), 17 (2::), 18 (5:5:7) and 19 (3:4:) have combinations no certificate has.
        "INSERT INTO vendor (id, customer_id, requirements_id, document_set_id) VALUES
            (10, 1, 5, 7), (11, 1, 5, 0), (12, 2, 8, 9), (13, 1, 5, 7), (14, 99, 6, NULL),
            (15, 1, 5, 7), (16, 1, 5, 7), (17, 2, NULL, NULL), (18, 5, 5, 7), (19, 3, 4, NULL)"
            .into(),
    ] {
        sqlx::query(&sql).execute(&db.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    db
}

const T0: &str = "2024-05-01T12:00:00Z";

/// The stand-ins of Areas 2, 3 and 6 and the document-risk-profiles step's output.
async fn prepared_target() -> PgFixture {
    let pg = PgFixture::new().await;
    for sql in [
        "INSERT INTO docutrax_accounts_account (id, name) VALUES (1001, 'Acme'), (1002, 'Beta'), (1003, 'Gamma')",
        "INSERT INTO docutrax_profiles_documentriskprofile (id, account_id, name, created, modified) VALUES
            (501, 1001, 'Standard', '2024-01-01Z', '2024-01-01Z'), (502, 1001, 'Beta docs', '2024-01-01Z', '2024-01-01Z')",
        "INSERT INTO docutrax_profiles_coiriskprofile (id, account_id, name) VALUES (601, 1001, 'Acme COI'), (602, 1001, 'Acme COI 2')",
        "INSERT INTO docutrax_records_record (id, account_id, name) VALUES
            (710, 1001, 'v10'), (711, 1001, 'v11'), (712, 1002, 'v12'), (714, 1001, 'v14'), (717, 1002, 'v17'), (719, 1003, 'v19')",
        "INSERT INTO docutrax_records_assignment (id, record_id, account_id) VALUES
            (810, 710, 1001), (811, 711, 1001), (812, 712, 1002), (814, 714, 1001), (817, 717, 1002), (819, 719, 1003)",
    ] {
        sqlx::query(sql).execute(&pg.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let mut conn = pg.pool.acquire().await.unwrap();
    let sets = [("7".to_string(), 501), ("9".to_string(), 502)];
    book::map_ids(&mut conn, rg::DOCUMENT_SET_ENTITY, "document-risk-profiles", true, &sets).await.unwrap();
    pg
}

fn mappings(with_coi_profiles: bool) -> LoaderMappings {
    let record = |record_id, assignment_id| RecordMapping { record_id, assignment_id };
    LoaderMappings {
        // 4 is not a number; 5's account is not in the target.
        accounts: HashMap::from([(1, "1001".into()), (2, "1002".into()), (3, " 1003 ".into()), (4, "abc".into()), (5, "1005".into())]),
        // 13 unmapped; 15's assignment is not in the target; 16 shares 10's record and assignment.
        records: HashMap::from([
            (10, record(710, 810)),
            (11, record(711, 811)),
            (12, record(712, 812)),
            (14, record(714, 814)),
            (15, record(715, 9999)),
            (16, record(710, 810)),
            (17, record(717, 817)),
            (18, record(714, 814)),
            (19, record(719, 819)),
        ]),
        users: HashMap::new(),
        // 77 is missing from the mapping; 4 maps to a profile that is not in the target.
        coi_profiles: with_coi_profiles.then(|| HashMap::from([(5, 601), (8, 602), (4, 699), (6, 603)])),
        absent: Vec::new(),
    }
}

struct Run {
    counts: BTreeMap<String, u64>,
    issues: Vec<Issue>,
    cursors: Vec<Option<serde_json::Value>>,
}

/// Drives the step like the runner: one committed transaction per chunk, issues recorded.
async fn run(legacy: &MysqlFixture, target: &PgFixture, mappings: &LoaderMappings, now: Time) -> Run {
    let ctx = StepContext { legacy: &legacy.pool, mappings, step: rg::STEP, now, chunk_rows: 2, read_ahead: Default::default() };
    let mut r = Run { counts: BTreeMap::new(), issues: Vec::new(), cursors: Vec::new() };
    let mut cursor = None;
    loop {
        let mut tx = target.pool.begin().await.unwrap();
        let outcome = rg::chunk(&ctx, &mut tx, cursor).await.unwrap();
        book::record_issues(&mut tx, ctx.step, &outcome.issues).await.unwrap();
        tx.commit().await.unwrap();
        for (k, v) in outcome.counts {
            *r.counts.entry(k).or_default() += v;
        }
        r.issues.extend(outcome.issues);
        r.cursors.push(outcome.cursor.clone());
        cursor = outcome.cursor;
        if cursor.is_none() {
            break;
        }
        assert!(r.cursors.len() < 50, "the step does not finish");
    }
    r.issues.sort();
    r
}

async fn rows(pool: &sqlx::PgPool, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row the step writes or touches, in id order; `mask` removes a column from the rows.
async fn snapshot(pool: &sqlx::PgPool, mask: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for table in ["docutrax_hierarchy_requirementsgroup", "docutrax_hierarchy_requirementsgroupmember", "docutrax_profiles_manualoverride"] {
        out.push(rows(pool, &format!("SELECT (to_jsonb(t) - '{mask}')::text FROM {table} t ORDER BY id")).await);
    }
    out.push(rows(pool, "SELECT to_jsonb(t)::text FROM dtx_migration.id_map t ORDER BY entity, legacy_key").await);
    out
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn issue(entity: &str, key: &str, reason: &str) -> (String, String, String) {
    (entity.into(), key.into(), reason.into())
}

fn issue_keys(issues: &[Issue]) -> Vec<(String, String, String)> {
    issues.iter().map(|i| (i.entity.clone(), i.legacy_key.clone(), i.reason.clone())).collect()
}

#[tokio::test]
async fn groups_members_reruns_and_phased_coi_linking() {
    let legacy = crafted_legacy().await;
    let target = prepared_target().await;
    let t0 = at(T0);

    // ---- First run: no COI profile mapping yet.
    let first = run(&legacy, &target, &mappings(false), t0).await;
    assert_eq!(first.cursors.len(), 7, "1 group chunk + 5 full member chunks of 2 vendors + 1 empty: {:?}", first.cursors);
    assert_eq!(first.cursors[0], Some(serde_json::json!({ "members_after": 0 })));
    assert_eq!(first.cursors[1], Some(serde_json::json!({ "members_after": 11 })));
    assert_eq!(
        first.counts,
        counts(&[
            ("combos", 11),
            ("groups", 7),
            ("groups_created", 7),
            ("groups_skipped", 4),
            ("groups_without_coi_profile", 7),
            ("manual_overrides_coi_linked", 0),
            ("vendors", 10),
            ("members", 6),
            ("members_created", 5),
            ("members_shared", 1),
            ("members_skipped", 4),
        ])
    );

    let g = "requirements_group";
    let m = "requirements_group_member";
    let mut expected_issues = vec![
        issue(g, ":5:7", "customer without account mapping"),
        issue(g, "99:6:", "customer without account mapping"),
        issue(g, "4:1:", "account id not numeric"),
        issue(g, "5:5:7", "account not found in target"),
        issue(g, "3::8", "document_set not migrated"),
        issue(g, "3::8", "name truncated"),
        issue(g, "3:4:", "name truncated"),
        issue(g, "2:8:9", "document risk profile of another account"),
        issue(g, "2:77:9", "document risk profile of another account"),
        issue(m, "13", "vendor without record mapping"),
        issue(m, "14", "requirements group not migrated"),
        issue(m, "15", "assignment not found in target"),
        issue(m, "16", "assignment already in group via another vendor"),
        issue(m, "18", "requirements group not migrated"),
    ];
    expected_issues.sort();
    assert_eq!(issue_keys(&first.issues), expected_issues);
    let detail = |key: &str, reason: &str| first.issues.iter().find(|i| i.legacy_key == key && i.reason == reason).unwrap().detail.clone().unwrap();
    assert_eq!(detail(":5:7", "customer without account mapping"), "no customer_id (NULL or 0)");
    assert_eq!(detail("4:1:", "account id not numeric"), "customer_id 4 -> \"abc\"");
    assert!(detail("3::8", "name truncated").starts_with("285 characters cut to 255"), "{}", detail("3::8", "name truncated"));

    // The groups, in the combinations' order (NULLs first), with their links and names.
    let groups: Vec<GroupRow> = sqlx::query_as(
        "SELECT m.legacy_key, g.account_id, g.coi_risk_profile_id, g.document_risk_profile_id, g.name, g.created, g.modified
         FROM docutrax_hierarchy_requirementsgroup g JOIN dtx_migration.id_map m ON m.entity = 'requirements_group' AND m.new_id = g.id
         ORDER BY g.id",
    )
    .fetch_all(&target.pool)
    .await
    .unwrap();
    let gs = "G".repeat(250);
    let expected: Vec<GroupRow> = [
        ("1:5:", 1001, None, "Acme Corp / Requirements #5 / No document set".to_string()),
        ("1:5:7", 1001, Some(501), "Acme Corp / Requirements #5 / Standard".to_string()),
        ("2::", 1002, None, "Customer #2 / No requirements / No document set".to_string()),
        ("2:8:9", 1002, Some(502), "Customer #2 / Requirements #8 / Beta docs".to_string()),
        ("2:77:9", 1002, Some(502), "Customer #2 / Requirements #77 / Beta docs".to_string()),
        ("3::8", 1003, None, format!("{gs} / No")),
        ("3:4:", 1003, None, format!("{gs} / Re")),
    ]
    .into_iter()
    .map(|(k, a, p, n)| (k.to_string(), a, None, p, n, t0, t0))
    .collect();
    assert_eq!(groups, expected);
    let id_map_steps: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT entity, step, created FROM dtx_migration.id_map WHERE entity <> 'document_set' GROUP BY 1, 2, 3 ORDER BY 1, 3")
            .fetch_all(&target.pool)
            .await
            .unwrap();
    assert_eq!(
        id_map_steps,
        vec![
            ("requirements_group".into(), "requirements-groups".into(), true),
            ("requirements_group_member".into(), "requirements-groups".into(), false),
            ("requirements_group_member".into(), "requirements-groups".into(), true),
        ]
    );

    // The members: vendor -> (its group's combination, its assignment, created by the step).
    let members: Vec<(String, String, i64, bool, Time)> = sqlx::query_as(
        "SELECT m.legacy_key, gm.legacy_key, t.assignment_id, m.created, t.created
         FROM dtx_migration.id_map m JOIN docutrax_hierarchy_requirementsgroupmember t ON t.id = m.new_id
         JOIN dtx_migration.id_map gm ON gm.entity = 'requirements_group' AND gm.new_id = t.requirements_group_id
         WHERE m.entity = 'requirements_group_member' ORDER BY m.legacy_key::int",
    )
    .fetch_all(&target.pool)
    .await
    .unwrap();
    let expected: Vec<(String, String, i64, bool, Time)> =
        [("10", "1:5:7", 810, true), ("11", "1:5:", 811, true), ("12", "2:8:9", 812, true), ("16", "1:5:7", 810, false), ("17", "2::", 817, true), ("19", "3:4:", 819, true)]
            .into_iter()
            .map(|(v, k, a, c)| (v.to_string(), k.to_string(), a, c, t0))
            .collect();
    assert_eq!(members, expected);
    let member_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroupmember").fetch_one(&target.pool).await.unwrap();
    assert_eq!(member_rows, 5, "vendor 16 shares vendor 10's member");

    // A later step's ManualOverride rows (no COI profile yet, except 903).
    let group_id = |key: &str| {
        let pool = target.pool.clone();
        let key = key.to_string();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT new_id FROM dtx_migration.id_map WHERE entity = 'requirements_group' AND legacy_key = $1")
                .bind(key)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let (g157, g2779, g15) = (group_id("1:5:7").await, group_id("2:77:9").await, group_id("1:5:").await);
    sqlx::query(
        "INSERT INTO docutrax_profiles_manualoverride (id, requirements_group_id, coi_risk_profile_id, coverage_type, reason, created, modified)
         VALUES (901, $1, NULL, 'General', 'approved by phone', $4, $4), (902, $2, NULL, 'General', 'ok', $4, $4),
                (903, $3, 602, 'General', 'set by hand', $4, $4)",
    )
    .bind(g157)
    .bind(g2779)
    .bind(g15)
    .bind(t0)
    .execute(&target.pool)
    .await
    .unwrap();

    // ---- Rerun without the COI mapping, at a later time: nothing changes.
    let before = snapshot(&target.pool, "").await;
    let counts_before = target.table_counts().await;
    let issues_sql = "SELECT concat_ws('|', step, entity, legacy_key, reason, detail) FROM dtx_migration.issue ORDER BY id";
    let issues_before = rows(&target.pool, issues_sql).await;
    let second = run(&legacy, &target, &mappings(false), at("2024-06-01T00:00:00Z")).await;
    assert_eq!(snapshot(&target.pool, "").await, before, "a rerun changed rows");
    assert_eq!(target.table_counts().await, counts_before);
    assert_eq!(rows(&target.pool, issues_sql).await, issues_before);
    assert_eq!(issue_keys(&second.issues), expected_issues);
    assert_eq!(second.counts.get("groups_existing"), Some(&7));
    assert_eq!(second.counts.get("groups_updated"), Some(&0));
    assert_eq!(second.counts.get("groups_created"), None);
    assert_eq!(second.counts.get("members_existing"), Some(&5));
    assert_eq!(second.counts.get("members_shared"), Some(&1));
    assert_eq!(second.counts.get("members"), Some(&6));
    assert_eq!(second.counts.get("members_created"), None);

    // ---- Phased linking: Area 6's mapping has arrived; only coi_risk_profile_id may change.
    let masked_before = snapshot(&target.pool, "coi_risk_profile_id").await;
    let third = run(&legacy, &target, &mappings(true), at("2024-07-01T00:00:00Z")).await;
    assert_ne!(snapshot(&target.pool, "").await, before, "phased linking changed nothing");
    assert_eq!(snapshot(&target.pool, "coi_risk_profile_id").await, masked_before, "phased linking changed more than coi_risk_profile_id");
    assert_eq!(target.table_counts().await.into_iter().filter(|(t, _)| t != "dtx_migration.issue").collect::<Vec<_>>(),
        counts_before.clone().into_iter().filter(|(t, _)| t != "dtx_migration.issue").collect::<Vec<_>>());
    let coi: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT m.legacy_key, g.coi_risk_profile_id FROM docutrax_hierarchy_requirementsgroup g
         JOIN dtx_migration.id_map m ON m.entity = 'requirements_group' AND m.new_id = g.id ORDER BY g.id",
    )
    .fetch_all(&target.pool)
    .await
    .unwrap();
    let expected: Vec<(String, Option<i64>)> =
        [("1:5:", Some(601)), ("1:5:7", Some(601)), ("2::", None), ("2:8:9", Some(602)), ("2:77:9", None), ("3::8", None), ("3:4:", None)]
            .into_iter()
            .map(|(k, c)| (k.to_string(), c))
            .collect();
    assert_eq!(coi, expected);
    let overrides: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, coi_risk_profile_id FROM docutrax_profiles_manualoverride ORDER BY id").fetch_all(&target.pool).await.unwrap();
    assert_eq!(overrides, vec![(901, Some(601)), (902, None), (903, Some(602))]);
    for (k, v) in [
        ("groups_existing", 7),
        ("groups_updated", 3),
        ("groups_coi_profile_linked", 3),
        ("groups_with_coi_profile", 3),
        ("groups_without_coi_profile", 4),
        ("manual_overrides_coi_linked", 1),
        ("members_existing", 5),
        ("members_shared", 1),
        ("members_skipped", 4),
    ] {
        assert_eq!(third.counts.get(k), Some(&v), "{k}: {:?}", third.counts);
    }
    assert_eq!(third.counts.get("groups_created"), None);
    let mut with_coi = expected_issues.clone();
    with_coi.extend([
        issue(g, "2:77:9", "requirements not in coi profile mapping"),
        issue(g, "3:4:", "coi risk profile not found in target"),
        issue(g, "2:8:9", "coi risk profile of another account"),
    ]);
    with_coi.sort();
    assert_eq!(issue_keys(&third.issues), with_coi);

    // ---- Rerunning with the mapping converges; rerunning without it keeps the links.
    let linked = snapshot(&target.pool, "").await;
    run(&legacy, &target, &mappings(true), at("2024-08-01T00:00:00Z")).await;
    assert_eq!(snapshot(&target.pool, "").await, linked);
    run(&legacy, &target, &mappings(false), at("2024-09-01T00:00:00Z")).await;
    assert_eq!(snapshot(&target.pool, "").await, linked, "a run without the mapping cleared COI links");

    // An unknown cursor is refused, not guessed at.
    let m0 = mappings(false);
    let ctx = StepContext { legacy: &legacy.pool, mappings: &m0, step: rg::STEP, now: t0, chunk_rows: 2, read_ahead: Default::default() };
    let mut tx = target.pool.begin().await.unwrap();
    let err = rg::chunk(&ctx, &mut tx, Some(serde_json::json!({ "after_id": 3 }))).await.unwrap_err();
    assert!(err.to_string().contains("unknown cursor"), "{err}");
    drop(tx);

    legacy.drop_database().await;
    target.drop_database().await;
}
