//! Step 6 `certificates` on crafted legacy rows: every field mapping (each contact layout,
//! InsName cases, each status, holder notes, CertRevNo), the file links from the manifest,
//! ManualOverride, every skipped/flagged case (missing customer/vendor/group mapping, missing
//! file, zero and invalid dates, overlong text, invalid UTF-8), chunking, and reruns that leave
//! every table identical.

use serde_json::{json, Value};
use shared::loader::book::{self, Issue};
use shared::loader::runner::LoaderMappings;
use shared::loader::steps::certificates as step;
use shared::loader::steps::StepContext;
use shared::mappings::RecordMapping;
use std::collections::{BTreeMap, HashMap};
use tests::{MysqlFixture, PgFixture};

type Time = chrono::DateTime<chrono::Utc>;
/// (certificate legacy key, group, COI profile, coverage type, reason, approved_at, created, modified).
type OverrideView = (String, i64, Option<i64>, String, String, Option<Time>, Time, Time);

fn at(text: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc)
}

const NOW1: &str = "2030-01-02T03:04:05Z";
const NOW2: &str = "2031-06-07T08:09:10Z";

async fn crafted_legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    let (a255, b255) = ("A".repeat(255), "B".repeat(255));
    db.execute_all([
        // A live legacy column whose bytes are not UTF-8 (latin1): utf8mb4 columns refuse them.
        // Zero dates and partial dates ('2019-04-00') need a lax session.
        "ALTER TABLE certificate MODIFY InsCity VARCHAR(100) CHARACTER SET latin1 NULL".to_string(),
        "SET SESSION sql_mode = ''".into(),
        // 1: every field, every contact part, InsName/InsName1 differ, FINISHED, a stored file
        // (two manifest rows), an override, a mapped user, dropped fields set.
        "INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, requirements_id, document_set_id, user_id,
            create_time, update_time, CertNo, certificate_expiration, OpsDesc, AuthRepName, AuthDate,
            ProdName, ProdTitle, ProdContact, ProdAddr1, ProdAddr2, ProdCity, ProdState, ProdZip, ProdPhone, ProdPhoneExtension, ProdFax, ProdEmail,
            InsName, InsName1, InsAddr1, InsAddr2, InsCity, InsState, InsZip, InsContact, InsTitle, InsPhone, InsPhoneExtension, InsFax, InsMobilePhone, InsEmail,
            HolderName, HolderAddr1, HolderAddr2, HolderCity, HolderState, HolderZip, HolderContact, HolderTitle, HolderPhone, HolderFax, HolderEmail,
            CertRevNo, certificate_status, override_reason, review_time,
            jws_Certificate_ID, ocr, review_status, AMBestRatingOK, Customer1, replacement_id, broker_id, reviewer_id) VALUES
            (1, 1, 10, 100, 5, 7, 50,
            '2019-01-02 03:04:05', '2019-02-03 04:05:06', 'C-1', '2020-01-01', ' Roofing work ', 'Rep One', '2019-01-01',
            'Broker Co', 'Agent', 'Jane', '1 Main St', 'Suite 5', 'Boston', 'MA', '02101', '555-1234', '12', '555-9999', 'j@x.com',
            'Acme Inc', 'DBA Acme Roofing', '2 Elm', 'Fl 3', 'Salem', 'MA', '01970', 'Bob', 'Owner', '555-1', '7', '555-2', '555-3', 'b@y.org',
            'Holder LLC', '3 Oak', NULL, 'Lynn', 'MA', '01901', 'Ann', 'Risk Mgr', '555-4', '555-5', 'a@z.com',
            '2', 'FINISHED', 'approved by phone', '2019-03-01 09:00:00',
            'J-1', 1, 'DONE', 1, 'cust1', 77, 88, 99)"
            .to_string(),
        // 2: partial layouts: no ProdAddr2, an extension without a phone, insured mobile only,
        // holder email only; InsName = InsName1; PENDING; attachment 0; requirements NULL and
        // document_set 0 (group 1::); no user; no update_time; a blank override_reason.
        "INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, requirements_id, document_set_id, create_time,
            ProdAddr1, ProdCity, ProdState, ProdZip, ProdPhoneExtension, ProdFax, InsName, InsName1, InsMobilePhone, HolderEmail,
            certificate_status, override_reason) VALUES
            (2, 1, 10, 0, NULL, 0, '2019-05-01 00:00:00', '9 Pine', 'Quincy', 'MA', '02169', '44', '555-7', 'Beta', ' Beta ', '555-8', 'h@q.com',
            'PENDING', '   ')"
            .to_string(),
        // 3: no agent data at all; InsName blank, InsName1 set; PROCESSING; a file the move
        // could not find; an unmapped user; a zero create_time (update_time is used); CertRevNo only.
        "INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, requirements_id, document_set_id, user_id, create_time, update_time,
            InsName, InsName1, certificate_status, CertRevNo) VALUES
            (3, 1, 10, 101, 5, 7, 51, '0000-00-00 00:00:00', '2021-06-01 10:00:00', '  ', 'Gamma DBA', 'processing', '4')"
            .to_string(),
        // 4: unknown status; no insured name; zero dates; no times at all; an attachment with no
        // manifest row; an override with a zero review_time in a group without a COI profile.
        "INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, certificate_expiration, AuthDate, certificate_status,
            override_reason, review_time) VALUES
            (4, 1, 10, 102, '0000-00-00', '0000-00-00', 'WEIRD', ' legacy override ', '0000-00-00 00:00:00')"
            .to_string(),
        // 5: customer without account mapping; 6: vendor without record mapping; 7: no group.
        "INSERT INTO certificate (id, customer_id, vendor_id, requirements_id, create_time, InsName) VALUES
            (5, 99, 10, NULL, '2019-01-01', 'x'), (6, 1, 12, NULL, '2019-01-01', 'x'), (7, 2, 11, 8, '2019-01-01', 'x')"
            .to_string(),
        // 8: InsName + ' / ' + InsName1 is 513 characters (cut to 512); NULL status; a partial date.
        format!(
            "INSERT INTO certificate (id, customer_id, vendor_id, create_time, InsName, InsName1, AuthDate, OpsDesc) VALUES
            (8, 1, 10, '2022-01-01 00:00:00', '{a255}', '{b255}', '2019-04-00', '{}')",
            "long text ".repeat(300)
        ),
        // 9: invalid UTF-8 (latin1 'Café') and a NUL byte.
        "INSERT INTO certificate (id, customer_id, vendor_id, requirements_id, document_set_id, create_time, InsName, InsCity, CertNo, certificate_status) VALUES
            (9, 1, 10, 5, 7, '2023-01-01 00:00:00', 'Delta', X'436166E9', X'410042', 'FINISHED')"
            .to_string(),
        // 10: account mapping not numeric; 11: the group's id map entry points at no group;
        // 12: neither customer nor vendor.
        "INSERT INTO certificate (id, customer_id, vendor_id, requirements_id, create_time, InsName) VALUES
            (10, 3, 10, NULL, '2019-01-01', 'x'), (11, 1, 10, 6, '2019-01-01', 'x'), (12, NULL, 0, NULL, '2019-01-01', 'x')"
            .to_string(),
    ])
    .await;
    db
}

