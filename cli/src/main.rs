//! `dtx-migrate`: the operator's command line. Every command is one action with a clear
//! answer; locally the same commands run the Lambda handlers against an emulator.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use shared::config::{path_rules_from_env, AwsClients, Resources};
use shared::forecast::{forecast_with_limits, Deployment, Prices, ServiceLimits, Workload, MEASURED};
use shared::inventory::{Inventory, InventoryRequest};
use shared::local::{self, LocalEventSource};
use shared::manifest::{self, ManifestSummary};
use shared::model::Area;
use shared::ports::ManifestStore;
use shared::source::LegacySource;
use shared::worker::WorkerSettings;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "dtx-migrate", version, about = "Moves DTX 1.0 files from EFS to S3 and tracks every file in a manifest")]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

/// Where the AWS resources are.
#[derive(Args)]
struct Target {
    /// A stack deployed from template.yaml: its resources (bucket, queues, tables) are read
    /// from its CloudFormation outputs, and `load` invokes its loader function.
    #[arg(long, env = "DTX_STACK", global = true)]
    stack: Option<String>,
    /// A local emulator endpoint (e.g. moto). With it, resources are named from --prefix and
    /// created on demand; without it, they come from BUCKET_NAME, QUEUE_URL, ... in the environment.
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    endpoint: Option<String>,
    /// Name prefix of the local resources.
    #[arg(long, env = "DTX_LOCAL_PREFIX", default_value = "dtx-local", global = true)]
    prefix: String,
    /// Local only: deliveries before SQS moves a message to the DLQ.
    #[arg(long, default_value_t = 3, global = true)]
    max_receive_count: u32,
    /// Local only: the queue's visibility timeout, i.e. seconds before a failed (or still
    /// running) delivery is handed out again. The emulator is slow, so keep it well above a
    /// batch's processing time or deliveries get duplicated (harmless, but wasted work).
    #[arg(long, default_value_t = 30, global = true)]
    visibility_timeout: u32,
}

#[derive(Subcommand)]
enum Command {
    /// Local stack management.
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
    /// Generate a sample legacy database, EFS tree and account mapping.
    Sample {
        #[command(subcommand)]
        command: SampleCommand,
    },
    /// Read the legacy rows and enqueue one message per file (or report, with --dry-run).
    Inventory(InventoryArgs),
    /// The whole file move, locally: inventory plus workers polling the queue until it drains.
    Move(MoveArgs),
    /// Run a record-loader step (locally: the loader handler in this process), following its
    /// cursor until the step is done.
    Load(LoadArgs),
    /// The file manifest.
    Manifest {
        #[command(subcommand)]
        command: ManifestCommand,
    },
    /// Where the file move stands: queue and DLQ depths, manifest counts by status and area,
    /// bytes moved, dedup savings, the last minute's throughput and an ETA.
    Status(StatusArgs),
    /// The dead-letter queue: list its messages (without consuming them) or move them back.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The migration report: the file move's figures, sizes, throughput over time and issues
    /// by reason (the DLQ's and the loader's); with --html, one self-contained page of charts.
    Report(ReportArgs),
    /// Send again the files whose manifest status is one of --status (e.g. `missing` after
    /// files were restored on EFS, or `failed`). Locally the workers run until the queue drains.
    Rerun(RerunArgs),
    /// Forecast the production move from an inventory dry run (or a file count and total
    /// size) and the template's parameters: wall time and what limits it, Lambda GB-seconds,
    /// AWS requests per file, EFS bytes read per byte moved, the bill against its floor, and
    /// issue 7's targets. Needs no AWS access.
    Plan(PlanArgs),
}

