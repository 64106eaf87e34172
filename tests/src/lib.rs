//! Test harness: the real local services (moto for S3/SQS/DynamoDB, MariaDB), each test in
//! its own namespace (resource prefix, database) so tests run in parallel.

use shared::config::{AwsClients, Resources};
use shared::loader::book::{self, Issue};
use shared::loader::runner::{LoadError, Loader, LoaderMappings};
use shared::loader::steps::{ChunkOutcome, StepContext};
use shared::manifest::ManifestRecord;
use shared::sample::{ExpectedFile, SampleSpec, SampleSummary};
use sqlx::MySqlPool;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The moto endpoint the tests use; `.ci/run` and `infra/local/moto.sh` start it.
pub fn aws_endpoint() -> String {
    std::env::var("DTX_TEST_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

pub fn mysql_server_url() -> String {
    std::env::var("DTX_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A fresh set of bucket, queues and tables on moto.
pub struct AwsFixture {
    pub clients: AwsClients,
    pub resources: Resources,
}

impl AwsFixture {
    pub async fn new(max_receive_count: u32, visibility_timeout_s: u32) -> Self {
        let endpoint = aws_endpoint();
        let probe = std::net::TcpStream::connect(endpoint.trim_start_matches("http://"));
        assert!(probe.is_ok(), "moto is not running at {endpoint}: start it with `bash infra/local/moto.sh start`");
        let clients = AwsClients::for_endpoint(&endpoint).await;
        let prefix = unique("t-");
        let resources = shared::local::provision(&clients, &prefix, max_receive_count, visibility_timeout_s)
            .await
            .expect("provision local stack");
        Self { clients, resources }
    }

    pub async fn object_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .clients
                .s3
                .list_objects_v2()
                .bucket(&self.resources.bucket)
                .set_continuation_token(token)
                .send()
                .await
                .expect("list objects");
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(String::from)));
            match out.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        keys.sort();
        keys
    }

    /// The dedup table's claims counted by state (`claimed`, `complete`).
    pub async fn claim_states(&self) -> BTreeMap<String, u64> {
        let mut states = BTreeMap::new();
        let mut start_key = None;
        loop {
            let page = self
                .clients
                .dynamodb
                .scan()
                .table_name(&self.resources.dedup_table)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .expect("scan the dedup table");
            for item in page.items() {
                let state = item.get("state").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                *states.entry(state).or_default() += 1;
            }
            start_key = page.last_evaluated_key().cloned();
            if start_key.is_none() {
                return states;
            }
        }
    }

    pub async fn object_bytes(&self, key: &str) -> Vec<u8> {
        let out = self.clients.s3.get_object().bucket(&self.resources.bucket).key(key).send().await.expect("get object");
        out.body.collect().await.expect("read body").into_bytes().to_vec()
    }

    /// The DLQ's messages, listed without consuming them.
    pub async fn dead_letters(&self) -> Vec<shared::adapters::dlq::DeadLetter> {
        shared::wiring::dead_letter_queue(&self.clients, &self.resources).list().await.expect("list the DLQ")
    }

    /// The inventory over this stack: the legacy database `db`, the account mapping in
    /// `mappings`, the files in `source`, `page_size` rows a page.
    pub async fn inventory(
        &self,
        db: &MysqlFixture,
        mappings: &std::path::Path,
        source: shared::source::LegacySource,
        page_size: u32,
    ) -> shared::inventory::Inventory {
        let accounts = shared::mappings::load_accounts(&self.clients.s3, mappings.to_str().unwrap()).await.expect("mapping");
        let options = shared::wiring::InventoryOptions { page_size, send_concurrency: 4, max_queue_depth: Some(200) };
        shared::wiring::inventory(&self.clients, &self.resources, db.pool.clone(), accounts, Default::default(), Some(source), options)
    }

    pub async fn queue_depth(&self, url: &str) -> (u64, u64) {
        shared::adapters::sqs::queue_depth(&self.clients.sqs, url).await.expect("queue depth")
    }
}

/// A throwaway MariaDB database, dropped by `drop_database`.
pub struct MysqlFixture {
    pub pool: MySqlPool,
    pub url: String,
    name: String,
}

impl MysqlFixture {
    pub async fn new() -> Self {
        let server = mysql_server_url();
        let admin = MySqlPool::connect(&server).await.expect("MariaDB is running (infra/local/services.sh)");
        let name = unique("dtx_t_");
        sqlx::query(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4")).execute(&admin).await.expect("create database");
        admin.close().await;
        let url = format!("{server}/{name}");
        let pool = shared::legacy::connect(&url, 4).await.expect("connect test database");
        Self { pool, url, name }
    }

    /// A fresh database with the assumed legacy DDL (infra/sql/legacy_mysql.sql) applied.
    pub async fn with_legacy_schema() -> Self {
        let db = Self::new().await;
        for statement in shared::legacy::ddl_statements(shared::legacy::LEGACY_DDL) {
            sqlx::query(&statement).execute(&db.pool).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        db
    }

    /// Runs `statements` in order on one connection (so a `SET SESSION` holds for the ones
    /// after it); panics naming the statement that fails.
    pub async fn execute_all(&self, statements: impl IntoIterator<Item = impl AsRef<str>>) {
        let mut conn = self.pool.acquire().await.expect("connection");
        for sql in statements {
            let sql = sql.as_ref();
            sqlx::query(sql).execute(&mut *conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    pub async fn drop_database(self) {
        self.pool.close().await;
        let admin = MySqlPool::connect(&mysql_server_url()).await.expect("connect");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {}", self.name)).execute(&admin).await.expect("drop database");
    }
}

pub fn postgres_server_url() -> String {
    std::env::var("DTX_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub const TARGET_DDL: &str = include_str!("../../infra/sql/target_postgres.sql");
pub const BOOKKEEPING_DDL: &str = include_str!("../../infra/sql/migration_bookkeeping.sql");

/// A throwaway PostgreSQL database with the DTX 2.0 mirror and the bookkeeping schema.
pub struct PgFixture {
    pub pool: sqlx::PgPool,
    pub url: String,
    name: String,
}

impl PgFixture {
    pub async fn new() -> Self {
        let server = postgres_server_url();
        let admin = sqlx::PgPool::connect(&server).await.expect("PostgreSQL is running (infra/local/services.sh)");
        let name = unique("dtx_t_");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create database");
        admin.close().await;
        let url = match server.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{server}/{name}"),
        };
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await.expect("connect test database");
        sqlx::raw_sql(TARGET_DDL).execute(&pool).await.expect("target DDL");
        sqlx::raw_sql(BOOKKEEPING_DDL).execute(&pool).await.expect("bookkeeping DDL");
        Self { pool, url, name }
    }

    /// Runs `statements` in order; panics naming the statement that fails.
    pub async fn execute_all(&self, statements: impl IntoIterator<Item = impl AsRef<str>>) {
        for sql in statements {
            let sql = sql.as_ref();
            sqlx::query(sql).execute(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    /// (schema, table) of every table in the Django and bookkeeping schemas, sorted.
    pub async fn tables(&self) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT table_schema::text, table_name::text FROM information_schema.tables
             WHERE table_schema IN ('public', 'dtx_migration') AND table_type = 'BASE TABLE' ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .expect("list tables")
    }

    /// Row counts of every table in the Django and bookkeeping schemas.
    pub async fn table_counts(&self) -> std::collections::BTreeMap<String, i64> {
        let mut counts = std::collections::BTreeMap::new();
        for (schema, table) in self.tables().await {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{schema}\".\"{table}\""))
                .fetch_one(&self.pool)
                .await
                .expect("count rows");
            counts.insert(format!("{schema}.{table}"), n);
        }
        counts
    }

    /// Every row of every table in the Django and bookkeeping schemas, as text, sorted: two
    /// equal dumps mean equal table contents. `skip` names tables (schema.table) left out, e.g.
    /// bookkeeping tables with timestamps of their own.
    pub async fn dump(&self, skip: &[&str]) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut dump = std::collections::BTreeMap::new();
        for (schema, table) in self.tables().await {
            let name = format!("{schema}.{table}");
            if skip.contains(&name.as_str()) {
                continue;
            }
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{schema}\".\"{table}\" t ORDER BY 1"))
                .fetch_all(&self.pool)
                .await
                .expect("dump rows");
            dump.insert(name, rows);
        }
        dump
    }

    pub async fn drop_database(self) {
        self.pool.close().await;
        let admin = sqlx::PgPool::connect(&postgres_server_url()).await.expect("connect");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&admin).await.expect("drop database");
    }
}

/// A loader over the two fixtures, with reports written to `reports` (a directory) and no
/// file bucket (`verify` then reports its object check as not run).
pub fn loader(
    legacy: &MysqlFixture,
    target: &PgFixture,
    mappings: shared::loader::runner::LoaderMappings,
    reports: &std::path::Path,
    chunk_rows: u32,
) -> shared::loader::runner::Loader {
    shared::loader::runner::Loader {
        legacy: legacy.pool.clone(),
        target: target.pool.clone(),
        mappings,
        reports: shared::loader::output::ReportSink::new(&reports.display().to_string(), &offline_s3()),
        chunk_rows,
        objects: None,
    }
}

/// An S3 client for code that takes one but is only given local paths here.
fn offline_s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder().behavior_version_latest().region(aws_sdk_s3::config::Region::new("us-east-1")).build(),
    )
}

/// A step driven to its end by [`run_chunks`].
#[derive(Debug)]
pub struct StepRun {
    /// Every chunk's counts, added up.
    pub counts: BTreeMap<String, u64>,
    /// Every chunk's issues, in order.
    pub issues: Vec<Issue>,
    /// How many chunks it took, the last (which ends the step) included.
    pub chunks: usize,
}

/// Drives a step's `chunk` function to its end like the runner: each chunk in a transaction of
/// its own that records the chunk's issues (under `ctx.step`) and commits, each next chunk
/// from the cursor the last one returned. Panics on an error, or when 100 chunks do not end it.
pub async fn run_chunks(
    target: &PgFixture,
    ctx: &StepContext<'_>,
    chunk: impl AsyncFn(&StepContext<'_>, &mut sqlx::PgConnection, Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError>,
) -> StepRun {
    let mut run = StepRun { counts: BTreeMap::new(), issues: Vec::new(), chunks: 0 };
    let mut cursor = None;
    loop {
        let mut tx = target.pool.begin().await.expect("begin");
        let out = chunk(ctx, &mut *tx, cursor).await.unwrap_or_else(|e| panic!("{}: {e}", ctx.step));
        book::record_issues(&mut tx, ctx.step, &out.issues).await.expect("record issues");
        tx.commit().await.expect("commit");
        run.chunks += 1;
        for (k, v) in out.counts {
            *run.counts.entry(k).or_default() += v;
        }
        run.issues.extend(out.issues);
        cursor = out.cursor;
        if cursor.is_none() {
            return run;
        }
        assert!(run.chunks < 100, "{} does not end", ctx.step);
    }
}

/// Counts as a step reports them, from (counter, n) pairs.
pub fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The row of `table` that the id map entry (`entity`, `legacy_key`) points at, as JSON, with
/// `created` and `modified` rendered in UTC (`YYYY-MM-DD HH24:MI:SS`).
pub async fn migrated_row(target: &PgFixture, table: &str, entity: &str, legacy_key: u64) -> serde_json::Value {
    let text: String = sqlx::query_scalar(&format!(
        "SELECT (to_jsonb(t) || jsonb_build_object(
                'created', to_char(t.created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                'modified', to_char(t.modified AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')))::text
         FROM {table} t JOIN dtx_migration.id_map m ON m.entity = $1 AND m.new_id = t.id
         WHERE m.legacy_key = $2"
    ))
    .bind(entity)
    .bind(legacy_key.to_string())
    .fetch_one(&target.pool)
    .await
    .unwrap_or_else(|e| panic!("{entity} {legacy_key}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Asserts that `actual` has every field of `expected` (an object) with its value; a
/// difference names `what` and the column.
pub fn assert_fields(what: &str, actual: &serde_json::Value, expected: serde_json::Value) {
    for (k, v) in expected.as_object().expect("expected fields are an object") {
        assert_eq!(&actual[k], v, "{what}, column {k}");
    }
}

/// (key, reason, detail) of every recorded issue, sorted by key (as a number) then reason;
/// asserts each one is `step`'s, of `entity`.
pub async fn step_issues(target: &PgFixture, step: &str, entity: &str) -> Vec<(String, String, String)> {
    let rows: Vec<(String, String, String, String, Option<String>)> =
        sqlx::query_as("SELECT step, entity, legacy_key, reason, detail FROM dtx_migration.issue").fetch_all(&target.pool).await.unwrap();
    let mut out: Vec<(String, String, String)> = rows
        .into_iter()
        .map(|(s, e, k, r, d)| {
            assert_eq!((s.as_str(), e.as_str()), (step, entity));
            (k, r, d.unwrap_or_default())
        })
        .collect();
    out.sort_by(|a, b| (a.0.parse::<u64>().unwrap_or(0), &a.1).cmp(&(b.0.parse::<u64>().unwrap_or(0), &b.1)));
    out
}

/// DTX 2.0 rows the Areas 1-3 migrations would have made, for the steps that reference them.
#[derive(Debug, Default)]
pub struct StandIns<'a> {
    /// (id, email)
    pub users: &'a [(i64, &'a str)],
    /// (id, name)
    pub accounts: &'a [(i64, &'a str)],
    /// (id, account_id, name)
    pub records: &'a [(i64, i64, &'a str)],
    /// (id, record_id, account_id)
    pub assignments: &'a [(i64, i64, i64)],
}

