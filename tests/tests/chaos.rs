//! The chaos run: the whole file move over a generated tree of 2,000+ files (equal content
//! within and across tenants, missing files, rejected ones), with the worker crashing at
//! random crash points, 10% of messages delivered twice (in the same batch, or later), and 5%
//! of the worker's and inventory's AWS requests failing through a fault-injecting proxy. When
//! the queue drains, the final state must be exactly the one an undisturbed run produces.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use rand::{Rng, SeedableRng};
use shared::config::AwsClients;
use shared::crash::{self, CrashPoint};
use shared::hashing;
use shared::inventory::InventoryRequest;
use shared::manifest::{ManifestRecord, ManifestSummary};
use shared::model::FileStatus;
use shared::ports::ManifestStore;
use shared::sample::{ExpectedOutcome, SampleSpec};
use shared::source::{LegacySource, MountedSource};
use shared::worker::{Worker, WorkerSettings};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::fault_proxy::{Fault, FaultProxy, Rule};
use tests::{AwsFixture, MysqlFixture};

const SEED: u64 = 20261201;
const DUPLICATE_RATE: f64 = 0.10;
const AWS_ERROR_RATE: f64 = 0.05;
const CRASH_RATE: f64 = 0.01;
const MAX_CRASHES: u64 = 80;

/// Crashes injected, by point; the plan the worker's crash points consult.
#[derive(Default)]
struct CrashPlan {
    rng: Mutex<Option<rand::rngs::StdRng>>,
    by_point: Mutex<BTreeMap<CrashPoint, u64>>,
    total: AtomicU64,
}

impl CrashPlan {
    /// Every point crashes the first time it is reached (so each is exercised), then at
    /// `CRASH_RATE` (multipart uploads, of which there are few, at 50%), up to `MAX_CRASHES`.
    fn decide(&self, point: CrashPoint) -> bool {
        let mut by_point = self.by_point.lock().unwrap();
        let seen = by_point.get(&point).copied().unwrap_or(0);
        let rate = if point == CrashPoint::MidMultipart { 0.5 } else { CRASH_RATE };
        let roll = self.rng.lock().unwrap().get_or_insert_with(|| rand::rngs::StdRng::seed_from_u64(SEED)).random_bool(rate);
        let crash = (seen == 0 || roll) && self.total.load(Ordering::SeqCst) < MAX_CRASHES;
        if crash {
            *by_point.entry(point).or_default() += 1;
            self.total.fetch_add(1, Ordering::SeqCst);
        }
        crash
    }
}

#[derive(Default)]
struct DeliveryStats {
    batches: AtomicU64,
    deliveries: AtomicU64,
    crashed_batches: AtomicU64,
    duplicated_same_batch: AtomicU64,
    duplicated_later: AtomicU64,
    retried: AtomicU64,
}

/// Lambda's SQS event source, with duplicates and crashing invocations: a crashed batch
/// deletes nothing, so its messages come back after the visibility timeout.
struct ChaosEventSource {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    worker: Arc<Worker>,
    rng: Mutex<rand::rngs::StdRng>,
    /// Copies to deliver again in a later batch.
    deferred: Mutex<Vec<SqsMessage>>,
    stats: DeliveryStats,
}

