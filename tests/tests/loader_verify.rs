//! Step 14 `verify` on real MariaDB + PostgreSQL + moto S3: after the earlier steps ran on crafted
//! legacy rows (migrated rows, skipped rows, orphan references, shared and distinct files),
//! every check passes and nothing is written but the report; then each property is broken one
//! at a time and exactly that check fails, naming the offending key.

use shared::adapters::s3::S3Objects;
use shared::hashing::{sha256, to_b64, to_hex};
use shared::loader::runner::{LoadRequest, Loader, LoaderMappings, Step};
use shared::loader::verify::{self, Verification, CHECK_COUNTS, CHECK_FILES, CHECK_FOREIGN_KEYS, CHECK_REFERENCES, NO_BUCKET};
use shared::manifest::ManifestRecord;
use shared::mappings::RecordMapping;
use shared::message::LegacyIds;
use shared::model::FileStatus;
use shared::ports::ObjectStore;
use std::collections::HashMap;
use std::sync::Arc;
use tests::{AwsFixture, MysqlFixture, PgFixture};

/// File contents: A and B have the same length, so swapping one for the other keeps the size.
const A: &[u8] = b"certificate file A";
const B: &[u8] = b"certificate file B";
const C: &[u8] = b"a document file";
/// The same length as B, other bytes.
const B_TAMPERED: &[u8] = b"certificate file X";

fn key_of(area: &str, bytes: &[u8]) -> String {
    format!("org_501/{area}/{}.pdf", to_hex(&sha256(bytes)))
}

