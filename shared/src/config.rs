//! Typed configuration, read once at start-up from the environment.

use crate::error::ConfigError;
use crate::keys::KeyTemplate;
use crate::paths::PathRules;
use crate::worker::{DedupScope, WorkerSettings};
use std::time::Duration;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| ConfigError(format!("{name} is not set")))
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| ConfigError(format!("{name}={v:?}: {e}"))),
    }
}

/// Names of the deployed (or local) AWS resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub bucket: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub manifest_table: String,
    pub dedup_table: String,
    pub runs_table: String,
}

impl Resources {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            bucket: required("BUCKET_NAME")?,
            queue_url: required("QUEUE_URL")?,
            dlq_url: required("DLQ_URL")?,
            manifest_table: required("MANIFEST_TABLE")?,
            dedup_table: required("DEDUP_TABLE")?,
            runs_table: required("RUNS_TABLE")?,
        })
    }

    /// The local stack's names, derived from one prefix (see `infra/local`).
    pub fn local(prefix: &str, endpoint: &str) -> Self {
        let queue = |name: &str| format!("{}/000000000000/{prefix}-{name}", endpoint.trim_end_matches('/'));
        Self {
            bucket: format!("{prefix}-files"),
            queue_url: queue("work"),
            dlq_url: queue("dlq"),
            manifest_table: format!("{prefix}-manifest"),
            dedup_table: format!("{prefix}-dedup"),
            runs_table: format!("{prefix}-runs"),
        }
    }
}

/// Path rules from `PATH_REWRITE_RULES` (JSON) or the production defaults.
pub fn path_rules_from_env() -> Result<PathRules, ConfigError> {
    match var("PATH_REWRITE_RULES") {
        None => Ok(PathRules::default()),
        Some(json) => PathRules::from_json(&json).map_err(|e| ConfigError(e.to_string())),
    }
}

impl WorkerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = WorkerSettings::default();
        let key_template = match var("KEY_TEMPLATE") {
            Some(t) => KeyTemplate::new(&t)?,
            None => d.key_template,
        };
        let dedup_scope: DedupScope = match var("DEDUP_SCOPE") {
            Some(s) => s.parse().map_err(ConfigError)?,
            None => d.dedup_scope,
        };
        let settings = WorkerSettings {
            key_template,
            dedup_scope,
            multipart_threshold: parsed("MULTIPART_THRESHOLD_BYTES", d.multipart_threshold)?,
            part_size: parsed("PART_SIZE_BYTES", d.part_size)?,
            part_concurrency: parsed("PART_CONCURRENCY", d.part_concurrency)?,
            record_concurrency: parsed("RECORD_CONCURRENCY", d.record_concurrency)?,
            lease: Duration::from_secs(parsed("LEASE_SECONDS", d.lease.as_secs())?),
            lease_wait: Duration::from_secs(parsed("LEASE_WAIT_SECONDS", d.lease_wait.as_secs())?),
            memory_budget_bytes: parsed("MEMORY_BUDGET_BYTES", d.memory_budget_bytes)?,
            path_rules: path_rules_from_env()?,
            ..d
        };
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.part_size < 5 * 1024 * 1024 {
            return Err(ConfigError("PART_SIZE_BYTES must be at least 5 MiB (S3's minimum part size)".into()));
        }
        if self.multipart_threshold > 5 * 1024 * 1024 * 1024 {
            return Err(ConfigError("MULTIPART_THRESHOLD_BYTES must be at most 5 GiB (S3's single PUT limit)".into()));
        }
        if self.lease < Duration::from_secs(10) {
            return Err(ConfigError("LEASE_SECONDS must be at least 10".into()));
        }
        Ok(())
    }
}

/// The SDK clients, built once per process. `AWS_ENDPOINT_URL` (read by the SDK itself)
/// points them at a local emulator; S3 then needs path-style addressing.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
}

impl AwsClients {
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_shared(&shared)
    }

    pub fn from_shared(shared: &aws_config::SdkConfig) -> Self {
        let local = shared.endpoint_url().is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(local)
            // We always send our own SHA-256; the SDK must not add a second checksum.
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(shared),
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            lambda: aws_sdk_lambda::Client::new(shared),
            cloudformation: aws_sdk_cloudformation::Client::new(shared),
        }
    }

    /// Clients for a given endpoint (local emulator) with static test credentials.
    pub async fn for_endpoint(endpoint: &str) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "local"))
            .load()
            .await;
        Self::from_shared(&shared)
    }
}