impl ChaosEventSource {
    async fn poll(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let mut empty_polls = 0;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive (the event source itself is not under test)");
            let received = out.messages.unwrap_or_default();
            let mut records: Vec<SqsMessage> = received.iter().map(to_record).collect();
            let originals: BTreeMap<String, String> = received
                .iter()
                .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
                .collect();
            {
                let mut rng = self.rng.lock().unwrap();
                let mut deferred = self.deferred.lock().unwrap();
                for record in records.clone() {
                    if rng.random_bool(DUPLICATE_RATE) {
                        if rng.random_bool(0.5) {
                            records.push(record);
                            self.stats.duplicated_same_batch.fetch_add(1, Ordering::Relaxed);
                        } else {
                            deferred.push(record);
                            self.stats.duplicated_later.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                // Earlier copies ride along with this batch (or make one of their own).
                let take = deferred.len().min(3);
                records.extend(deferred.drain(..take));
            }
            if records.is_empty() {
                if stop.load(Ordering::SeqCst) {
                    let (visible, in_flight) = shared::adapters::sqs::queue_depth(&self.sqs, &self.queue_url).await.expect("depth");
                    empty_polls = if visible == 0 && in_flight == 0 { empty_polls + 1 } else { 0 };
                    if empty_polls >= 2 {
                        return;
                    }
                }
                continue;
            }
            empty_polls = 0;
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.stats.deliveries.fetch_add(records.len() as u64, Ordering::Relaxed);
            let mut event = SqsEvent::default();
            event.records = records;
            let worker = self.worker.clone();
            let response = match tokio::spawn(async move { worker.handle_batch(event).await }).await {
                Ok(response) => response,
                Err(e) if e.is_panic() => {
                    self.stats.crashed_batches.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => panic!("batch task: {e}"),
            };
            let failed: BTreeSet<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
            self.stats.retried.fetch_add(failed.len() as u64, Ordering::Relaxed);
            let entries: Vec<_> = originals
                .iter()
                .filter(|(id, _)| !failed.contains(*id))
                .enumerate()
                .map(|(i, (_, handle))| {
                    DeleteMessageBatchRequestEntry::builder().id(format!("m{i}")).receipt_handle(handle).build().unwrap()
                })
                .collect();
            if !entries.is_empty() {
                self.sqs
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .expect("delete settled messages");
            }
        }
    }
}

fn to_record(m: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id.clone();
    record.receipt_handle = m.receipt_handle.clone();
    record.body = m.body.clone();
    record.event_source = Some("aws:sqs".into());
    if let Some(attrs) = &m.attributes {
        record.attributes = attrs.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect();
    }
    record
}

/// SDK clients through the proxy, retrying as in production but with short back-offs.
async fn clients_through(proxy: &FaultProxy) -> AwsClients {
    let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(50));
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "chaos"))
        .retry_config(retry)
        .timeout_config(aws_config::timeout::TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(3)).build())
        .load()
        .await;
    AwsClients::from_shared(&shared)
}

