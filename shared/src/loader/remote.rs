//! The deployed loader function, invoked from an operator's machine: the same request and
//! answer as the local handler, over Lambda's synchronous Invoke.

use super::runner::{LoadError, LoadRequest, LoadResponse};
use crate::error::PortError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

/// Lambda's longest run (900 s) plus time for the answer to come back.
const INVOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(960);

/// The deployed loader: `<stack>-loader` for a stack deployed from template.yaml.
#[derive(Clone)]
pub struct RemoteLoader {
    client: aws_sdk_lambda::Client,
    function: String,
}

/// The function name the template gives the loader of `stack`.
pub fn function_of_stack(stack: &str) -> String {
    format!("{stack}-loader")
}

impl RemoteLoader {
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self { client, function: function.into() }
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// One synchronous invocation. The function's own failure (it raised an error, timed out,
    /// ran out of memory) is a permanent error carrying the function's message: rerunning the
    /// same step continues from the cursor the step stored before it failed.
    pub async fn invoke(&self, request: &LoadRequest) -> Result<LoadResponse, LoadError> {
        const WHAT: &str = "invoking the loader function";
        let function = &self.function;
        let payload = serde_json::to_vec(request).map_err(|e| PortError::permanent(WHAT, format!("{function}: {e}")))?;
        let answer = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .customize()
            .config_override(
                aws_sdk_lambda::config::Config::builder()
                    .timeout_config(aws_sdk_lambda::config::timeout::TimeoutConfig::builder().operation_attempt_timeout(INVOKE_TIMEOUT).build()),
            )
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_lambda::Error::from(e);
                let retryable = matches!(
                    e,
                    aws_sdk_lambda::Error::TooManyRequestsException(_)
                        | aws_sdk_lambda::Error::ServiceException(_)
                        | aws_sdk_lambda::Error::ResourceNotReadyException(_)
                        | aws_sdk_lambda::Error::EniLimitReachedException(_)
                );
                let detail = format!("{function}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e));
                if retryable {
                    PortError::retryable(WHAT, detail)
                } else {
                    PortError::permanent(WHAT, detail)
                }
            })?;
        let body = answer.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        if let Some(kind) = answer.function_error() {
            return Err(LoadError::Remote { function: self.function.clone(), kind: kind.to_string(), message: function_error_message(&body) });
        }
        serde_json::from_slice(&body).map_err(|e| {
            LoadError::Port(PortError::permanent(WHAT, format!("{function}: answer is not a loader response ({e}): {}", String::from_utf8_lossy(&body))))
        })
    }
}

/// The message of a Lambda error payload (`{"errorType": ..., "errorMessage": ...}`), or the
/// payload as text when it is something else.
pub fn function_error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Failure {
        #[serde(rename = "errorType", default)]
        error_type: String,
        #[serde(rename = "errorMessage", default)]
        error_message: String,
    }
    match serde_json::from_slice::<Failure>(body) {
        Ok(f) if !f.error_message.is_empty() => {
            if f.error_type.is_empty() {
                f.error_message
            } else {
                format!("{}: {}", f.error_type, f.error_message)
            }
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_payloads_read_as_type_and_message() {
        assert_eq!(
            function_error_message(br#"{"errorType":"Runtime.ExitError","errorMessage":"exit status 1"}"#),
            "Runtime.ExitError: exit status 1"
        );
        assert_eq!(function_error_message(br#"{"errorMessage":"Task timed out after 900.00 seconds"}"#), "Task timed out after 900.00 seconds");
        assert_eq!(function_error_message(b"not json"), "not json");
        assert_eq!(function_of_stack("dtx-prod"), "dtx-prod-loader");
    }
}
