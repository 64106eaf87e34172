//! The file move end to end over the real protocols: moto (S3, SQS, DynamoDB) and MariaDB.

use shared::hashing;
use shared::inventory::{Inventory, InventoryRequest};
use shared::local::{self, LocalEventSource};
use shared::manifest::{ManifestRecord, ManifestSummary};
use shared::message::{FileMessage, LegacyIds, SourceRef};
use shared::model::{Area, FileStatus};
use shared::ports::{ClaimState, DedupStore, ManifestStore};
use shared::sample::{ExpectedOutcome, SampleSpec, SampleSummary};
use shared::source::{LegacySource, MountedSource};
use shared::worker::{Delivery, RecordResult, Worker, WorkerSettings};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tests::{AwsFixture, MysqlFixture};

fn settings() -> WorkerSettings {
    WorkerSettings {
        multipart_threshold: 6 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        lease_wait: Duration::from_millis(300),
        ..Default::default()
    }
}

fn worker(aws: &AwsFixture, root: &Path) -> Arc<Worker> {
    let source = MountedSource::new(root).expect("root exists");
    Arc::new(shared::wiring::worker(&aws.clients, &aws.resources, settings(), Arc::new(source)))
}

async fn inventory(aws: &AwsFixture, db: &MysqlFixture, root: &Path, mappings: &Path, page_size: u32) -> Inventory {
    aws.inventory(db, mappings, LegacySource::Mounted(MountedSource::new(root).unwrap()), page_size).await
}

async fn esm(aws: &AwsFixture, worker: Arc<Worker>) -> LocalEventSource {
    LocalEventSource {
        sqs: aws.clients.sqs.clone(),
        queue_url: aws.resources.queue_url.clone(),
        queue_arn: local::queue_arn(&aws.clients, &aws.resources.queue_url).await.unwrap(),
        batch_size: 10,
        pollers: 3,
        worker,
    }
}

struct Sample {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    mappings: std::path::PathBuf,
    summary: SampleSummary,
}

async fn sample(db: &MysqlFixture, spec: SampleSpec) -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("efsdata");
    let mappings = dir.path().join("mappings");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&mappings).unwrap();
    let summary = shared::sample::generate(&db.pool, &root, &mappings, &spec).await.expect("generate sample");
    Sample { _dir: dir, root, mappings, summary }
}

fn small_spec() -> SampleSpec {
    SampleSpec { customers: 4, certificates: 30, documents: 15, filerepo_files: 8, large_file_bytes: 7 * 1024 * 1024, ..Default::default() }
}

