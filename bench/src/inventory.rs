//! The inventory over a generated legacy database, sending through a queue port that counts
//! requests and the wall time spent waiting on them. With `--queue memory` nothing leaves the
//! process (rows resolved per second with no emulator at all); with an endpoint URL every
//! batch goes to that SQS over the real protocol, and the time waiting on it is subtracted.

use anyhow::{bail, Result};
use async_trait::async_trait;
use shared::adapters::memory::{MemoryManifest, MemoryRuns};
use shared::adapters::sqs::SqsSender;
use shared::config::AwsClients;
use shared::error::PortError;
use shared::inventory::{Inventory, InventoryRequest};
use shared::paths::PathRules;
use shared::ports::WorkQueue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    #[arg(long, env = "LEGACY_DATABASE_URL")]
    pub legacy_url: String,
    /// `memory`, or an SQS endpoint URL (a queue is created there).
    #[arg(long, default_value = "memory")]
    pub queue: String,
    #[arg(long, default_value_t = 1000)]
    pub page_size: u32,
    #[arg(long, default_value_t = 16)]
    pub send_concurrency: usize,
}

const SQS_MAX_ENTRIES: usize = 10;
const SQS_MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Counts SendMessageBatch requests and entries, refuses batches SQS would refuse, and
/// measures the wall time during which at least one send is in flight.
struct CountingQueue {
    inner: Option<Arc<dyn WorkQueue>>,
    requests: AtomicU64,
    messages: AtomicU64,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    in_flight: usize,
    since: Option<Instant>,
    total: Duration,
}

impl CountingQueue {
    fn enter(&self) {
        let mut w = self.waiting.lock().expect("not poisoned");
        if w.in_flight == 0 {
            w.since = Some(Instant::now());
        }
        w.in_flight += 1;
    }

    fn leave(&self) {
        let mut w = self.waiting.lock().expect("not poisoned");
        w.in_flight -= 1;
        if w.in_flight == 0 {
            let since = w.since.take().expect("set on entry");
            w.total += since.elapsed();
        }
    }
}

#[async_trait]
impl WorkQueue for CountingQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<(), PortError> {
        let bytes: usize = bodies.iter().map(String::len).sum();
        if bodies.is_empty() || bodies.len() > SQS_MAX_ENTRIES || bytes > SQS_MAX_BATCH_BYTES {
            return Err(PortError::permanent("send batch", format!("SQS would refuse {} entries of {bytes} bytes", bodies.len())));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.messages.fetch_add(bodies.len() as u64, Ordering::Relaxed);
        let Some(inner) = &self.inner else { return Ok(()) };
        self.enter();
        let sent = inner.send_batch(bodies).await;
        self.leave();
        sent
    }

    async fn depth(&self) -> Result<(u64, u64), PortError> {
        match &self.inner {
            Some(inner) => inner.depth().await,
            None => Ok((0, 0)),
        }
    }
}

pub async fn run(args: &InventoryArgs) -> Result<()> {
    let legacy = sqlx::mysql::MySqlPoolOptions::new().max_connections(4).connect(&args.legacy_url).await?;
    let customers: Vec<(u64,)> = sqlx::query_as("SELECT CAST(id AS UNSIGNED) FROM customer").fetch_all(&legacy).await?;
    let accounts: HashMap<u64, String> = customers.into_iter().map(|(id,)| (id, format!("{}", 1000 + id))).collect();
    let inner: Option<Arc<dyn WorkQueue>> = if args.queue == "memory" {
        None
    } else {
        let clients = AwsClients::for_endpoint(&args.queue).await;
        let resources = shared::local::provision(&clients, "bench-inventory", 5, 60).await?;
        Some(Arc::new(SqsSender::new(clients.sqs.clone(), &resources.queue_url)))
    };
    let queue = Arc::new(CountingQueue { inner, requests: AtomicU64::new(0), messages: AtomicU64::new(0), waiting: Mutex::default() });
    let inventory = Inventory {
        legacy,
        accounts,
        rules: PathRules::default(),
        manifest: Arc::new(MemoryManifest::default()),
        queue: queue.clone(),
        runs: Arc::new(MemoryRuns::default()),
        page_size: args.page_size,
        send_concurrency: args.send_concurrency,
        max_queue_depth: None,
        source: None,
    };
    let started = Instant::now();
    let response = inventory.run(&InventoryRequest::default(), None).await?;
    let wall = started.elapsed().as_secs_f64();
    if !response.done {
        bail!("the inventory stopped before the end: {:?}", response.cursor);
    }
    let t = &response.totals;
    let (requests, messages) = (queue.requests.load(Ordering::Relaxed), queue.messages.load(Ordering::Relaxed));
    if messages != t.sent {
        bail!("the queue saw {messages} messages but the inventory counted {} sent", t.sent);
    }
    let waiting = queue.waiting.lock().expect("not poisoned").total.as_secs_f64();
    let own = (wall - waiting).max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "rows": t.rows, "sent": t.sent, "with_problem": t.sent_with_problem, "sqs_requests": requests,
            "sqs_requests_per_file": requests as f64 / t.sent.max(1) as f64,
            "wall_s": wall, "waiting_on_sqs_s": waiting, "rows_per_s_excluding_sqs": t.rows as f64 / own,
            "queue": if args.queue == "memory" { "memory" } else { "sqs" },
        })
    );
    Ok(())
}
