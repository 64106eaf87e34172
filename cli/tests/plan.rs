//! `dtx-migrate plan`: the forecast the binary prints, from a file count and total size or
//! from the inventory's dry-run report. Needs nothing external.

use serde_json::Value;
use shared::inventory::{DryRunReport, InventoryCounts, InventoryResponse, Tally};
use std::process::{Command, Output};

fn dtx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dtx-migrate")).args(args).output().expect("run dtx-migrate")
}

fn stdout_of(args: &[&str]) -> String {
    let out = dtx(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_str(&stdout_of(args)).expect("plan --json prints JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_issue_scenario_prints_figures_that_add_up() {
    let args = ["plan", "--files", "1000000", "--bytes", "2.2TB", "--concurrency", "1000"];
    let json = json_of(&[&args[..], &["--json"]].concat());
    assert_eq!(json["workload"]["files_found"], 1_000_000);
    assert_eq!(json["workload"]["bytes_found"], 2_200_000_000_000u64);
    assert_eq!(json["deployment"]["concurrency"], 1000);
    // Unset flags are the template's defaults.
    assert_eq!((json["deployment"]["memory_mb"].as_u64(), json["deployment"]["batch_size"].as_u64()), (Some(1024), Some(10)));

    // Lambda: one invocation per batch of ten, each billed at 1 GB for at least the batch's
    // own duration (more: the table's writes bind, and the workers wait on them).
    let invocations = f(&json["lambda"]["invocations"]);
    assert_eq!(invocations, 100_000.0);
    let gb_s = f(&json["lambda"]["gb_seconds"]);
    assert!(gb_s > invocations * f(&json["worker"]["batch_duration_s"]));
    assert_eq!(json["wall"]["binding"], "manifest_table_writes");
    // At the template's 50 workers the workers bind, and GB-s are exactly the batches'.
    let fifty = json_of(&["plan", "--files", "1000000", "--bytes", "2.2TB", "--json"]);
    assert_eq!(fifty["wall"]["binding"], "workers");
    let batches = f(&fifty["lambda"]["invocations"]) * f(&fifty["worker"]["batch_duration_s"]);
    assert!((f(&fifty["lambda"]["gb_seconds"]) - batches).abs() < 1e-9 * batches);

    // The wall time is at least the files at the run's rate, and that rate is the lowest limit.
    let wall = &json["wall"];
    let rate = f(&wall["files_per_s"]);
    let lowest = wall["rate_limits"].as_array().unwrap().iter().map(|l| f(&l["files_per_s"])).fold(f64::INFINITY, f64::min);
    assert_eq!(rate, lowest);
    assert!(f(&wall["seconds"]) >= 1_000_000.0 / rate);

    // Requests: per file x files = the total; the bill's parts add up to its total.
    let requests = &json["requests"];
    assert!((f(&requests["per_file"]) * 1_000_000.0 - f(&requests["total"])).abs() < 1e-6 * f(&requests["total"]));
    for bill in [&json["bill"], &json["floor"]] {
        let parts: f64 = ["lambda", "sqs", "dynamodb", "s3_requests", "efs_reads"].iter().map(|k| f(&bill[k])).sum();
        assert!((parts - f(&bill["total"])).abs() < 1e-9, "{bill}");
    }
    assert!((f(&json["bill_over_floor"]) - f(&json["bill"]["total"]) / f(&json["floor"]["total"])).abs() < 1e-12);
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);

    // The text shows the same forecast: each target with PASS or MISS as in the JSON, and the
    // bill's total to the cent.
    let text = stdout_of(&args);
    for t in targets {
        let target = t["target"].as_str().unwrap();
        let verdict = if t["pass"].as_bool().unwrap() { "PASS" } else { "MISS" };
        let line = text.lines().find(|l| l.contains(target)).unwrap_or_else(|| panic!("{target:?} missing from:\n{text}"));
        assert!(line.trim_end().ends_with(verdict), "{line}");
        assert!(line.contains(t["value"].as_str().unwrap()), "{line}");
    }
    let total_line = text.lines().find(|l| l.trim_start().starts_with("total ")).expect("a bill total line");
    let dollars: f64 = total_line.split_whitespace().nth(1).unwrap().trim_start_matches('$').replace(',', "").parse().unwrap();
    assert!((dollars - f(&json["bill"]["total"])).abs() <= 0.005, "{total_line}");
    assert!(text.contains("Wall time") && text.contains("bound by"), "{text}");
}

#[test]
fn a_slower_file_system_and_warmer_tables_change_what_binds() {
    // A Bursting file system of ~2 TiB: about 100 MiB/s. EFS binds, and the run takes about
    // the bytes at that rate (each byte read once, plus EFS's metering of metadata).
    let json = json_of(&["plan", "--files", "1000000", "--bytes", "2.2TB", "--concurrency", "1000", "--efs-read-throughput", "100MiB", "--json"]);
    assert_eq!(json["wall"]["binding"], "efs_read_throughput");
    let seconds = f(&json["wall"]["seconds"]);
    let at_100_mib = f(&json["efs"]["metered_bytes"]) / (100.0 * 1024.0 * 1024.0);
    assert!(seconds >= at_100_mib * (1.0 - 1e-9) && seconds < at_100_mib * 1.01, "{seconds} vs {at_100_mib}");
    assert_eq!(json["targets"][0]["pass"], false, "six hours is not under 30 minutes");

    // Tables warmed to 40,000 WRU/s: S3 PUTs into the one account prefix bind next.
    let json = json_of(&["plan", "--files", "1000000", "--bytes", "2.2TB", "--concurrency", "1000", "--table-write-units", "40000", "--json"]);
    assert_eq!(json["wall"]["binding"], "s3_put_requests");
}

fn small_report() -> DryRunReport {
    let mut report = DryRunReport {
        total: Tally { expected: 1_200, found: 1_000, missing: 150, rejected: 50, bytes: 900 * 400_000 + 100 * 30_000_000 },
        ..Default::default()
    };
    report.size_histogram.insert("< 1 MiB".into(), 900);
    report.size_histogram.insert("< 100 MiB".into(), 100);
    report.size_histogram_bytes.insert("< 1 MiB".into(), 900 * 400_000);
    report.size_histogram_bytes.insert("< 100 MiB".into(), 100 * 30_000_000);
    report
}

#[test]
fn a_dry_run_report_is_forecast_whether_wrapped_or_bare() {
    let dir = tempfile::tempdir().unwrap();
    let report = small_report();
    let response = InventoryResponse {
        done: true,
        cursor: None,
        counts: InventoryCounts::default(),
        totals: InventoryCounts::default(),
        report: Some(report.clone()),
    };
    let wrapped = dir.path().join("inventory.json");
    std::fs::write(&wrapped, serde_json::to_vec_pretty(&response).unwrap()).unwrap();
    let bare = dir.path().join("report.json");
    std::fs::write(&bare, serde_json::to_vec(&report).unwrap()).unwrap();

    for path in [&wrapped, &bare] {
        let json = json_of(&["plan", "--dry-run-report", path.to_str().unwrap(), "--duplicate-fraction", "0", "--json"]);
        let w = &json["workload"];
        assert_eq!((w["files_found"].as_u64(), w["bytes_found"].as_u64()), (Some(1_000), Some(3_360_000_000)));
        assert_eq!(w["missing_or_rejected"], 200);
        assert_eq!(w["duplicate_fraction"], 0.0);
        assert_eq!(json["deployment"]["concurrency"], 50);
        // All files are below the multipart threshold, no duplicates: read once, one PUT each.
        assert_eq!(f(&json["efs"]["read_per_byte_moved"]), 1.0);
        assert_eq!(f(&json["requests"]["totals"]["s3_put_class"]), 1_000.0);
        let dead_letters = json["requests"]["by_path"].as_array().unwrap().iter().find(|r| r["path"] == "dead letter").unwrap();
        assert_eq!(dead_letters["files"], 200.0);
    }

    // An inventory answer that is not a dry run has nothing to forecast.
    let not_dry = dir.path().join("sent.json");
    std::fs::write(&not_dry, serde_json::to_vec(&InventoryResponse { report: None, ..response }).unwrap()).unwrap();
    let out = dtx(&["plan", "--dry-run-report", not_dry.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a dry-run report"));
}

#[test]
fn unusable_input_is_refused_with_a_reason() {
    for (args, expected) in [
        (vec!["plan"], "--dry-run-report"),
        (vec!["plan", "--files", "10"], "--bytes"),
        (vec!["plan", "--files", "10", "--bytes", "2.2XB"], "unknown unit"),
        (vec!["plan", "--files", "10", "--bytes", "1GB", "--concurrency", "5000"], "5000"),
        (vec!["plan", "--files", "10", "--bytes", "1GB", "--duplicate-fraction", "1"], "below 1"),
        (vec!["plan", "--files", "0", "--bytes", "1GB"], "at least one file"),
    ] {
        let out = dtx(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let help = stdout_of(&["plan", "--help"]);
    assert!(help.contains("Usage: dtx-migrate plan") && help.contains("--dry-run-report"), "{help}");
}
