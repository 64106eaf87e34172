//! The operator's runbook for the file move, through the `dtx-migrate` binary against the local
//! stack (moto + MariaDB): move, `status` matching the manifest exactly, `dlq list` that consumes
//! nothing, `dlq redrive --reason` that moves exactly the messages of that reason, and `rerun
//! --status missing` after files are restored, with no message lost or duplicated on the way.

use serde_json::Value;
use shared::adapters::dlq::DeadLetter;
use shared::config::{AwsClients, Resources};
use shared::manifest::{ManifestRecord, ManifestSummary};
use shared::model::FileStatus;
use shared::ports::ManifestStore;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Stack {
    prefix: String,
    endpoint: String,
    legacy: tests::MysqlFixture,
    root: PathBuf,
    mappings: PathBuf,
    _dir: tempfile::TempDir,
}

impl Stack {
    fn dtx(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_dtx-migrate"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("DTX_LOCAL_PREFIX", &self.prefix)
            .env("LEGACY_DATABASE_URL", &self.legacy.url)
            .env("EFS_ROOT", &self.root)
            .env("MAPPINGS_DIR", &self.mappings)
            .env("RUST_LOG", "error")
            .output()
            .expect("run dtx-migrate");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "dtx-migrate {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(&stdout).unwrap_or(Value::String(stdout))
    }

    async fn manifest(&self) -> BTreeMap<String, ManifestRecord> {
        let clients = AwsClients::for_endpoint(&self.endpoint).await;
        let rows = shared::wiring::manifest(&clients, &Resources::local(&self.prefix, &self.endpoint)).scan_all().await.unwrap();
        rows.into_iter().map(|r| (r.source_key.clone(), r)).collect()
    }

    /// The DLQ's distinct letters, and how many copies of them it also holds. At-least-once
    /// delivery may store a letter twice (a retried forward); `dlq list` marks each copy, and
    /// this checks that a copy really is one before leaving it out.
    fn dead_letters_and_copies(&self) -> (Vec<DeadLetter>, usize) {
        let all: Vec<DeadLetter> = serde_json::from_value(self.dtx(&["dlq", "list", "--json"])).expect("dlq list --json");
        let copies: Vec<&DeadLetter> = all.iter().filter(|l| l.duplicate_of.is_some()).collect();
        for copy in &copies {
            let original = all.iter().find(|l| Some(&l.message_id) == copy.duplicate_of.as_ref()).expect("a copy's original is listed");
            assert_eq!((&original.reason, &original.source_key, &original.legacy_path), (&copy.reason, &copy.source_key, &copy.legacy_path));
        }
        let n = copies.len();
        (all.into_iter().filter(|l| l.duplicate_of.is_none()).collect(), n)
    }

    fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead_letters_and_copies().0
    }

    fn work_queue(&self) -> (u64, u64) {
        let s = self.dtx(&["status", "--json"]);
        (s["queue_visible"].as_u64().unwrap(), s["queue_in_flight"].as_u64().unwrap())
    }
}

