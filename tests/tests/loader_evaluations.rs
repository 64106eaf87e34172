//! Steps 7 `evaluations` (Decision #4) and 8 `current-evaluations` (Decision #10) on crafted
//! legacy rows: every coverage prefix, an unknown and a NULL field_name, mixed compliance,
//! duplicate field_names, zero/NULL/invalid create_times, orphan status rows (missing
//! certificate, certificate_id 0 and NULL), a legacy certificate that was not migrated and a
//! stale certificate mapping; chunking by certificate id; the current evaluation on exactly the
//! latest evaluated certificate per group (ties, an unevaluated newer certificate, a certificate
//! the migration did not make); reruns that leave every table identical; and a second run after
//! new legacy data that updates the evaluations in place and moves the current pointer.

use shared::loader::book::{self, Issue};
use shared::loader::runner::LoaderMappings;
use shared::loader::steps::{current_evaluations, evaluations, StepContext};
use std::collections::BTreeMap;
use tests::{counts, MysqlFixture, PgFixture};

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

const NOW1: &str = "2030-01-02T03:04:05Z";
const NOW2: &str = "2031-06-07T08:09:10Z";

async fn crafted_legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    // Invalid UTF-8 needs a latin1 column; zero and partial dates need a lax session.
    db.execute_all([
        "ALTER TABLE certificate_status MODIFY actual VARCHAR(255) CHARACTER SET latin1 NULL",
        "SET SESSION sql_mode = ''",
        // 7 does not exist; 6 exists but is not migrated; 10's mapping points at no row.
        "INSERT INTO certificate (id) VALUES (1), (2), (3), (4), (5), (6), (8), (10)",
        "INSERT INTO certificate_status (id, certificate_id, status_code, field_name, minimum, actual, create_time) VALUES
            (101, 1, 'COMPLIANT', 'GLPolExpDate', '2018-04-01', '2019-02-06', '2019-01-05 10:00:00'),
            (102, 1, 'NON_COMPLIANT', 'AutoPolExpDate', '2018-04-01', '2018-03-01', '2019-01-05 09:00:00'),
            (103, 1, 'COMPLIANT', 'WCPolExpDate', '2018-04-01', '2019-06-28', '2019-01-05 10:00:00'),
            (104, 1, ' compliant ', 'UMBPolExpDate', ' 1000000 ', '2000000', '2019-01-05 10:00:00'),
            (105, 1, 'COMPLIANT', 'GLEachOccurrence', '1000000', '1000000', NULL),
            (201, 2, 'COMPLIANT', 'LLPolExpDate', '2019-01-01', '2020-06-01', '2020-02-01 08:00:00'),
            (202, 2, 'COMPLIANT', 'PropPolExpDate', '2019-01-01', '2020-06-01', '0000-00-00 00:00:00'),
            (203, 2, 'COMPLIANT', 'AddlInsured', 'Y', 'Y', '2020-02-01 07:30:00'),
            (204, 2, 'COMPLIANT', NULL, 'x', 'x', '2020-02-01 08:00:00'),
            (205, 2, 'COMPLIANT', 'AddlInsured', 'Y', '  ', '2020-02-01 08:00:00'),
            (206, 2, 'COMPLIANT', 'Waiver_of_subrogation', NULL, X'436166E9', '2020-02-01 08:00:00'),
            (401, 4, 'COMPLIANT', 'GLPolExpDate', '2019-01-01', '2019-09-01', '0000-00-00 00:00:00'),
            (402, 4, 'NON_COMPLIANT', 'GLPolExpDate', '2019-01-01', '2018-09-01', NULL),
            (501, 5, NULL, 'WCPolExpDate', '2019-01-01', NULL, '2019-07-01 00:00:00'),
            (502, 5, 'COMPLIANT', 'AutoPolExpDate', '2019-01-01', '2019-12-01', '2019-04-00 00:00:00'),
            (601, 6, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-01 00:00:00'),
            (602, 6, 'COMPLIANT', 'WCPolExpDate', NULL, NULL, '2019-01-01 00:00:00'),
            (701, 7, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-01 00:00:00'),
            (702, 7, 'COMPLIANT', 'WCPolExpDate', NULL, NULL, '2019-01-01 00:00:00'),
            (801, 0, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-01 00:00:00'),
            (901, NULL, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-01 00:00:00'),
            (902, NULL, 'COMPLIANT', 'WCPolExpDate', NULL, NULL, '2019-01-01 00:00:00'),
            (1010, 10, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-01 00:00:00')",
    ])
    .await;
    db
}

/// Three groups and the certificates step's output: certificates 11-16 (legacy 1-5, 8) with
/// distinct created times except 14/15 (a tie), and 19, which the migration did not make.
async fn prepared_target() -> PgFixture {
    let pg = PgFixture::new().await;
    tests::StandIns { accounts: &[(501, "Acme")], ..Default::default() }.insert(&pg).await;
    pg.execute_all([
        "INSERT INTO docutrax_hierarchy_requirementsgroup (id, account_id, name, created, modified) VALUES
            (901, 501, 'G1', '2024-01-01Z', '2024-01-01Z'), (902, 501, 'G2', '2024-01-01Z', '2024-01-01Z'),
            (903, 501, 'G3', '2024-01-01Z', '2024-01-01Z')",
        "INSERT INTO docutrax_profiles_certificate (id, status, requirements_group_id, created, modified) VALUES
            (11, 'evaluated', 901, '2019-01-01 00:00:00Z', '2019-01-01 00:00:00Z'),
            (12, 'manual_review', 901, '2020-01-01 00:00:00Z', '2020-01-01 00:00:00Z'),
            (13, 'evaluated', 901, '2021-01-01 00:00:00Z', '2021-01-01 00:00:00Z'),
            (14, 'evaluated', 902, '2019-06-01 00:00:00Z', '2019-06-01 00:00:00Z'),
            (15, 'evaluated', 902, '2019-06-01 00:00:00Z', '2019-06-01 00:00:00Z'),
            (16, 'evaluated', 903, '2019-03-01 00:00:00Z', '2019-03-01 00:00:00Z'),
            (19, 'evaluated', 901, '2030-01-01 00:00:00Z', '2030-01-01 00:00:00Z')",
    ])
    .await;
    let mut conn = pg.pool.acquire().await.unwrap();
    let pairs = |p: &[(&str, i64)]| p.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Vec<_>>();
    let certificates = pairs(&[("1", 11), ("2", 12), ("3", 13), ("4", 14), ("5", 15), ("8", 16), ("10", 999)]);
    book::map_ids(&mut conn, "certificate", "certificates", true, &certificates).await.unwrap();
    let groups = pairs(&[("1:5:7", 901), ("1::", 902), ("2::", 903)]);
    book::map_ids(&mut conn, "requirements_group", "requirements-groups", true, &groups).await.unwrap();
    pg
}

#[derive(Clone, Copy)]
enum Which {
    Evaluations,
    Current,
}

/// Runs a whole step (2 certificates per chunk, each chunk committed), like the runner.
async fn run(which: Which, legacy: &MysqlFixture, target: &PgFixture, now: &str) -> (BTreeMap<String, u64>, Vec<Issue>, usize) {
    let mappings = LoaderMappings::default();
    let step = match which {
        Which::Evaluations => evaluations::STEP,
        Which::Current => current_evaluations::STEP,
    };
    let ctx = StepContext { legacy: &legacy.pool, mappings: &mappings, step, now: at(now), chunk_rows: 2, read_ahead: Default::default() };
    let run = match which {
        Which::Evaluations => tests::run_chunks(target, &ctx, evaluations::chunk).await,
        Which::Current => tests::run_chunks(target, &ctx, current_evaluations::chunk).await,
    };
    (run.counts, run.issues, run.chunks)
}

async fn run_both(legacy: &MysqlFixture, target: &PgFixture, now: &str) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let (evaluations, _, _) = run(Which::Evaluations, legacy, target, now).await;
    let (current, _, _) = run(Which::Current, legacy, target, now).await;
    (evaluations, current)
}

/// Every table the steps write (and the bookkeeping), rendered for comparison.
async fn dump(target: &PgFixture) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT row_to_json(c)::text FROM docutrax_profiles_certificate c ORDER BY id",
        "SELECT row_to_json(e)::text FROM docutrax_profiles_evaluation e ORDER BY id",
        "SELECT row_to_json(c)::text FROM docutrax_profiles_evaluationcoverage c ORDER BY id",
        "SELECT row_to_json(d)::text FROM docutrax_profiles_evaluationdetail d ORDER BY id",
        "SELECT row_to_json(m)::text FROM dtx_migration.id_map m ORDER BY entity, legacy_key",
        "SELECT row_to_json(i)::text FROM (SELECT id, step, entity, legacy_key, reason, detail, created_at FROM dtx_migration.issue ORDER BY id) i",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&target.pool).await.unwrap();
        out.push(rows.join("\n"));
    }
    out
}

