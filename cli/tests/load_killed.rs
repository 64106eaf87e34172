//! A `dtx-migrate load` process killed with SIGKILL in the middle of the documents step (twice,
//! at different places), then run again, ends with exactly what an uninterrupted run writes:
//! the same documents, id map entries, issues and step counts (nothing duplicated, no counter
//! counted twice). Ids drawn by a killed transaction are skipped (sequences are not
//! transactional), so rows are compared by their legacy key, without their own id.

use shared::sample::SampleSpec;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tests::GeneratedSample;

const EARLIER_STEPS: [&str; 7] =
    ["document-types", "document-risk-profiles", "requirements-groups", "files", "certificates", "evaluations", "current-evaluations"];

fn load_documents(sample: &GeneratedSample) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dtx-migrate"));
    c.args(["load", "--step", "documents", "--chunk-rows", "1"])
        .env("LEGACY_DATABASE_URL", &sample.legacy.url)
        .env("TARGET_DATABASE_URL", &sample.target.url)
        .env("MAPPINGS_DIR", &sample.mappings_dir)
        .env("REPORT_DIR", &sample.reports)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// `documents_read` and status of the documents step as committed so far.
async fn progress(sample: &GeneratedSample) -> Option<(String, u64)> {
    let row: Option<(String, serde_json::Value)> =
        sqlx::query_as("SELECT status, counts FROM dtx_migration.step_run WHERE step = 'documents' AND NOT dry_run")
            .fetch_optional(&sample.target.pool)
            .await
            .unwrap();
    row.map(|(status, counts)| (status, counts["documents_read"].as_u64().unwrap_or(0)))
}

/// Starts the step and SIGKILLs the process once at least `after` documents are committed;
/// returns how many were committed when it died.
async fn kill_after(sample: &GeneratedSample, after: u64) -> u64 {
    let mut child: Child = load_documents(sample).spawn().expect("start dtx-migrate");
    let started = Instant::now();
    loop {
        if let Some((_, read)) = progress(sample).await {
            if read >= after {
                break;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("dtx-migrate ended ({status}) before {after} documents were committed");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress to {after} documents");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(sigkill(pid), 0, "kill -9 {pid}");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process was killed, not finished");
    let (state, read) = progress(sample).await.unwrap();
    assert_eq!(state, "running", "killed before the step finished");
    read
}

/// SIGKILL through the `kill` command (the workspace forbids unsafe code, so no libc::kill).
fn sigkill(pid: i32) -> i32 {
    Command::new("kill").args(["-9", &pid.to_string()]).status().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1)
}

/// What the documents step wrote, keyed by legacy id and without the rows' own ids.
async fn documents_result(sample: &GeneratedSample) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT m.legacy_key || ' ' || m.created || ' ' || (to_jsonb(d) - 'id')::text
         FROM dtx_migration.id_map m JOIN docutrax_profiles_document d ON d.id = m.new_id WHERE m.entity = 'document'",
        "SELECT 'unmapped document ' || (to_jsonb(d) - 'id')::text FROM docutrax_profiles_document d
         WHERE NOT EXISTS (SELECT 1 FROM dtx_migration.id_map m WHERE m.entity = 'document' AND m.new_id = d.id)",
        "SELECT 'issue ' || jsonb_build_array(entity, legacy_key, reason, detail)::text FROM dtx_migration.issue WHERE step = 'documents'",
        "SELECT 'step ' || status || ' ' || counts::text FROM dtx_migration.step_run WHERE step = 'documents'",
    ] {
        rows.extend(sqlx::query_scalar::<_, String>(sql).fetch_all(&sample.target.pool).await.unwrap());
    }
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_killed_in_the_middle_of_documents_resumes_to_the_uninterrupted_result() {
    let spec = SampleSpec { large_file_bytes: 0, max_small_file_bytes: 8 * 1024, ..Default::default() };
    let (reference, killed) = (tests::generated_sample(&spec).await, tests::generated_sample(&spec).await);
    for sample in [&reference, &killed] {
        let loader = sample.loader(25).await;
        for step in EARLIER_STEPS {
            let request = shared::loader::runner::LoadRequest { step: step.into(), ..Default::default() };
            assert!(loader.run(&request).await.unwrap_or_else(|e| panic!("{step}: {e}")).done, "{step}");
        }
    }
    let total = reference.summary.records.documents.total;
    assert!(total >= 30, "the sample has too few documents ({total}) to kill a run in the middle");

    let out = load_documents(&reference).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = documents_result(&reference).await;
    assert!(expected.iter().any(|r| r.starts_with("step done ")), "{expected:#?}");

    let first = kill_after(&killed, 5).await;
    let second = kill_after(&killed, first + 10).await;
    assert!(first < second && second < total, "killed at {first} and {second} of {total} documents");
    let out = load_documents(&killed).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(documents_result(&killed).await, expected);

    reference.drop_databases().await;
    killed.drop_databases().await;
}