#[derive(Args)]
struct PlanArgs {
    /// The JSON that `inventory --dry-run --json` prints (or the bare dry-run report in it).
    #[arg(long, value_name = "FILE", required_unless_present = "files", conflicts_with_all = ["files", "bytes"])]
    dry_run_report: Option<PathBuf>,
    /// Without a report: the number of files, sized like a document store (see --bytes).
    #[arg(long, requires = "bytes")]
    files: Option<u64>,
    /// Without a report: their total size, e.g. 2.2TB, 500GiB or a byte count.
    #[arg(long, requires = "files", value_parser = shared::forecast::parse_size)]
    bytes: Option<u64>,
    /// Share of the found files whose content another file stores first (unknown before the
    /// move; 0 to below 1).
    #[arg(long, default_value_t = shared::forecast::DEFAULT_DUPLICATE_FRACTION, value_parser = parse_fraction)]
    duplicate_fraction: f64,
    /// Distinct account prefixes (org_<id>/): S3's request rates apply per prefix.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    accounts: u64,
    /// MaximumConcurrency: concurrent worker invocations.
    #[arg(long, default_value_t = Deployment::default().concurrency, value_parser = clap::value_parser!(u32).range(2..=1000))]
    concurrency: u32,
    /// WorkerMemorySize in MB.
    #[arg(long, default_value_t = Deployment::default().memory_mb, value_parser = clap::value_parser!(u32).range(128..=10240))]
    memory_mb: u32,
    /// BatchSize: messages per invocation.
    #[arg(long, default_value_t = Deployment::default().batch_size, value_parser = clap::value_parser!(u32).range(1..=10))]
    batch_size: u32,
    /// RecordConcurrency: records of a batch processed at once.
    #[arg(long, default_value_t = Deployment::default().record_concurrency, value_parser = clap::value_parser!(u32).range(1..=10))]
    record_concurrency: u32,
    /// MultipartThresholdBytes (e.g. 64MiB).
    #[arg(long, default_value_t = Deployment::default().multipart_threshold, value_parser = shared::forecast::parse_size)]
    multipart_threshold: u64,
    /// PartSizeBytes (e.g. 16MiB).
    #[arg(long, default_value_t = Deployment::default().part_size, value_parser = shared::forecast::parse_size)]
    part_size: u64,
    /// PartConcurrency: parts of one file in flight.
    #[arg(long, default_value_t = Deployment::default().part_concurrency, value_parser = clap::value_parser!(u32).range(1..=16))]
    part_concurrency: u32,
    /// WorkerTimeout in seconds.
    #[arg(long, default_value_t = Deployment::default().timeout_s, value_parser = clap::value_parser!(u32).range(30..=900))]
    timeout: u32,
    /// EFS read throughput per second (default: Elastic's 20 GiB/s; a Bursting file system of
    /// 2 TiB gives ~100 MiB/s, e.g. --efs-read-throughput 100MiB).
    #[arg(long, value_name = "SIZE", value_parser = shared::forecast::parse_size)]
    efs_read_throughput: Option<u64>,
    /// Write units a second each DynamoDB table takes (default: a new on-demand table's
    /// 4,000; the template's TableWarmWriteUnits when the tables are pre-warmed).
    #[arg(long, value_name = "WRU", value_parser = clap::value_parser!(u64).range(1..))]
    table_write_units: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?}: a fraction of at least 0 and below 1, e.g. 0.2")),
    }
}

#[derive(Args)]
struct StatusArgs {
    /// Refresh until interrupted (Ctrl-C), with a progress bar.
    #[arg(long)]
    watch: bool,
    /// Seconds between refreshes with --watch. Each refresh reads the whole manifest.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// With --watch: stop once the work queue is empty (nothing visible or in flight).
    #[arg(long)]
    until_empty: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// Also write the report as one self-contained HTML page (inline SVG charts, no script).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Where the loader's migration_issues.csv is (directory or s3:// prefix), if it has run.
    #[arg(long, env = "REPORT_DIR")]
    report_dir: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// The DLQ's messages grouped by reason (missing, rejected, exhausted_retries with the
    /// manifest's last error), with their files; nothing is consumed.
    List {
        /// Only this reason.
        #[arg(long, value_parser = ["missing", "rejected", "exhausted_retries"])]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Move messages back to the work queue: all of them (on AWS with SQS's
    /// StartMessageMoveTask) or those of one reason (one by one: send, then delete).
    Redrive {
        #[arg(long, value_parser = ["missing", "rejected", "exhausted_retries"])]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct RerunArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Manifest statuses to send again (repeatable).
    #[arg(long = "status", required = true, value_parser = parse_rerun_status)]
    statuses: Vec<shared::model::FileStatus>,
    /// Only these areas (repeatable): certificates, documents, filerepo, logos.
    #[arg(long = "area", value_parser = parse_area)]
    areas: Vec<Area>,
    /// Local: concurrent pollers running the worker handler.
    #[arg(long, default_value_t = 4)]
    pollers: usize,
    /// Local: messages per batch.
    #[arg(long, default_value_t = 10)]
    batch_size: i32,
    #[arg(long)]
    json: bool,
}

fn parse_rerun_status(s: &str) -> Result<shared::model::FileStatus, String> {
    use shared::model::FileStatus;
    match s {
        "missing" => Ok(FileStatus::Missing),
        "failed" => Ok(FileStatus::Failed),
        "rejected" => Ok(FileStatus::Rejected),
        "in_progress" => Ok(FileStatus::InProgress),
        _ => Err(format!("{s:?}: a rerun takes missing, failed, rejected or in_progress (stored files are re-sent with `inventory --force`)")),
    }
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Create the bucket, queues (with the redrive policy) and tables on the local endpoint.
    Up,
}

#[derive(Subcommand)]
enum SampleCommand {
    Generate(SampleArgs),
}

#[derive(Args)]
struct SampleArgs {
    #[arg(long, env = "LEGACY_DATABASE_URL", hide_env_values = true)]
    legacy_url: String,
    #[arg(long, env = "EFS_ROOT")]
    efs_root: PathBuf,
    #[arg(long, env = "MAPPINGS_DIR")]
    mappings_dir: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 120)]
    certificates: u32,
    #[arg(long, default_value_t = 60)]
    documents: u32,
    #[arg(long, default_value_t = 40)]
    filerepo_files: u32,
    #[arg(long, default_value_t = 6)]
    customers: u32,
    /// Size of the one file above the multipart threshold (0: none).
    #[arg(long, default_value_t = 70 * 1024 * 1024)]
    large_file_bytes: u64,
    /// Write the expected outcome of every file here (JSON).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Also create the DTX 2.0 mirror tables in this PostgreSQL database and insert the
    /// Area 1-3 and 6 stand-in rows (accounts, users, records, assignments, COI profiles) the
    /// loader's foreign keys point at.
    #[arg(long, env = "TARGET_DATABASE_URL", hide_env_values = true)]
    target_url: Option<String>,
    /// Also write id_mapping_coi_profiles.csv (as if Area 6 had run).
    #[arg(long)]
    coi_profiles: bool,
}

