//! Security: no legacy path, however crafted, makes the worker's source read outside
//! `EFS_ROOT` or block. A property test over generated paths (`..`, `.`, empty and doubled
//! separators, NUL bytes, percent-encoded dots, unknown and absolute prefixes) against a real
//! directory tree holding every trap: a symlink to a file outside the root, a symlinked
//! directory pointing outside, a FIFO, a symlink to a device, and legitimate files (one behind
//! a symlink that stays inside). Whatever is located must be one of the legitimate files.

use proptest::prelude::*;
use shared::paths::PathRules;
use shared::source::MountedSource;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const INSIDE: &[u8] = b"INSIDE the root";
const SECRET: &[u8] = b"SECRET outside the root";

struct Tree {
    _dir: tempfile::TempDir,
    source: MountedSource,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("efsdata"), dir.path().join("outside"));
    for d in [root.join("attachments/ok"), root.join("filerepo"), outside.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(outside.join("secret.pdf"), SECRET).unwrap();
    std::fs::write(root.join("attachments/ok/inside.pdf"), INSIDE).unwrap();
    std::fs::write(root.join("filerepo/x.pdf"), INSIDE).unwrap();
    let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
    link(&outside.join("secret.pdf"), "attachments/link_out.pdf");
    link(Path::new("../../outside/secret.pdf"), "attachments/ok/relative_out.pdf");
    link(&outside, "attachments/dir_out");
    link(Path::new("/dev/zero"), "attachments/dev.pdf");
    link(Path::new("ok/inside.pdf"), "attachments/in_link.pdf");
    let fifo = root.join("attachments/fifo.pdf");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo (coreutils)");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let source = MountedSource::new(&root).unwrap();
    Tree { _dir: dir, source }
}

const PREFIXES: [&str; 9] = [
    "/efsdata/attachments/",
    "/efsdata/filerepo/",
    "/home/wwwriskt/public_html/attachments/",
    "/home/wwwriskt/public_html/www1/attachments/",
    "/efsdata/",
    "/etc/",
    "/",
    "",
    "efsdata/attachments/",
];

const SEGMENTS: [&str; 18] = [
    "..", ".", "", "ok", "inside.pdf", "link_out.pdf", "relative_out.pdf", "dir_out", "secret.pdf", "outside", "fifo.pdf", "dev.pdf",
    "in_link.pdf", "x.pdf", "a\0b.pdf", "%2e%2e", "..%2f..", "attachments",
];

/// Mostly known prefixes, so most paths get past the rewrite rules to the file system.
fn legacy_path() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![4 => prop::sample::select(PREFIXES[..4].to_vec()), 1 => prop::sample::select(PREFIXES[4..].to_vec())];
    (prefix, prop::collection::vec(prop::sample::select(SEGMENTS.to_vec()), 1..6)).prop_map(|(prefix, segments)| format!("{prefix}{}", segments.join("/")))
}

/// Paths the rewrite rules accepted, so that the file system was consulted.
static RESOLVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// What the worker's lookup gives for `legacy_path`: the bytes of the file it would read, or
/// None when it refuses or finds nothing. Panics when the lookup blocks.
fn read_through_worker_lookup(tree: &Tree, runtime: &tokio::runtime::Runtime, legacy_path: &str) -> Option<Vec<u8>> {
    let resolved = PathRules::default().resolve(legacy_path).ok()?;
    RESOLVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (sender, receiver) = mpsc::channel();
    let source = tree.source.clone();
    let candidates = resolved.candidates.clone();
    std::thread::spawn(move || sender.send(source.locate_blocking(&candidates).map(|found| found.ok().map(Box::new))));
    let found = receiver.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("the lookup of {legacy_path:?} blocked"));
    let located = found.expect("no I/O error in this tree")?;
    let bytes = runtime.block_on(located.reader.read_range(0, located.size as usize)).unwrap();
    let canonical = std::fs::canonicalize(tree.source.root().join(&located.resolved_path)).unwrap();
    assert!(canonical.starts_with(tree.source.root()), "{legacy_path:?} located {} outside the root", canonical.display());
    Some(bytes)
}

#[test]
fn no_crafted_path_reads_outside_the_root_or_blocks() {
    let tree = tree();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The traps are really there: each named path is refused, the legitimate ones are read.
    for trap in ["link_out.pdf", "ok/relative_out.pdf", "dir_out/secret.pdf", "fifo.pdf", "dev.pdf", "../outside/secret.pdf"] {
        assert_eq!(read_through_worker_lookup(&tree, &runtime, &format!("/efsdata/attachments/{trap}")), None, "{trap}");
    }
    for ok in ["/efsdata/attachments/ok/inside.pdf", "/efsdata/attachments/in_link.pdf", "/efsdata/filerepo/x.pdf"] {
        assert_eq!(read_through_worker_lookup(&tree, &runtime, ok).as_deref(), Some(INSIDE), "{ok}");
    }
    let located = std::sync::atomic::AtomicU32::new(0);
    let config = ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(path in legacy_path())| {
        if let Some(bytes) = read_through_worker_lookup(&tree, &runtime, &path) {
            prop_assert_eq!(bytes.as_slice(), INSIDE, "{:?} read something other than a file inside the root", path);
            located.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // The generator reaches the legitimate files too, so the property is not vacuous.
    let (located, resolved) = (located.into_inner(), RESOLVED.load(std::sync::atomic::Ordering::Relaxed));
    assert!(located > 0, "no generated path located a file");
    assert!(resolved > 700, "only {resolved} paths reached the file system");
    eprintln!("2000 crafted paths: {resolved} reached the file system, {located} located a file inside the root; none read outside it or blocked");
}