async fn lines(target: &PgFixture, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(&target.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

const TS: &str = "'YYYY-MM-DD HH24:MI:SS'";

/// `legacy key | id | certificate | group | status | evaluation_date | created | modified`.
async fn evaluation_rows(target: &PgFixture) -> Vec<String> {
    lines(
        target,
        &format!(
            "SELECT format('%s | %s | %s | %s | %s | %s | %s | %s', m.legacy_key, e.id, e.certificate_id, e.requirements_group_id, e.status,
                    to_char(e.evaluation_date AT TIME ZONE 'UTC', {TS}), to_char(e.created AT TIME ZONE 'UTC', {TS}),
                    to_char(e.modified AT TIME ZONE 'UTC', {TS}))
             FROM docutrax_profiles_evaluation e JOIN dtx_migration.id_map m ON m.entity = 'evaluation' AND m.new_id = e.id ORDER BY e.id"
        ),
    )
    .await
}

/// `legacy key | id | evaluation | type | status | created | modified`.
async fn coverage_rows(target: &PgFixture) -> Vec<String> {
    lines(
        target,
        &format!(
            "SELECT format('%s | %s | %s | %s | %s | %s | %s', m.legacy_key, c.id, c.evaluation_id, c.coverage_type, c.status,
                    to_char(c.created AT TIME ZONE 'UTC', {TS}), to_char(c.modified AT TIME ZONE 'UTC', {TS}))
             FROM docutrax_profiles_evaluationcoverage c JOIN dtx_migration.id_map m ON m.entity = 'evaluation_coverage' AND m.new_id = c.id
             ORDER BY c.id"
        ),
    )
    .await
}