/// What running the inventory (or the workers) in this process needs; with --stack the
/// deployed functions use their own configuration instead.
#[derive(Args, Clone)]
struct SourceArgs {
    #[arg(long, env = "LEGACY_DATABASE_URL", hide_env_values = true)]
    legacy_url: Option<String>,
    /// The mounted file system holding the legacy files (DTX 1.0's /efsdata).
    #[arg(long, env = "EFS_ROOT")]
    efs_root: Option<PathBuf>,
    /// Instead of --efs-root: the staging bucket the legacy files were synced to,
    /// s3://bucket/prefix (the prefix stands for /efsdata).
    #[arg(long, env = "SOURCE_URI", conflicts_with = "efs_root")]
    source_uri: Option<String>,
    /// Directory or s3:// prefix holding id_mapping_accounts.csv.
    #[arg(long, env = "MAPPINGS_DIR")]
    mappings_dir: Option<String>,
    /// Rows per page.
    #[arg(long, default_value_t = 500)]
    page_size: u32,
}

#[derive(Args)]
struct InventoryArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    run: RunFlags,
    /// Send nothing; report files found, missing and orphaned.
    #[arg(long)]
    dry_run: bool,
    /// Stop after this many pages; the next run continues from the stored cursor.
    #[arg(long)]
    max_pages: Option<u64>,
    /// Invoke this deployed inventory function (with --stack: `<stack>-inventory`) instead of
    /// running the inventory here, following its continuations until the run is done.
    #[arg(long, env = "DTX_INVENTORY_FUNCTION")]
    function: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MoveArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Concurrent pollers, each handing batches to the worker handler.
    #[arg(long, default_value_t = 4)]
    pollers: usize,
    /// Messages per batch (Lambda's BatchSize).
    #[arg(long, default_value_t = 10)]
    batch_size: i32,
    #[command(flatten)]
    run: RunFlags,
    /// Where to write file_manifest.csv and the report afterwards.
    #[arg(long, env = "REPORT_DIR")]
    report_dir: Option<PathBuf>,
}

/// What the inventory sends.
#[derive(Args)]
struct RunFlags {
    /// Re-send files the manifest already settled.
    #[arg(long)]
    force: bool,
    /// Start from the first row instead of the stored cursor.
    #[arg(long)]
    restart: bool,
    /// Only these areas (repeatable): certificates, documents, filerepo, logos.
    #[arg(long = "area", value_parser = parse_area)]
    areas: Vec<Area>,
}

impl RunFlags {
    fn request(&self, dry_run: bool, max_pages: Option<u64>) -> InventoryRequest {
        InventoryRequest { dry_run, force: self.force, restart: self.restart, areas: self.areas.clone(), max_pages, ..Default::default() }
    }
}

#[derive(Args)]
struct LoadArgs {
    /// The step's name or spec number (e.g. `validate` or `1`), or `all` for every step in order.
    #[arg(long, required_unless_present = "rollback", conflicts_with = "rollback")]
    step: Option<String>,
    /// Undo what the given steps created, for rehearsals (`all`, a step, or a comma-separated
    /// list): rows are removed through the bookkeeping maps in reverse dependency order, values
    /// the steps overwrote are restored, pre-existing rows are kept. Refused, naming them, while
    /// rows of later steps still depend on what would go. With --dry-run: report only.
    #[arg(long, value_name = "STEPS|all")]
    rollback: Option<String>,
    /// Report what the step would do without writing to the target.
    #[arg(long)]
    dry_run: bool,
    /// With `--step all`: also run the optional `audit-history` step.
    #[arg(long)]
    with_audit_history: bool,
    /// Invoke this deployed loader function instead of running the handler here (the function
    /// reads its databases, mappings and report location from its own configuration). With
    /// --stack, the stack's loader (`<stack>-loader`) is invoked.
    #[arg(long, env = "DTX_LOADER_FUNCTION")]
    function: Option<String>,
    /// Local: legacy rows per chunk (one transaction each). The deployed function uses its
    /// LoaderChunkRows parameter.
    #[arg(long, default_value_t = 5000)]
    chunk_rows: u32,
    #[arg(long, env = "LEGACY_DATABASE_URL", hide_env_values = true)]
    legacy_url: Option<String>,
    #[arg(long, env = "TARGET_DATABASE_URL", hide_env_values = true)]
    target_url: Option<String>,
    /// Directory or s3:// prefix holding the id_mapping_*.csv files of Areas 1-3 (and 6).
    #[arg(long, env = "MAPPINGS_DIR")]
    mappings_dir: Option<String>,
    /// Directory or s3:// prefix for migration_report.txt, migration_issues.csv, id mappings.
    #[arg(long, env = "REPORT_DIR", default_value = ".")]
    report_dir: String,
    /// The migrated files' bucket, which `verify` checks every file field against. Locally it
    /// defaults to the emulator's bucket (--prefix).
    #[arg(long, env = "BUCKET_NAME")]
    bucket: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Write file_manifest.csv and print counts by status and the dedup savings.
    Export {
        #[arg(long, env = "REPORT_DIR", default_value = ".")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check every stored row against its S3 object's stored checksum.
    Verify,
}

fn parse_area(s: &str) -> Result<Area, String> {
    s.parse()
}

#[tokio::main]
async fn main() -> Result<()> {
    shared::telemetry::init();
    let cli = Cli::parse();
    match &cli.command {
        Command::Local { command: LocalCommand::Up } => {
            let (_, resources) = connect(&cli.target).await?;
            println!("{}", serde_json::to_string_pretty(&resources_json(&resources))?);
        }
        Command::Sample { command: SampleCommand::Generate(args) } => sample(args).await?,
        Command::Inventory(args) => inventory(&cli.target, args).await?,
        Command::Move(args) => run_move(&cli.target, args).await?,
        Command::Load(args) => load(&cli.target, args).await?,
        Command::Manifest { command: ManifestCommand::Export { out, json } } => {
            let (clients, resources) = connect(&cli.target).await?;
            let summary = export(&clients, &resources, out).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.render_text());
            }
        }
        Command::Status(args) => status(&cli.target, args).await?,
        Command::Dlq { command } => dlq(&cli.target, command).await?,
        Command::Rerun(args) => rerun(&cli.target, args).await?,
        Command::Report(args) => report(&cli.target, args).await?,
        Command::Plan(args) => plan(args)?,
        Command::Manifest { command: ManifestCommand::Verify } => {
            let (clients, resources) = connect(&cli.target).await?;
            if !verify(&clients, &resources).await? {
                bail!("verification failed");
            }
        }
    }
    Ok(())
}

