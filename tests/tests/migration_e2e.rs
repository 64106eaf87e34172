//! The record loader end to end on the generated sample: every step in order, the figures the
//! generator states, an identical rerun, and the phased COI profile link.

use shared::loader::runner::{LoadRequest, Loader, LoaderMappings, Step};
use shared::manifest::ManifestRecord;
use shared::message::{LegacyIds, SourceRef};
use shared::model::FileStatus;
use shared::sample::{ExpectedOutcome, SampleSpec, SampleSummary};
use tests::{MysqlFixture, PgFixture};

/// The manifest the file move would produce for this sample (stored, missing or rejected per
/// the generator's expectations), as `file_manifest.csv`.
fn manifest_csv(summary: &SampleSummary) -> Vec<u8> {
    let rows: Vec<ManifestRecord> = summary
        .expected
        .values()
        .map(|e| {
            let attachment_id = match SourceRef::parse_key(&e.source_key) {
                Some(SourceRef::Attachment(id)) => Some(id),
                _ => None,
            };
            let (status, hash, size) = match (&e.outcome, &e.account_id) {
                (ExpectedOutcome::Present { sha256_hex, size }, Some(_)) => (FileStatus::Moved, Some(sha256_hex.clone()), Some(*size)),
                (ExpectedOutcome::Missing, _) => (FileStatus::Missing, None, None),
                _ => (FileStatus::Rejected, None, None),
            };
            ManifestRecord {
                source_key: e.source_key.clone(),
                area: e.area.parse().ok(),
                account_id: e.account_id.clone(),
                s3_key: hash.as_ref().map(|h| format!("org_{}/{}/{h}.pdf", e.account_id.clone().unwrap_or_default(), e.area)),
                file_uid: hash.as_ref().map(|h| format!("{h}_20261125000000000000")),
                content_hash: hash,
                size,
                ids: LegacyIds { attachment_id, ..Default::default() },
                original_filename: "file.pdf".into(),
                status: Some(status),
                ..Default::default()
            }
        })
        .collect();
    let mut out = Vec::new();
    shared::manifest::write_csv(&rows, &mut out).unwrap();
    out
}

async fn dump(t: &PgFixture) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables
         WHERE table_schema IN ('public', 'dtx_migration') AND table_type = 'BASE TABLE' AND table_name <> 'step_run' ORDER BY 1",
    )
    .fetch_all(&t.pool)
    .await
    .unwrap();
    let mut out = String::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT (to_jsonb(t) - 'created_at')::text FROM {table} t ORDER BY 1"))
            .fetch_all(&t.pool)
            .await
            .unwrap();
        out.push_str(&format!("{table} ({})\n{}\n", rows.len(), rows.join("\n")));
    }
    out
}

