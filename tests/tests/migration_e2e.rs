//! The record loader end to end on the generated sample: every step in order, the figures the
//! generator states, an identical rerun, and the phased COI profile link.

use shared::loader::runner::{LoadRequest, Step};
use shared::sample::SampleSpec;
use tests::PgFixture;

async fn dump(t: &PgFixture) -> String {
    let mut out = String::new();
    for (schema, table) in t.tables().await {
        if table == "step_run" {
            continue;
        }
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT (to_jsonb(t) - 'created_at')::text FROM {schema}.{table} t ORDER BY 1"))
            .fetch_all(&t.pool)
            .await
            .unwrap();
        out.push_str(&format!("{schema}.{table} ({})\n{}\n", rows.len(), rows.join("\n")));
    }
    out
}

async fn count(t: &PgFixture, sql: &str) -> u64 {
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&t.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    n as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_on_the_generated_sample_matches_its_expectations_and_reruns_identically() {
    let sample = tests::generated_sample(&SampleSpec { large_file_bytes: 0, ..Default::default() }).await;
    let (target, summary) = (&sample.target, &sample.summary);
    let l = sample.loader(25).await;
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
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_documenttype").await, rec.libraries.document_types_expected);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroup").await, rec.requirements_groups.groups_expected);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroupmember").await, rec.requirements_groups.members_expected);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_certificate").await, rec.certificates.migrated);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_manualoverride").await, rec.certificates.manual_overrides_expected);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_evaluation").await, rec.status_rows.evaluations_expected);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_evaluation WHERE status = 'pass'").await, rec.status_rows.evaluations_pass);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_evaluationcoverage").await, rec.status_rows.coverages_expected);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_evaluationdetail").await, rec.status_rows.for_migrated_certificates);
    for (status, n) in &rec.certificates.migrated_status {
        assert_eq!(count(target, &format!("SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE status = '{status}'")).await, *n, "{status}");
    }
    // Decision #10: at most one current evaluation per group, always the group's own certificate's.
    assert_eq!(
        count(target, "SELECT COUNT(*) FROM (SELECT requirements_group_id FROM docutrax_profiles_certificate WHERE current_evaluation_id IS NOT NULL GROUP BY 1 HAVING COUNT(*) > 1) g").await,
        0
    );
    assert_eq!(
        count(target, "SELECT COUNT(*) FROM docutrax_profiles_certificate c JOIN docutrax_profiles_evaluation e ON e.id = c.current_evaluation_id WHERE e.certificate_id <> c.id").await,
        0
    );
    assert!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE current_evaluation_id IS NOT NULL").await > 0);
    // Files linked from the manifest, and a missing file leaves the fields empty.
    assert!(count(target, "SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE file IS NOT NULL").await > 0);
    assert_eq!(count(target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroup WHERE coi_risk_profile_id IS NOT NULL").await, 0, "no Area 6 mapping yet");
    let issues = std::fs::read_to_string(sample.reports.join("migration_issues.csv")).unwrap();
    for expected in ["customer not mapped", "vendor not mapped", "certificate_status row without certificate", "unknown field_name", "zero date"] {
        assert!(issues.contains(expected), "no {expected:?} issue in:\n{issues}");
    }

    // Rerunning every step changes nothing.
    let snapshot = dump(target).await;
    for step in Step::ALL {
        l.run(&LoadRequest { step: step.name().into(), ..Default::default() }).await.unwrap();
    }
    assert_eq!(dump(target).await, snapshot, "a rerun changed the target");

    // Area 6 arrives: rerunning requirements-groups fills coi_risk_profile and nothing else.
    shared::sample::write_coi_profile_mapping(&sample.mappings_dir, summary).unwrap();
    let l6 = sample.loader(25).await;
    l6.run(&LoadRequest { step: "requirements-groups".into(), ..Default::default() }).await.unwrap();
    assert!(count(target, "SELECT COUNT(*) FROM docutrax_hierarchy_requirementsgroup WHERE coi_risk_profile_id IS NOT NULL").await > 0);
    let after = dump(target).await;
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

    sample.drop_databases().await;
}