fn resources_json(r: &Resources) -> serde_json::Value {
    serde_json::json!({
        "bucket": r.bucket, "queue_url": r.queue_url, "dlq_url": r.dlq_url,
        "manifest_table": r.manifest_table, "dedup_table": r.dedup_table, "runs_table": r.runs_table,
    })
}

/// Clients and resource names: a deployed stack's outputs, local (created on demand), or the
/// environment.
async fn connect(target: &Target) -> Result<(AwsClients, Resources)> {
    if let Some(stack) = &target.stack {
        let clients = match &target.endpoint {
            Some(endpoint) => AwsClients::for_endpoint(endpoint).await,
            None => AwsClients::from_env().await,
        };
        use shared::adapters::cloudformation::{resources_from_outputs, stack_outputs};
        let outputs = stack_outputs(&clients.cloudformation, stack).await.with_context(|| format!("reading the outputs of stack {stack}"))?;
        let resources = resources_from_outputs(stack, &outputs)?;
        return Ok((clients, resources));
    }
    match &target.endpoint {
        Some(endpoint) => {
            let clients = AwsClients::for_endpoint(endpoint).await;
            let resources = local::provision(&clients, &target.prefix, target.max_receive_count, target.visibility_timeout)
                .await
                .with_context(|| format!("creating the local stack on {endpoint} (is the emulator running? infra/local/moto.sh start)"))?;
            Ok((clients, resources))
        }
        None => Ok((AwsClients::from_env().await, Resources::from_env()?)),
    }
}

async fn sample(args: &SampleArgs) -> Result<()> {
    let pool = shared::legacy::connect(&args.legacy_url, 4).await?;
    let spec = shared::sample::SampleSpec {
        seed: args.seed,
        customers: args.customers,
        certificates: args.certificates,
        documents: args.documents,
        filerepo_files: args.filerepo_files,
        large_file_bytes: args.large_file_bytes,
        ..Default::default()
    };
    let summary = shared::sample::generate(&pool, &args.efs_root, &args.mappings_dir, &spec).await?;
    if args.coi_profiles {
        shared::sample::write_coi_profile_mapping(&args.mappings_dir, &summary)?;
    }
    if let Some(url) = &args.target_url {
        let target = shared::loader::connect::target_from_url(url, 2).await?;
        shared::loader::connect::apply_target_mirror(&target).await.context("creating the DTX 2.0 mirror tables")?;
        shared::sample::seed_target(&target, &summary).await?;
    }
    if let Some(path) = &args.summary {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)?;
    }
    let present = summary.expected.values().filter(|e| matches!(e.outcome, shared::sample::ExpectedOutcome::Present { .. })).count();
    println!(
        "sample: {} source files ({} present), {} orphan files, rows: {:?}, unmapped customers: {:?}",
        summary.expected.len(),
        present,
        summary.orphan_files.len(),
        summary.legacy_rows,
        summary.unmapped_customer_ids
    );
    Ok(())
}

impl SourceArgs {
    fn source(&self, clients: &AwsClients) -> Result<LegacySource> {
        LegacySource::configure(self.efs_root.as_deref(), self.source_uri.as_deref(), &clients.s3)?.context(
            "running here needs the legacy files: --efs-root / EFS_ROOT (the mounted file system) or --source-uri / \
             SOURCE_URI (a staging bucket), or --stack to use the deployed functions",
        )
    }
}

