//! Adapters: the ports implemented over AWS (through the real SDK clients), the local
//! filesystem, MySQL, and memory (for unit tests).

pub mod cloudformation;
pub mod dlq;
pub mod dynamodb;
pub mod lambda;
pub mod memory;
pub mod s3;
pub mod sqs;
pub mod staging;

use crate::error::PortError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes that mean "slow down / try later" across S3, SQS and DynamoDB.
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionConflictException",
    "ConditionalRequestConflict",
];

/// Turns an SDK error into a port error that says whether retrying can help.
pub(crate) fn classify<E, R>(operation: &'static str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let retryable = match &err {
        SdkError::ConstructionFailure(_) => false,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or_default();
            ctx.raw().status_code() >= 500 || ctx.raw().status_code() == 429 || RETRYABLE_CODES.contains(&code)
        }
        _ => true,
    };
    let message = DisplayErrorContext(&err).to_string();
    if retryable {
        PortError::retryable(operation, message)
    } else {
        PortError::permanent(operation, message)
    }
}

/// The HTTP status of a raw response, whatever its concrete type.
pub(crate) trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The service error code and HTTP status of an SDK error, if it came from the service.
pub(crate) fn service_code<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Option<(String, u16)>
where
    E: ProvideErrorMetadata,
    R: HttpStatus,
{
    match err {
        aws_smithy_runtime_api::client::result::SdkError::ServiceError(ctx) => {
            Some((ctx.err().code().unwrap_or_default().to_string(), ctx.raw().status_code()))
        }
        _ => None,
    }
}
