//! Crash points: places in the worker's move protocol where a test can make the process die
//! as a Lambda does on a timeout or an out-of-memory kill — mid-flight, with no cleanup code
//! running after that point.
//!
//! Compiled in only with the `crash-points` feature (the integration tests enable it; the
//! Lambda binaries are built without it), and inert until a test installs a plan. A crash is
//! a panic carrying [`INJECTED`]: it unwinds the whole batch future, as a dead invocation
//! would, so none of the batch's messages is deleted and each comes back after its
//! visibility timeout.

/// Where the worker can be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrashPoint {
    /// The content-hash lease is ours; nothing is uploaded yet.
    AfterClaim,
    /// The object is in S3; the claim is not marked complete.
    AfterUpload,
    /// The claim is complete; the manifest does not yet say so.
    BeforeRecord,
    /// A multipart upload is created and parts are on the wire.
    MidMultipart,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 4] =
        [CrashPoint::AfterClaim, CrashPoint::AfterUpload, CrashPoint::BeforeRecord, CrashPoint::MidMultipart];
}

/// The text every injected crash's panic message starts with.
pub const INJECTED: &str = "injected crash";

#[cfg(feature = "crash-points")]
mod plan {
    use super::{CrashPoint, INJECTED};
    use std::sync::OnceLock;

    type Plan = Box<dyn Fn(CrashPoint, &str) -> bool + Send + Sync>;
    static PLAN: OnceLock<Plan> = OnceLock::new();

    /// Installs the process's crash plan: called at every crash point with the source key
    /// being moved, it says whether to crash there. Only one plan per process; false if one
    /// was installed already.
    pub fn install(plan: impl Fn(CrashPoint, &str) -> bool + Send + Sync + 'static) -> bool {
        PLAN.set(Box::new(plan)).is_ok()
    }

    pub fn reached(point: CrashPoint, source_key: &str) {
        if let Some(plan) = PLAN.get() {
            if plan(point, source_key) {
                panic!("{INJECTED} at {point:?} while moving {source_key}");
            }
        }
    }
}

#[cfg(feature = "crash-points")]
pub use plan::{install, reached};

/// Without the `crash-points` feature a crash point compiles to nothing.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn reached(_point: CrashPoint, _source_key: &str) {}
