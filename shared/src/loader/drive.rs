//! Runs a step to completion the way an operator does: invoke the loader (here, or the
//! deployed function), and while it answers "not done", invoke it again with its cursor.

use super::remote::RemoteLoader;
use super::runner::{LoadError, LoadRequest, LoadResponse, Loader, Step};
use std::collections::BTreeMap;

/// Where the loader handler runs.
pub enum Handler {
    /// In this process, against the databases directly.
    Local(Box<Loader>),
    /// The deployed Lambda function.
    Remote(RemoteLoader),
}

impl Handler {
    pub async fn invoke(&self, request: &LoadRequest) -> Result<LoadResponse, LoadError> {
        match self {
            Handler::Local(loader) => loader.run(request).await,
            Handler::Remote(remote) => remote.invoke(request).await,
        }
    }
}

/// The steps `all` runs, in order. Choice: `audit-history` (step 12) is optional ("for the
/// compliance trail") and runs only when asked for, by name or with `with_audit_history`.
pub fn all_steps(with_audit_history: bool) -> Vec<Step> {
    Step::ALL.into_iter().filter(|s| with_audit_history || *s != Step::AuditHistory).collect()
}

/// Invokes `first` and then its continuations until the step is done; `progress` sees every
/// answer. Returns the last answer with the counts summed over all invocations.
///
/// A continuation that comes back with the cursor it was given made no progress (e.g. the
/// function's deadline is shorter than one chunk): that is an error, not an endless loop.
pub async fn run_step(handler: &Handler, first: LoadRequest, mut progress: impl FnMut(&LoadResponse)) -> Result<LoadResponse, LoadError> {
    let mut request = first;
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let response = handler.invoke(&request).await?;
        progress(&response);
        for (k, v) in &response.counts {
            *totals.entry(k.clone()).or_default() += v;
        }
        if response.done {
            return Ok(LoadResponse { counts: totals, ..response });
        }
        if response.cursor.is_none() || (request.cursor.is_some() && response.cursor == request.cursor) {
            return Err(LoadError::Stalled { step: response.step, cursor: response.cursor });
        }
        request.cursor = response.cursor;
    }
}