/// The stand-ins of Areas 1, 2, 6, the requirements-groups step's groups and the imported manifest.
async fn prepared_target() -> PgFixture {
    let pg = PgFixture::new().await;
    tests::StandIns { users: &[(1, "u1@example.com")], accounts: &[(501, "Acme"), (502, "Beta")], ..Default::default() }.insert(&pg).await;
    let hash = "a".repeat(64);
    pg.execute_all([
        "INSERT INTO docutrax_profiles_coiriskprofile (id, account_id, name) VALUES (801, 501, 'Acme COI')".to_string(),
        "INSERT INTO docutrax_hierarchy_requirementsgroup (id, account_id, coi_risk_profile_id, name, created, modified) VALUES
            (901, 501, 801, 'G1', '2024-01-01Z', '2024-01-01Z'), (902, 501, NULL, 'G2', '2024-01-01Z', '2024-01-01Z')"
            .into(),
        // attachment 100 has two stored rows (the lowest source_key wins); 101 was not found.
        format!(
            "INSERT INTO dtx_migration.file_manifest (source_key, s3_key, content_hash, file_uid, size, status, attachment_id, original_filename) VALUES
            ('repo_file:7', 'acct/501/other.pdf', '{b}', '{b}_20240101000000000000', 10, 'deduplicated', 100, 'other.pdf'),
            ('attachment:100', 'acct/501/coi.pdf', '{hash}', '{hash}_20240101000000000000', 10, 'moved', 100, ' coi.pdf '),
            ('attachment:101', NULL, NULL, NULL, NULL, 'missing', 101, 'lost.pdf')",
            b = "b".repeat(64)
        ),
    ])
    .await;
    let mut conn = pg.pool.acquire().await.unwrap();
    let groups = [("1:5:7".to_string(), 901), ("1::".to_string(), 902), ("1:6:".to_string(), 999)];
    book::map_ids(&mut conn, step::GROUP_ENTITY, "requirements-groups", true, &groups).await.unwrap();
    pg
}

