//! Invariants shared by the fuzz targets. Each check panics (and so makes libFuzzer report the
//! input) when a candidate the resolver produced could name something other than a file below
//! one of the rule locations under the source root.

use shared::paths::{Candidate, PathRules};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// The confinement invariants of one candidate's root-relative path, checked on the raw bytes
/// the operating system will see (not only on `Path::components`, which silently drops `.`
/// and repeated separators).
pub fn assert_confined(rules: &PathRules, candidate: &Candidate, input: &str) {
    let relative = &candidate.relative;
    let bytes = relative.as_os_str().as_bytes();
    let ctx = || format!("candidate {relative:?} (via {}) of input {input:?}", candidate.via);

    assert!(!bytes.is_empty(), "empty candidate: {}", ctx());
    assert!(!bytes.contains(&0), "NUL byte in {}", ctx());
    assert!(bytes[0] != b'/' && relative.is_relative(), "absolute {}", ctx());
    for segment in bytes.split(|b| *b == b'/') {
        assert!(
            !matches!(segment, b"" | b"." | b".."),
            "segment {:?} in {}",
            String::from_utf8_lossy(segment),
            ctx()
        );
    }
    assert!(
        relative.components().all(|c| matches!(c, Component::Normal(_))),
        "non-normal component in {}",
        ctx()
    );
    // Below (never equal to) the location of a rule of the generation it claims.
    let rule = rules
        .rules()
        .iter()
        .find(|r| r.generation == candidate.generation)
        .unwrap_or_else(|| panic!("unknown generation {:?} in {}", candidate.generation, ctx()));
    let location = Path::new(&rule.location);
    assert!(
        relative.starts_with(location) && relative != location,
        "not below location {:?}: {}",
        rule.location,
        ctx()
    );
}

/// `via` says how a candidate was derived: `primary`, `probe:<gen>` or `decoded-name`
/// (prefixed by `fallback` for a message's fallback paths).
pub fn assert_via(candidate: &Candidate, fallback: bool, input: &str) {
    let via = candidate.via.as_str();
    let base = if fallback {
        match via {
            "fallback" => "primary",
            other => other
                .strip_prefix("fallback-")
                .unwrap_or_else(|| panic!("fallback candidate with via {via:?} for {input:?}")),
        }
    } else {
        via
    };
    assert!(
        base == "primary" || base == "decoded-name" || base.starts_with("probe:"),
        "unexpected via {via:?} for {input:?}"
    );
}

/// No two candidates name the same place.
pub fn assert_distinct(candidates: &[Candidate], input: &str) {
    for (i, a) in candidates.iter().enumerate() {
        for b in &candidates[i + 1..] {
            assert!(
                a.relative != b.relative,
                "duplicate candidate {:?} for {input:?}",
                a.relative
            );
        }
    }
}
