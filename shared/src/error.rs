//! Errors that say whether trying again can help.

use std::fmt;

/// Whether an operation that failed may succeed when tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A later attempt may succeed (throttling, 5xx, a lost lease, a network cut).
    Retryable,
    /// The same input will fail the same way (bad configuration, a malformed record).
    Permanent,
}

/// An error from a port (S3, SQS, DynamoDB, a database, the filesystem).
#[derive(Debug, thiserror::Error)]
pub struct PortError {
    pub operation: &'static str,
    pub retry: Retry,
    pub message: String,
    /// When a retry is known to be pointless before some time (another worker's lease on the
    /// same content), how long to wait.
    pub retry_after: Option<std::time::Duration>,
}

impl PortError {
    pub fn retryable(operation: &'static str, message: impl fmt::Display) -> Self {
        Self { operation, retry: Retry::Retryable, message: message.to_string(), retry_after: None }
    }
    pub fn permanent(operation: &'static str, message: impl fmt::Display) -> Self {
        Self { operation, retry: Retry::Permanent, message: message.to_string(), retry_after: None }
    }
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
    pub fn is_retryable(&self) -> bool {
        self.retry == Retry::Retryable
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.retry {
            Retry::Retryable => "retryable",
            Retry::Permanent => "permanent",
        };
        write!(f, "{} failed ({kind}): {}", self.operation, self.message)
    }
}

/// Configuration that cannot be used: always permanent, reported at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);
