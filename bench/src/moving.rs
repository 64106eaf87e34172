//! The worker handler driven directly with `SqsEvent` batches over a generated tree, storing
//! into a real S3 endpoint (s3s-fs or moto) through the product's S3 adapter. The dedup and
//! manifest tables are either the in-memory adapters (what a wall-time comparison with a plain
//! copier needs: the emulator's DynamoDB would dominate) or DynamoDB on an endpoint (what the
//! client CPU of a real run includes: every request signed, sent and parsed).
//!
//! The run is checked before any figure is printed: every record settled, nothing retried,
//! and the bucket holds exactly the tree's distinct contents under the run's prefix.

use crate::tree::{self, TreeFile};
use anyhow::{bail, Context, Result};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_s3::error::ProvideErrorMetadata;
use shared::adapters::dynamodb::{DynamoDedup, DynamoManifest};
use shared::adapters::memory::{MemoryDeadLetters, MemoryDedup, MemoryManifest};
use shared::adapters::s3::S3Objects;
use shared::config::AwsClients;
use shared::keys::KeyTemplate;
use shared::message::{FileMessage, LegacyIds, SourceRef, MESSAGE_VERSION};
use shared::model::Area;
use shared::source::MountedSource;
use shared::worker::{Worker, WorkerPorts, WorkerSettings};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct MoveArgs {
    /// The generated tree (the EFS root).
    #[arg(long)]
    pub root: PathBuf,
    /// The S3 endpoint objects go to.
    #[arg(long)]
    pub s3_endpoint: String,
    #[arg(long, default_value = "dtx-bench")]
    pub bucket: String,
    /// Key prefix of this run (the key template's first segment), so runs do not meet.
    #[arg(long, default_value = "worker")]
    pub prefix: String,
    /// `memory`, or a DynamoDB endpoint URL whose dedup and manifest tables this run creates.
    #[arg(long, default_value = "memory")]
    pub state: String,
    /// Records per SqsEvent (the event source's BatchSize).
    #[arg(long, default_value_t = 10)]
    pub batch_size: usize,
    /// Invocations in flight at once, as that many Lambda execution environments would run.
    #[arg(long, default_value_t = 1)]
    pub environments: usize,
    /// Records of one batch processed at once (RECORD_CONCURRENCY).
    #[arg(long, default_value_t = 10)]
    pub record_concurrency: usize,
}

pub fn message_for(f: &TreeFile) -> FileMessage {
    FileMessage {
        v: MESSAGE_VERSION,
        source: SourceRef::Attachment(f.id),
        area: Area::Certificates,
        legacy_path: format!("/efsdata/{}", f.path),
        fallback_paths: Vec::new(),
        account_id: Some(format!("{}", f.account)),
        original_filename: format!("coi_{}.pdf", f.id),
        ids: LegacyIds { attachment_id: Some(f.id), customer_id: Some(f.account), ..Default::default() },
        legacy_status: None,
        problem: None,
        force: false,
    }
}

fn event_for<'a>(batch: impl IntoIterator<Item = &'a TreeFile>, receive_count: u32) -> SqsEvent {
    let mut event = SqsEvent::default();
    for f in batch {
        let mut record = SqsMessage::default();
        record.message_id = Some(message_id(f));
        record.receipt_handle = Some(format!("receipt-{}", f.id));
        record.body = Some(message_for(f).to_json());
        record.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
        event.records.push(record);
    }
    event
}

fn message_id(f: &TreeFile) -> String {
    format!("bench-{}", f.id)
}

/// Deliveries of a record the worker gave back, at most (SQS's maxReceiveCount is 5 in the
/// template; the first delivery is not counted here).
const REDELIVERIES: u32 = 3;

