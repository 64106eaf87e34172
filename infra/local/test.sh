#!/usr/bin/env bash
# The test command: starts the local services (PostgreSQL, MariaDB, moto), installs Debian's
# chromium if missing (the HTML report is rendered headless), lints the SAM template, checks
# clippy, runs every unit and integration test, then a smoke run of every benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash infra/local/services.sh
bash infra/local/chromium.sh
export DTX_TEST_AWS_ENDPOINT
DTX_TEST_AWS_ENDPOINT="$(bash infra/local/moto.sh start)"
bash infra/check-template.sh
cargo clippy -q --workspace --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# Benchmarks are not tests: a smoke run of each (tiny data, debug build, peers included)
# checks that the scripts and their peer tools still work; figures come from bench/all.sh.
bash bench/all.sh --smoke
