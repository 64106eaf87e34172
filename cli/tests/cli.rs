//! The CLI binary itself: help for every command, and no credential ever echoed.

use std::process::Command;

fn dtx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dtx-migrate"))
}

#[test]
fn every_command_has_help_and_hides_database_credentials() {
    for args in [
        vec!["--help"],
        vec!["inventory", "--help"],
        vec!["move", "--help"],
        vec!["manifest", "export", "--help"],
        vec!["manifest", "verify", "--help"],
        vec!["sample", "generate", "--help"],
        vec!["local", "up", "--help"],
    ] {
        let out = dtx()
            .args(&args)
            .env("LEGACY_DATABASE_URL", "mysql://migrator:s3cr3t-pw@db.internal/dtx")
            .output()
            .expect("run dtx-migrate");
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: dtx-migrate"), "{args:?}: {text}");
        assert!(!text.contains("s3cr3t-pw"), "{args:?} printed the database password");
    }
}

#[test]
fn a_bad_area_is_refused_with_the_valid_choices() {
    let out = dtx()
        .args(["inventory", "--area", "invoices", "--legacy-url", "mysql://x", "--efs-root", "/nonexistent", "--mappings-dir", "/nonexistent"])
        .output()
        .expect("run dtx-migrate");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown area \"invoices\"") && err.contains("certificates"), "{err}");
}
