//! The loader's `validate` step on crafted legacy rows: every figure of the dry-run report.

use shared::loader::validate::{build_report, MappingCoverage};
use std::collections::HashSet;
use shared::loader::runner::{LoadRequest, LoaderMappings};
use tests::{MysqlFixture, PgFixture};

/// A legacy database with one or more rows for every figure of the report.
async fn crafted_legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    let mut conn = db.pool.acquire().await.unwrap();
    // Legacy data holds zero dates; the session must accept them to reproduce that.
    sqlx::query("SET SESSION sql_mode = ''").execute(&mut *conn).await.unwrap();
    for sql in [
        "INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, requirements_id, document_set_id, replacement_id,
            certificate_status, InsName, InsName1, override_reason, user_id, create_time) VALUES
            (1, 1, 10, 100, 5, 7, NULL, 'FINISHED', 'Acme', 'Acme DBA', 'approved by phone', 50, '2019-01-01'),
            (2, 1, 10, 0, 5, 7, 1, 'PENDING', 'Beta', 'Beta', NULL, 51, '2020-01-01'),
            (3, 2, 11, NULL, NULL, NULL, NULL, 'WEIRD', NULL, NULL, '  ', NULL, '0000-00-00 00:00:00'),
            (4, 99, 10, NULL, 6, NULL, NULL, NULL, 'Gamma', NULL, NULL, NULL, '2021-01-01')",
        "INSERT INTO certificate_status (id, certificate_id, status_code, field_name) VALUES
            (1, 1, 'COMPLIANT', 'GLPolExpDate'), (2, 1, 'compliant ', 'WCPolExpDate'),
            (3, 2, 'NON_COMPLIANT', 'BondAmount'), (4, 999, 'COMPLIANT', 'GLPolExpDate')",
        "INSERT INTO vendor (id, customer_id, requirements_id, document_set_id) VALUES (10, 1, 5, 7), (11, 2, 8, 9)",
        "INSERT INTO document (id, customer_id, vendor_id, attachment_id, document_status, parent_document_id, docusign_template_id, document_library_id) VALUES
            (1, 1, 10, 101, '0', NULL, 'tmpl-123', 1), (2, 1, 12, NULL, 'ARCHIVED', 1, '', 2)",
        "INSERT INTO document_status (id, vendor_id, document_status, document_library_id) VALUES (1, 10, 'NOT_PROVIDED', 1), (2, 10, 'MAYBE', NULL)",
        "INSERT INTO document_library (id, customer_id, name) VALUES (1, 1, 'W-9'), (2, 2, ' W-9 '), (3, 2, ''), (4, 3, 'Lonely')",
        "INSERT INTO document_set (id, customer_id, name) VALUES (7, 1, 'Standard'), (9, 2, 'Empty')",
        "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES (1, 7, 1), (2, 7, 2)",
        "INSERT INTO attachment (id, name, certificate_id, document_id) VALUES (100, 'coi.PDF', 1, NULL), (101, 'scan.png', NULL, 1), (102, 'README', NULL, NULL)",
    ] {
        sqlx::query(sql).execute(&mut *conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    drop(conn);
    db
}

#[tokio::test]
async fn the_dry_run_report_counts_what_the_spec_asks_for() {
    let db = crafted_legacy().await;
    let mappings = MappingCoverage {
        accounts: HashSet::from([1, 2]),
        vendors: HashSet::from([10, 11]),
        users: HashSet::from([50]),
    };
    let r = build_report(&db.pool, &mappings, Some(2_500_000_000)).await.expect("report");

    let c = &r.certificates;
    assert_eq!(c.total, 4);
    assert_eq!(c.status_distribution.get("FINISHED"), Some(&1));
    assert_eq!(c.status_distribution.get("(null)"), Some(&1));
    assert_eq!(c.unknown_status_values.keys().collect::<Vec<_>>(), ["(null)", "WEIRD"]);
    assert_eq!((c.with_attachment, c.without_attachment), (1, 3), "0 counts as no attachment");
    assert_eq!((c.with_replacement_id, c.with_requirements_id, c.with_document_set_id), (1, 3, 2));
    assert_eq!(c.with_override_reason, 1, "a blank reason is no override");
    assert_eq!(c.insured_name_conflicts, vec![1]);
    assert_eq!(c.without_insured_name, 1);
    assert_eq!((c.unmapped_customer, c.unmapped_vendor, c.unmapped_user), (1, 0, 1));
    assert_eq!(c.zero_dates, 1);
    assert_eq!(r.certificates_to_skip, 1);

    let s = &r.status_rows;
    assert_eq!((s.total, s.unique_certificates), (4, 3));
    assert_eq!(s.field_names.get("GLPolExpDate"), Some(&2));
    assert_eq!(s.unmapped_field_names.keys().collect::<Vec<_>>(), ["BondAmount"]);
    assert_eq!((s.compliant, s.non_compliant), (3, 1));
    assert_eq!(s.orphan_rows, 1);

    let d = &r.documents;
    assert_eq!(d.total, 2);
    assert_eq!(d.unknown_status_values.keys().collect::<Vec<_>>(), ["ARCHIVED"]);
    assert_eq!(d.unknown_requirement_status_values.keys().collect::<Vec<_>>(), ["MAYBE"]);
    assert_eq!((d.with_attachment, d.with_parent_document_id), (1, 1));
    assert_eq!(d.docusign_templates, vec![(1, "tmpl-123".to_string())]);
    assert_eq!((d.unmapped_customer, d.unmapped_vendor), (0, 1));
    assert_eq!(r.documents_to_skip, 1);

    let l = &r.libraries;
    assert_eq!((l.total, l.unique_names, l.without_name, l.unreferenced), (4, 2, 1, 2));
    assert_eq!(l.duplicate_names.get("W-9"), Some(&2), "names are compared trimmed");
    assert_eq!((r.sets.total, r.sets.requirements_min, r.sets.requirements_max), (2, 0, 2));
    assert!((r.sets.requirements_avg - 1.0).abs() < 1e-9);

    let a = &r.attachments;
    assert_eq!((a.total, a.with_certificate_id, a.with_document_id), (3, 1, 1));
    assert_eq!(a.file_types.get(".pdf"), Some(&1));
    assert_eq!(a.file_types.get("(none)"), Some(&1));
    // Certificates (1,5,7) (2,NULL,NULL) (99,6,NULL) and vendors (1,5,7) (2,8,9): four distinct combos.
    assert_eq!(r.requirements_group_combos, 4);
    assert_eq!(r.issues.get("certificate_status: row without certificate (skipped)"), Some(&1));
    assert_eq!(r.issues.get("document_library: duplicate name (merged)"), Some(&2));

    let text = r.render_text();
    for expected in [
        "=== DTX 1.0 Certificates & Documents Migration - Dry Run Report ===",
        "  Status distribution: FINISHED: 1, PENDING: 1, other: 2",
        "  Unique field_names: [BondAmount, GLPolExpDate, WCPolExpDate]",
        "  COMPLIANT count: 3",
        "  Requirements per set: min: 0, max: 2, avg: 1.0",
        "  Total file size: 2.50 GB",
        "  Unique (customer, requirements, doc_set) combos: 4",
        "Ready to migrate: 3 of 4 certificates, 1 of 2 documents (1 and 1 skipped for missing mappings)",
        "    document 1: template tmpl-123",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn the_validate_step_writes_its_reports_and_leaves_the_target_unchanged() {
    let legacy = crafted_legacy().await;
    let target = PgFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (mappings_dir, reports_dir) = (dir.path().join("mappings"), dir.path().join("reports"));
    std::fs::create_dir_all(&mappings_dir).unwrap();
    std::fs::write(mappings_dir.join("id_mapping_accounts.csv"), "old_customer_id,new_account_id\n1,501\n2,502\n").unwrap();
    std::fs::write(mappings_dir.join("id_mapping_records.csv"), "old_vendor_id,new_record_id,new_assignment_id\n10,610,710\n11,611,711\n").unwrap();
    let s3 = shared::config::AwsClients::for_endpoint("http://127.0.0.1:1").await.s3;
    let mappings = LoaderMappings::load(&s3, mappings_dir.to_str().unwrap()).await.unwrap();
    let loader = tests::loader(&legacy, &target, mappings, &reports_dir, 1000);
    assert_eq!(loader.mappings.absent, vec!["id_mapping_users.csv", "id_mapping_coi_profiles.csv"]);
    let before = target.table_counts().await;
    let response = loader.run(&LoadRequest { step: "1".into(), dry_run: true, ..Default::default() }).await.unwrap();
    assert!(response.done);
    assert_eq!(response.step, "validate");
    assert_eq!(response.counts["certificates"], 4);
    assert_eq!(response.counts["certificates_to_skip"], 1);
    assert_eq!(target.table_counts().await, before, "validate wrote to the target");
    let text = std::fs::read_to_string(reports_dir.join("migration_report.txt")).unwrap();
    assert!(text.contains("Ready to migrate: 3 of 4 certificates"), "{text}");
    assert!(text.contains("Mapping file not found in MAPPINGS_DIR: id_mapping_users.csv"), "{text}");
    assert!(text.contains("Total file size: unknown until the file move has run"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(reports_dir.join("migration_report.json")).unwrap()).unwrap();
    assert_eq!(json["status_rows"]["orphan_rows"], 1);

    let unknown = loader.run(&LoadRequest { step: "teleport".into(), ..Default::default() }).await.unwrap_err();
    assert!(unknown.to_string().contains("unknown step \"teleport\""), "{unknown}");
    legacy.drop_database().await;
    target.drop_database().await;
}