async fn build_inventory(clients: &AwsClients, resources: &Resources, args: &SourceArgs, local: bool) -> Result<Inventory> {
    let need = |value: &Option<String>, what: &str| value.clone().with_context(|| format!("running the inventory here needs {what} (or --stack to invoke the deployed one)"));
    let legacy_url = need(&args.legacy_url, "--legacy-url / LEGACY_DATABASE_URL")?;
    let mappings_dir = need(&args.mappings_dir, "--mappings-dir / MAPPINGS_DIR")?;
    let legacy = shared::legacy::connect(&legacy_url, 4).await.context("connecting to the legacy database")?;
    shared::legacy::validate_schema(&legacy, shared::legacy::LEGACY_DDL, &shared::legacy::FILE_MOVE_TABLES).await?;
    let accounts = shared::mappings::load_accounts(&clients.s3, &mappings_dir).await?;
    let source = args.source(clients)?;
    let options = shared::wiring::InventoryOptions {
        page_size: args.page_size,
        send_concurrency: 8,
        // The emulator slows down as a queue fills; AWS does not need this.
        max_queue_depth: local.then_some(200),
    };
    Ok(shared::wiring::inventory(clients, resources, legacy, accounts, path_rules_from_env()?, Some(source), options))
}

async fn inventory(target: &Target, args: &InventoryArgs) -> Result<()> {
    let (clients, resources) = connect(target).await?;
    let request = args.run.request(args.dry_run, args.max_pages);
    let function = args.function.clone().or_else(|| target.stack.as_ref().map(|s| format!("{s}-inventory")));
    let response = match function {
        // The deployed function, invoked until its run is done (it stops before its deadline).
        Some(function) => {
            let json = args.json;
            shared::inventory::drive_remote(&clients.lambda, &function, &request, |r| {
                if !r.done && !json {
                    eprintln!("inventory: {} rows, {} sent so far; continuing from {:?}", r.totals.rows, r.totals.sent, r.cursor);
                }
            })
            .await?
        }
        None => build_inventory(&clients, &resources, &args.source, target.endpoint.is_some()).await?.run(&request, None).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else if let Some(report) = &response.report {
        print!("{}", report.render_text());
    } else {
        let t = &response.totals;
        let state = if response.done { "done" } else { "paused (run again to continue)" };
        println!(
            "inventory {state}: {} rows, {} messages sent ({} carry a problem the worker will reject), {} skipped as already settled, {} outside the areas",
            t.rows, t.sent, t.sent_with_problem, t.skipped_settled, t.skipped_area
        );
        if let Some(c) = response.cursor {
            println!("cursor: {:?} after id {}", c.phase, c.after_id);
        }
    }
    Ok(())
}

/// `plan`: the forecast, from a dry-run report or a synthetic workload. No AWS access.
fn plan(args: &PlanArgs) -> Result<()> {
    let mut workload = match (&args.dry_run_report, args.files, args.bytes) {
        (Some(path), _, _) => Workload::from_dry_run(&read_dry_run_report(path)?)?,
        (None, Some(files), Some(bytes)) => Workload::synthetic(files, bytes)?,
        // clap requires one or the other; say so rather than guess.
        _ => bail!("plan needs --dry-run-report FILE, or --files N with --bytes SIZE"),
    };
    workload.duplicate_fraction = args.duplicate_fraction;
    workload.accounts = args.accounts;
    let deployment = Deployment {
        concurrency: args.concurrency,
        memory_mb: args.memory_mb,
        batch_size: args.batch_size,
        record_concurrency: args.record_concurrency,
        multipart_threshold: args.multipart_threshold,
        part_size: args.part_size,
        part_concurrency: args.part_concurrency,
        timeout_s: args.timeout,
        ..Deployment::default()
    };
    let documented = ServiceLimits::DOCUMENTED;
    let limits = ServiceLimits {
        efs_read_bytes_per_s: args.efs_read_throughput.map_or(documented.efs_read_bytes_per_s, |b| b as f64),
        dynamodb_table_write_units_per_s: args.table_write_units.map_or(documented.dynamodb_table_write_units_per_s, |u| u as f64),
        ..documented
    };
    let forecast = forecast_with_limits(&workload, &deployment, &MEASURED, &Prices::US_EAST_1, &limits)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&forecast)?);
    } else {
        print!("{}", forecast.render_text());
    }
    Ok(())
}

/// The dry-run report in `inventory --dry-run --json`'s output (its `report` field), or a
/// bare report.
fn read_dry_run_report(path: &Path) -> Result<shared::inventory::DryRunReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let report = match json.get("report") {
        Some(serde_json::Value::Null) => {
            bail!("{} is an inventory answer without a dry-run report (run `inventory --dry-run --json`)", path.display())
        }
        Some(report) => report.clone(),
        None if json.get("done").is_some() => {
            bail!("{} is an inventory answer without a dry-run report (run `inventory --dry-run --json`)", path.display())
        }
        None => json,
    };
    serde_json::from_value(report).with_context(|| format!("{} does not hold a dry-run report", path.display()))
}

async fn run_move(target: &Target, args: &MoveArgs) -> Result<()> {
    if target.endpoint.is_none() {
        bail!("`move` runs the workers locally and needs --endpoint (AWS_ENDPOINT_URL); on AWS the deployed workers do this");
    }
    let (clients, resources) = connect(target).await?;
    let request = args.run.request(false, None);
    move_locally(&clients, &resources, &args.source, (args.pollers, args.batch_size), &request, args.report_dir.as_deref()).await
}

