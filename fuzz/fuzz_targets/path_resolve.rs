//! Arbitrary strings as legacy paths: `PathRules::default().resolve` never panics, and every
//! candidate it returns is a clean relative path below a rule location (no NUL, no empty, `.`
//! or `..` segment, not absolute), distinct from the others, with a known `via`, and passes
//! `confine`'s own syntactic check (in an empty root it is simply not found). A file name the
//! inventory accepts (`checked_file_name`) always gives constructed paths that resolve to it.

#![no_main]

use dtx_fuzz::{assert_confined, assert_distinct, assert_via};
use libfuzzer_sys::fuzz_target;
use shared::paths::{
    checked_file_name, confine, constructed_certificate_path, constructed_document_path, logo_path, ConfineError,
    PathError, PathRules,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn rules() -> &'static PathRules {
    static RULES: OnceLock<PathRules> = OnceLock::new();
    RULES.get_or_init(PathRules::default)
}

/// An empty, canonical directory standing in for `EFS_ROOT`.
fn empty_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        // One directory for every run (fork mode starts many processes); it must stay empty.
        let dir = std::env::temp_dir().join("dtx-fuzz-empty-root");
        std::fs::create_dir_all(&dir).expect("create the empty root");
        let dir = std::fs::canonicalize(&dir).expect("canonicalize the empty root");
        assert!(
            std::fs::read_dir(&dir).expect("list the empty root").next().is_none(),
            "{dir:?} is not empty"
        );
        dir
    })
}

fn check(input: &str) {
    let rules = rules();
    match rules.resolve(input) {
        Ok(resolved) => {
            assert!(input.starts_with('/') && !input.contains('\0'), "accepted {input:?}");
            assert!(
                !input.split('/').any(|s| s == ".."),
                "accepted a `..` segment in {input:?}"
            );
            let candidates = &resolved.candidates;
            assert!(!candidates.is_empty(), "no candidates for {input:?}");
            assert_eq!(candidates[0].via, "primary", "first candidate of {input:?}");
            assert_eq!(
                candidates[0].generation, resolved.generation,
                "primary generation of {input:?}"
            );
            for c in candidates {
                assert_confined(rules, c, input);
                assert_via(c, false, input);
                match confine(empty_root(), &c.relative) {
                    Err(ConfineError::NotFound) => {}
                    other => panic!(
                        "confine in an empty root gave {other:?} for {:?} of {input:?}",
                        c.relative
                    ),
                }
            }
            assert_distinct(candidates, input);
        }
        Err(PathError::NulByte) => assert!(input.contains('\0'), "NulByte for {input:?}"),
        Err(PathError::NotAbsolute(_)) => assert!(!input.starts_with('/'), "NotAbsolute for {input:?}"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn constructed(name: &str, path: &str, dir: &str) {
    let resolved = rules()
        .resolve(path)
        .unwrap_or_else(|e| panic!("constructed path {path:?} for accepted name {name:?} does not resolve: {e}"));
    assert_eq!(
        resolved.candidates[0].relative,
        Path::new(dir).join(name),
        "constructed path {path:?}"
    );
    for c in &resolved.candidates {
        assert_confined(rules(), c, path);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    check(input);
    if let Ok(name) = checked_file_name(input) {
        let path = constructed_certificate_path(7, name).expect("checked name");
        constructed(name, &path, "attachments/certificate_management/7");
        let path = constructed_document_path(3, 9, name).expect("checked name");
        constructed(name, &path, "attachments/document_management/3/9");
        let path = logo_path(name).expect("checked name");
        constructed(name, &path, "logos");
    }
});