async fn manifest_rows(aws: &AwsFixture) -> BTreeMap<String, ManifestRecord> {
    let rows = shared::wiring::manifest(&aws.clients, &aws.resources).scan_all().await.unwrap();
    rows.into_iter().map(|r| (r.source_key.clone(), r)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_tree_moves_end_to_end_and_a_rerun_changes_nothing() {
    let db = MysqlFixture::new().await;
    let s = sample(&db, small_spec()).await;
    let aws = AwsFixture::new(3, 2).await;
    let inv = inventory(&aws, &db, &s.root, &s.mappings, 20).await;
    let w = worker(&aws, &s.root);

    let run = local::run_move(&inv, &InventoryRequest::default(), esm(&aws, w.clone()).await).await.expect("move");
    assert_eq!(run.inventory.sent as usize, s.summary.expected.len());

    let rows = manifest_rows(&aws).await;
    assert_eq!(rows.keys().collect::<Vec<_>>(), s.summary.expected.keys().collect::<Vec<_>>(), "one manifest row per source file");
    let dead = aws.dead_letters().await;
    let dead_by_key: BTreeMap<String, String> = dead.iter().map(|d| (d.source_key.clone().unwrap_or_default(), d.reason.clone())).collect();
    assert_eq!(dead.len(), dead_by_key.len(), "a file was dead-lettered twice: {dead:?}");

    let mut groups: BTreeMap<(String, String), Vec<FileStatus>> = BTreeMap::new();
    for (key, expected) in &s.summary.expected {
        let row = &rows[key];
        match &expected.outcome {
            ExpectedOutcome::Present { sha256_hex, size } if expected.account_id.is_some() => {
                let status = row.status.unwrap();
                assert!(status.is_stored(), "{key} ({}) is {status:?}: {:?}", expected.case, row.last_error);
                assert_eq!(row.content_hash.as_deref(), Some(sha256_hex.as_str()), "{key}");
                assert_eq!(row.size, Some(*size), "{key}");
                let s3_key = row.s3_key.clone().unwrap();
                assert!(s3_key.starts_with(&format!("org_{}/", expected.account_id.as_ref().unwrap())), "{s3_key}: tenant prefix");
                assert!(s3_key.contains(sha256_hex.as_str()), "{s3_key}: content-addressed");
                assert!(row.file_uid.as_deref().unwrap().starts_with(&format!("{sha256_hex}_")));
                groups.entry((expected.account_id.clone().unwrap(), sha256_hex.clone())).or_default().push(status);
                assert!(!dead_by_key.contains_key(key), "{key} stored but dead-lettered");
            }
            ExpectedOutcome::Present { .. } | ExpectedOutcome::Rejected { .. } => {
                assert_eq!(row.status, Some(FileStatus::Rejected), "{key} ({})", expected.case);
                assert_eq!(dead_by_key.get(key).map(String::as_str), Some("rejected"), "{key}");
            }
            ExpectedOutcome::Missing => {
                assert_eq!(row.status, Some(FileStatus::Missing), "{key}");
                assert_eq!(dead_by_key.get(key).map(String::as_str), Some("missing"), "{key}");
            }
        }
    }
    // Equal content in one tenant is uploaded once: exactly one `moved` per group.
    for (group, statuses) in &groups {
        assert_eq!(statuses.iter().filter(|s| **s == FileStatus::Moved).count(), 1, "{group:?}: {statuses:?}");
    }
    assert!(groups.values().any(|s| s.len() > 1), "the sample has duplicates");

    // Every object is referenced, every referenced object exists, and its bytes hash to its key.
    let keys = aws.object_keys().await;
    let referenced: BTreeSet<String> = rows.values().filter_map(|r| r.s3_key.clone()).collect();
    assert_eq!(keys.iter().cloned().collect::<BTreeSet<_>>(), referenced);
    assert_eq!(keys.len(), groups.len());
    for key in &keys {
        let bytes = aws.object_bytes(key).await;
        let hex = hashing::to_hex(&hashing::sha256(&bytes));
        assert!(key.contains(&hex), "{key} holds bytes hashing to {hex}");
    }
    let verify = shared::verify::verify_stored(
        &rows.values().cloned().collect::<Vec<_>>(),
        &shared::adapters::s3::S3Objects::new(aws.clients.s3.clone(), &aws.resources.bucket),
    )
    .await
    .unwrap();
    assert!(verify.ok(), "{:?}", verify.problems);
    // The large file went up once to a staging key and was copied by S3, which computed the
    // copy's whole-object SHA-256: verified from its checksum, no download needed.
    assert_eq!(verify.downloaded, 0, "every object has a whole-object SHA-256");
    let summary = ManifestSummary::from_records(&rows.values().cloned().collect::<Vec<_>>());
    assert!(summary.bytes_deduplicated > 0);

    // Rerun: nothing is sent, nothing changes.
    let before_csv = csv_of(&rows);
    let dlq_before = aws.queue_depth(&aws.resources.dlq_url).await;
    let inv2 = inventory(&aws, &db, &s.root, &s.mappings, 20).await;
    let rerun = local::run_move(&inv2, &InventoryRequest::default(), esm(&aws, w).await).await.expect("rerun");
    assert_eq!(rerun.inventory.sent, 0, "no new messages for settled files");
    assert_eq!(rerun.inventory.skipped_settled as usize, s.summary.expected.len());
    assert_eq!(csv_of(&manifest_rows(&aws).await), before_csv, "manifest changed on rerun");
    assert_eq!(aws.object_keys().await, keys);
    assert_eq!(aws.queue_depth(&aws.resources.dlq_url).await, dlq_before);
    db.drop_database().await;
}

fn csv_of(rows: &BTreeMap<String, ManifestRecord>) -> String {
    let mut out = Vec::new();
    shared::manifest::write_csv(&rows.values().cloned().collect::<Vec<_>>(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn message(id: u64, account: &str, legacy_path: &str) -> FileMessage {
    FileMessage {
        v: 1,
        source: SourceRef::Attachment(id),
        area: Area::Documents,
        legacy_path: legacy_path.into(),
        fallback_paths: vec![],
        account_id: Some(account.into()),
        original_filename: legacy_path.rsplit('/').next().unwrap().into(),
        ids: LegacyIds { attachment_id: Some(id), ..Default::default() },
        legacy_status: None,
        problem: None,
        force: false,
    }
}

fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, bytes) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_deliveries_and_equal_content_racing_store_one_object() {
    let aws = AwsFixture::new(3, 2).await;
    let dir = tree(&[
        ("attachments/document_management/1/10/a.pdf", b"identical bytes"),
        ("attachments/document_management/1/11/b.pdf", b"identical bytes"),
    ]);
    // The twin waits for the holder's upload rather than giving up after the default 300 ms
    // (which a loaded machine can exceed; giving up is tested elsewhere).
    let patient = WorkerSettings { lease_wait: Duration::from_secs(20), ..settings() };
    let w = shared::wiring::worker(&aws.clients, &aws.resources, patient, Arc::new(MountedSource::new(dir.path()).unwrap()));
    let a = message(1, "9", "/efsdata/attachments/document_management/1/10/a.pdf");
    let b = message(2, "9", "/home/wwwriskt/public_html/www1/attachments/document_management/1/11/b.pdf");
    let deliver = |m: &FileMessage, id: &str| Delivery { message_id: id.into(), body: m.to_json(), receive_count: 1 };
    // The same message twice at once (at-least-once delivery), and its twin content.
    let (r1, r2, r3) = tokio::join!(w.process(deliver(&a, "m-a")), w.process(deliver(&a, "m-a")), w.process(deliver(&b, "m-b")));
    for r in [&r1, &r2, &r3] {
        assert!(matches!(r, RecordResult::Done(s) if s.is_stored()), "{r:?}");
    }
    let keys = aws.object_keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let rows = manifest_rows(&aws).await;
    let statuses: BTreeSet<_> = rows.values().map(|r| r.status.unwrap()).collect();
    assert_eq!(statuses, BTreeSet::from([FileStatus::Moved, FileStatus::Deduplicated]));
    assert!(rows.values().all(|r| r.s3_key.as_deref() == Some(keys[0].as_str())));
    let snapshot = csv_of(&rows);
    // A late redelivery changes nothing.
    assert_eq!(w.process(deliver(&a, "m-a")).await, RecordResult::Done(rows["attachment:1"].status.unwrap()));
    assert_eq!(csv_of(&manifest_rows(&aws).await), snapshot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_claim_is_taken_over_after_its_lease_and_a_live_one_is_waited_for() {
    let aws = AwsFixture::new(3, 2).await;
    let dir = tree(&[("attachments/document_management/1/10/a.pdf", b"contended content")]);
    let w = worker(&aws, dir.path());
    let dedup = shared::adapters::dynamodb::DynamoDedup::new(aws.clients.dynamodb.clone(), &aws.resources.dedup_table);
    let hash = hashing::to_hex(&hashing::sha256(b"contended content"));
    let claim_key = format!("acct#9#{hash}");
    let now = chrono::Utc::now().timestamp_millis();
    let m = message(1, "9", "/efsdata/attachments/document_management/1/10/a.pdf");
    let d = Delivery { message_id: "m".into(), body: m.to_json(), receive_count: 1 };

    // Live claim by a worker that is still uploading: wait, then give the message back.
    dedup.claim(&claim_key, "attachment:77", now + 600_000, now).await.unwrap();
    let r = w.process(d.clone()).await;
    assert!(matches!(&r, RecordResult::Retry(why) if why.contains("attachment:77")), "{r:?}");
    let row = shared::wiring::manifest(&aws.clients, &aws.resources).get("attachment:1").await.unwrap().unwrap();
    assert_eq!(row.status, Some(FileStatus::Failed));
    assert!(row.last_error.unwrap().contains("attachment:77"));
    assert!(aws.object_keys().await.is_empty());

    // That worker crashed: once its lease has passed, the claim is taken over and completed.
    dedup.release(&claim_key, "attachment:77").await.unwrap();
    dedup.claim(&claim_key, "attachment:77", now - 1, now - 1000).await.unwrap();
    assert!(matches!(dedup.get(&claim_key).await.unwrap(), Some(ClaimState::Claimed { owner, .. }) if owner == "attachment:77"));
    assert_eq!(w.process(d).await, RecordResult::Done(FileStatus::Moved));
    assert!(matches!(dedup.get(&claim_key).await.unwrap(), Some(ClaimState::Complete { owner, .. }) if owner == "attachment:1"));
    assert_eq!(aws.object_keys().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_malformed_and_exhausted_messages_end_in_the_dlq_with_their_reason() {
    // Visibility 3 s: long enough that a loaded machine does not see a message redelivered
    // while its first delivery is still in work (a keyless malformed message would then be
    // dead-lettered twice: at-least-once, but not what this test counts).
    let aws = AwsFixture::new(2, 3).await;
    let dir = tree(&[("attachments/document_management/1/12/held.pdf", b"held forever")]);
    // A short lease keeps the retry delay the worker asks SQS for (lease + 5 s) test-sized.
    let short_lease = WorkerSettings { lease: Duration::from_secs(1), ..settings() };
    let source = MountedSource::new(dir.path()).unwrap();
    let w = Arc::new(shared::wiring::worker(&aws.clients, &aws.resources, short_lease, Arc::new(source)));
    let sender = shared::adapters::sqs::SqsSender::new(aws.clients.sqs.clone(), &aws.resources.queue_url);
    let missing = message(5, "9", "/efsdata/attachments/document_management/1/10/gone.pdf");
    let held = message(6, "9", "/efsdata/attachments/document_management/1/12/held.pdf");
    // A claim that never ends: every delivery fails until the redrive policy moves it.
    let hash = hashing::to_hex(&hashing::sha256(b"held forever"));
    let now = chrono::Utc::now().timestamp_millis();
    shared::adapters::dynamodb::DynamoDedup::new(aws.clients.dynamodb.clone(), &aws.resources.dedup_table)
        .claim(&format!("acct#9#{hash}"), "attachment:88", now + 3_600_000, now)
        .await
        .unwrap();
    sender
        .send_batch(&[missing.to_json(), "{\"v\":1,\"source\":{\"kind\":\"attachment\",\"id\":7}}".into(), "not json".into(), held.to_json()])
        .await
        .unwrap();

    let e = esm(&aws, w).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(true));
    tokio::time::timeout(Duration::from_secs(60), e.run(stop, Default::default())).await.expect("drains").unwrap();

    let dead = aws.dead_letters().await;
    // Copies of one letter (a redelivery forwarded again) are one failure.
    let reasons: BTreeMap<String, usize> = dead.iter().filter(|d| d.duplicate_of.is_none()).fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d.reason.clone()).or_default() += 1;
        m
    });
    assert_eq!(reasons, BTreeMap::from([("exhausted_retries".into(), 1), ("missing".into(), 1), ("rejected".into(), 2)]), "{dead:?}");
    let rows = manifest_rows(&aws).await;
    assert_eq!(rows["attachment:5"].status, Some(FileStatus::Missing));
    assert!(rows["attachment:5"].last_error.as_deref().unwrap().contains("gone.pdf"));
    assert_eq!(rows["attachment:7"].status, Some(FileStatus::Rejected), "a malformed message with a source key is recorded");
    assert_eq!(rows["attachment:6"].status, Some(FileStatus::Failed));
    assert!(rows["attachment:6"].last_error.as_deref().unwrap().contains("attachment:88"), "the manifest keeps the last error");
    assert!(rows["attachment:6"].attempts >= 2);
    assert_eq!(aws.queue_depth(&aws.resources.queue_url).await, (0, 0));
}

/// At-least-once: a forward the SDK retried, or a redelivery forwarded again after its
/// manifest write failed, leaves two copies of one letter in the DLQ. Listing marks the copy,
/// and a redrive sends the instruction once and deletes the copy, so copies never multiply.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_of_a_dead_letter_are_marked_and_redriven_once() {
    use shared::model::DeadLetterReason;
    use shared::ports::DeadLetters;
    let aws = AwsFixture::new(3, 30).await;
    let forward = shared::adapters::sqs::SqsDeadLetters::new(aws.clients.sqs.clone(), &aws.resources.dlq_url);
    let gone = message(5, "9", "/efsdata/attachments/document_management/1/10/gone.pdf").to_json();
    let other = message(6, "9", "/efsdata/attachments/document_management/1/10/other.pdf").to_json();
    for (body, reason) in [(&gone, DeadLetterReason::Missing), (&gone, DeadLetterReason::Missing), (&other, DeadLetterReason::Missing)] {
        forward.forward(body, reason, "no candidate exists", Some("attachment:x")).await.unwrap();
    }
    // The same body for another reason is another letter, not a copy.
    forward.forward(&gone, DeadLetterReason::Rejected, "no account mapping", Some("attachment:5")).await.unwrap();

    let listed = aws.dead_letters().await;
    assert_eq!(listed.len(), 4, "listing shows every message: {listed:?}");
    let copies: Vec<_> = listed.iter().filter(|l| l.duplicate_of.is_some()).collect();
    assert_eq!(copies.len(), 1, "{listed:?}");
    let original = listed.iter().find(|l| Some(&l.message_id) == copies[0].duplicate_of.as_ref()).expect("the original is listed");
    assert_eq!((original.reason.as_str(), &original.body), ("missing", &gone));
    assert_eq!((copies[0].reason.as_str(), &copies[0].body), ("missing", &gone));
    let groups = shared::adapters::dlq::by_reason(&listed);
    assert_eq!(groups.iter().map(|(r, g)| (*r, g.len())).collect::<Vec<_>>(), [("missing", 2), ("rejected", 1)]);

    let queue = shared::wiring::dead_letter_queue(&aws.clients, &aws.resources);
    let redriven = queue.redrive(Some("missing")).await.unwrap();
    assert_eq!(redriven.moved, BTreeMap::from([("missing".to_string(), 2)]));
    assert_eq!((redriven.duplicates_deleted, redriven.left), (1, 1));
    assert_eq!(aws.queue_depth(&aws.resources.queue_url).await, (2, 0), "each instruction reaches the work queue once");
    let mut sent = Vec::new();
    for _ in 0..20 {
        if sent.len() >= 2 {
            break;
        }
        let receive = aws.clients.sqs.receive_message().queue_url(&aws.resources.queue_url).max_number_of_messages(10).wait_time_seconds(1);
        let out = receive.send().await.unwrap();
        sent.extend(out.messages.unwrap_or_default().into_iter().filter_map(|m| m.body));
    }
    sent.sort();
    let mut expected = vec![gone.clone(), other.clone()];
    expected.sort();
    assert_eq!(sent, expected);
    let left = aws.dead_letters().await;
    assert_eq!(left.iter().map(|l| (l.reason.as_str(), l.duplicate_of.is_some())).collect::<Vec<_>>(), [("rejected", false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inventory_resumes_from_its_cursor_and_a_dry_run_sends_nothing() {
    let db = MysqlFixture::new().await;
    let s = sample(&db, SampleSpec { large_file_bytes: 0, ..small_spec() }).await;
    let aws = AwsFixture::new(3, 30).await;

    let dry = inventory(&aws, &db, &s.root, &s.mappings, 7).await;
    let report = dry.dry_run(&InventoryRequest { dry_run: true, ..Default::default() }).await.unwrap();
    assert_eq!(aws.queue_depth(&aws.resources.queue_url).await, (0, 0), "dry run sent messages");
    let expected = &s.summary.expected;
    let count = |f: &dyn Fn(&shared::sample::ExpectedFile) -> bool| expected.values().filter(|e| f(e)).count() as u64;
    assert_eq!(report.total.expected, expected.len() as u64);
    assert_eq!(report.total.missing, count(&|e| matches!(e.outcome, ExpectedOutcome::Missing)));
    assert_eq!(report.total.found, count(&|e| matches!(e.outcome, ExpectedOutcome::Present { .. }) && e.account_id.is_some()));
    let mut orphans = report.orphans.clone();
    orphans.sort();
    let mut expected_orphans = s.summary.orphan_files.clone();
    expected_orphans.sort();
    assert_eq!(orphans, expected_orphans);
    assert!(report.by_generation.contains_key("gen1") && report.by_generation.contains_key("gen2") && report.by_generation.contains_key("gen3"));
    assert!(report.render_text().contains("Orphan files"));

    // A first invocation stops after two pages (as at a Lambda deadline)...
    let first = inventory(&aws, &db, &s.root, &s.mappings, 7).await;
    let r1 = first.run(&InventoryRequest { max_pages: Some(2), ..Default::default() }, None).await.unwrap();
    assert!(!r1.done && r1.cursor.is_some());
    assert_eq!(r1.counts.pages, 2);
    // ...and a new one (a re-invocation, or a rerun after a crash) continues from the cursor.
    let second = inventory(&aws, &db, &s.root, &s.mappings, 7).await;
    let r2 = second.run(&InventoryRequest::default(), None).await.unwrap();
    assert!(r2.done);
    assert_eq!(r2.totals.sent as usize, expected.len(), "every file sent exactly once across invocations");
    assert_eq!(r2.totals.rows, r1.counts.rows + r2.counts.rows);
    let (visible, in_flight) = aws.queue_depth(&aws.resources.queue_url).await;
    assert_eq!(visible + in_flight, expected.len() as u64, "no file was sent twice");
    db.drop_database().await;
}