/// The inventory (or a rerun) and local workers until the queue drains, then the report.
async fn move_locally(
    clients: &AwsClients,
    resources: &Resources,
    source_args: &SourceArgs,
    (pollers, batch_size): (usize, i32),
    request: &InventoryRequest,
    report_dir: Option<&Path>,
) -> Result<()> {
    let inventory = build_inventory(clients, resources, source_args, true).await?;
    let settings = WorkerSettings::from_env()?;
    let source = source_args.source(clients)?;
    let worker = Arc::new(shared::wiring::worker(clients, resources, settings, Arc::new(source)));
    let esm = LocalEventSource {
        sqs: clients.sqs.clone(),
        queue_url: resources.queue_url.clone(),
        queue_arn: local::queue_arn(clients, &resources.queue_url).await?,
        batch_size,
        pollers,
        worker,
    };
    let manifest = shared::wiring::manifest(clients, resources);
    let before = ManifestSummary::from_records(&manifest.scan_all().await?);
    let run = local::run_move(&inventory, request, esm).await?;
    let records = manifest.scan_all().await?;
    let summary = ManifestSummary::from_records(&records);
    println!("=== File move (local) ===");
    if request.rerun.is_empty() {
        println!(
            "Inventory: {} rows, {} messages sent, {} skipped as already settled",
            run.inventory.rows, run.inventory.sent, run.inventory.skipped_settled
        );
    } else {
        println!(
            "Rerun ({}): {} rows, {} messages sent, {} files with another status skipped",
            request.run_id(),
            run.inventory.rows,
            run.inventory.sent,
            run.inventory.skipped_status
        );
    }
    println!(
        "Workers: {} batches, {} deliveries ({} given back for retry) in {:.1} s",
        run.batches, run.deliveries, run.retried_deliveries, run.elapsed_s
    );
    let stored = |s: &ManifestSummary| s.count(shared::model::FileStatus::Moved) + s.count(shared::model::FileStatus::Deduplicated);
    let (files, bytes) = (stored(&summary) - stored(&before), summary.bytes_moved - before.bytes_moved);
    if run.elapsed_s > 0.0 {
        println!(
            "This run stored {files} files, uploaded {:.2} MiB: {:.1} files/s, {:.2} MiB/s",
            bytes as f64 / 1048576.0,
            files as f64 / run.elapsed_s,
            bytes as f64 / 1048576.0 / run.elapsed_s
        );
    }
    print!("{}", summary.render_text());
    let dead = shared::wiring::dead_letter_queue(clients, resources).list().await?;
    let by_reason: std::collections::BTreeMap<&str, usize> =
        shared::adapters::dlq::by_reason(&dead).into_iter().map(|(reason, letters)| (reason, letters.len())).collect();
    println!(
        "Dead-letter queue: {} messages {by_reason:?}{} (dtx-migrate dlq list)",
        by_reason.values().sum::<usize>(),
        duplicates_note(&dead)
    );
    if let Some(dir) = report_dir {
        std::fs::create_dir_all(dir)?;
        write_manifest_csv(&records, dir)?;
        println!("Wrote {}", dir.join("file_manifest.csv").display());
    }
    Ok(())
}

/// The queues' depths and the whole manifest, read once, as `status` and `report` use them.
async fn move_snapshot(clients: &AwsClients, resources: &Resources) -> Result<(shared::status::MoveStatus, Vec<shared::manifest::ManifestRecord>)> {
    let queue = shared::adapters::sqs::queue_depth(&clients.sqs, &resources.queue_url).await?;
    let dlq = shared::adapters::sqs::queue_depth(&clients.sqs, &resources.dlq_url).await?;
    let records = shared::wiring::manifest(clients, resources).scan_all().await?;
    Ok((shared::status::MoveStatus::new(queue, dlq, &records, chrono::Utc::now()), records))
}

async fn move_status(clients: &AwsClients, resources: &Resources) -> Result<shared::status::MoveStatus> {
    Ok(move_snapshot(clients, resources).await?.0)
}

async fn status(target: &Target, args: &StatusArgs) -> Result<()> {
    let (clients, resources) = connect(target).await?;
    let print = |s: &shared::status::MoveStatus| -> Result<()> {
        if args.json {
            println!("{}", serde_json::to_string(s)?);
        } else {
            print!("{}", s.render_text());
        }
        Ok(())
    };
    if !args.watch {
        return print(&move_status(&clients, &resources).await?);
    }
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files settled  {msg}").context("progress bar template")?,
    );
    loop {
        let s = move_status(&clients, &resources).await?;
        let queued = s.queue_visible + s.queue_in_flight;
        // Files known so far: the manifest's rows plus messages not yet picked up.
        bar.set_length(s.manifest.rows + s.queue_visible);
        bar.set_position(s.settled());
        let eta = s.eta_seconds.map(|e| format!(", ETA {}m{:02}s", e / 60, e % 60)).unwrap_or_default();
        bar.set_message(format!(
            "queue {queued}, DLQ {}, {:.1} files/s, {} in the last minute{eta}",
            s.dlq_visible + s.dlq_in_flight,
            s.files_per_second,
            shared::manifest::human_bytes(s.bytes_last_minute)
        ));
        if args.until_empty && queued == 0 {
            bar.finish();
            return print(&s);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(args.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.finish();
                return print(&s);
            }
        }
    }
}