impl StandIns<'_> {
    pub async fn insert(&self, target: &PgFixture) {
        sqlx::query("INSERT INTO docutrax_users_user (id, email) SELECT * FROM UNNEST($1::bigint[], $2::text[])")
            .bind(self.users.iter().map(|u| u.0).collect::<Vec<i64>>())
            .bind(self.users.iter().map(|u| u.1).collect::<Vec<_>>())
            .execute(&target.pool)
            .await
            .expect("user stand-ins");
        sqlx::query("INSERT INTO docutrax_accounts_account (id, name) SELECT * FROM UNNEST($1::bigint[], $2::text[])")
            .bind(self.accounts.iter().map(|a| a.0).collect::<Vec<i64>>())
            .bind(self.accounts.iter().map(|a| a.1).collect::<Vec<_>>())
            .execute(&target.pool)
            .await
            .expect("account stand-ins");
        sqlx::query("INSERT INTO docutrax_records_record (id, account_id, name) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[])")
            .bind(self.records.iter().map(|r| r.0).collect::<Vec<i64>>())
            .bind(self.records.iter().map(|r| r.1).collect::<Vec<i64>>())
            .bind(self.records.iter().map(|r| r.2).collect::<Vec<_>>())
            .execute(&target.pool)
            .await
            .expect("record stand-ins");
        sqlx::query("INSERT INTO docutrax_records_assignment (id, record_id, account_id) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[])")
            .bind(self.assignments.iter().map(|a| a.0).collect::<Vec<i64>>())
            .bind(self.assignments.iter().map(|a| a.1).collect::<Vec<i64>>())
            .bind(self.assignments.iter().map(|a| a.2).collect::<Vec<i64>>())
            .execute(&target.pool)
            .await
            .expect("assignment stand-ins");
    }
}

