#!/usr/bin/env bash
# The whole migration, locally, on generated sample data: starts the local services,
# generates a legacy MariaDB database + EFS tree + the Area 1-3 id mappings, and a DTX 2.0
# PostgreSQL database (the infra/sql mirror with Area 1-3 stand-in rows); prints the dry-run
# inventory; moves every file through SQS -> worker -> S3/DynamoDB on moto and verifies every
# stored object against its manifest row; then runs the record loader's 14 steps one by one
# (validate ... export-mappings, verify) and prints the reports.
#
# Rerunning it changes nothing (same sample, same objects, same manifest, no new messages, the
# same target rows); pass --fresh to wipe the emulator and the target database first.
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
TARGET_DB=dtx_quickstart_target
if $fresh; then
  bash infra/local/moto.sh reset
  psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS $TARGET_DB WITH (FORCE)"
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$TARGET_DB'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -q -c "CREATE DATABASE $TARGET_DB"
fi
export TARGET_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$TARGET_DB"

echo "== building dtx-migrate" >&2
cargo build -q -p cli
BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/dtx-migrate"

mysql -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS dtx_quickstart CHARACTER SET utf8mb4"
export LEGACY_DATABASE_URL="mysql://root@127.0.0.1:3306/dtx_quickstart"
export EFS_ROOT="$WORK/efsdata" MAPPINGS_DIR="$WORK/mappings" REPORT_DIR="$WORK/report"
export DTX_LOCAL_PREFIX="${DTX_LOCAL_PREFIX:-dtx-quickstart}"
export RUST_LOG="${RUST_LOG:-error}"

echo "== generating sample legacy data (deterministic)" >&2
"$BIN" sample generate --summary "$WORK/sample_summary.json" --target-url "$TARGET_DATABASE_URL"

echo
"$BIN" inventory --dry-run | tee "$REPORT_DIR/dry_run_report.txt"
echo
"$BIN" move --report-dir "$REPORT_DIR" | tee "$REPORT_DIR/move_report.txt"
echo
"$BIN" manifest verify
"$BIN" manifest export --out "$REPORT_DIR" >/dev/null

echo
echo "== record loader"
# The spec's 14 steps in order (audit-history is optional; the quick start runs it).
"$BIN" load --step validate --report-dir "$REPORT_DIR" > "$REPORT_DIR/load_validate.txt"
cp "$REPORT_DIR/migration_report.txt" "$REPORT_DIR/dry_run_migration_report.txt"
echo "validate: dry-run report in $REPORT_DIR/dry_run_migration_report.txt"
for step in document-types document-risk-profiles requirements-groups files certificates evaluations current-evaluations \
            documents doc-requirements fulfillments audit-history export-mappings; do
  "$BIN" load --step "$step" --report-dir "$REPORT_DIR" > "$REPORT_DIR/load_$step.txt"
  grep "^step $step done" "$REPORT_DIR/load_$step.txt"
done
echo
cat "$REPORT_DIR/migration_report.txt"
echo
# Verify exits non-zero (and the quick start with it) when any check does not hold.
"$BIN" load --step verify --report-dir "$REPORT_DIR" | tee "$REPORT_DIR/load_verify.txt"
# The operator's report: figures and charts of the file move plus the loader's issues.
"$BIN" report --html "$REPORT_DIR/migration_report.html" --report-dir "$REPORT_DIR" > "$REPORT_DIR/report.txt"
echo
echo "Issues flagged by the loader: $(($(wc -l < "$REPORT_DIR/migration_issues.csv") - 1)) (migration_issues.csv)"
echo "Reports in $REPORT_DIR (dry_run_report.txt, move_report.txt, file_manifest.csv, dry_run_migration_report.txt, migration_report.txt, migration_issues.csv, id_mapping_*.csv, verification_report.txt, load_<step>.txt, report.txt, migration_report.html)"
