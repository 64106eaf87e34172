//! Arbitrary bytes as a work-queue message body: `FileMessage::parse` and
//! `FileMessage::salvage_source_key` never panic; a parsed message has the supported version,
//! re-serializes to JSON that parses back to the same message, and agrees with the salvaged
//! source key; `worker::candidates_for` never panics, and every candidate it returns (from the
//! legacy path and the fallback paths) satisfies the confinement invariants, with the legacy
//! path's own candidates first and no duplicates.

#![no_main]

use dtx_fuzz::{assert_confined, assert_distinct, assert_via};
use libfuzzer_sys::fuzz_target;
use shared::message::{FileMessage, SourceRef, MESSAGE_VERSION};
use shared::paths::PathRules;
use shared::worker::candidates_for;
use std::sync::OnceLock;

fn rules() -> &'static PathRules {
    static RULES: OnceLock<PathRules> = OnceLock::new();
    RULES.get_or_init(PathRules::default)
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };

    let salvaged = FileMessage::salvage_source_key(body);
    if let Some(key) = &salvaged {
        let source = SourceRef::parse_key(key).unwrap_or_else(|| panic!("salvaged key {key:?} does not parse back"));
        assert_eq!(&source.key(), key, "salvaged key round trip");
    }

    let message = match FileMessage::parse(body) {
        Ok(message) => message,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(message.v, MESSAGE_VERSION, "accepted version of {body:?}");
    let json = message.to_json();
    assert_eq!(
        FileMessage::parse(&json).as_ref(),
        Ok(&message),
        "re-serialized {json:?} of {body:?}"
    );
    if let Some(key) = &salvaged {
        assert_eq!(key, &message.source.key(), "salvaged key of {body:?}");
    }
    let source_key = message.source.key();
    assert_eq!(
        SourceRef::parse_key(&source_key).as_ref(),
        Some(&message.source),
        "source key {source_key:?}"
    );

    let rules = rules();
    match candidates_for(&message, rules) {
        Ok(candidates) => {
            assert!(!candidates.is_empty(), "Ok without candidates for {body:?}");
            for c in &candidates {
                assert_confined(rules, c, body);
                assert_via(c, c.via.starts_with("fallback"), body);
            }
            assert_distinct(&candidates, body);
            if let Ok(primary) = rules.resolve(&message.legacy_path) {
                assert_eq!(
                    &candidates[..primary.candidates.len()],
                    &primary.candidates[..],
                    "the legacy path's own candidates come first for {body:?}"
                );
            }
        }
        Err(e) => {
            assert!(e.starts_with("unusable path"), "error {e:?} for {body:?}");
            for path in std::iter::once(&message.legacy_path).chain(&message.fallback_paths) {
                assert!(
                    rules.resolve(path).is_err(),
                    "{path:?} resolves but candidates_for failed for {body:?}"
                );
            }
        }
    }
});
