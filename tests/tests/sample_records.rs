//! The record side of the sample generator against real MariaDB and PostgreSQL: every figure
//! `SampleSummary::records` states is checked with SQL against the generated legacy database,
//! against the loader's own dry-run report (`validate::build_report`), against the mapping CSVs
//! as the loader parses them, and `seed_target` is checked to fill the DTX 2.0 stand-ins the
//! loader's foreign keys need, idempotently.
//!
//! Needs MariaDB and PostgreSQL (infra/local/services.sh), or DTX_TEST_MYSQL_URL /
//! DTX_TEST_POSTGRES_URL.

use shared::loader::validate::{build_report, MappingCoverage};
use shared::mappings;
use shared::sample::{self, RecordsSummary, SampleSpec, SampleSummary};
use sqlx::mysql::MySqlPool;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use tests::{MysqlFixture, PgFixture};

/// The default spec without the 70 MiB file: the record side does not care about file sizes.
fn spec() -> SampleSpec {
    SampleSpec {
        large_file_bytes: 0,
        max_small_file_bytes: 8 * 1024,
        ..SampleSpec::default()
    }
}

async fn count(pool: &MySqlPool, sql: &str) -> u64 {
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    u64::try_from(n).expect("count")
}

async fn ids(pool: &MySqlPool, sql: &str) -> Vec<u64> {
    sqlx::query_scalar(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn pg_count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Decision #7's dedup key, restated: trimmed, whitespace collapsed, lower case.
fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[tokio::test]
async fn record_side_matches_its_summary() {
    let db = MysqlFixture::new().await;
    let pg = PgFixture::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("efs");
    let mappings_dir = dir.path().join("mappings");
    // A COI profile mapping left from an earlier run must not survive generation (phased linking).
    std::fs::create_dir_all(&mappings_dir).expect("mappings dir");
    std::fs::write(mappings_dir.join(mappings::COI_PROFILES_FILE), "stale").expect("stale file");

    let summary = sample::generate(&db.pool, &root, &mappings_dir, &spec())
        .await
        .expect("generate");
    let r = &summary.records;
    assert!(
        !mappings_dir.join(mappings::COI_PROFILES_FILE).exists(),
        "generate must not leave a COI profile mapping"
    );

    shared::legacy::validate_schema(
        &db.pool,
        shared::legacy::LEGACY_DDL,
        &shared::legacy::LOADER_TABLES,
    )
    .await
    .expect("the generated database passes the loader's schema check");
    check_rows(&db.pool, &summary).await;
    let coverage = check_mapping_files(&db.pool, &mappings_dir, &summary).await;
    check_report(&db.pool, &coverage, r).await;
    check_seed_target(&pg.pool, &summary).await;

    // The summary survives JSON (the CLI writes it), and the record side reads back alone.
    let json = serde_json::to_value(&summary).expect("summary json");
    let back: RecordsSummary =
        serde_json::from_value(json["records"].clone()).expect("records json");
    assert_eq!(&back, r);
    let empty: RecordsSummary = serde_json::from_str("{}").expect("every field has a default");
    assert_eq!(empty, RecordsSummary::default());

    // Same seed, same rows and summary.
    let again = sample::generate(&db.pool, &root, &mappings_dir, &spec())
        .await
        .expect("regenerate");
    assert_eq!(summary, again);
    check_rows(&db.pool, &again).await;

    pg.drop_database().await;
    db.drop_database().await;
}

/// The summary's figures, recounted with SQL.
async fn check_rows(pool: &MySqlPool, summary: &SampleSummary) {
    let r = &summary.records;
    let c = &r.certificates;
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM vendor").await,
        r.vendors.len() as u64
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM certificate").await,
        c.total
    );
    assert_eq!(c.total, summary.legacy_rows.certificates);
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM document").await,
        r.documents.total
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM certificate_status").await,
        r.status_rows.total
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM document_status").await,
        r.documents.document_status_rows
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM document_library").await,
        r.libraries.total
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM document_set").await,
        r.document_sets.total
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM document_requirements").await,
        r.document_sets.requirements
    );

    // Rows the file side made keep their attachments: every attachment still points back.
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM certificate c JOIN attachment a ON a.id = c.attachment_id AND a.certificate_id = c.id").await,
        c.with_attachment
    );
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM document d JOIN attachment a ON a.id = d.attachment_id AND a.document_id = d.id").await,
        r.documents.with_attachment
    );

    // Vendors: per-vendor certificate/document counts and combinations.
    for v in &r.vendors {
        let row = sqlx::query(
            "SELECT CAST(customer_id AS UNSIGNED) AS c, CAST(requirements_id AS UNSIGNED) AS r, CAST(document_set_id AS UNSIGNED) AS s
             FROM vendor WHERE id = ?",
        )
        .bind(v.id)
        .fetch_one(pool)
        .await
        .expect("vendor row");
        assert_eq!(row.get::<u64, _>("c"), v.customer_id);
        assert_eq!(row.get::<Option<u64>, _>("r"), v.requirements_id);
        assert_eq!(row.get::<Option<u64>, _>("s"), v.document_set_id);
        assert_eq!(
            count(
                pool,
                &format!(
                    "SELECT COUNT(*) FROM certificate WHERE vendor_id = {}",
                    v.id
                )
            )
            .await,
            v.certificates
        );
        assert_eq!(
            count(
                pool,
                &format!("SELECT COUNT(*) FROM document WHERE vendor_id = {}", v.id)
            )
            .await,
            v.documents
        );
    }
    let without: Vec<u64> = ids(
        pool,
        "SELECT CAST(v.id AS UNSIGNED) FROM vendor v WHERE NOT EXISTS (SELECT 1 FROM certificate c WHERE c.vendor_id = v.id) ORDER BY v.id",
    )
    .await;
    assert_eq!(without, r.vendors_without_certificates);
    assert!(
        r.vendors_without_certificates.iter().all(|id| r
            .vendors
            .iter()
            .any(|v| v.id == *id && v.requirements_id.is_some())),
        "vendors without certificates still have requirements"
    );

    // RequirementsGroup combinations come from both tables (Decision #1).
    let g = &r.requirements_groups;
    let combos = count(
        pool,
        "SELECT COUNT(*) FROM (SELECT customer_id, requirements_id, document_set_id FROM certificate
                               UNION SELECT customer_id, requirements_id, document_set_id FROM vendor) c",
    )
    .await;
    assert_eq!(combos, g.combos);
    assert_eq!(count(pool, "SELECT COUNT(*) FROM (SELECT DISTINCT customer_id, requirements_id, document_set_id FROM certificate) c").await, g.from_certificates);
    assert_eq!(count(pool, "SELECT COUNT(*) FROM (SELECT DISTINCT customer_id, requirements_id, document_set_id FROM vendor) c").await, g.from_vendors);
    assert!(
        !g.certificate_only.is_empty() && !g.vendor_only.is_empty(),
        "{g:?}"
    );
    let mapped_customers: BTreeSet<u64> = r.accounts.iter().map(|a| a.customer_id).collect();
    assert_eq!(
        count(
            pool,
            &format!(
                "SELECT COUNT(*) FROM (SELECT customer_id, requirements_id, document_set_id FROM certificate
                                       UNION SELECT customer_id, requirements_id, document_set_id FROM vendor) c
                 WHERE customer_id IN ({})",
                mapped_customers.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
            )
        )
        .await,
        g.groups_expected
    );

    // Orphan compliance rows.
    let orphans: Vec<u64> = ids(
        pool,
        "SELECT DISTINCT CAST(cs.certificate_id AS UNSIGNED) FROM certificate_status cs
         LEFT JOIN certificate c ON c.id = cs.certificate_id WHERE c.id IS NULL ORDER BY 1",
    )
    .await;
    assert_eq!(orphans, r.status_rows.orphan_certificate_ids);
    assert_eq!(
        count(pool, "SELECT COUNT(*) FROM certificate_status cs LEFT JOIN certificate c ON c.id = cs.certificate_id WHERE c.id IS NULL").await,
        r.status_rows.orphan_rows
    );
    assert!(r.status_rows.orphan_rows > 0);

    // Zero dates, as legacy holds them.
    let zero: Vec<u64> = ids(
        pool,
        "SELECT CAST(id AS UNSIGNED) FROM certificate WHERE CAST(create_time AS CHAR) LIKE '0000-00-00%'
            OR CAST(certificate_expiration AS CHAR) LIKE '0000-00-00%' OR CAST(AuthDate AS CHAR) LIKE '0000-00-00%' ORDER BY id",
    )
    .await;
    assert_eq!(zero, c.zero_date_ids);
    assert!(!zero.is_empty());
    let zero_docs: Vec<u64> = ids(
        pool,
        "SELECT CAST(id AS UNSIGNED) FROM document WHERE CAST(create_time AS CHAR) LIKE '0000-00-00%'
            OR CAST(expiration_date AS CHAR) LIKE '0000-00-00%' ORDER BY id",
    )
    .await;
    assert_eq!(zero_docs, r.documents.zero_date_ids);

    // Documents: Decision #9's parent cases (one that exists, one that does not), and every
    // Decision #6 spelling on a document that migrates.
    let d = &r.documents;
    let missing_parent: Vec<u64> = ids(
        pool,
        "SELECT CAST(d.id AS UNSIGNED) FROM document d LEFT JOIN document p ON p.id = d.parent_document_id
         WHERE d.parent_document_id <> 0 AND p.id IS NULL ORDER BY d.id",
    )
    .await;
    assert_eq!(missing_parent, d.parent_missing_ids);
    assert_eq!(missing_parent.len(), 1);
    assert!(
        count(
            pool,
            "SELECT COUNT(*) FROM document d JOIN document p ON p.id = d.parent_document_id"
        )
        .await
            >= 1
    );
    let skipped: Vec<String> = d.skipped_ids.iter().map(u64::to_string).collect();
    for spelling in [
        "0",
        "new",
        "NOT_PROVIDED",
        "REVIEWED",
        "APPROVED",
        "REJECTED",
    ] {
        let n = count(
            pool,
            &format!(
                "SELECT COUNT(*) FROM document WHERE BINARY document_status = '{spelling}' AND id NOT IN ({})",
                skipped.join(", ")
            ),
        )
        .await;
        assert!(
            n > 0,
            "no migrated document has document_status {spelling:?}"
        );
    }
    assert_eq!(d.migrated_status.values().sum::<u64>(), d.migrated);
    assert!(!d.docusign_templates.is_empty());

    // Invalid UTF-8 in a text column (read as the loader reads it: bytes).
    let rows = sqlx::query("SELECT CAST(id AS UNSIGNED) AS id, CAST(InsName AS BINARY) AS n, CAST(InsName1 AS BINARY) AS n1 FROM certificate ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("insured names");
    let invalid: Vec<u64> = rows
        .iter()
        .filter(|row| {
            ["n", "n1"].iter().any(|col| {
                row.get::<Option<Vec<u8>>, _>(*col)
                    .is_some_and(|b| std::str::from_utf8(&b).is_err())
            })
        })
        .map(|row| row.get::<u64, _>("id"))
        .collect();
    assert_eq!(invalid, c.invalid_utf8_ids);
    assert_eq!(invalid.len(), 1);

    // The overlong holder name is stored whole (the live column is wider than DTX 2.0's).
    let overlong: Vec<u64> = ids(pool, "SELECT CAST(id AS UNSIGNED) FROM certificate WHERE CHAR_LENGTH(HolderName) > 255 ORDER BY id").await;
    assert_eq!(overlong, c.overlong_ids);
    assert!(
        count(
            pool,
            "SELECT COUNT(*) FROM certificate WHERE CHAR_LENGTH(OpsDesc) > 2000"
        )
        .await
            >= 1
    );

    // Replacement chains name existing certificates of the same vendor.
    assert_eq!(
        count(
            pool,
            "SELECT COUNT(*) FROM certificate n JOIN certificate o ON o.id = n.replacement_id AND o.vendor_id = n.vendor_id AND o.create_time < n.create_time"
        )
        .await,
        c.with_replacement_id
    );

    // Every certificate column is used somewhere (the full ACORD row is filled).
    let columns = &shared::legacy::expected_columns(shared::legacy::LEGACY_DDL)["certificate"];
    for column in columns {
        let filled = count(
            pool,
            &format!("SELECT COUNT(*) FROM certificate WHERE `{column}` IS NOT NULL"),
        )
        .await;
        assert!(filled > 0, "certificate.{column} is never filled");
    }
    let columns = &shared::legacy::expected_columns(shared::legacy::LEGACY_DDL)["document"];
    for column in columns {
        let filled = count(
            pool,
            &format!("SELECT COUNT(*) FROM document WHERE `{column}` IS NOT NULL"),
        )
        .await;
        assert!(filled > 0, "document.{column} is never filled");
    }
    // Phones with and without extensions, an extension without a phone.
    assert!(count(pool, "SELECT COUNT(*) FROM certificate WHERE ProdPhone IS NOT NULL AND ProdPhoneExtension IS NOT NULL").await > 0);
    assert!(count(pool, "SELECT COUNT(*) FROM certificate WHERE ProdPhone IS NOT NULL AND ProdPhoneExtension IS NULL").await > 0);

    // Libraries and their references.
    let unreferenced: Vec<u64> = ids(
        pool,
        "SELECT CAST(dl.id AS UNSIGNED) FROM document_library dl
         WHERE NOT EXISTS (SELECT 1 FROM document d WHERE d.document_library_id = dl.id)
           AND NOT EXISTS (SELECT 1 FROM document_status ds WHERE ds.document_library_id = dl.id) ORDER BY 1",
    )
    .await;
    assert_eq!(unreferenced, r.libraries.unreferenced_ids);
    let names: Vec<Option<String>> =
        sqlx::query_scalar("SELECT name FROM document_library ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("names");
    let keys: BTreeSet<String> = names
        .iter()
        .flatten()
        .map(|n| name_key(n))
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(keys.len() as u64, r.libraries.document_types_expected);
    assert!(
        names
            .iter()
            .flatten()
            .any(|n| n.as_str() != n.trim() || n.to_lowercase() != *n),
        "a name differing by case/whitespace"
    );
}

/// The mapping CSVs parse with the loader's parsers and leave out exactly the unmapped vendors
/// and user, which the data does use. Returns the coverage for the report.
async fn check_mapping_files(
    pool: &MySqlPool,
    dir: &Path,
    summary: &SampleSummary,
) -> MappingCoverage {
    let r = &summary.records;
    let accounts = mappings::parse_accounts(&read(dir, mappings::ACCOUNTS_FILE), "accounts")
        .expect("accounts csv");
    let records = mappings::parse_records(&read(dir, mappings::RECORDS_FILE), "records")
        .expect("records csv");
    let users =
        mappings::parse_users(&read(dir, mappings::USERS_FILE), "users").expect("users csv");

    let mapped: BTreeMap<u64, (i64, i64)> = r
        .mapped_vendors()
        .map(|v| {
            (
                v.id,
                (
                    v.record_id.unwrap_or_default(),
                    v.assignment_id.unwrap_or_default(),
                ),
            )
        })
        .collect();
    assert_eq!(records.len(), mapped.len());
    for (vendor, (record, assignment)) in &mapped {
        let m = &records[vendor];
        assert_eq!(
            (m.record_id, m.assignment_id),
            (*record, *assignment),
            "vendor {vendor}"
        );
    }
    for vendor in &r.unmapped_vendor_ids {
        assert!(
            !records.contains_key(vendor),
            "vendor {vendor} must be unmapped"
        );
    }
    assert!(r
        .unmapped_vendor_ids
        .contains(&r.deliberately_unmapped_vendor_id));
    let used = |sql: String| async move { count(pool, &sql).await };
    let v = r.deliberately_unmapped_vendor_id;
    assert!(
        used(format!(
            "SELECT COUNT(*) FROM certificate WHERE vendor_id = {v}"
        ))
        .await
            > 0
    );
    assert!(
        used(format!(
            "SELECT COUNT(*) FROM document WHERE vendor_id = {v}"
        ))
        .await
            > 0
    );
    let customer = r
        .vendors
        .iter()
        .find(|x| x.id == v)
        .expect("unmapped vendor")
        .customer_id;
    assert!(
        accounts.contains_key(&customer),
        "the deliberately unmapped vendor belongs to a mapped customer"
    );

    let mapped_users: BTreeMap<u64, i64> = r
        .users
        .iter()
        .filter_map(|u| u.new_user_id.map(|n| (u.id, n)))
        .collect();
    assert_eq!(users.len(), mapped_users.len());
    for (user, new) in &mapped_users {
        assert_eq!(users[user], *new);
    }
    assert_eq!(r.unmapped_user_ids.len(), 1);
    for user in &r.unmapped_user_ids {
        assert!(!users.contains_key(user));
        assert!(
            used(format!(
                "SELECT COUNT(*) FROM certificate WHERE user_id = {user}"
            ))
            .await
                > 0
        );
    }

    // Area 6's mapping only on request; it covers every requirements_id of a mapped customer.
    sample::write_coi_profile_mapping(dir, summary).expect("write coi mapping");
    let profiles = mappings::parse_coi_profiles(&read(dir, mappings::COI_PROFILES_FILE), "coi")
        .expect("coi csv");
    let used_requirements: Vec<u64> = ids(
        pool,
        "SELECT DISTINCT CAST(requirements_id AS UNSIGNED) FROM (SELECT customer_id, requirements_id FROM certificate
                                                                UNION SELECT customer_id, requirements_id FROM vendor) x
         WHERE requirements_id IS NOT NULL ORDER BY 1",
    )
    .await;
    assert_eq!(r.requirements_ids(), used_requirements);
    for q in &r.requirements {
        assert_eq!(
            profiles.get(&q.id).copied(),
            q.coi_risk_profile_id,
            "requirements {}",
            q.id
        );
        assert_eq!(
            q.coi_risk_profile_id.is_some(),
            accounts.contains_key(&q.customer_id)
        );
    }

    MappingCoverage::from_maps(&accounts, &records, &users)
}