/// The manifest row the file move would write for one file of a generated sample: stored
/// (under `org_<account>/<area>/<sha256>.pdf`), missing or rejected as the generator expects.
pub fn sample_manifest_record(e: &ExpectedFile) -> ManifestRecord {
    use shared::message::{LegacyIds, SourceRef};
    use shared::model::FileStatus;
    use shared::sample::ExpectedOutcome;
    let attachment_id = match SourceRef::parse_key(&e.source_key) {
        Some(SourceRef::Attachment(id)) => Some(id),
        _ => None,
    };
    let (status, hash, size) = match (&e.outcome, &e.account_id) {
        (ExpectedOutcome::Present { sha256_hex, size }, Some(_)) => (FileStatus::Moved, Some(sha256_hex.clone()), Some(*size)),
        (ExpectedOutcome::Missing, _) => (FileStatus::Missing, None, None),
        _ => (FileStatus::Rejected, None, None),
    };
    ManifestRecord {
        source_key: e.source_key.clone(),
        area: e.area.parse().ok(),
        account_id: e.account_id.clone(),
        s3_key: hash.as_ref().map(|h| format!("org_{}/{}/{h}.pdf", e.account_id.clone().unwrap_or_default(), e.area)),
        file_uid: hash.as_ref().map(|h| format!("{h}_20261125000000000000")),
        content_hash: hash,
        size,
        ids: LegacyIds { attachment_id, ..Default::default() },
        original_filename: "file.pdf".into(),
        status: Some(status),
        ..Default::default()
    }
}

