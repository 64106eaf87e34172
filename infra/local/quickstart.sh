#!/usr/bin/env bash
# The whole file move, locally, on generated sample data: starts the local services,
# generates a legacy MariaDB database + EFS tree + account mapping, prints the dry-run
# inventory, moves every file through SQS -> worker -> S3/DynamoDB on moto, verifies every
# stored object against its manifest row, and writes file_manifest.csv.
#
# Rerunning it changes nothing (same sample, same objects, same manifest, no new messages);
# pass --fresh to wipe the emulator's state first.
set -euo pipefail
cd "$(dirname "$0")/../.."

fresh=false
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=true ;;
    *) echo "usage: $0 [--fresh]" >&2; exit 2 ;;
  esac
done

WORK="${DTX_QUICKSTART_DIR:-$PWD/.local/quickstart}"
mkdir -p "$WORK/efsdata" "$WORK/mappings" "$WORK/report"

bash infra/local/services.sh
export AWS_ENDPOINT_URL
AWS_ENDPOINT_URL="$(bash infra/local/moto.sh start)"
if $fresh; then bash infra/local/moto.sh reset; fi

echo "== building dtx-migrate" >&2
cargo build -q -p cli
BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/dtx-migrate"

mysql -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS dtx_quickstart CHARACTER SET utf8mb4"
export LEGACY_DATABASE_URL="mysql://root@127.0.0.1:3306/dtx_quickstart"
export EFS_ROOT="$WORK/efsdata" MAPPINGS_DIR="$WORK/mappings" REPORT_DIR="$WORK/report"
export DTX_LOCAL_PREFIX="${DTX_LOCAL_PREFIX:-dtx-quickstart}"
export RUST_LOG="${RUST_LOG:-error}"

echo "== generating sample legacy data (deterministic)" >&2
"$BIN" sample generate --summary "$WORK/sample_summary.json"

echo
"$BIN" inventory --dry-run | tee "$REPORT_DIR/dry_run_report.txt"
echo
"$BIN" move --report-dir "$REPORT_DIR" | tee "$REPORT_DIR/move_report.txt"
echo
"$BIN" manifest verify
"$BIN" manifest export --out "$REPORT_DIR" >/dev/null
echo
echo "Reports in $REPORT_DIR (dry_run_report.txt, move_report.txt, file_manifest.csv, file_manifest_summary.txt)"