fn mappings() -> LoaderMappings {
    let record = |record_id, assignment_id| RecordMapping { record_id, assignment_id };
    LoaderMappings {
        accounts: HashMap::from([(1, "501".into()), (2, "502".into()), (3, "abc".into())]),
        records: HashMap::from([(10, record(610, 710)), (11, record(611, 711))]),
        users: HashMap::from([(50, 1)]),
        coi_profiles: None,
        absent: Vec::new(),
    }
}

/// Runs the whole step (2 legacy rows per chunk, each chunk committed), like the runner.
async fn run(legacy: &MysqlFixture, target: &PgFixture, mappings: &LoaderMappings, now: &str) -> (BTreeMap<String, u64>, Vec<Issue>, usize) {
    let ctx = StepContext { legacy: &legacy.pool, mappings, step: step::STEP, now: at(now), chunk_rows: 2, read_ahead: Default::default() };
    let run = tests::run_chunks(target, &ctx, step::chunk).await;
    (run.counts, run.issues, run.chunks)
}

/// Every table the step writes (and the bookkeeping), rendered for comparison.
async fn dump(target: &PgFixture) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT row_to_json(c)::text FROM docutrax_profiles_certificate c ORDER BY id",
        "SELECT row_to_json(o)::text FROM docutrax_profiles_manualoverride o ORDER BY id",
        "SELECT row_to_json(m)::text FROM dtx_migration.id_map m ORDER BY entity, legacy_key",
        "SELECT row_to_json(i)::text FROM (SELECT id, step, entity, legacy_key, reason, detail, created_at FROM dtx_migration.issue ORDER BY id) i",
        "SELECT row_to_json(g)::text FROM docutrax_hierarchy_requirementsgroup g ORDER BY id",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&target.pool).await.unwrap();
        out.push(rows.join("\n"));
    }
    out
}

/// The certificate migrated from `legacy_id`, as JSON, times rendered in UTC.
async fn certificate(target: &PgFixture, legacy_id: u64) -> Value {
    tests::migrated_row(target, "docutrax_profiles_certificate", "certificate", legacy_id).await
}

fn assert_fields(legacy_id: u64, actual: &Value, expected: Value) {
    tests::assert_fields(&format!("certificate {legacy_id}"), actual, expected);
}

/// (key, reason, detail) of every issue in the table, sorted.
async fn issues(target: &PgFixture) -> Vec<(String, String, String)> {
    tests::step_issues(target, "certificates", "certificate").await
}

