#!/usr/bin/env bash
# Benchmark 4, cold start: the worker and inventory Lambda binaries' stripped size, and the
# time from process start to ready-for-first-event (bench/coldstart.py: a stand-in Runtime API
# on loopback; "ready" is the first GET .../invocation/next, after all init). The worker's
# init builds its AWS clients and settings; the inventory's also connects to MariaDB, checks
# the legacy schema and loads the account mapping, as it does on Lambda.
#
#   bash bench/coldstart.sh          # release binaries, 20 starts each
#   bash bench/coldstart.sh --smoke  # debug binaries, 2 starts each (no size/time targets)
# Targets (issue 7): < 50 ms init and < 10 MB stripped, for both.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

PROFILE=release; RUNS=20
for arg in "$@"; do
  case "$arg" in
    --smoke) PROFILE=debug; RUNS=2 ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
  esac
done
build_bins "$PROFILE"
bash infra/local/services.sh >/dev/null
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dtx-bench-coldstart.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/efs" "$WORK/mappings"
DB=dtx_bench_coldstart
mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"
mysql -h 127.0.0.1 -u root "$DB" < infra/sql/legacy_mysql.sql
{ echo "old_customer_id,new_account_id"; seq 1 200 | awk '{print $1 "," 1000 + $1}'; } > "$WORK/mappings/id_mapping_accounts.csv"

# What the template sets (names only; nothing is contacted during init).
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
  BUCKET_NAME=files QUEUE_URL=http://127.0.0.1:9/q DLQ_URL=http://127.0.0.1:9/dlq MANIFEST_TABLE=m DEDUP_TABLE=d RUNS_TABLE=r \
  EFS_ROOT="$WORK/efs" MAPPINGS_DIR="$WORK/mappings" LEGACY_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB" RUST_LOG=info

printf '%-10s %12s %16s %10s %10s\n' binary size_MB init_median_ms min_ms max_ms
ok=1
for fn in worker inventory; do
  bin="$BIN/$fn"
  if [ "$PROFILE" = debug ]; then cp "$bin" "$WORK/$fn" && strip "$WORK/$fn" && bin="$WORK/$fn"; fi
  size=$(stat -c %s "$bin")
  read -r median lo hi < <(python3 bench/coldstart.py "$bin" "$RUNS")
  printf '%-10s %12.2f %16s %10s %10s\n' "$fn" "$(echo "$size / 1000000" | bc -l)" "$median" "$lo" "$hi"
  if [ "$PROFILE" = release ]; then
    verdict "$fn init < 50 ms (median $median ms)" "$(echo "$median < 50" | bc)"
    verdict "$fn < 10 MB stripped ($(echo "scale=2; $size / 1000000" | bc) MB)" "$(echo "$size < 10000000" | bc)"
  fi
done
