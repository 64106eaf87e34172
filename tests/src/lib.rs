//! Test harness: the real local services (moto for S3/SQS/DynamoDB, MariaDB), each test in
//! its own namespace (resource prefix, database) so tests run in parallel.

use shared::config::{AwsClients, Resources};
use sqlx::MySqlPool;

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

    pub async fn object_bytes(&self, key: &str) -> Vec<u8> {
        let out = self.clients.s3.get_object().bucket(&self.resources.bucket).key(key).send().await.expect("get object");
        out.body.collect().await.expect("read body").into_bytes().to_vec()
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

    /// Row counts of every table in the Django and bookkeeping schemas.
    pub async fn table_counts(&self) -> std::collections::BTreeMap<String, i64> {
        let tables: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_schema::text, table_name::text FROM information_schema.tables
             WHERE table_schema IN ('public', 'dtx_migration') AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&self.pool)
        .await
        .expect("list tables");
        let mut counts = std::collections::BTreeMap::new();
        for (schema, table) in tables {
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
        let tables: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_schema::text, table_name::text FROM information_schema.tables
             WHERE table_schema IN ('public', 'dtx_migration') AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&self.pool)
        .await
        .expect("list tables");
        let mut dump = std::collections::BTreeMap::new();
        for (schema, table) in tables {
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
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder().behavior_version_latest().region(aws_sdk_s3::config::Region::new("us-east-1")).build(),
    );
    shared::loader::runner::Loader {
        legacy: legacy.pool.clone(),
        target: target.pool.clone(),
        mappings,
        reports: shared::loader::output::ReportSink::new(&reports.display().to_string(), &s3),
        chunk_rows,
        objects: None,
    }
}