/// The loader's dry-run report over the generated database agrees with the summary.
async fn check_report(pool: &MySqlPool, coverage: &MappingCoverage, r: &RecordsSummary) {
    let report = build_report(pool, coverage, None)
        .await
        .expect("validate report");
    let (c, rc) = (&report.certificates, &r.certificates);
    assert_eq!(c.total, rc.total);
    assert_eq!(c.status_distribution, rc.status_distribution);
    assert_eq!(c.unknown_status_values, rc.unknown_status_values);
    assert_eq!(
        (c.with_attachment, c.without_attachment),
        (rc.with_attachment, rc.without_attachment)
    );
    assert_eq!(c.with_replacement_id, rc.with_replacement_id);
    assert_eq!(c.with_requirements_id, rc.with_requirements_id);
    assert_eq!(c.with_document_set_id, rc.with_document_set_id);
    assert_eq!(c.with_override_reason, rc.with_override_reason);
    assert_eq!(c.insured_name_conflicts, rc.insured_name_conflicts);
    assert_eq!(c.without_insured_name, rc.without_insured_name.len() as u64);
    assert_eq!(
        (c.unmapped_customer, c.unmapped_vendor, c.unmapped_user),
        (rc.unmapped_customer, rc.unmapped_vendor, rc.unmapped_user)
    );
    assert_eq!(c.zero_dates, rc.zero_date_ids.len() as u64);
    assert_eq!(report.certificates_to_skip, rc.skipped);
    assert_eq!(
        rc.skipped,
        rc.skipped_unmapped_customer + rc.skipped_unmapped_vendor
    );

    let (s, rs) = (&report.status_rows, &r.status_rows);
    assert_eq!(
        (s.total, s.unique_certificates, s.orphan_rows),
        (rs.total, rs.unique_certificates, rs.orphan_rows)
    );
    assert_eq!(s.field_names, rs.field_names);
    assert_eq!(s.unmapped_field_names, rs.unmapped_field_names);
    assert_eq!(s.status_codes, rs.status_codes);
    assert_eq!(
        (s.compliant, s.non_compliant),
        (rs.compliant, rs.non_compliant)
    );

    let (d, rd) = (&report.documents, &r.documents);
    assert_eq!(d.total, rd.total);
    assert_eq!(d.status_distribution, rd.status_distribution);
    assert_eq!(d.unknown_status_values, rd.unknown_status_values);
    assert_eq!(
        d.requirement_status_distribution,
        rd.requirement_status_distribution
    );
    assert_eq!(
        d.unknown_requirement_status_values,
        rd.unknown_requirement_status_values
    );
    assert_eq!(d.with_attachment, rd.with_attachment);
    assert_eq!(
        d.with_parent_document_id,
        rd.with_parent_document_id.len() as u64
    );
    assert_eq!(d.docusign_templates, rd.docusign_templates);
    assert_eq!(
        (d.unmapped_customer, d.unmapped_vendor),
        (rd.unmapped_customer, rd.unmapped_vendor)
    );
    assert_eq!(report.documents_to_skip, rd.skipped);

    let (l, rl) = (&report.libraries, &r.libraries);
    assert_eq!(l.total, rl.total);
    assert_eq!(l.unique_names, rl.document_types_expected);
    assert_eq!(l.without_name, rl.without_name_ids.len() as u64);
    assert_eq!(l.unreferenced, rl.unreferenced_ids.len() as u64);
    let duplicates: BTreeMap<String, u64> = l
        .duplicate_names
        .iter()
        .map(|(name, n)| (name_key(name), *n))
        .collect();
    assert_eq!(duplicates, rl.duplicate_names);

    let sets = &report.sets;
    assert_eq!(sets.total, r.document_sets.total);
    assert_eq!(
        (sets.requirements_min, sets.requirements_max),
        (
            r.document_sets.requirements_min,
            r.document_sets.requirements_max
        )
    );
    assert_eq!(
        report.requirements_group_combos,
        r.requirements_groups.combos
    );

    // The report flags every scenario the generator plants.
    for kind in [
        "certificate: unknown certificate_status (-> manual_review)",
        "certificate: customer without account mapping (skipped)",
        "certificate: vendor without record mapping (skipped)",
        "certificate: user without user mapping (created_by left empty)",
        "certificate: no insured name (flag for review)",
        "certificate: zero date",
        "certificate_status: row without certificate (skipped)",
        "certificate_status: field_name without coverage prefix (-> OtherCoverage)",
        "document: unknown document_status (-> new)",
        "document_status: unknown status (-> in_review)",
        "document: customer without account mapping (skipped)",
        "document: vendor without record mapping (skipped)",
        "document: parent document flattened into notes",
        "document_library: duplicate name (merged)",
        "document_library: no name",
        "document_library: referenced by no document (potentially orphaned)",
    ] {
        assert!(
            report.issues.contains_key(kind),
            "{kind} not flagged: {:?}",
            report.issues
        );
    }
}