#[tokio::test]
async fn certificates_map_every_field_flag_every_bad_row_and_rerun_identically() {
    let legacy = crafted_legacy().await;
    let target = prepared_target().await;
    let mappings = mappings();

    // The widths the step fits text to are the target's.
    let widths: Vec<(String, Option<i32>)> = sqlx::query_as(
        "SELECT column_name::text, character_maximum_length FROM information_schema.columns
         WHERE table_name = 'docutrax_profiles_certificate' AND data_type IN ('character varying', 'text')",
    )
    .fetch_all(&target.pool)
    .await
    .unwrap();
    let widths: HashMap<String, Option<usize>> = widths.into_iter().map(|(c, w)| (c, w.map(|w| w as usize))).collect();
    for (column, width) in step::CERTIFICATE_TEXT_WIDTHS {
        assert_eq!(widths.get(column), Some(&width), "{column}");
    }

    let (counts, _, chunks) = run(&legacy, &target, &mappings, NOW1).await;
    assert_eq!(chunks, 7, "6 chunks of 2 rows, then the empty one that ends the step");
    let expected_counts: BTreeMap<String, u64> = [
        ("certificates_read", 12),
        ("certificates_created", 6),
        ("certificates_updated", 0),
        ("certificates_unchanged", 0),
        ("certificates_skipped", 6),
        ("files_linked", 1),
        ("files_not_migrated", 2),
        ("manual_overrides_created", 2),
        ("manual_overrides_updated", 0),
        ("manual_overrides_unchanged", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, expected_counts);

    // New ids follow the legacy ids; skipped certificates have none.
    let map: Vec<(String, i64)> = sqlx::query_as("SELECT legacy_key, new_id FROM dtx_migration.id_map WHERE entity = 'certificate' ORDER BY new_id")
        .fetch_all(&target.pool)
        .await
        .unwrap();
    let expected: Vec<(String, i64)> = [("1", 1), ("2", 2), ("3", 3), ("4", 4), ("8", 5), ("9", 6)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    assert_eq!(map, expected);

    let c = certificate(&target, 1).await;
    assert_fields(
        1,
        &c,
        json!({
            "cert_number": "C-1", "expiration_date": "2020-01-01", "ops_desc": "Roofing work", "auth_rep_name": "Rep One", "auth_date": "2019-01-01",
            "agent_name": "Broker Co", "agent_title": "Agent",
            "agent_address": "1 Main St\nSuite 5\nBoston, MA 02101",
            "agent_contact": "Contact: Jane | Phone: 555-1234 x12 | Fax: 555-9999 | Email: j@x.com",
            "insured_name": "Acme Inc / DBA Acme Roofing",
            "insured_address1": "2 Elm", "insured_address2": "Fl 3", "insured_city": "Salem", "insured_state": "MA", "insured_zip": "01970",
            "insured_title": "Owner",
            "insured_contact": "Contact: Bob | Phone: 555-1 x7 | Fax: 555-2 | Mobile: 555-3 | Email: b@y.org",
            "certificate_holder_name": "Holder LLC", "certificate_holder_address1": "3 Oak", "certificate_holder_address2": null,
            "certificate_holder_city": "Lynn", "certificate_holder_state": "MA", "certificate_holder_zip": "01901",
            "notes": "[Migrated Holder Contact] Contact: Ann | Title: Risk Mgr | Phone: 555-4 | Fax: 555-5 | Email: a@z.com\n[Migrated] Certificate revision: 2",
            "status": "evaluated",
            "file": "acct/501/coi.pdf", "original_filename": "coi.pdf", "content_hash": "a".repeat(64),
            "file_uid": format!("{}_20240101000000000000", "a".repeat(64)),
            "requirements_group_id": 901, "current_evaluation_id": null, "created_by_id": 1,
            "carrier_a_name": null, "carrier_f_naic": null,
            "created": "2019-01-02 03:04:05", "modified": "2019-02-03 04:05:06",
        }),
    );
    let c = certificate(&target, 2).await;
    assert_fields(
        2,
        &c,
        json!({
            "agent_address": "9 Pine\n\nQuincy, MA 02169", "agent_contact": "Fax: 555-7", "insured_name": "Beta",
            "insured_contact": "Mobile: 555-8", "notes": "[Migrated Holder Contact] Email: h@q.com", "status": "manual_review",
            "file": null, "original_filename": null, "requirements_group_id": 902, "created_by_id": null,
            "created": "2019-05-01 00:00:00", "modified": "2019-05-01 00:00:00", "cert_number": null, "ops_desc": null,
        }),
    );
    let c = certificate(&target, 3).await;
    assert_fields(
        3,
        &c,
        json!({
            "agent_name": null, "agent_address": null, "agent_contact": null, "insured_contact": null, "insured_name": "Gamma DBA",
            "notes": "[Migrated] Certificate revision: 4", "status": "ready", "file": null, "content_hash": null, "file_uid": null,
            "requirements_group_id": 901, "created_by_id": null, "created": "2021-06-01 10:00:00", "modified": "2021-06-01 10:00:00",
        }),
    );
    let c = certificate(&target, 4).await;
    assert_fields(
        4,
        &c,
        json!({
            "status": "manual_review", "insured_name": null, "expiration_date": null, "auth_date": null, "notes": null, "file": null,
            "requirements_group_id": 902, "created": "2030-01-02 03:04:05", "modified": "2030-01-02 03:04:05",
        }),
    );
    let c = certificate(&target, 8).await;
    let mut cut = format!("{} / {}", "A".repeat(255), "B".repeat(255));
    cut.truncate(512);
    assert_fields(8, &c, json!({ "insured_name": cut, "status": "manual_review", "auth_date": null, "ops_desc": "long text ".repeat(300).trim_end() }));
    let c = certificate(&target, 9).await;
    assert_fields(9, &c, json!({ "insured_city": "Caf\u{FFFD}", "cert_number": "AB", "insured_name": "Delta", "status": "evaluated" }));

    // Decision #11: one override per certificate with a reason, in the certificate's group.
    let overrides: Vec<OverrideView> = sqlx::query_as(
        "SELECT m.legacy_key, o.requirements_group_id, o.coi_risk_profile_id, o.coverage_type, o.reason, o.approved_at, o.created, o.modified
         FROM docutrax_profiles_manualoverride o JOIN dtx_migration.id_map m ON m.entity = 'manual_override' AND m.new_id = o.id ORDER BY o.id",
    )
    .fetch_all(&target.pool)
    .await
    .unwrap();
    assert_eq!(
        overrides,
        vec![
            (
                "1".into(),
                901,
                Some(801),
                "General".into(),
                "approved by phone".into(),
                Some(at("2019-03-01T09:00:00Z")),
                at("2019-01-02T03:04:05Z"),
                at("2019-02-03T04:05:06Z")
            ),
            ("4".into(), 902, None, "General".into(), "legacy override".into(), None, at(NOW1), at(NOW1)),
        ]
    );

    let s = |k: &str, r: &str, d: &str| (k.to_string(), r.to_string(), d.to_string());
    let expected_issues = vec![
        s("1", "InsName and InsName1 differ", "InsName: \"Acme Inc\" | InsName1: \"DBA Acme Roofing\""),
        s("3", "attachment file not migrated", "attachment_id 101: attachment:101 missing"),
        s("3", "no create_time", "create_time zero date \"0000-00-00 00:00:00\": created set to update_time"),
        s("3", "user not mapped", "user_id 51: created_by left NULL"),
        s("4", "attachment file not migrated", "attachment_id 102: no file manifest row (missing)"),
        s("4", "no create_time", "create_time NULL: created set to the load time"),
        s("4", "no insured name", "InsName and InsName1 are empty"),
        s("4", "unknown certificate_status", "\"WEIRD\": set to manual_review"),
        s("4", "zero date", "certificate_expiration; AuthDate; review_time"),
        s("5", "customer not mapped", "customer_id 99"),
        s("6", "vendor not mapped", "vendor_id 12"),
        s("7", "requirements group not found", "key 2:8:"),
        s("8", "InsName and InsName1 differ", &format!("InsName: {:?} | InsName1: {:?}", "A".repeat(255), "B".repeat(255))),
        s("8", "invalid date", "AuthDate: invalid legacy date \"2019-04-00\""),
        s("8", "overlong text", "insured_name: 513 characters, cut to 512"),
        s("8", "unknown certificate_status", "NULL: set to manual_review"),
        s("9", "invalid UTF-8", "InsCity: \"Caf\u{FFFD}\""),
        s("10", "customer account not numeric", "customer_id 3 maps to account \"abc\""),
        s("11", "requirements group not found", "key 1:6: maps to group 999, which does not exist"),
        s("12", "customer not mapped", "customer_id NULL"),
        s("12", "vendor not mapped", "vendor_id NULL"),
    ];
    assert_eq!(issues(&target).await, expected_issues);

    // Rerun (another load time): nothing changes, not even the created of rows without a time.
    let before = dump(&target).await;
    let counts_before = target.table_counts().await;
    let (counts, rerun_issues, _) = run(&legacy, &target, &mappings, NOW2).await;
    assert_eq!(dump(&target).await, before, "a rerun changed the target");
    assert_eq!(target.table_counts().await, counts_before);
    assert_eq!((counts["certificates_created"], counts["certificates_unchanged"], counts["certificates_updated"]), (0, 6, 0));
    assert_eq!((counts["manual_overrides_created"], counts["manual_overrides_unchanged"]), (0, 2));
    assert_eq!(rerun_issues.len(), expected_issues.len());

    // A changed legacy row updates its certificate in place; a cleared override_reason removes
    // the override this step made.
    sqlx::query("UPDATE certificate SET CertNo = 'C-1b', override_reason = NULL WHERE id = 1").execute(&legacy.pool).await.unwrap();
    let (counts, _, _) = run(&legacy, &target, &mappings, NOW2).await;
    assert_eq!((counts["certificates_created"], counts["certificates_updated"], counts["certificates_unchanged"]), (0, 1, 5));
    assert_eq!(counts["manual_overrides_removed"], 1);
    assert_fields(1, &certificate(&target, 1).await, json!({ "id": 1, "cert_number": "C-1b", "modified": "2019-02-03 04:05:06" }));
    let keys: Vec<String> = sqlx::query_scalar("SELECT legacy_key FROM dtx_migration.id_map WHERE entity = 'manual_override'")
        .fetch_all(&target.pool)
        .await
        .unwrap();
    assert_eq!(keys, vec!["4".to_string()]);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM docutrax_profiles_manualoverride").fetch_one(&target.pool).await.unwrap();
    assert_eq!(n, 1);

    legacy.drop_database().await;
    target.drop_database().await;
}

/// Without the users mapping file, one issue says so (not one per certificate).
#[tokio::test]
async fn an_absent_users_mapping_is_one_issue() {
    let legacy = crafted_legacy().await;
    let target = prepared_target().await;
    let mut mappings = mappings();
    mappings.users.clear();
    mappings.absent.push(shared::mappings::USERS_FILE);
    let (counts, issues, _) = run(&legacy, &target, &mappings, NOW1).await;
    assert_eq!(counts["certificates_created"], 6);
    assert!(issues.iter().all(|i| i.reason != "user not mapped"), "{issues:?}");
    let absent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dtx_migration.issue WHERE reason = 'users mapping absent' AND legacy_key = ''")
        .fetch_one(&target.pool)
        .await
        .unwrap();
    assert_eq!(absent, 1);
    assert_fields(1, &certificate(&target, 1).await, json!({ "created_by_id": null }));
    legacy.drop_database().await;
    target.drop_database().await;
}
