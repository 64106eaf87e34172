#!/usr/bin/env bash
# Benchmark 5, inventory: legacy rows -> messages for a generated legacy database (1 million
# repo_file/attachment files by default, bench/inventory_rows.sql), through the product's
# Inventory with the queue port wrapped in a counter (dtx-bench inventory).
#   1. --queue memory: nothing leaves the process; rows resolved per second with no emulator.
#   2. --queue <moto>: every batch goes over the SQS protocol to moto; the wall time spent
#      waiting on it is measured and subtracted ("excluding the emulator's own time"). Run on
#      a smaller database (SQS_ROWS, default 2,000): moto 5.2.5 took 0.3-3 s per SendMessageBatch here.
# Both print SQS requests per file (SendMessageBatch calls / messages; 0.1 is full batches).
#
#   bash bench/inventory.sh          # 1,000,000 rows, and 2,000 over moto
#   bash bench/inventory.sh --smoke  # 5,000 and 200, debug build
# Target (issue 7): 0.1 SQS requests per file.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

ROWS="${ROWS:-1000000}"; SQS_ROWS="${SQS_ROWS:-2000}"; PROFILE=release
for arg in "$@"; do
  case "$arg" in
    --smoke) ROWS=5000; SQS_ROWS=200; PROFILE=debug ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
  esac
done
build_bins "$PROFILE"
bash infra/local/services.sh >/dev/null
MOTO="$(bash infra/local/moto.sh start)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dtx-bench-inventory.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/results"

generate() { # database rows
  mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 CHARACTER SET utf8mb4"
  mysql -h 127.0.0.1 -u root "$1" < infra/sql/legacy_mysql.sql
  { echo "SET @rows = $2;"; cat bench/inventory_rows.sql; } | mysql -h 127.0.0.1 -u root "$1"
}
echo "== generating $ROWS and $SQS_ROWS legacy file rows" >&2
generate dtx_bench_inventory "$ROWS"
generate dtx_bench_inventory_sqs "$SQS_ROWS"

measure memory "$BIN/dtx-bench" inventory --legacy-url mysql://root@127.0.0.1:3306/dtx_bench_inventory --queue memory
bash infra/local/moto.sh reset >/dev/null
measure sqs "$BIN/dtx-bench" inventory --legacy-url mysql://root@127.0.0.1:3306/dtx_bench_inventory_sqs --queue "$MOTO"
bash infra/local/moto.sh reset >/dev/null

printf '%-7s %9s %9s %13s %10s %15s %22s %8s\n' queue rows sent sqs_requests req/file wall_s rows/s_excl_emulator cpu_s
for run in memory sqs; do
  python3 - "$WORK/$run.out" "$(field "$run" 3)" "$run" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print("%-7s %9d %9d %13d %10.3f %15.2f %22.0f %8s" % (sys.argv[3], r["rows"], r["sent"], r["sqs_requests"],
      r["sqs_requests_per_file"], r["wall_s"], r["rows_per_s_excluding_sqs"], sys.argv[2]))
PY
done
for run in memory sqs; do
  per_file=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['sqs_requests_per_file'])" "$WORK/$run.out")
  verdict "$run: SQS requests per file <= 0.1 (full batches; measured $per_file)" "$(echo "$per_file <= 0.1" | bc)"
done
