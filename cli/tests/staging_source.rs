//! Issue 8 from the operator's side: the same `dtx-migrate move` reads the legacy files from a
//! staging bucket when given `SOURCE_URI` (or `--source-uri`) instead of `EFS_ROOT`, and a
//! source that is ambiguous or malformed is refused with a message that says why.

use serde_json::Value;
use shared::config::{AwsClients, Resources};
use shared::manifest::ManifestSummary;
use shared::ports::ManifestStore;
use std::path::Path;
use std::process::{Command, Output};

fn dtx(prefix: &str, legacy_url: &str, mappings: &Path, source: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dtx-migrate"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", tests::aws_endpoint())
        .env("DTX_LOCAL_PREFIX", prefix)
        .env("LEGACY_DATABASE_URL", legacy_url)
        .env("MAPPINGS_DIR", mappings)
        .env("RUST_LOG", "error")
        .env_remove("EFS_ROOT")
        .env_remove("SOURCE_URI");
    for (name, value) in source {
        command.env(name, value);
    }
    command.output().expect("run dtx-migrate")
}

fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_reads_a_staging_bucket_given_source_uri_and_refuses_an_ambiguous_source() {
    let legacy = tests::MysqlFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, mappings) = (dir.path().join("efsdata"), dir.path().join("mappings"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&mappings).unwrap();
    let prefix = tests::unique("src-");
    let root_env = [("EFS_ROOT", root.to_str().unwrap())];
    let small = ["--certificates", "24", "--documents", "12", "--filerepo-files", "6", "--customers", "4", "--large-file-bytes", "0"];
    stdout_of(&dtx(&prefix, &legacy.url, &mappings, &root_env, &[&["sample", "generate"], &small[..]].concat()));

    let clients = AwsClients::for_endpoint(&tests::aws_endpoint()).await;
    let bucket = tests::unique("staging-");
    clients.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    tests::sync_tree(&clients.s3, &root, &bucket, "efsdata/").await;
    let uri = format!("s3://{bucket}/efsdata/");

    // Both sources at once, or a malformed one: refused before anything is sent.
    let both = dtx(&prefix, &legacy.url, &mappings, &[root_env[0], ("SOURCE_URI", &uri)], &["move"]);
    assert!(!both.status.success());
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(stderr.contains("--efs-root") && stderr.contains("--source-uri"), "{stderr}");
    let malformed = dtx(&prefix, &legacy.url, &mappings, &[], &["move", "--source-uri", "/efsdata"]);
    assert!(!malformed.status.success());
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("expected s3://bucket/prefix"), "{}", String::from_utf8_lossy(&malformed.stderr));

    // The dry run and the move, from the bucket; nothing else changes for the operator.
    let dry: Value = serde_json::from_str(&stdout_of(&dtx(&prefix, &legacy.url, &mappings, &[("SOURCE_URI", &uri)], &["inventory", "--dry-run", "--json"]))).unwrap();
    let found = dry["report"]["total"]["found"].as_u64().expect("the dry run counts found files");
    assert!(found > 10, "{dry:#}");
    stdout_of(&dtx(&prefix, &legacy.url, &mappings, &[("SOURCE_URI", &uri)], &["move", "--pollers", "2"]));
    let rows = shared::wiring::manifest(&clients, &Resources::local(&prefix, &tests::aws_endpoint())).scan_all().await.unwrap();
    let summary = ManifestSummary::from_records(&rows);
    let count = |status: &str| summary.by_status.get(status).copied().unwrap_or(0);
    let missing = dry["report"]["total"]["missing"].as_u64().unwrap();
    assert!(missing > 0, "the sample has missing files: {dry:#}");
    assert_eq!(count("missing"), missing, "missing from the bucket, missing in the manifest: {summary:?}");
    assert_eq!(count("moved") + count("deduplicated"), found, "every file the dry run found is stored: {summary:?}");
    assert!(count("moved") > 10, "{summary:?}");
    legacy.drop_database().await;
}
