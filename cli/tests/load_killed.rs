//! A `dtx-migrate load` process killed with SIGKILL in the middle of a step, then run again,
//! ends with exactly what an uninterrupted run writes: the documents step killed twice at
//! different places, and every step of the migration killed once in turn. Ids drawn by a
//! killed transaction are skipped (sequences are not transactional), so rows are compared
//! without the ids they were given.

use shared::sample::SampleSpec;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tests::GeneratedSample;

const EARLIER_STEPS: [&str; 7] =
    ["document-types", "document-risk-profiles", "requirements-groups", "files", "certificates", "evaluations", "current-evaluations"];

fn load_documents(sample: &GeneratedSample) -> Command {
    load_step(sample, "documents")
}

/// `dtx-migrate load --step <step>`, one legacy row per chunk (one transaction each).
fn load_step(sample: &GeneratedSample, step: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dtx-migrate"));
    c.args(["load", "--step", step, "--chunk-rows", "1"])
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

/// How a step's run was interrupted.
#[derive(Debug, PartialEq, Eq)]
enum Interrupted {
    /// Killed after committing at least one chunk (its cursor is set).
    AfterChunks,
    /// Killed before committing anything: in its first transaction, or before it began.
    InFirstTransaction,
    /// The step ended before the kill could land.
    Finished,
}

/// Starts `step` and SIGKILLs it once a chunk is committed, or when it has run for 3/4 of
/// the time the uninterrupted run of the step took (`usual`), whichever comes first.
async fn kill_step(sample: &GeneratedSample, step: &str, usual: Duration) -> Interrupted {
    let mut child = load_step(sample, step).spawn().expect("start dtx-migrate");
    let started = Instant::now();
    loop {
        let row: Option<(String, bool)> =
            sqlx::query_as("SELECT status, cursor IS NOT NULL FROM dtx_migration.step_run WHERE step = $1 AND NOT dry_run")
                .bind(step)
                .fetch_optional(&sample.target.pool)
                .await
                .unwrap();
        let due = match row {
            Some((status, true)) if status == "running" => Some(Interrupted::AfterChunks),
            _ if started.elapsed() >= usual * 3 / 4 => Some(Interrupted::InFirstTransaction),
            _ => None,
        };
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{step} failed: {}", read_stderr(&mut child));
            return Interrupted::Finished;
        }
        if let Some(how) = due {
            let pid = i32::try_from(child.id()).unwrap();
            let killed = sigkill(pid) == 0 && !child.wait().unwrap().success();
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM dtx_migration.step_run WHERE step = $1 AND NOT dry_run")
                    .bind(step)
                    .fetch_optional(&sample.target.pool)
                    .await
                    .unwrap();
            return if killed && status.as_deref() != Some("done") { how } else { Interrupted::Finished };
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{step}: no progress");
    }
}

fn read_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut text).expect("read stderr");
    }
    text
}

/// Every table's rows without the columns that hold ids the run drew from sequences (`id`,
/// `*_id`, `new_id`) and without bookkeeping timestamps, with the times the load itself
/// stamped (after `loads_began`, e.g. `created`) shown as `load time`, sorted.
async fn tables_without_ids(sample: &GeneratedSample, loads_began: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for (schema, table) in sample.target.tables().await {
        let drop: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2
               AND ((data_type IN ('integer', 'bigint') AND (column_name = 'id' OR column_name LIKE '%\\_id' OR column_name = 'new_id'))
                    OR (table_schema = 'dtx_migration' AND data_type LIKE 'timestamp%'))",
        )
        .bind(&schema)
        .bind(&table)
        .fetch_all(&sample.target.pool)
        .await
        .unwrap();
        let stamped: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 AND data_type LIKE 'timestamp%'",
        )
        .bind(&schema)
        .bind(&table)
        .fetch_all(&sample.target.pool)
        .await
        .unwrap();
        let overrides: String = stamped
            .iter()
            .map(|c| format!(" || jsonb_build_object('{c}', CASE WHEN t.\"{c}\" >= $2::timestamptz THEN to_jsonb('load time'::text) ELSE to_jsonb(t.\"{c}\") END)"))
            .collect();
        let sql = format!("SELECT ((to_jsonb(t) - $1::text[]){overrides} - $1::text[])::text FROM \"{schema}\".\"{table}\" t ORDER BY 1");
        let mut rows: Vec<String> =
            sqlx::query_scalar(&sql).bind(&drop).bind(loads_began).fetch_all(&sample.target.pool).await.unwrap();
        rows.sort();
        out.insert(format!("{schema}.{table}"), rows);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_killed_in_the_middle_resumes_to_the_uninterrupted_result() {
    let spec = SampleSpec { large_file_bytes: 0, max_small_file_bytes: 8 * 1024, ..Default::default() };
    let (reference, killed) = (tests::generated_sample(&spec).await, tests::generated_sample(&spec).await);
    // Every step that writes; `verify` only reads (and needs the objects in S3, which this
    // sample has no bucket for: tests/tests/loader_verify.rs covers it).
    let steps: Vec<&str> =
        shared::loader::runner::Step::ALL.iter().map(|s| s.name()).filter(|name| *name != "verify").collect();

    let loads_began: String = sqlx::query_scalar("SELECT now()::text").fetch_one(&reference.target.pool).await.unwrap();
    let mut durations = std::collections::BTreeMap::new();
    for step in &steps {
        let started = Instant::now();
        let out = load_step(&reference, step).output().unwrap();
        assert!(out.status.success(), "{step}: {}", String::from_utf8_lossy(&out.stderr));
        durations.insert(*step, started.elapsed());
    }
    let mut interrupted = Vec::new();
    for step in &steps {
        let how = kill_step(&killed, step, durations[step]).await;
        // A step that finished before the kill landed is not run again (that would be a
        // rerun, whose counts are its own); the uninterrupted result is compared all the same.
        if how != Interrupted::Finished {
            let out = load_step(&killed, step).output().unwrap();
            assert!(out.status.success(), "{step} after the kill: {}", String::from_utf8_lossy(&out.stderr));
        }
        interrupted.push((*step, how));
    }
    println!("kills: {interrupted:?}");

    let (expected, actual) =
        (tables_without_ids(&reference, &loads_began).await, tables_without_ids(&killed, &loads_began).await);
    assert_eq!(expected.keys().collect::<Vec<_>>(), actual.keys().collect::<Vec<_>>());
    for (table, rows) in &expected {
        assert!(&actual[table] == rows, "{table} differs after kills {interrupted:?}:\nonly in the killed run: {:#?}\nonly in the reference: {:#?}",
            actual[table].iter().filter(|r| !rows.contains(r)).take(5).collect::<Vec<_>>(),
            rows.iter().filter(|r| !actual[table].contains(r)).take(5).collect::<Vec<_>>());
    }
    // The kills landed: the long data steps between chunks, nearly every step before it ended
    // (a step of a few milliseconds may still win the race now and then).
    let landed = interrupted.iter().filter(|(_, how)| *how != Interrupted::Finished).count();
    assert!(landed + 2 >= steps.len(), "only {landed} of {} steps were killed: {interrupted:?}", steps.len());
    for step in ["certificates", "evaluations", "documents", "doc-requirements", "fulfillments", "audit-history"] {
        let how = &interrupted.iter().find(|(s, _)| *s == step).unwrap().1;
        assert_eq!(*how, Interrupted::AfterChunks, "{step} was not killed between chunks");
    }
    reference.drop_databases().await;
    killed.drop_databases().await;
}