/// Puts a file where the worker's primary candidate for `legacy_path` points.
fn restore(root: &Path, legacy_path: &str, contents: &[u8]) {
    let resolved = shared::paths::PathRules::default().resolve(legacy_path).expect("a resolvable legacy path");
    let path = root.join(&resolved.candidates[0].relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// The source keys of the rows with `status`, sorted.
fn with_status(rows: &BTreeMap<String, ManifestRecord>, status: FileStatus) -> Vec<String> {
    rows.values().filter(|r| r.status == Some(status)).map(|r| r.source_key.clone()).collect()
}

fn keys_by_reason(letters: &[DeadLetter]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in letters {
        m.entry(l.reason.clone()).or_default().push(l.source_key.clone().unwrap());
    }
    m.values_mut().for_each(|v| v.sort());
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_dlq_list_redrive_and_rerun_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack {
        prefix: tests::unique("op-"),
        endpoint: tests::aws_endpoint(),
        legacy: tests::MysqlFixture::new().await,
        root: dir.path().join("efsdata"),
        mappings: dir.path().join("mappings"),
        _dir: dir,
    };
    std::fs::create_dir_all(&stack.root).unwrap();
    std::fs::create_dir_all(&stack.mappings).unwrap();
    let small = ["--certificates", "24", "--documents", "12", "--filerepo-files", "6", "--customers", "4", "--large-file-bytes", "0"];
    stack.dtx(&[&["sample", "generate"], &small[..]].concat());
    stack.dtx(&["move", "--pollers", "2"]);

    // status: exactly the manifest's figures, nothing queued, the DLQ holds the permanent failures.
    let rows = stack.manifest().await;
    let expected = ManifestSummary::from_records(&rows.values().cloned().collect::<Vec<_>>());
    let status = stack.dtx(&["status", "--json"]);
    assert_eq!(status["manifest"], serde_json::to_value(&expected).unwrap(), "{status:#}");
    let count = |s: FileStatus| rows.values().filter(|r| r.status == Some(s)).count();
    let (missing, rejected) = (count(FileStatus::Missing), count(FileStatus::Rejected));
    assert!(missing >= 2 && rejected >= 1, "the sample has missing ({missing}) and rejected ({rejected}) files");
    assert_eq!((status["queue_visible"].as_u64(), status["queue_in_flight"].as_u64()), (Some(0), Some(0)));
    let (_, copies) = stack.dead_letters_and_copies();
    assert_eq!(status["dlq_visible"].as_u64().unwrap() as usize, missing + rejected + copies, "{status:#}");
    let text = stack.dtx(&["status"]);
    assert!(text.as_str().unwrap().contains(&format!("Manifest rows: {}", rows.len())), "{text}");

    // dlq list: grouped by reason, one message per failed file, and listing consumes nothing.
    let letters = stack.dead_letters();
    let by_reason = keys_by_reason(&letters);
    assert_eq!(by_reason.get("missing"), Some(&with_status(&rows, FileStatus::Missing)));
    assert_eq!(by_reason.get("rejected"), Some(&with_status(&rows, FileStatus::Rejected)));
    assert_eq!(keys_by_reason(&stack.dead_letters()), by_reason, "a second listing sees the same messages");
    let text = stack.dtx(&["dlq", "list", "--reason", "missing"]);
    let text = text.as_str().unwrap();
    assert!(text.starts_with(&format!("Dead-letter queue: {missing} message(s)")) && text.contains(&format!("\nmissing: {missing}\n")), "{text}");

    // Restore the first missing file, redrive the missing ones: exactly those move, and the
    // local move drains them; the restored file is moved, the others are missing again.
    let missing_letters: Vec<&DeadLetter> = letters.iter().filter(|l| l.reason == "missing").collect();
    let restored = missing_letters[0].source_key.clone().unwrap();
    restore(&stack.root, missing_letters[0].legacy_path.as_deref().unwrap(), b"restored on EFS, first");
    let redriven = stack.dtx(&["dlq", "redrive", "--reason", "missing", "--json"]);
    assert_eq!(redriven["moved"], serde_json::json!({ "missing": missing }), "{redriven:#}");
    assert_eq!(redriven["left"].as_u64().unwrap() as usize, rejected);
    assert_eq!(stack.work_queue(), (missing as u64, 0), "every redriven message is in the work queue once");
    assert_eq!(keys_by_reason(&stack.dead_letters()).get("missing"), None);
    stack.dtx(&["move", "--pollers", "2"]);
    let rows = stack.manifest().await;
    assert_eq!(rows[&restored].status, Some(FileStatus::Moved), "{:?}", rows[&restored]);
    let still_missing = with_status(&rows, FileStatus::Missing);
    assert_eq!(still_missing.len(), missing - 1);
    let again = keys_by_reason(&stack.dead_letters());
    assert_eq!(again.get("missing"), Some(&still_missing), "each still-missing file is dead-lettered once more");
    assert_eq!(again.get("rejected"), by_reason.get("rejected"), "the rejected ones stayed untouched");

    // Restore the rest; rerun --status missing sends exactly those files and they move.
    for l in missing_letters.iter().skip(1) {
        restore(&stack.root, l.legacy_path.as_deref().unwrap(), format!("restored {}", l.source_key.as_deref().unwrap()).as_bytes());
    }
    let before_rerun = stack.manifest().await;
    let text = stack.dtx(&["rerun", "--status", "missing", "--pollers", "2"]);
    assert!(text.as_str().unwrap().contains(&format!("{} messages sent", missing - 1)), "{text}");
    let rows = stack.manifest().await;
    assert_eq!(rows.values().filter(|r| r.status == Some(FileStatus::Missing)).count(), 0);
    for key in &still_missing {
        assert_eq!(rows[key].status, Some(FileStatus::Moved), "{key}");
    }
    assert_eq!(stack.work_queue(), (0, 0));
    // Nothing else was sent: every other row is exactly as it was, and a second rerun finds
    // nothing to send.
    for (key, row) in &before_rerun {
        if !still_missing.contains(key) {
            assert_eq!(&rows[key], row, "{key} changed although it was not missing");
        }
    }
    let text = stack.dtx(&["rerun", "--status", "missing"]);
    assert!(text.as_str().unwrap().contains(" 0 messages sent"), "{text}");

    // The report, as text and as an HTML page that headless Chromium renders.
    let reports = stack._dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("migration_issues.csv"), "entity,legacy_id,step,reason,detail\ncertificate,7,certificates,customer not mapped,\n").unwrap();
    let html = reports.join("report.html");
    let json = stack.dtx(&["report", "--json", "--html", html.to_str().unwrap(), "--report-dir", reports.to_str().unwrap()]);
    assert_eq!(json["status"]["manifest"]["rows"].as_u64().unwrap() as usize, rows.len(), "{json:#}");
    let issues: BTreeMap<String, u64> = serde_json::from_value(json["issues"].clone()).map(|v: Vec<(String, u64)>| v.into_iter().collect()).unwrap();
    assert_eq!(issues.get("certificates: customer not mapped"), Some(&1));
    // The DLQ still holds the rejected messages and the second round's missing ones.
    assert_eq!(issues.get("dlq: missing").map(|n| *n as usize), Some(missing - 1), "{issues:?}");
    assert_eq!(issues.get("dlq: rejected").map(|n| *n as usize), Some(rejected), "{issues:?}");
    render_in_chromium(&html, &stack._dir.path().join("chromium"));

    stack.legacy.drop_database().await;
}

/// Opens the page in headless Chromium (Debian's `chromium`, installed by infra/local/test.sh):
/// the rendered DOM holds every chart with its bars, and the screenshot is not a blank page.
fn render_in_chromium(page: &Path, profile: &Path) {
    let chromium = |extra: &[&str]| {
        Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
            .args(["--disable-component-update", "--disable-sync", "--window-size=1200,1800"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium is installed (infra/local/test.sh installs Debian's chromium)")
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    for id in ["areas", "sizes", "throughput", "issues"] {
        assert!(dom.contains(&format!("<svg id=\"{id}\"")), "chart {id} not rendered:\n{dom}");
    }
    assert!(dom.matches("<rect ").count() >= 10, "{dom}");
    let shot = page.with_extension("png");
    let out = chromium(&[&format!("--screenshot={}", shot.display())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 20_000, "a {} byte screenshot looks blank", png.len());
}

/// `--stack` reads the resources from the stack's CloudFormation outputs (moto's CloudFormation
/// here): `status` then reports the queues the outputs name, not the local prefix's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_outputs_name_the_resources() {
    let aws = tests::AwsFixture::new(3, 30).await;
    let r = &aws.resources;
    aws.clients.sqs.send_message().queue_url(&r.queue_url).message_body("{}").send().await.unwrap();
    let stack = tests::unique("dtx-stack-");
    let outputs: serde_json::Map<String, Value> = [
        ("BucketName", &r.bucket),
        ("QueueUrl", &r.queue_url),
        ("DeadLetterQueueUrl", &r.dlq_url),
        ("ManifestTableName", &r.manifest_table),
        ("DedupTableName", &r.dedup_table),
        ("RunsTableName", &r.runs_table),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), serde_json::json!({ "Value": v })))
    .collect();
    // A stack needs one resource; its outputs are what the CLI reads.
    let template = serde_json::json!({
        "Resources": { "Marker": { "Type": "AWS::SQS::Queue", "Properties": { "QueueName": format!("{stack}-marker") } } },
        "Outputs": outputs,
    });
    aws.clients.cloudformation.create_stack().stack_name(&stack).template_body(template.to_string()).send().await.expect("create stack");

    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dtx-migrate"))
            .args(args)
            .env("AWS_ENDPOINT_URL", tests::aws_endpoint())
            // A prefix naming nothing: every resource must come from the stack.
            .env("DTX_LOCAL_PREFIX", tests::unique("nothing-"))
            .env("RUST_LOG", "error")
            .output()
            .expect("run dtx-migrate")
    };
    let out = run(&["--stack", &stack, "status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["queue_visible"].as_u64(), Some(1), "{status:#}");
    assert_eq!(status["manifest"]["rows"].as_u64(), Some(0));

    let out = run(&["--stack", "no-such-stack", "status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the outputs of stack no-such-stack"), "{}", String::from_utf8_lossy(&out.stderr));
}
