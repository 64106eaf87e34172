//! The deployed loader function, invoked from an operator's machine: the same request and
//! answer as the local handler, over Lambda's synchronous Invoke.

use super::runner::{LoadError, LoadRequest, LoadResponse};
use crate::adapters::lambda::{invoke_json, Invoked};

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
        match invoke_json(&self.client, &self.function, request, "invoking the loader function").await? {
            Invoked::Answer(response) => Ok(response),
            Invoked::FunctionError { kind, message } => Err(LoadError::Remote { function: self.function.clone(), kind, message }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stacks_loader_is_named_after_it() {
        assert_eq!(function_of_stack("dtx-prod"), "dtx-prod-loader");
    }
}