fn chaos_rules() -> Vec<Rule> {
    // 5% of requests fail, spread over the kinds of failure AWS produces.
    let share = AWS_ERROR_RATE / 6.0;
    vec![
        Rule::new("*", Fault::InternalError, share),
        Rule::new("*", Fault::SlowDown, share),
        Rule::new("*", Fault::Throttle, share),
        Rule::new("*", Fault::Cut, share),
        Rule::new("*", Fault::CutAfterForward, share),
        Rule::new("*", Fault::Delay(Duration::from_millis(300)), share),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_move_survives_crashes_duplicate_deliveries_and_flaky_aws_and_ends_exact() {
    let plan = Arc::new(CrashPlan::default());
    let deciding = plan.clone();
    assert!(crash::install(move |point, _source| deciding.decide(point)), "one crash plan per test process");
    // Injected crashes are expected; keep their panic messages out of the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or("");
        if !message.starts_with(crash::INJECTED) {
            default_hook(info);
        }
    }));

    let started = Instant::now();
    let db = MysqlFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, mappings) = (dir.path().join("efsdata"), dir.path().join("mappings"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&mappings).unwrap();
    let spec = SampleSpec {
        seed: SEED,
        customers: 8,
        certificates: 1300,
        documents: 500,
        filerepo_files: 300,
        large_file_bytes: 16 * 1024 * 1024,
        max_small_file_bytes: 24 * 1024,
        vendors_per_customer: 4,
    };
    let summary = shared::sample::generate(&db.pool, &root, &mappings, &spec).await.expect("generate sample");
    assert!(summary.expected.len() >= 2000, "only {} files", summary.expected.len());

    // The visibility timeout is what a crashed batch waits before its messages come back; it
    // must exceed a batch's duration under faults, or SQS redelivers messages still in work.
    let aws = AwsFixture::new(30, 10).await;
    let proxy = FaultProxy::start(&tests::aws_endpoint(), SEED).await;
    let chaos = clients_through(&proxy).await;
    let settings = WorkerSettings {
        multipart_threshold: 6 * 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        lease: Duration::from_secs(4),
        lease_wait: Duration::from_secs(1),
        ..Default::default()
    };
    let worker = Arc::new(shared::wiring::worker(&chaos, &aws.resources, settings, Arc::new(MountedSource::new(&root).unwrap())));
    let accounts = shared::mappings::load_accounts(&aws.clients.s3, mappings.to_str().unwrap()).await.expect("mapping");
    let inventory = shared::wiring::inventory(
        &chaos,
        &aws.resources,
        db.pool.clone(),
        accounts,
        Default::default(),
        Some(LegacySource::Mounted(MountedSource::new(&root).unwrap())),
        shared::wiring::InventoryOptions { page_size: 100, send_concurrency: 4, max_queue_depth: Some(300) },
    );
    let source = Arc::new(ChaosEventSource {
        sqs: aws.clients.sqs.clone(),
        queue_url: aws.resources.queue_url.clone(),
        worker: worker.clone(),
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(SEED + 1)),
        deferred: Mutex::new(Vec::new()),
        stats: DeliveryStats::default(),
    });

    proxy.set_rules(chaos_rules());
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..4).map(|_| tokio::spawn(source.clone().poll(stop.clone()))).collect();
    // The inventory fails when the SDK's retries run out; like an operator (or the Lambda's
    // own retry), run it again: it resumes from its checkpointed cursor.
    let mut inventory_runs = 0;
    let sent = loop {
        inventory_runs += 1;
        match inventory.run(&InventoryRequest::default(), None).await {
            Ok(response) => break response.totals.sent,
            Err(e) if inventory_runs < 20 => eprintln!("inventory run {inventory_runs} failed, resuming: {e}"),
            Err(e) => panic!("inventory never completed: {e}"),
        }
    };
    stop.store(true, Ordering::SeqCst);
    let drained = tokio::time::timeout(Duration::from_secs(900), futures::future::join_all(pollers)).await;
    assert!(drained.is_ok(), "the queue did not drain within 15 minutes");
    assert!(source.deferred.lock().unwrap().is_empty());
    proxy.set_rules(Vec::new());
    let faults = proxy.counts();
    let elapsed = started.elapsed();

    // ---- The final state, read directly from the services (not through the proxy). ----
    let rows: BTreeMap<String, ManifestRecord> = shared::wiring::manifest(&aws.clients, &aws.resources)
        .scan_all()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.source_key.clone(), r))
        .collect();
    let dead = aws.dead_letters().await;
    let mut dead_by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in &dead {
        dead_by_key.entry(d.source_key.clone().unwrap_or_default()).or_default().insert(d.reason.clone());
    }
    let objects: BTreeSet<String> = aws.object_keys().await.into_iter().collect();

    let mut problems = Vec::new();
    let mut groups: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut expected_counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut expected_dead = BTreeSet::new();
    for (key, expected) in &summary.expected {
        let Some(row) = rows.get(key) else {
            problems.push(format!("{key}: no manifest row"));
            continue;
        };
        match (&expected.outcome, &expected.account_id) {
            (ExpectedOutcome::Present { sha256_hex, size }, Some(account)) => {
                match (row.status, &row.s3_key) {
                    (Some(status), Some(s3_key)) if status.is_stored() => {
                        if row.content_hash.as_deref() != Some(sha256_hex.as_str()) || row.size != Some(*size) {
                            problems.push(format!("{key}: manifest hash/size {:?}/{:?} differ from the file's", row.content_hash, row.size));
                        }
                        groups.entry((account.clone(), sha256_hex.clone())).or_default().insert(s3_key.clone());
                    }
                    _ => problems.push(format!("{key}: present but {:?} ({:?})", row.status, row.last_error)),
                }
                if dead_by_key.contains_key(key) {
                    problems.push(format!("{key}: stored, yet in the DLQ"));
                }
            }
            (ExpectedOutcome::Missing, _) => {
                *expected_counts.entry("missing").or_default() += 1;
                expected_dead.insert(key.clone());
                if row.status != Some(FileStatus::Missing) {
                    problems.push(format!("{key}: missing file recorded as {:?}", row.status));
                }
                if dead_by_key.get(key) != Some(&BTreeSet::from(["missing".to_string()])) {
                    problems.push(format!("{key}: DLQ reasons {:?}, expected missing", dead_by_key.get(key)));
                }
            }
            _ => {
                *expected_counts.entry("rejected").or_default() += 1;
                expected_dead.insert(key.clone());
                if row.status != Some(FileStatus::Rejected) {
                    problems.push(format!("{key}: rejected file recorded as {:?}", row.status));
                }
                if dead_by_key.get(key) != Some(&BTreeSet::from(["rejected".to_string()])) {
                    problems.push(format!("{key}: DLQ reasons {:?}, expected rejected", dead_by_key.get(key)));
                }
            }
        }
    }
    for (group, keys) in &groups {
        if keys.len() != 1 {
            problems.push(format!("{group:?} is stored under {} keys: {keys:?}", keys.len()));
        }
    }
    let present: u64 = groups.len() as u64;
    let stored_files = summary
        .expected
        .values()
        .filter(|e| matches!(e.outcome, ExpectedOutcome::Present { .. }) && e.account_id.is_some())
        .count() as u64;
    expected_counts.insert("moved", present);
    expected_counts.insert("deduplicated", stored_files - present);
    let extra_rows: Vec<_> = rows.keys().filter(|k| !summary.expected.contains_key(*k)).collect();
    if !extra_rows.is_empty() {
        problems.push(format!("manifest rows for no source file: {extra_rows:?}"));
    }
    let unexpected_dead: Vec<_> = dead_by_key.keys().filter(|k| !expected_dead.contains(*k)).collect();
    if !unexpected_dead.is_empty() {
        problems.push(format!("DLQ messages for files that are not missing or rejected: {unexpected_dead:?}"));
    }

    // Objects: exactly the referenced ones, each holding bytes that hash to its manifest rows.
    let referenced: BTreeSet<String> = groups.values().flatten().cloned().collect();
    let orphans: Vec<_> = objects.difference(&referenced).collect();
    let absent: Vec<_> = referenced.difference(&objects).collect();
    if !orphans.is_empty() {
        problems.push(format!("{} objects no manifest row references: {orphans:?}", orphans.len()));
    }
    if !absent.is_empty() {
        problems.push(format!("{} referenced objects are not in the bucket: {absent:?}", absent.len()));
    }
    let mut hashed = 0;
    for ((_, sha256_hex), keys) in &groups {
        for key in keys.iter().filter(|k| objects.contains(*k)) {
            let bytes = aws.object_bytes(key).await;
            hashed += 1;
            if hashing::to_hex(&hashing::sha256(&bytes)) != *sha256_hex {
                problems.push(format!("{key}: bytes do not hash to {sha256_hex}"));
            }
        }
    }

    // No claim is left in progress.
    let claims = aws.claim_states().await;
    if claims.keys().any(|state| state != "complete") {
        problems.push(format!("claims not complete: {claims:?}"));
    }
    if claims.get("complete").copied().unwrap_or(0) != present {
        problems.push(format!("{:?} complete claims for {present} distinct contents", claims.get("complete")));
    }

    // Status counts are exact, and so are the worker's own counters.
    let counted = ManifestSummary::from_records(&rows.values().cloned().collect::<Vec<_>>());
    let actual_counts: BTreeMap<&str, u64> = counted.by_status.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    if actual_counts != expected_counts {
        problems.push(format!("status counts {actual_counts:?}, expected {expected_counts:?}"));
    }
    let incomplete_uploads = aws
        .clients
        .s3
        .list_multipart_uploads()
        .bucket(&aws.resources.bucket)
        .send()
        .await
        .expect("list multipart uploads")
        .uploads()
        .len();

    let stats = &source.stats;
    let crashes = plan.by_point.lock().unwrap().clone();
    println!("chaos run over {} source files ({stored_files} to store as {present} distinct contents, {} missing, {} rejected) in {:.1}s:",
        summary.expected.len(), expected_counts["missing"], expected_counts["rejected"], elapsed.as_secs_f64());
    println!("  inventory: {sent} messages sent in {inventory_runs} run(s)");
    println!(
        "  deliveries: {} in {} batches; {} duplicated in the same batch, {} redelivered later; {} handed back for retry",
        stats.deliveries.load(Ordering::Relaxed),
        stats.batches.load(Ordering::Relaxed),
        stats.duplicated_same_batch.load(Ordering::Relaxed),
        stats.duplicated_later.load(Ordering::Relaxed),
        stats.retried.load(Ordering::Relaxed)
    );
    println!("  crashes: {} batches died: {crashes:?}", stats.crashed_batches.load(Ordering::Relaxed));
    println!(
        "  AWS faults: {} of {} requests ({:.1}%): {:?}",
        faults.total_injected(),
        faults.total_requests(),
        100.0 * faults.total_injected() as f64 / faults.total_requests().max(1) as f64,
        faults.by_kind()
    );
    println!("  final state: statuses {actual_counts:?}; {} objects ({hashed} re-hashed), {} orphans, {} absent; claims {claims:?}; DLQ {} messages for {} files; {} incomplete multipart uploads left to the lifecycle rule",
        objects.len(), orphans.len(), absent.len(), dead.len(), dead_by_key.len(), incomplete_uploads);
    println!("  problems: {}", problems.len());
    assert!(problems.is_empty(), "final state check failed:\n{}", problems.join("\n"));

    // The run was chaotic: every crash point fired, duplicates and faults of each kind happened.
    for point in CrashPoint::ALL {
        assert!(crashes.get(&point).copied().unwrap_or(0) >= 1, "{point:?} never crashed");
    }
    assert!(faults.by_kind().len() == 6, "{:?}", faults.by_kind());
    assert!(stats.duplicated_same_batch.load(Ordering::Relaxed) > 0 && stats.duplicated_later.load(Ordering::Relaxed) > 0);
    db.drop_database().await;
}