pub async fn run(args: &MoveArgs) -> Result<()> {
    let files = tree::read_index(&args.root)?;
    let s3 = AwsClients::for_endpoint(&args.s3_endpoint).await.s3;
    match s3.create_bucket().bucket(&args.bucket).send().await {
        Ok(_) => {}
        Err(e) => {
            let code = e.as_service_error().and_then(|s| s.code()).unwrap_or_default();
            if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
                return Err(anyhow::Error::new(e).context("creating the bench bucket"));
            }
        }
    }
    let (manifest, dedup): (Arc<dyn shared::ports::ManifestStore>, Arc<dyn shared::ports::DedupStore>) =
        if args.state == "memory" {
            (Arc::new(MemoryManifest::default()), Arc::new(MemoryDedup::default()))
        } else {
            let clients = AwsClients::for_endpoint(&args.state).await;
            let resources = shared::local::provision(&clients, &format!("bench-{}", args.prefix), 5, 60).await?;
            (
                Arc::new(DynamoManifest::new(clients.dynamodb.clone(), &resources.manifest_table)),
                Arc::new(DynamoDedup::new(clients.dynamodb.clone(), &resources.dedup_table)),
            )
        };
    let settings = WorkerSettings {
        key_template: KeyTemplate::new(&format!("{}/org_{{account_id}}/{{sha256}}{{ext}}", args.prefix))
            .map_err(|e| anyhow::anyhow!("key template: {e}"))?,
        record_concurrency: args.record_concurrency,
        ..WorkerSettings::default()
    };
    let ports = WorkerPorts {
        manifest,
        dedup,
        objects: Arc::new(S3Objects::new(s3.clone(), &args.bucket)),
        dead_letters: Arc::new(MemoryDeadLetters::default()),
        source: Arc::new(MountedSource::new(&args.root)?),
        redelivery: None,
    };
    let worker = Arc::new(Worker::new(settings, ports));
    let batches: Arc<Vec<SqsEvent>> = Arc::new(files.chunks(args.batch_size.clamp(1, 10)).map(|b| event_for(b, 1)).collect());

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut environments = tokio::task::JoinSet::new();
    for _ in 0..args.environments.max(1) {
        let (worker, batches, next) = (worker.clone(), batches.clone(), next.clone());
        environments.spawn(async move {
            let mut failed = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(event) = batches.get(i) else { return failed };
                let response = worker.handle_batch(event.clone()).await;
                failed.extend(response.batch_item_failures.into_iter().map(|f| f.item_identifier));
            }
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = environments.join_next().await {
        failed.extend(done.context("an environment task panicked")?);
    }
    // Choice: a record the worker gives back (a retryable failure, e.g. the emulator failing a
    // request) is delivered again, as SQS would, and the redeliveries are counted and timed
    // with the rest: retries are part of the work. The reasons are logged (warn level).
    let mut redelivered = 0usize;
    for receive_count in 2..=REDELIVERIES + 1 {
        if failed.is_empty() {
            break;
        }
        redelivered += failed.len();
        let again: std::collections::HashSet<String> = failed.drain(..).collect();
        let retry: Vec<&TreeFile> = files.iter().filter(|f| again.contains(&message_id(f))).collect();
        for batch in retry.chunks(args.batch_size.clamp(1, 10)) {
            let response = worker.handle_batch(event_for(batch.iter().copied(), receive_count)).await;
            failed.extend(response.batch_item_failures.into_iter().map(|f| f.item_identifier));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    if !failed.is_empty() {
        bail!(
            "{} records were still given back after {REDELIVERIES} redeliveries (first: {:?}); the run is not a valid measurement",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
    }
    let settled = worker.metrics.take();
    let moved = settled.sum("FilesMoved").unwrap_or(0.0) as u64;
    let deduplicated = settled.sum("FilesDeduplicated").unwrap_or(0.0) as u64;
    let expected = tree::distinct_contents(&files);
    let stored = count_objects(&s3, &args.bucket, &format!("{}/", args.prefix)).await?;
    if moved != expected || stored != expected || moved + deduplicated != files.len() as u64 {
        bail!(
            "the run does not match the tree: {moved} moved + {deduplicated} deduplicated of {} files, {stored} objects stored, {expected} distinct contents expected",
            files.len()
        );
    }
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let line = serde_json::json!({
        "files": files.len(), "bytes": bytes, "moved": moved, "deduplicated": deduplicated, "objects": stored,
        "wall_s": wall, "files_per_s": files.len() as f64 / wall, "mib_per_s": bytes as f64 / wall / (1u64 << 20) as f64,
        "environments": args.environments, "state": if args.state == "memory" { "memory" } else { "dynamodb" },
        "redelivered": redelivered,
    });
    println!("{line}");
    Ok(())
}

async fn count_objects(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<u64> {
    let mut count = 0;
    let mut token = None;
    loop {
        let page = s3.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token).send().await?;
        count += page.contents().len() as u64;
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(count),
        }
    }
}