async fn report(target: &Target, args: &ReportArgs) -> Result<()> {
    let (clients, resources) = connect(target).await?;
    let (status, records) = move_snapshot(&clients, &resources).await?;
    let letters = shared::wiring::dead_letter_queue(&clients, &resources).list().await?;
    let now = chrono::Utc::now();
    let issues = match &args.report_dir {
        Some(dir) => match shared::loader::output::ReportSink::new(dir, &clients.s3).read("migration_issues.csv").await {
            Ok((bytes, _)) => Some(bytes),
            Err(e) => {
                eprintln!("loader issues not included ({e})");
                None
            }
        },
        None => None,
    };
    let report = shared::report::MigrationReport::build(status, &records, &letters, issues.as_deref(), now)
        .context("reading the loader's migration_issues.csv")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report.render_html()).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `, plus N duplicate copies …` when the DLQ holds copies of its messages, else nothing.
fn duplicates_note(letters: &[shared::adapters::dlq::DeadLetter]) -> String {
    match letters.iter().filter(|l| l.duplicate_of.is_some()).count() {
        0 => String::new(),
        n => format!(", plus {n} duplicate cop{} (a redrive sends each message once)", if n == 1 { "y" } else { "ies" }),
    }
}

async fn dlq(target: &Target, command: &DlqCommand) -> Result<()> {
    use shared::adapters::dlq::{by_reason, EXHAUSTED};
    let (clients, resources) = connect(target).await?;
    let queue = shared::wiring::dead_letter_queue(&clients, &resources);
    match command {
        DlqCommand::List { reason, json } => {
            let mut letters = queue.list().await?;
            letters.retain(|l| reason.as_ref().is_none_or(|r| *r == l.reason));
            // Exhausted retries carry no detail of their own: the manifest's last error says why.
            let manifest = shared::wiring::manifest(&clients, &resources);
            for l in letters.iter_mut().filter(|l| l.reason == EXHAUSTED && l.detail.is_none()) {
                if let Some(key) = &l.source_key {
                    l.detail = manifest.get(key).await?.and_then(|r| r.last_error).map(|e| format!("last error: {e}"));
                }
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
                return Ok(());
            }
            let groups = by_reason(&letters);
            println!("Dead-letter queue: {} message(s){}", groups.values().map(Vec::len).sum::<usize>(), duplicates_note(&letters));
            for (reason, group) in groups {
                println!("{reason}: {}", group.len());
                for l in group {
                    println!(
                        "  {}  {}  {}",
                        l.source_key.as_deref().unwrap_or("(no source key)"),
                        l.legacy_path.as_deref().unwrap_or("(no path)"),
                        l.detail.as_deref().unwrap_or("")
                    );
                }
            }
        }
        DlqCommand::Redrive { reason, json } => {
            let redriven = if reason.is_none() && target.endpoint.is_none() {
                let handle = queue.start_move_task().await?;
                shared::adapters::dlq::Redriven { move_task: Some(handle), ..Default::default() }
            } else {
                queue.redrive(reason.as_deref()).await?
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&redriven)?);
            } else if let Some(handle) = &redriven.move_task {
                println!("SQS is moving every DLQ message back to the work queue (task {handle}); `dtx-migrate status` shows the DLQ drain");
            } else {
                let moved: u64 = redriven.moved.values().sum();
                println!("moved {moved} message(s) back to the work queue {:?}; {} left in the DLQ", redriven.moved, redriven.left);
                if redriven.duplicates_deleted > 0 {
                    println!("deleted {} duplicate copies of moved messages instead of sending them twice", redriven.duplicates_deleted);
                }
            }
        }
    }
    Ok(())
}

async fn rerun(target: &Target, args: &RerunArgs) -> Result<()> {
    let (clients, resources) = connect(target).await?;
    let request = InventoryRequest { rerun: args.statuses.clone(), areas: args.areas.clone(), ..Default::default() };
    if target.endpoint.is_some() {
        return move_locally(&clients, &resources, &args.source, (args.pollers, args.batch_size), &request, None).await;
    }
    // On AWS the deployed workers take the messages from the queue; the inventory pass runs in
    // the deployed function with --stack, else here.
    let response = match &target.stack {
        Some(stack) => shared::inventory::drive_remote(&clients.lambda, &format!("{stack}-inventory"), &request, |_| {}).await?,
        None => build_inventory(&clients, &resources, &args.source, false).await?.run(&request, None).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else {
        let t = &response.totals;
        println!("rerun {}: {} rows, {} messages sent, {} files with another status skipped", request.run_id(), t.rows, t.sent, t.skipped_status);
    }
    Ok(())
}

async fn load(target: &Target, args: &LoadArgs) -> Result<()> {
    use shared::loader::drive;
    use shared::loader::runner::{LoadRequest, Step};
    let handler = load_handler(target, args).await?;
    let (steps, rollback): (Vec<String>, bool) = match (&args.step, &args.rollback) {
        (_, Some(what)) => {
            shared::loader::rollback::parse_steps(what).map_err(anyhow::Error::msg)?;
            (vec![what.clone()], true)
        }
        (Some(all), None) if all == "all" => (drive::all_steps(args.with_audit_history).iter().map(|s| s.name().to_string()).collect(), false),
        (Some(step), None) => (vec![Step::parse(step).map_err(anyhow::Error::msg)?.name().to_string()], false),
        (None, None) => bail!("give --step or --rollback"),
    };
    let mut failed_checks: Vec<String> = Vec::new();
    for step in steps {
        let request = LoadRequest { step, dry_run: args.dry_run, rollback, ..Default::default() };
        let json = args.json;
        let response = drive::run_step(&handler, request, |r| {
            if json {
                match serde_json::to_string(r) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("(answer not printable as JSON: {e})"),
                }
            } else if !r.done {
                eprintln!("step {}: {:?}, continuing", r.step, r.counts);
            }
        })
        .await
        .with_context(|| format!("step {}", response_name(&args.step, &args.rollback)))?;
        if response.counts.get("checks_failed").is_some_and(|n| *n > 0) {
            failed_checks.extend(
                response
                    .counts
                    .iter()
                    .filter(|(k, n)| **n > 0 && *k != "checks_failed")
                    .filter_map(|(k, _)| k.strip_suffix("_failed"))
                    .map(str::to_string),
            );
        }
        if !args.json {
            // The step's own report (verify's comes before the migration report it rewrites).
            let printable = response.outputs.iter().find(|o| o.ends_with("migration_report.txt") || o.contains("verification_report"));
            if let Some(output) = printable.filter(|o| !o.starts_with("s3://")) {
                print!("{}", std::fs::read_to_string(output).with_context(|| format!("reading {output}"))?);
            }
            let verb = if rollback { "rolled back" } else { "done" };
            println!("step {} {verb}: {:?}", response.step, response.counts);
            for output in &response.outputs {
                println!("wrote {output}");
            }
        }
    }
    if !failed_checks.is_empty() {
        bail!("verification failed: {} did not hold (details in verification_report.txt)", failed_checks.join(", "));
    }
    Ok(())
}