/// The manifest the file move would produce for a generated sample ([`sample_manifest_record`]
/// per expected file), as `file_manifest.csv`.
pub fn sample_manifest_csv(summary: &SampleSummary) -> Vec<u8> {
    let rows: Vec<ManifestRecord> = summary.expected.values().map(sample_manifest_record).collect();
    let mut out = Vec::new();
    shared::manifest::write_csv(&rows, &mut out).unwrap();
    out
}

/// A generated sample ([`generated_sample`]) ready to load.
pub struct GeneratedSample {
    pub legacy: MysqlFixture,
    pub target: PgFixture,
    pub summary: SampleSummary,
    /// The sample's EFS root.
    pub root: PathBuf,
    /// The sample's mapping files.
    pub mappings_dir: PathBuf,
    /// The reports directory, holding the sample's `file_manifest.csv`.
    pub reports: PathBuf,
    /// Holds the three directories.
    pub dir: tempfile::TempDir,
}

impl GeneratedSample {
    /// The sample's mapping files, as the loader reads them.
    pub async fn load_mappings(&self) -> LoaderMappings {
        LoaderMappings::load(&offline_s3(), self.mappings_dir.to_str().unwrap()).await.expect("load the sample's mappings")
    }

    /// A loader over the sample with its mapping files (read now) and reports directory.
    pub async fn loader(&self, chunk_rows: u32) -> Loader {
        loader(&self.legacy, &self.target, self.load_mappings().await, &self.reports, chunk_rows)
    }

