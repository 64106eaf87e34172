//! Invoking a deployed function synchronously from an operator's machine, with JSON in and out
//! (the loader's steps, the inventory's continuations).

use crate::error::PortError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

/// Lambda's longest run (900 s) plus time for the answer to come back.
const INVOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(960);

/// What a synchronous invocation came back with.
#[derive(Debug)]
pub enum Invoked<T> {
    Answer(T),
    /// The function itself failed (raised, timed out, ran out of memory).
    FunctionError { kind: String, message: String },
}

/// One synchronous invocation; `what` names the action in errors.
pub async fn invoke_json<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    client: &aws_sdk_lambda::Client,
    function: &str,
    request: &Req,
    what: &'static str,
) -> Result<Invoked<Resp>, PortError> {
    let payload = serde_json::to_vec(request).map_err(|e| PortError::permanent(what, format!("{function}: {e}")))?;
    let answer = client
        .invoke()
        .function_name(function)
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
                PortError::retryable(what, detail)
            } else {
                PortError::permanent(what, detail)
            }
        })?;
    let body = answer.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
    if let Some(kind) = answer.function_error() {
        return Ok(Invoked::FunctionError { kind: kind.to_string(), message: function_error_message(&body) });
    }
    serde_json::from_slice(&body)
        .map(Invoked::Answer)
        .map_err(|e| PortError::permanent(what, format!("{function}: unexpected answer ({e}): {}", String::from_utf8_lossy(&body))))
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
    }
}
