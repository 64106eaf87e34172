//! The target database connection: a URL locally, a Secrets Manager secret (RDS JSON format)
//! in AWS, so credentials never pass through environment variables or logs.

use crate::error::ConfigError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

pub async fn target_from_secret(secrets: &aws_sdk_secretsmanager::Client, secret_arn: &str, max_connections: u32) -> Result<PgPool, ConfigError> {
    let secret = crate::secrets::RdsSecret::fetch(secrets, secret_arn).await?;
    let port = secret.port_or(5432);
    let options = PgConnectOptions::new()
        .host(&secret.host)
        .port(port)
        .username(&secret.username)
        .password(&secret.password)
        .database(&secret.dbname)
        .ssl_mode(PgSslMode::Require);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .map_err(|e| ConfigError(format!("connecting to the target database from secret {secret_arn}: {e}")))
}

pub async fn target_from_url(url: &str, max_connections: u32) -> Result<PgPool, ConfigError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(url)
        .await
        .map_err(|e| ConfigError(format!("connecting to the target database: {e}")))
}

/// The DTX 2.0 mirror (`infra/sql/target_postgres.sql`): for local runs and tests only; in
/// production the DTX 2.0 database already exists.
pub const TARGET_MIRROR_DDL: &str = include_str!("../../../infra/sql/target_postgres.sql");

/// Creates the mirror's tables (idempotent) and the loader's bookkeeping schema.
pub async fn apply_target_mirror(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(TARGET_MIRROR_DDL).execute(pool).await?;
    super::book::ensure_schema(pool).await
}