/// seed_target inserts exactly the stand-ins the summary names, twice without change.
async fn check_seed_target(pg: &sqlx::PgPool, summary: &SampleSummary) {
    let r = &summary.records;
    sample::seed_target(pg, summary).await.expect("seed target");
    let tables = [
        "docutrax_accounts_account",
        "docutrax_users_user",
        "docutrax_records_record",
        "docutrax_records_assignment",
        "docutrax_profiles_coiriskprofile",
    ];
    let mut first = Vec::new();
    for table in tables {
        first.push(pg_count(pg, &format!("SELECT COUNT(*) FROM {table}")).await);
    }
    let mapped_vendors = r.mapped_vendors().count() as i64;
    let profiles = r
        .requirements
        .iter()
        .filter(|q| q.coi_risk_profile_id.is_some())
        .count() as i64;
    let users = r.users.iter().filter(|u| u.new_user_id.is_some()).count() as i64;
    assert_eq!(
        first,
        [
            r.accounts.len() as i64,
            users,
            mapped_vendors,
            mapped_vendors,
            profiles
        ]
    );

    sample::seed_target(pg, summary)
        .await
        .expect("seed target again");
    let mut second = Vec::new();
    for table in tables {
        second.push(pg_count(pg, &format!("SELECT COUNT(*) FROM {table}")).await);
    }
    assert_eq!(first, second, "seed_target is idempotent");

    // The ids are the mapping files' ids, and every link lands on the right account.
    let account_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM docutrax_accounts_account ORDER BY id")
            .fetch_all(pg)
            .await
            .expect("accounts");
    assert_eq!(
        account_ids,
        r.accounts.iter().map(|a| a.account_id).collect::<Vec<_>>()
    );
    for v in r.mapped_vendors() {
        let (record_account, assignment_account, assignment_record): (i64, i64, i64) = sqlx::query_as(
            "SELECT r.account_id, a.account_id, a.record_id FROM docutrax_records_record r
             JOIN docutrax_records_assignment a ON a.record_id = r.id WHERE r.id = $1 AND a.id = $2",
        )
        .bind(v.record_id)
        .bind(v.assignment_id)
        .fetch_one(pg)
        .await
        .unwrap_or_else(|e| panic!("vendor {}: {e}", v.id));
        assert_eq!(Some(record_account), v.account_id);
        assert_eq!(Some(assignment_account), v.account_id);
        assert_eq!(Some(assignment_record), v.record_id);
    }
    let accounts: BTreeMap<u64, i64> = r
        .accounts
        .iter()
        .map(|a| (a.customer_id, a.account_id))
        .collect();
    for q in r
        .requirements
        .iter()
        .filter(|q| q.coi_risk_profile_id.is_some())
    {
        let account: i64 = sqlx::query_scalar(
            "SELECT account_id FROM docutrax_profiles_coiriskprofile WHERE id = $1",
        )
        .bind(q.coi_risk_profile_id)
        .fetch_one(pg)
        .await
        .expect("coi profile");
        assert_eq!(Some(&account), accounts.get(&q.customer_id));
    }
    let emails: HashSet<String> = sqlx::query_scalar("SELECT email FROM docutrax_users_user")
        .fetch_all(pg)
        .await
        .expect("emails")
        .into_iter()
        .collect();
    assert!(r
        .users
        .iter()
        .filter(|u| u.new_user_id.is_some())
        .all(|u| emails.contains(&u.email)));

    // The identity sequences were moved past the explicit ids: an insert without one works.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO docutrax_users_user (email) VALUES ('new.user@example.com') RETURNING id",
    )
    .fetch_one(pg)
    .await
    .expect("insert without id");
    assert!(r.users.iter().all(|u| u.new_user_id.is_none_or(|n| n < id)));
}