    pub async fn drop_databases(self) {
        self.legacy.drop_database().await;
        self.target.drop_database().await;
    }
}

/// `spec`'s generated sample (shared::sample) in a fresh MariaDB database, its DTX 2.0
/// stand-ins seeded in a fresh PostgreSQL one, its files and mapping files in a temporary
/// directory, and the manifest the file move would produce ([`sample_manifest_csv`]) as
/// `file_manifest.csv` in the reports directory.
pub async fn generated_sample(spec: &SampleSpec) -> GeneratedSample {
    let legacy = MysqlFixture::new().await;
    let target = PgFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, mappings_dir, reports) = (dir.path().join("efsdata"), dir.path().join("mappings"), dir.path().join("reports"));
    for d in [&root, &mappings_dir, &reports] {
        std::fs::create_dir_all(d).unwrap();
    }
    let summary = shared::sample::generate(&legacy.pool, &root, &mappings_dir, spec).await.unwrap();
    shared::sample::seed_target(&target.pool, &summary).await.unwrap();
    std::fs::write(reports.join("file_manifest.csv"), sample_manifest_csv(&summary)).unwrap();
    GeneratedSample { legacy, target, summary, root, mappings_dir, reports, dir }
}

/// A function's answer to one Invoke: the `X-Amz-Function-Error` kind (when it failed) and
/// the payload.
pub type InvokeAnswer = (Option<&'static str>, Vec<u8>);

/// A minimal Lambda Invoke endpoint (Lambda itself cannot run here: the emulator would need
/// Docker). Every request goes to `handle(function name, payload)`, built by `make` on the
/// endpoint's own thread and runtime, so, like Lambda, it runs apart from the caller. Returns
/// the endpoint URL for the real aws-sdk-lambda client.
pub fn serve_lambda<H, F>(make: impl FnOnce() -> H + Send + 'static) -> String
where
    H: Fn(String, Vec<u8>) -> F,
    F: std::future::Future<Output = InvokeAnswer>,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let handle = make();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let mut stream = BufReader::new(stream);
                // One HTTP/1.1 request, Content-Length framed, as the SDK sends it.
                let mut line = String::new();
                stream.read_line(&mut line).await.unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    stream.read_line(&mut header).await.unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                stream.read_exact(&mut body).await.unwrap();
                let function = path
                    .strip_prefix("/2015-03-31/functions/")
                    .and_then(|rest| rest.strip_suffix("/invocations"))
                    .unwrap_or_else(|| panic!("unexpected request {path}"))
                    .to_string();
                let (error, payload) = handle(function, body).await;
                let mut head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", payload.len());
                if let Some(kind) = error {
                    head.push_str(&format!("X-Amz-Function-Error: {kind}\r\n"));
                }
                head.push_str("\r\n");
                let stream = stream.get_mut();
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(&payload).await.unwrap();
                stream.shutdown().await.unwrap();
            }
        });
    });
    endpoint
}
pub mod fault_proxy;

/// Uploads every regular file under `root` to `bucket` at `prefix` + its relative path; links
/// are not followed (as `aws s3 sync --no-follow-symlinks`). Returns how many were uploaded.
pub async fn sync_tree(s3: &aws_sdk_s3::Client, root: &std::path::Path, bucket: &str, prefix: &str) -> usize {
    let mut stack = vec![root.to_path_buf()];
    let mut uploaded = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                stack.push(entry.path());
            } else if file_type.is_file() {
                let relative = entry.path().strip_prefix(root).unwrap().to_str().expect("generated names are UTF-8").to_string();
                let body = std::fs::read(entry.path()).unwrap();
                s3.put_object().bucket(bucket).key(format!("{prefix}{relative}")).body(body.into()).send().await.expect("upload to staging");
                uploaded += 1;
            }
        }
    }
    uploaded
}