/// `status row | id | coverage | requirement_name | status | required | provided | field_key | created = modified`.
async fn detail_rows(target: &PgFixture) -> Vec<String> {
    lines(
        target,
        &format!(
            "SELECT format('%s | %s | %s | %s | %s | %L | %L | %L | %s', m.legacy_key, d.id, d.evaluation_coverage_id, d.requirement_name,
                    d.status, d.required_value, d.provided_value, d.field_key,
                    CASE WHEN d.created = d.modified THEN to_char(d.created AT TIME ZONE 'UTC', {TS}) ELSE 'created <> modified' END)
             FROM docutrax_profiles_evaluationdetail d JOIN dtx_migration.id_map m ON m.entity = 'evaluation_detail' AND m.new_id = d.id
             ORDER BY d.id"
        ),
    )
    .await
}

/// `certificate id: current_evaluation_id` of every certificate.
async fn current_pointers(target: &PgFixture) -> Vec<String> {
    lines(target, "SELECT format('%s: %s', id, COALESCE(current_evaluation_id::text, '-')) FROM docutrax_profiles_certificate ORDER BY id").await
}

/// `step | entity | key | reason | detail` of every issue, sorted.
async fn issue_rows(target: &PgFixture) -> Vec<String> {
    lines(
        target,
        "SELECT format('%s | %s | %s | %s | %s', step, entity, legacy_key, reason, detail) FROM dtx_migration.issue
         ORDER BY step, entity, length(legacy_key), legacy_key, reason",
    )
    .await
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn evaluations_build_three_tiers_and_the_latest_certificate_gets_the_current_evaluation() {
    let legacy = crafted_legacy().await;
    let target = prepared_target().await;

    // ---- Step 7 ----
    let (c, _, chunks) = run(Which::Evaluations, &legacy, &target, NOW1).await;
    // Certificate ids 0,1 | 2,4 | 5,6 | 7,10, then the NULL phase (901, 902), then the empty end.
    assert_eq!(chunks, 6);
    assert_eq!(
        c,
        counts(&[
            ("certificates_read", 8),
            ("status_rows_read", 23),
            ("status_rows_orphan", 5),
            ("status_rows_not_migrated", 3),
            ("certificates_not_migrated", 2),
            ("evaluations_created", 4),
            ("evaluations_updated", 0),
            ("evaluations_unchanged", 0),
            ("coverages_created", 10),
            ("coverages_updated", 0),
            ("coverages_unchanged", 0),
            ("coverages_removed", 0),
            ("details_created", 15),
            ("details_updated", 0),
            ("details_unchanged", 0),
            ("details_removed", 0),
        ])
    );

    assert_eq!(
        evaluation_rows(&target).await,
        strings(&[
            // 1: one failing row (102) fails the evaluation; the earliest create_time is 102's.
            "1 | 1 | 11 | 901 | fail | 2019-01-05 09:00:00 | 2019-01-05 09:00:00 | 2019-01-05 09:00:00",
            // 2: all compliant; the zero create_time (202) is ignored.
            "2 | 2 | 12 | 901 | pass | 2020-02-01 07:30:00 | 2020-02-01 07:30:00 | 2020-02-01 07:30:00",
            // 4: no usable create_time: the certificate's created.
            "4 | 3 | 14 | 902 | fail | 2019-06-01 00:00:00 | 2019-06-01 00:00:00 | 2019-06-01 00:00:00",
            // 5: a NULL status_code fails; the invalid create_time (502) is ignored.
            "5 | 4 | 15 | 902 | fail | 2019-07-01 00:00:00 | 2019-07-01 00:00:00 | 2019-07-01 00:00:00",
        ])
    );
    assert_eq!(
        coverage_rows(&target).await,
        strings(&[
            "1:AutoLiability | 1 | 1 | AutoLiability | fail | 2019-01-05 09:00:00 | 2019-01-05 09:00:00",
            "1:GeneralLiability | 2 | 1 | GeneralLiability | pass | 2019-01-05 09:00:00 | 2019-01-05 09:00:00",
            "1:UmbrellaLiability | 3 | 1 | UmbrellaLiability | pass | 2019-01-05 09:00:00 | 2019-01-05 09:00:00",
            "1:WorkersCompensation | 4 | 1 | WorkersCompensation | pass | 2019-01-05 09:00:00 | 2019-01-05 09:00:00",
            "2:LiquorLiability | 5 | 2 | LiquorLiability | pass | 2020-02-01 07:30:00 | 2020-02-01 07:30:00",
            "2:OtherCoverage | 6 | 2 | OtherCoverage | pass | 2020-02-01 07:30:00 | 2020-02-01 07:30:00",
            "2:PropertyCoverage | 7 | 2 | PropertyCoverage | pass | 2020-02-01 07:30:00 | 2020-02-01 07:30:00",
            "4:GeneralLiability | 8 | 3 | GeneralLiability | fail | 2019-06-01 00:00:00 | 2019-06-01 00:00:00",
            "5:AutoLiability | 9 | 4 | AutoLiability | pass | 2019-07-01 00:00:00 | 2019-07-01 00:00:00",
            "5:WorkersCompensation | 10 | 4 | WorkersCompensation | fail | 2019-07-01 00:00:00 | 2019-07-01 00:00:00",
        ])
    );
    assert_eq!(
        detail_rows(&target).await,
        strings(&[
            "101 | 1 | 2 | GL Pol Exp Date | pass | '2018-04-01' | '2019-02-06' | 'GLPolExpDate' | 2019-01-05 09:00:00",
            "102 | 2 | 1 | Auto Pol Exp Date | fail | '2018-04-01' | '2018-03-01' | 'AutoPolExpDate' | 2019-01-05 09:00:00",
            "103 | 3 | 4 | WC Pol Exp Date | pass | '2018-04-01' | '2019-06-28' | 'WCPolExpDate' | 2019-01-05 09:00:00",
            "104 | 4 | 3 | UMB Pol Exp Date | pass | '1000000' | '2000000' | 'UMBPolExpDate' | 2019-01-05 09:00:00",
            "105 | 5 | 2 | GL Each Occurrence | pass | '1000000' | '1000000' | 'GLEachOccurrence' | 2019-01-05 09:00:00",
            "201 | 6 | 5 | LL Pol Exp Date | pass | '2019-01-01' | '2020-06-01' | 'LLPolExpDate' | 2020-02-01 07:30:00",
            "202 | 7 | 7 | Prop Pol Exp Date | pass | '2019-01-01' | '2020-06-01' | 'PropPolExpDate' | 2020-02-01 07:30:00",
            "203 | 8 | 6 | Addl Insured | pass | 'Y' | 'Y' | 'AddlInsured' | 2020-02-01 07:30:00",
            "204 | 9 | 6 | (no field name) | pass | 'x' | 'x' | NULL | 2020-02-01 07:30:00",
            "205 | 10 | 6 | Addl Insured | pass | 'Y' | NULL | 'AddlInsured' | 2020-02-01 07:30:00",
            "206 | 11 | 6 | Waiver of subrogation | pass | NULL | 'Caf\u{FFFD}' | 'Waiver_of_subrogation' | 2020-02-01 07:30:00",
            "401 | 12 | 8 | GL Pol Exp Date | pass | '2019-01-01' | '2019-09-01' | 'GLPolExpDate' | 2019-06-01 00:00:00",
            "402 | 13 | 8 | GL Pol Exp Date | fail | '2019-01-01' | '2018-09-01' | 'GLPolExpDate' | 2019-06-01 00:00:00",
            "501 | 14 | 10 | WC Pol Exp Date | fail | '2019-01-01' | NULL | 'WCPolExpDate' | 2019-07-01 00:00:00",
            "502 | 15 | 9 | Auto Pol Exp Date | pass | '2019-01-01' | '2019-12-01' | 'AutoPolExpDate' | 2019-07-01 00:00:00",
        ])
    );
    // Step 7 sets no current evaluation (Decision #10 is step 8's).
    assert_eq!(current_pointers(&target).await, strings(&["11: -", "12: -", "13: -", "14: -", "15: -", "16: -", "19: -"]));

    // ---- Step 8 ----
    // Stale pointers: 11 and 16 (made by the migration) must be cleared; 19 (not made by the
    // migration, the newest of group 901) must be left alone and not be chosen.
    target.execute_all(["UPDATE docutrax_profiles_certificate SET current_evaluation_id = 1 WHERE id IN (11, 16, 19)"]).await;
    let (c, issues, chunks) = run(Which::Current, &legacy, &target, NOW1).await;
    assert_eq!(chunks, 1);
    assert_eq!(
        c,
        counts(&[
            ("groups", 3),
            ("groups_without_evaluation", 1),
            ("certificates_current", 2),
            ("certificates_set_current", 2),
            ("certificates_cleared", 2),
        ])
    );
    assert_eq!(issues.len(), 1);
    // 901: 13 is newer but has no evaluation (status 'evaluated' does not count): 12 (status
    // manual_review, with an evaluation). 902: 14 and 15 were created at the same time: the
    // higher legacy id (5 → 15) wins. 903: nothing evaluated.
    assert_eq!(current_pointers(&target).await, strings(&["11: -", "12: 2", "13: -", "14: -", "15: 4", "16: -", "19: 1"]));

    let expected_issues = strings(&[
        "current-evaluations | requirements_group | 2:: | no evaluated certificate | requirements group 903: 1 migrated certificate(s), none has an evaluation",
        "evaluations | certificate | 2 | unknown field_name | \"AddlInsured\" (2 rows), \"Waiver_of_subrogation\" (1 row): OtherCoverage",
        "evaluations | certificate | 2 | zero create_time ignored | status rows 202",
        "evaluations | certificate | 4 | no evaluation date | no usable create_time (zero: status rows 401; NULL: status rows 402): evaluation_date set to the certificate's created 2019-06-01 00:00:00",
        "evaluations | certificate | 6 | certificate not migrated | status rows 601, 602 skipped",
        "evaluations | certificate | 10 | migrated certificate not found | maps to certificate 999, which does not exist; status rows 1010 skipped",
        "evaluations | certificate_status | 204 | no field_name | OtherCoverage; requirement_name \"(no field name)\"",
        "evaluations | certificate_status | 206 | invalid UTF-8 | actual: \"Caf\u{FFFD}\"",
        "evaluations | certificate_status | 501 | no status_code | status fail",
        "evaluations | certificate_status | 502 | invalid date | create_time: invalid legacy date \"2019-04-00 00:00:00\"",
        "evaluations | certificate_status | 701 | certificate_status row without certificate | certificate_id 7",
        "evaluations | certificate_status | 702 | certificate_status row without certificate | certificate_id 7",
        "evaluations | certificate_status | 801 | certificate_status row without certificate | certificate_id 0",
        "evaluations | certificate_status | 901 | certificate_status row without certificate | certificate_id NULL",
        "evaluations | certificate_status | 902 | certificate_status row without certificate | certificate_id NULL",
    ]);
    assert_eq!(issue_rows(&target).await, expected_issues);

    // ---- Rerun of both steps (another load time): nothing changes ----
    let before = dump(&target).await;
    let table_counts = target.table_counts().await;
    let (c7, c8) = run_both(&legacy, &target, NOW2).await;
    assert_eq!(dump(&target).await, before, "a rerun changed the target");
    assert_eq!(target.table_counts().await, table_counts);
    assert_eq!((c7["evaluations_created"], c7["evaluations_updated"], c7["evaluations_unchanged"]), (0, 0, 4));
    assert_eq!((c7["coverages_created"], c7["coverages_updated"], c7["coverages_unchanged"]), (0, 0, 10));
    assert_eq!((c7["details_created"], c7["details_updated"], c7["details_unchanged"]), (0, 0, 15));
    assert_eq!((c8["certificates_set_current"], c8["certificates_cleared"], c8["certificates_current"]), (0, 0, 2));

    // ---- New legacy data: a newer evaluated certificate in group 901, a changed and a
    // removed status row of certificate 1 ----
    legacy.execute_all([
        "INSERT INTO certificate (id) VALUES (9)",
        "INSERT INTO certificate_status (id, certificate_id, status_code, field_name, minimum, actual, create_time) VALUES
            (1001, 9, 'COMPLIANT', 'GLPolExpDate', '2021-01-01', '2023-01-01', '2022-02-01 00:00:00')",
        "UPDATE certificate_status SET status_code = 'COMPLIANT' WHERE id = 102",
        "DELETE FROM certificate_status WHERE id = 104",
    ])
    .await;
    target
        .execute_all(["INSERT INTO docutrax_profiles_certificate (id, status, requirements_group_id, created, modified) VALUES
            (17, 'evaluated', 901, '2022-01-01 00:00:00Z', '2022-01-01 00:00:00Z')"])
        .await;
    {
        let mut conn = target.pool.acquire().await.unwrap();
        book::map_ids(&mut conn, "certificate", "certificates", true, &[("9".to_string(), 17)]).await.unwrap();
    }
    let (c7, c8) = run_both(&legacy, &target, NOW2).await;
    assert_eq!((c7["evaluations_created"], c7["evaluations_updated"], c7["evaluations_unchanged"]), (1, 1, 3));
    assert_eq!((c7["coverages_created"], c7["coverages_updated"], c7["coverages_removed"]), (1, 1, 1));
    assert_eq!((c7["details_created"], c7["details_updated"], c7["details_removed"]), (1, 1, 1));
    assert_eq!((c8["certificates_set_current"], c8["certificates_cleared"], c8["certificates_current"]), (1, 1, 2));

    let evaluations = evaluation_rows(&target).await;
    assert_eq!(evaluations[0], "1 | 1 | 11 | 901 | pass | 2019-01-05 09:00:00 | 2019-01-05 09:00:00 | 2019-01-05 09:00:00");
    assert_eq!(evaluations[4], "9 | 5 | 17 | 901 | pass | 2022-02-01 00:00:00 | 2022-02-01 00:00:00 | 2022-02-01 00:00:00");
    assert_eq!(evaluations.len(), 5);
    let coverages = coverage_rows(&target).await;
    assert_eq!(coverages[0], "1:AutoLiability | 1 | 1 | AutoLiability | pass | 2019-01-05 09:00:00 | 2019-01-05 09:00:00");
    assert!(coverages.iter().all(|c| !c.starts_with("1:UmbrellaLiability")), "{coverages:?}");
    assert_eq!(coverages.last().unwrap(), "9:GeneralLiability | 11 | 5 | GeneralLiability | pass | 2022-02-01 00:00:00 | 2022-02-01 00:00:00");
    let details = detail_rows(&target).await;
    assert_eq!(details.len(), 15);
    assert_eq!(details[1], "102 | 2 | 1 | Auto Pol Exp Date | pass | '2018-04-01' | '2018-03-01' | 'AutoPolExpDate' | 2019-01-05 09:00:00");
    assert!(details.iter().all(|d| !d.starts_with("104 ")), "{details:?}");
    assert_eq!(details.last().unwrap(), "1001 | 16 | 11 | GL Pol Exp Date | pass | '2021-01-01' | '2023-01-01' | 'GLPolExpDate' | 2022-02-01 00:00:00");
    let stale: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dtx_migration.id_map WHERE legacy_key IN ('104', '1:UmbrellaLiability')")
        .fetch_one(&target.pool)
        .await
        .unwrap();
    assert_eq!(stale, 0, "the removed rows' id map entries are gone");
    // The pointer moved from 12 to the newer 17.
    assert_eq!(current_pointers(&target).await, strings(&["11: -", "12: -", "13: -", "14: -", "15: 4", "16: -", "17: 5", "19: 1"]));

    // And that state is a fixed point too.
    let before = dump(&target).await;
    run_both(&legacy, &target, NOW2).await;
    assert_eq!(dump(&target).await, before, "a rerun changed the target");

    legacy.drop_database().await;
    target.drop_database().await;
}