async fn legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    for sql in [
        "INSERT INTO customer (id, name) VALUES (1, 'Acme'), (2, 'Unmapped Co')",
        // 10 has a record mapping; 12 has none.
        "INSERT INTO vendor (id, customer_id, requirements_id, document_set_id, name) VALUES (10, 1, 5, 7, 'Roofer'), (12, 1, NULL, NULL, 'Painter')",
        // 2 has no name (skipped).
        "INSERT INTO document_library (id, customer_id, name, create_time) VALUES (1, 1, 'W-9', '2019-01-01'), (2, 1, '   ', '2019-01-01')",
        // 8's customer has no account (skipped).
        "INSERT INTO document_set (id, customer_id, name, create_time) VALUES (7, 1, 'Set A', '2019-01-01'), (8, 2, 'Set B', '2019-01-01')",
        // 2's customer has no account (skipped).
        "INSERT INTO document (id, customer_id, vendor_id, attachment_id, document_library_id, name, document_status, create_time) VALUES
            (1, 1, 10, 200, 1, 'W-9 2019', '0', '2019-02-01 00:00:00'), (2, 2, 10, NULL, 1, 'W-9 old', '0', '2019-02-01 00:00:00')",
        // 2 names a document that does not exist (logged by the steps that read it).
        "INSERT INTO document_requirements (id, document_set_id, document_id) VALUES (1, 7, 1), (2, 7, 555)",
        "INSERT INTO document_status (id, vendor_id, customer_id, document_id, document_library_id, document_status, create_time) VALUES
            (1, 10, 1, 1, 1, 'APPROVED', '2019-03-01 00:00:00')",
        // 1, 2, 4 migrate (4 shares 1's file); 3's customer has no account; 5's vendor no record.
        "INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, requirements_id, document_set_id, create_time, InsName, certificate_status) VALUES
            (1, 1, 10, 100, 5, 7, '2019-01-01 00:00:00', 'Roofer Inc', 'FINISHED'),
            (2, 1, 10, 101, NULL, NULL, '2019-01-02 00:00:00', 'Roofer Inc', 'PENDING'),
            (3, 2, 10, NULL, NULL, NULL, '2019-01-03 00:00:00', 'Roofer Inc', 'FINISHED'),
            (4, 1, 10, 102, NULL, NULL, '2019-01-04 00:00:00', 'Roofer Inc', 'PENDING'),
            (5, 1, 12, NULL, NULL, NULL, '2019-01-05 00:00:00', 'Painter LLC', 'PENDING')",
        // 1, 2 migrate; 3 belongs to a skipped certificate; 4 and 5 are orphans.
        "INSERT INTO certificate_status (id, certificate_id, status_code, field_name, minimum, actual, create_time) VALUES
            (1, 1, 'COMPLIANT', 'GLPolExpDate', '2019-01-01', '2020-01-01', '2019-01-01 10:00:00'),
            (2, 1, 'COMPLIANT', 'AutoPolExpDate', '2019-01-01', '2020-01-01', '2019-01-01 10:00:00'),
            (3, 3, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-03 10:00:00'),
            (4, 999, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-03 10:00:00'),
            (5, NULL, 'COMPLIANT', 'GLPolExpDate', NULL, NULL, '2019-01-03 10:00:00')",
        "INSERT INTO attachment (id, name, certificate_id, document_id) VALUES
            (100, 'a.pdf', 1, NULL), (101, 'b.pdf', 2, NULL), (102, 'a2.pdf', 4, NULL), (200, 'w9.pdf', NULL, 1)",
        "INSERT INTO repo_file (id, repo_filepath, certificate_id, document_id, attachment_id, customer_id) VALUES
            (1, 'x/a.pdf', 1, NULL, 100, 1), (2, 'x/w9.pdf', NULL, 1, 200, 1)",
    ] {
        sqlx::query(sql).execute(&db.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    db
}

/// The file move's manifest for the attachments: 100 and 102 share one object.
fn manifest_csv() -> Vec<u8> {
    let row = |attachment: u64, area: &str, bytes: &[u8], status: FileStatus, dedup_of: Option<&str>| ManifestRecord {
        source_key: format!("attachment:{attachment}"),
        area: area.parse().ok(),
        account_id: Some("501".into()),
        s3_key: Some(key_of(area, bytes)),
        content_hash: Some(to_hex(&sha256(bytes))),
        file_uid: Some(format!("{}_20240101000000000000", to_hex(&sha256(bytes)))),
        size: Some(bytes.len() as u64),
        ids: LegacyIds { attachment_id: Some(attachment), ..Default::default() },
        original_filename: format!("{attachment}.pdf"),
        status: Some(status),
        dedup_of: dedup_of.map(String::from),
        ..Default::default()
    };
    let rows = vec![
        row(100, "certificates", A, FileStatus::Moved, None),
        row(101, "certificates", B, FileStatus::Moved, None),
        row(102, "certificates", A, FileStatus::Deduplicated, Some("attachment:100")),
        row(200, "documents", C, FileStatus::Moved, None),
    ];
    let mut out = Vec::new();
    shared::manifest::write_csv(&rows, &mut out).unwrap();
    out
}

async fn put(objects: &S3Objects, key: &str, bytes: &[u8]) {
    let digest = sha256(bytes);
    objects.put_object(key, bytes.to_vec(), &to_b64(&digest), &[("sha256".into(), to_hex(&digest))]).await.unwrap();
}

struct Setup {
    legacy: MysqlFixture,
    target: PgFixture,
    aws: AwsFixture,
    objects: S3Objects,
    reports: tempfile::TempDir,
}

impl Setup {
    /// Crafted legacy rows, the target's stand-ins, the stored files, then every writing step.
    async fn new() -> Self {
        let legacy = legacy().await;
        let target = PgFixture::new().await;
        for sql in [
            "INSERT INTO docutrax_accounts_account (id, name) VALUES (501, 'Acme')",
            "INSERT INTO docutrax_records_record (id, account_id, name) VALUES (610, 501, 'Roofer')",
            "INSERT INTO docutrax_records_assignment (id, record_id, account_id) VALUES (710, 610, 501)",
        ] {
            sqlx::query(sql).execute(&target.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let aws = AwsFixture::new(3, 30).await;
        let objects = S3Objects::new(aws.clients.s3.clone(), aws.resources.bucket.clone());
        for (area, bytes) in [("certificates", A), ("certificates", B), ("documents", C)] {
            put(&objects, &key_of(area, bytes), bytes).await;
        }
        let reports = tempfile::tempdir().unwrap();
        std::fs::write(reports.path().join("file_manifest.csv"), manifest_csv()).unwrap();
        let setup = Self { legacy, target, aws, objects, reports };
        let l = setup.loader(true);
        for step in Step::ALL.into_iter().filter(|s| !matches!(s, Step::Validate | Step::ExportMappings | Step::Verify)) {
            let r = l.run(&LoadRequest { step: step.name().into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{}: {e}", step.name()));
            assert!(r.done, "{} not done", step.name());
        }
        setup
    }

    fn loader(&self, with_bucket: bool) -> Loader {
        let mappings = LoaderMappings {
            accounts: HashMap::from([(1, "501".into())]),
            records: HashMap::from([(10, RecordMapping { record_id: 610, assignment_id: 710 })]),
            ..Default::default()
        };
        let mut l = tests::loader(&self.legacy, &self.target, mappings, self.reports.path(), 2);
        if with_bucket {
            l.objects = Some(Arc::new(self.objects.clone()));
        }
        l
    }

    async fn verify(&self) -> Verification {
        verify::verify(&self.loader(true)).await.expect("verify runs")
    }

    async fn pg(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(&self.target.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs `sql` with the foreign key triggers off (superuser), to store what the constraints forbid.
    async fn pg_unchecked(&self, sql: &str) {
        let mut tx = self.target.pool.begin().await.unwrap();
        sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
        sqlx::query(sql).execute(&mut *tx).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        tx.commit().await.unwrap();
    }

    async fn new_id(&self, entity: &str, key: &str) -> i64 {
        sqlx::query_scalar("SELECT new_id FROM dtx_migration.id_map WHERE entity = $1 AND legacy_key = $2")
            .bind(entity)
            .bind(key)
            .fetch_one(&self.target.pool)
            .await
            .unwrap_or_else(|e| panic!("id map {entity} {key}: {e}"))
    }

    async fn delete_object(&self, key: &str) {
        self.aws.clients.s3.delete_object().bucket(&self.aws.resources.bucket).key(key).send().await.unwrap();
    }

    async fn drop(self) {
        self.legacy.drop_database().await;
        self.target.drop_database().await;
    }
}

/// `name` failed and every other check passed.
fn only_failing<'a>(v: &'a Verification, name: &str) -> &'a verify::Check {
    let report = v.render_text();
    for c in &v.checks {
        assert_eq!(c.passed, c.name != name, "check {}:\n{report}", c.name);
    }
    assert_eq!(v.counts()["checks_failed"], 1, "{report}");
    v.check(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_load_passes_every_check_reads_only_and_writes_the_report() {
    let s = Setup::new().await;
    let before = s.target.dump(&[]).await;
    let l = s.loader(true);
    let r = l.run(&LoadRequest { step: "verify".into(), ..Default::default() }).await.unwrap();
    assert!(r.done && r.cursor.is_none());
    let report = std::fs::read_to_string(s.reports.path().join(verify::REPORT_FILE)).unwrap();
    let migration_report = s.reports.path().join(shared::loader::export::REPORT_FILE);
    assert_eq!(r.outputs, vec![s.reports.path().join(verify::REPORT_FILE).display().to_string(), migration_report.display().to_string()]);
    // migration_report.txt is written again with the verification in it (step 14 follows the export).
    let summary = std::fs::read_to_string(&migration_report).unwrap();
    assert!(summary.contains("Verification (step 14, verification_report.txt):\n  === DTX 1.0 Certificates & Documents Migration - Verification ===\n  Result: PASSED (4 checks)"), "{summary}");
    assert_eq!((r.counts["checks"], r.counts["checks_failed"]), (4, 0), "{report}");
    assert!(report.contains("Result: PASSED (4 checks)"), "{report}");
    for name in [CHECK_COUNTS, CHECK_REFERENCES, CHECK_FOREIGN_KEYS, CHECK_FILES] {
        assert_eq!(r.counts[&format!("{name}_failed")], 0, "{name}");
        assert_eq!(r.counts[&format!("{name}_offending")], 0, "{name}");
        assert!(report.contains(&format!("[PASS] {name}")), "{report}");
    }
    // legacy = migrated + skipped, per entity, as crafted.
    for (entity, legacy, migrated, skipped) in [
        ("certificate", 5, 3, 2),
        ("certificate_status", 5, 2, 3),
        ("document", 2, 1, 1),
        ("document_library", 2, 1, 1),
        ("document_set", 2, 1, 1),
        ("requirements_group", 3, 2, 1),
    ] {
        let got = ["legacy", "migrated", "skipped", "unexplained"].map(|w| r.counts[&format!("{entity}_{w}")]);
        assert_eq!(got, [legacy, migrated, skipped, 0], "{entity}\n{report}");
    }
    assert!(report.contains("certificate: 5 legacy = 3 migrated + 2 skipped with a logged reason"), "{report}");
    // certificate_status 4 rows (the NULL one references nothing), attachment 3, repo_file 1,
    // then the documents' 1 + 1 + 2 + 1.
    assert_eq!(r.counts["references_checked"], 4 + 3 + 1 + 1 + 1 + 2 + 1, "{report}");
    for line in [
        "certificate_status.certificate_id: 4 rows: 2 in the id map, 1 to a row skipped with a logged reason, 1 logged as orphans, 0 unexplained",
        "document_requirements.document_id: 2 rows: 1 in the id map, 0 to a row skipped with a logged reason, 1 logged as orphans, 0 unexplained",
    ] {
        assert!(report.contains(line), "{line}\n{report}");
    }
    // Four file fields (certificates 1, 2, 4 and document 1), three distinct objects.
    assert_eq!(r.counts["files_checked"], 4, "{report}");
    assert!(report.contains("3 distinct objects looked up"), "{report}");
    // Every id map entry was looked at.
    let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dtx_migration.id_map").fetch_one(&s.target.pool).await.unwrap();
    assert_eq!(r.counts["foreign_keys_checked"], entries as u64);
    assert_eq!(s.target.dump(&[]).await, before, "verify wrote to the target");
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_row_neither_migrated_nor_skipped_fails_counts() {
    let s = Setup::new().await;
    // Certificate 2 as if the step had never written it: row, id map entry, audit snapshot.
    let id = s.new_id("certificate", "2").await;
    s.pg(&format!(
        "DELETE FROM docutrax_profiles_audithistory WHERE content_type = 'certificate' AND object_id = {id};
         DELETE FROM dtx_migration.id_map WHERE entity = 'audit_history' AND legacy_key = 'certificate:{id}';
         DELETE FROM docutrax_profiles_certificate WHERE id = {id};
         DELETE FROM dtx_migration.id_map WHERE entity = 'certificate' AND legacy_key = '2'"
    ))
    .await;
    // The attachment naming certificate 2 now names an unmapped certificate too: drop it, so
    // that only the count is broken.
    sqlx::query("DELETE FROM attachment WHERE id = 101").execute(&s.legacy.pool).await.unwrap();
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_COUNTS);
    assert_eq!(c.offenders, vec!["certificate 2: neither migrated nor skipped with a logged reason".to_string()]);
    assert_eq!(c.offending, 1);
    assert_eq!((v.figures["certificate_migrated"], v.figures["certificate_unexplained"]), (2, 1));
    let r = s.loader(true).run(&LoadRequest { step: "verify".into(), ..Default::default() }).await.unwrap();
    assert!(r.done, "a failed check is an answer, not an error");
    assert_eq!((r.counts["checks_failed"], r.counts["counts_failed"], r.counts["counts_offending"]), (1, 1, 1));
    let report = std::fs::read_to_string(s.reports.path().join(verify::REPORT_FILE)).unwrap();
    assert!(report.contains("Result: FAILED (1 of 4 checks failed: counts)") && report.contains("[FAIL] counts"), "{report}");
    assert!(report.contains("    certificate 2: neither migrated nor skipped with a logged reason"), "{report}");
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_row_whose_issue_is_gone_fails_counts() {
    let s = Setup::new().await;
    s.pg("DELETE FROM dtx_migration.issue WHERE entity = 'certificate' AND legacy_key = '5' AND reason = 'vendor not mapped'").await;
    s.pg("DELETE FROM dtx_migration.issue WHERE entity = 'document_set' AND legacy_key = '8'").await;
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_COUNTS);
    assert_eq!(
        c.offenders,
        vec![
            "certificate 5: neither migrated nor skipped with a logged reason".to_string(),
            "document_set 8: neither migrated nor skipped with a logged reason".to_string()
        ]
    );
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_referenced_ids_fail_references() {
    let s = Setup::new().await;
    // 777 and 888 exist nowhere, and no step logged these rows; certificate 3 exists but its
    // skip issue is for certificate 3 only, so a repo_file naming it is explained.
    for sql in [
        "INSERT INTO attachment (id, name, certificate_id) VALUES (103, 'c.pdf', 777)",
        "INSERT INTO repo_file (id, repo_filepath, certificate_id, document_id) VALUES (3, 'x/d.pdf', 3, 888)",
    ] {
        sqlx::query(sql).execute(&s.legacy.pool).await.unwrap();
    }
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_REFERENCES);
    assert_eq!(
        c.offenders,
        vec![
            "attachment 103: certificate_id 777: no legacy certificate 777, and no issue logs this row".to_string(),
            "repo_file 3: document_id 888: no legacy document 888, and no issue logs this row".to_string()
        ]
    );
    // A status row's orphan issue explains it; without the issue the same row is named.
    s.pg("DELETE FROM dtx_migration.issue WHERE entity = 'certificate_status' AND legacy_key = '4'").await;
    let v = s.verify().await;
    let c = v.check(CHECK_REFERENCES).unwrap();
    let orphan = "certificate_status 4: certificate_id 999: no legacy certificate 999, and no issue logs this row".to_string();
    assert!(c.offenders.contains(&orphan), "{:?}", c.offenders);
    assert!(v.check(CHECK_COUNTS).unwrap().offenders.contains(&"certificate_status 4: neither migrated nor skipped with a logged reason".to_string()));
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_field_naming_a_missing_object_fails_files() {
    let s = Setup::new().await;
    let key = key_of("certificates", B);
    s.delete_object(&key).await;
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_FILES);
    assert_eq!(c.offenders, vec![format!("{key}: referenced by 1 rows but not in the bucket")]);

    // A file field the file move never stored is named without a bucket lookup.
    let id = s.new_id("document", "1").await;
    s.pg(&format!("UPDATE docutrax_profiles_document SET file = 'org_501/documents/elsewhere.pdf' WHERE id = {id}")).await;
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_FILES);
    assert_eq!(c.offending, 2, "{:?}", c.offenders);
    assert!(
        c.offenders.contains(&format!(
            "document 1 (docutrax_profiles_document {id}): file org_501/documents/elsewhere.pdf is no stored object of the imported file manifest"
        )),
        "{:?}",
        c.offenders
    );
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_content_differs_from_content_hash_fails_files() {
    let s = Setup::new().await;
    // Other bytes of the same size under the key, stored with their own (correct) checksum.
    let key = key_of("certificates", B);
    s.delete_object(&key).await;
    put(&s.objects, &key, B_TAMPERED).await;
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_FILES);
    let id = s.new_id("certificate", "2").await;
    assert_eq!(c.offending, 1, "{:?}", c.offenders);
    let offender = &c.offenders[0];
    assert!(offender.starts_with(&format!("certificate 2 (docutrax_profiles_certificate {id}): ")), "{offender}");
    assert!(offender.contains(&key) && offender.contains(&to_hex(&sha256(B))), "{offender}");
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_file_bucket_the_files_check_fails() {
    let s = Setup::new().await;
    let v = verify::verify(&s.loader(false)).await.unwrap();
    let c = only_failing(&v, CHECK_FILES);
    assert_eq!(c.failure.as_deref(), Some(NO_BUCKET));
    assert!(v.render_text().contains(&format!("  failed: {NO_BUCKET}")));
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_links_between_the_loaders_rows_fail_foreign_keys() {
    let s = Setup::new().await;

    // A foreign key naming no row (stored with the constraint triggers off).
    let member = s.new_id("requirements_group_member", "10").await;
    s.pg_unchecked(&format!("UPDATE docutrax_hierarchy_requirementsgroupmember SET assignment_id = 987654 WHERE id = {member}")).await;
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_FOREIGN_KEYS);
    assert_eq!(
        c.offenders,
        vec![format!(
            "docutrax_hierarchy_requirementsgroupmember {member} (requirements_group_member 10): assignment_id 987654 not in docutrax_records_assignment"
        )]
    );
    s.pg_unchecked(&format!("UPDATE docutrax_hierarchy_requirementsgroupmember SET assignment_id = 710 WHERE id = {member}")).await;
    assert!(s.verify().await.failed().is_empty());

    // An id map entry naming no row.
    s.pg("UPDATE dtx_migration.id_map SET new_id = 999999 WHERE entity = 'document_type' AND legacy_key = 'w-9'").await;
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_FOREIGN_KEYS);
    assert_eq!(c.offenders, vec!["id map document_type w-9 -> docutrax_profiles_documenttype 999999: no such row".to_string()]);
    let w9: i64 = sqlx::query_scalar("SELECT id FROM docutrax_profiles_documenttype WHERE name = 'W-9'").fetch_one(&s.target.pool).await.unwrap();
    s.pg(&format!("UPDATE dtx_migration.id_map SET new_id = {w9} WHERE entity = 'document_type' AND legacy_key = 'w-9'")).await;

    // A valid foreign key to the wrong row: certificate 1's evaluation moved to certificate 4.
    let (evaluation, c1, c4) = (s.new_id("evaluation", "1").await, s.new_id("certificate", "1").await, s.new_id("certificate", "4").await);
    s.pg(&format!("UPDATE docutrax_profiles_evaluation SET certificate_id = {c4} WHERE id = {evaluation}")).await;
    let v = s.verify().await;
    let c = only_failing(&v, CHECK_FOREIGN_KEYS);
    assert!(
        c.offenders.contains(&format!("evaluation 1 (row {evaluation}): certificate_id {c4}, the id map says certificate {c1}")),
        "{:?}",
        c.offenders
    );
    assert!(
        c.offenders.contains(&format!("certificate 1 (row {c1}): current_evaluation_id {evaluation} belongs to certificate {c4}")),
        "{:?}",
        c.offenders
    );
    s.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_bookkeeping_cannot_be_verified() {
    let legacy = legacy().await;
    let target = PgFixture::new().await;
    sqlx::query("DROP SCHEMA dtx_migration CASCADE").execute(&target.pool).await.unwrap();
    let reports = tempfile::tempdir().unwrap();
    let l = tests::loader(&legacy, &target, LoaderMappings::default(), reports.path(), 2);
    let err = verify::run(&l, false).await.unwrap_err().to_string();
    assert!(err.contains("no dtx_migration bookkeeping schema"), "{err}");
    assert!(!reports.path().join(verify::REPORT_FILE).exists());
    legacy.drop_database().await;
    target.drop_database().await;
}

/// The file move's manifest for the generated sample (as migration_e2e builds it), and the
/// stored files uploaded to the bucket as the worker stores them.
async fn sample_manifest(summary: &shared::sample::SampleSummary, root: &std::path::Path, objects: &S3Objects) -> Vec<u8> {
    let mut rows: Vec<ManifestRecord> = Vec::new();
    for e in summary.expected.values() {
        let row = tests::sample_manifest_record(e);
        if let (Some(key), Some(path)) = (&row.s3_key, &e.relative_path) {
            let bytes = std::fs::read(root.join(path)).unwrap();
            let digest = sha256(&bytes);
            // Duplicates share a key: the first upload stores it, the others find it there.
            objects.put_object(key, bytes, &to_b64(&digest), &[("sha256".into(), to_hex(&digest))]).await.unwrap();
        }
        rows.push(row);
    }
    let mut out = Vec::new();
    shared::manifest::write_csv(&rows, &mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_on_the_generated_sample_after_every_step() {
    let legacy = MysqlFixture::new().await;
    let target = PgFixture::new().await;
    let aws = AwsFixture::new(3, 30).await;
    let objects = S3Objects::new(aws.clients.s3.clone(), aws.resources.bucket.clone());
    let dir = tempfile::tempdir().unwrap();
    let (root, mappings, reports) = (dir.path().join("efsdata"), dir.path().join("mappings"), dir.path().join("reports"));
    for d in [&root, &mappings, &reports] {
        std::fs::create_dir_all(d).unwrap();
    }
    let spec = shared::sample::SampleSpec { large_file_bytes: 0, ..Default::default() };
    let summary = shared::sample::generate(&legacy.pool, &root, &mappings, &spec).await.unwrap();
    shared::sample::seed_target(&target.pool, &summary).await.unwrap();
    std::fs::write(reports.join("file_manifest.csv"), sample_manifest(&summary, &root, &objects).await).unwrap();
    let loaded = LoaderMappings::load(&aws.clients.s3, mappings.to_str().unwrap()).await.unwrap();
    let mut l = tests::loader(&legacy, &target, loaded, &reports, 25);
    l.objects = Some(Arc::new(objects));
    for step in Step::ALL {
        let r = l.run(&LoadRequest { step: step.name().into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{}: {e}", step.name()));
        assert!(r.done, "{}", step.name());
    }
    let report = std::fs::read_to_string(reports.join(verify::REPORT_FILE)).unwrap();
    assert!(report.starts_with("=== DTX 1.0 Certificates & Documents Migration - Verification ===\nResult: PASSED (4 checks)"), "{report}");
    let v = verify::verify(&l).await.unwrap();
    // The sample has skipped rows of every kind and files to check: the pass is not vacuous.
    for entity in ["certificate", "certificate_status", "document", "document_library", "document_set", "requirements_group"] {
        let f = |w: &str| v.figures[&format!("{entity}_{w}")];
        assert!(f("migrated") > 0 && f("skipped") > 0, "{entity}\n{report}");
        assert_eq!(f("legacy"), f("migrated") + f("skipped"), "{entity}");
    }
    assert!(v.check(CHECK_FILES).unwrap().checked > 50, "{report}");
    legacy.drop_database().await;
    target.drop_database().await;
}