async fn count(t: &PgFixture, sql: &str) -> u64 {
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&t.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    n as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_on_the_generated_sample_matches_its_expectations_and_reruns_identically() {
    let legacy = MysqlFixture::new().await;
    let target = PgFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, mappings, reports) = (dir.path().join("efsdata"), dir.path().join("mappings"), dir.path().join("reports"));
    for d in [&root, &mappings, &reports] {
        std::fs::create_dir_all(d).unwrap();
    }
    let spec = SampleSpec { large_file_bytes: 0, ..Default::default() };
    let summary = shared::sample::generate(&legacy.pool, &root, &mappings, &spec).await.unwrap();
    shared::sample::seed_target(&target.pool, &summary).await.unwrap();
    std::fs::write(reports.join("file_manifest.csv"), manifest_csv(&summary)).unwrap();
    let s3 = shared::config::AwsClients::for_endpoint("http://127.0.0.1:1").await.s3;
    let loader = |mappings: LoaderMappings| Loader {
        legacy: legacy.pool.clone(),
        target: target.pool.clone(),
        mappings,
        reports: shared::loader::output::ReportSink::new(reports.to_str().unwrap(), &s3),
        chunk_rows: 25,
        objects: None,
    };
    let l = loader(LoaderMappings::load(&s3, mappings.to_str().unwrap()).await.unwrap());
    for step in Step::ALL {
        let r = l.run(&LoadRequest { step: step.name().into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{}: {e}", step.name()));
        assert!(r.done, "{} not done", step.name());
    }

    let rec = &summary.records;
    // The sample is not trivial: every figure below compares real, non-zero work.
    assert!(rec.certificates.migrated > 50 && rec.certificates.skipped > 0, "{:?}", rec.certificates.migrated);
    assert!(rec.status_rows.evaluations_expected > 50 && rec.status_rows.orphan_rows > 0);
    assert!(rec.requirements_groups.groups_expected > 10 && rec.libraries.document_types_expected > 3);
    assert!(rec.certificates.manual_overrides_expected > 0);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_documenttype").await, rec.libraries.document_types_expected);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroup").await, rec.requirements_groups.groups_expected);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroupmember").await, rec.requirements_groups.members_expected);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_certificate").await, rec.certificates.migrated);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_manualoverride").await, rec.certificates.manual_overrides_expected);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_evaluation").await, rec.status_rows.evaluations_expected);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_evaluation WHERE status = 'pass'").await, rec.status_rows.evaluations_pass);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_evaluationcoverage").await, rec.status_rows.coverages_expected);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_evaluationdetail").await, rec.status_rows.for_migrated_certificates);
    for (status, n) in &rec.certificates.migrated_status {
        assert_eq!(count(&target, &format!("SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE status = '{status}'")).await, *n, "{status}");
    }
    // Decision #10: at most one current evaluation per group, always the group's own certificate's.
    assert_eq!(
        count(&target, "SELECT COUNT(*) FROM (SELECT requirements_group_id FROM docutrax_profiles_certificate WHERE current_evaluation_id IS NOT NULL GROUP BY 1 HAVING COUNT(*) > 1) g").await,
        0
    );
    assert_eq!(
        count(&target, "SELECT COUNT(*) FROM docutrax_profiles_certificate c JOIN docutrax_profiles_evaluation e ON e.id = c.current_evaluation_id WHERE e.certificate_id <> c.id").await,
        0
    );
    assert!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE current_evaluation_id IS NOT NULL").await > 0);
    // Files linked from the manifest, and a missing file leaves the fields empty.
    assert!(count(&target, "SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE file IS NOT NULL").await > 0);
    assert_eq!(count(&target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroup WHERE coi_risk_profile_id IS NOT NULL").await, 0, "no Area 6 mapping yet");
    let issues = std::fs::read_to_string(reports.join("migration_issues.csv")).unwrap();
    for expected in ["customer not mapped", "vendor not mapped", "certificate_status row without certificate", "unknown field_name", "zero date"] {
        assert!(issues.contains(expected), "no {expected:?} issue in:\n{issues}");
    }

    // Rerunning every step changes nothing.
    let snapshot = dump(&target).await;
    for step in Step::ALL {
        l.run(&LoadRequest { step: step.name().into(), ..Default::default() }).await.unwrap();
    }
    assert_eq!(dump(&target).await, snapshot, "a rerun changed the target");

    // Area 6 arrives: rerunning requirements-groups fills coi_risk_profile and nothing else.
    shared::sample::write_coi_profile_mapping(&mappings, &summary).unwrap();
    let l6 = loader(LoaderMappings::load(&s3, mappings.to_str().unwrap()).await.unwrap());
    l6.run(&LoadRequest { step: "requirements-groups".into(), ..Default::default() }).await.unwrap();
    assert!(count(&target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroup WHERE coi_risk_profile_id IS NOT NULL").await > 0);
    let after = dump(&target).await;
    let strip = |s: &str| -> String {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap_or(serde_json::Value::String(l.into()));
                if let Some(o) = v.as_object_mut() {
                    o.remove("coi_risk_profile_id");
                }
                v.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let issues_free = |s: &str| s.lines().filter(|l| !l.contains("\"reason\"")).collect::<Vec<_>>().join("\n");
    assert_eq!(issues_free(&strip(&after)), issues_free(&strip(&snapshot)), "phased linking changed more than coi_risk_profile_id");

    legacy.drop_database().await;
    target.drop_database().await;
}