fn response_name(step: &Option<String>, rollback: &Option<String>) -> String {
    match (step, rollback) {
        (_, Some(r)) => format!("rollback {r}"),
        (Some(s), None) => s.clone(),
        (None, None) => String::new(),
    }
}

/// The loader handler: the deployed function (--function/--stack), or this process.
async fn load_handler(target: &Target, args: &LoadArgs) -> Result<shared::loader::drive::Handler> {
    use shared::loader::drive::Handler;
    use shared::loader::runner::{Loader, LoaderMappings};
    // Reports, mappings and files may live in S3; locally the emulator stands in for it.
    let clients = match &target.endpoint {
        Some(endpoint) => AwsClients::for_endpoint(endpoint).await,
        None => AwsClients::from_env().await,
    };
    let function = args.function.clone().or_else(|| target.stack.as_deref().map(shared::loader::remote::function_of_stack));
    if let Some(function) = function {
        return Ok(Handler::Remote(shared::loader::remote::RemoteLoader::new(clients.lambda.clone(), function)));
    }
    let need = |value: &Option<String>, what: &str| value.clone().with_context(|| format!("running the loader here needs {what} (or --function/--stack to invoke the deployed one)"));
    let legacy_url = need(&args.legacy_url, "--legacy-url / LEGACY_DATABASE_URL")?;
    let target_url = need(&args.target_url, "--target-url / TARGET_DATABASE_URL")?;
    let mappings_dir = need(&args.mappings_dir, "--mappings-dir / MAPPINGS_DIR")?;
    let bucket = args.bucket.clone().or_else(|| target.endpoint.as_ref().map(|_| Resources::local(&target.prefix, "").bucket));
    let objects = bucket.map(|b| Arc::new(shared::adapters::s3::S3Objects::new(clients.s3.clone(), b)) as Arc<dyn shared::ports::ObjectStore>);
    Ok(Handler::Local(Box::new(Loader {
        legacy: shared::legacy::connect(&legacy_url, 4).await.context("connecting to the legacy database")?,
        target: shared::loader::connect::target_from_url(&target_url, 4).await?,
        mappings: LoaderMappings::load(&clients.s3, &mappings_dir).await?,
        reports: shared::loader::output::ReportSink::new(&args.report_dir, &clients.s3),
        chunk_rows: args.chunk_rows,
        objects,
    })))
}

fn write_manifest_csv(records: &[shared::manifest::ManifestRecord], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::File::create(dir.join("file_manifest.csv"))?;
    manifest::write_csv(records, std::io::BufWriter::new(file))?;
    Ok(())
}

async fn export(clients: &AwsClients, resources: &Resources, out: &Path) -> Result<ManifestSummary> {
    let records = shared::wiring::manifest(clients, resources).scan_all().await?;
    write_manifest_csv(&records, out)?;
    let summary = ManifestSummary::from_records(&records);
    std::fs::write(out.join("file_manifest_summary.txt"), summary.render_text())?;
    eprintln!("wrote {}", out.join("file_manifest.csv").display());
    Ok(summary)
}

async fn verify(clients: &AwsClients, resources: &Resources) -> Result<bool> {
    let records = shared::wiring::manifest(clients, resources).scan_all().await?;
    let objects = shared::adapters::s3::S3Objects::new(clients.s3.clone(), &resources.bucket);
    let report = shared::verify::verify_stored(&records, &objects).await?;
    println!(
        "verify: {} stored rows, {} objects checked, {} problems",
        report.rows_checked,
        report.objects_checked,
        report.problems.len()
    );
    for p in &report.problems {
        println!("  {p}");
    }
    Ok(report.ok())
}
