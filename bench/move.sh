#!/usr/bin/env bash
# Benchmark 2, moving: the worker handler driven directly with SqsEvent batches (dtx-bench
# move; the queue is not what is measured) against `rclone copy` and `aws s3 cp --recursive`
# uploading the same generated tree to the same local S3 endpoint, s3s-fs (moto burns 10-13
# CPU s/GiB itself and hides every difference). Every process runs under /usr/bin/time, so
# the figures are the client's own wall time, CPU and peak RSS; the endpoint's are excluded.
#
# Our runs:
#   ours-mem      dedup and manifest in memory: the wall-time comparison with plain copiers;
#   ours-mem-x2   the same with two execution environments in one process;
#   ours-ddb      dedup and manifest on DynamoDB (moto, served by waitress so connections are
#                 kept alive as AWS's are): the client CPU a real run pays, every request
#                 signed, sent and parsed (its wall time includes moto's).
# Every run of ours checks the bucket afterwards: exactly the tree's distinct contents stored.
#
#   bash bench/move.sh            # 2,000 files, ~1 GiB, 20% duplicates
#   bash bench/move.sh --smoke    # 60 files, debug build
#   FILES=5000 bash bench/move.sh
# Targets (issue 7): faster than rclone in wall time; <= 2.0 client CPU s/GiB.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

FILES="${FILES:-2000}"; PROFILE=release
for arg in "$@"; do
  case "$arg" in
    --smoke) FILES=60; PROFILE=debug ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
  esac
done
build_bins "$PROFILE"
peer_rclone
peer_awscli
bash infra/local/services.sh >/dev/null
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dtx-bench-move.XXXXXX")"
trap 'stop_s3s_fs; stop_moto_keepalive; rm -rf "$WORK"' EXIT
start_moto_keepalive
RESULTS="$WORK/results"
"$BIN/dtx-bench" tree --root "$WORK/tree" --files "$FILES" --seed 5 | tee "$WORK/tree.txt"
SRC="$WORK/tree/attachments"
find "$SRC" -type f -print0 | xargs -0 cat > /dev/null   # warm the page cache
start_s3s_fs

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
rclone_remote
"$AWS_CLI" --endpoint-url "$S3_ENDPOINT" s3 mb s3://dtx-bench >/dev/null

measure rclone env -u AWS_CA_BUNDLE rclone copy "$SRC" bench:dtx-bench/rclone
measure awscli "$AWS_CLI" --endpoint-url "$S3_ENDPOINT" s3 cp --recursive --only-show-errors "$SRC" s3://dtx-bench/awscli
measure ours-mem "$BIN/dtx-bench" move --root "$WORK/tree" --s3-endpoint "$S3_ENDPOINT" --prefix mem
measure ours-mem-x2 "$BIN/dtx-bench" move --root "$WORK/tree" --s3-endpoint "$S3_ENDPOINT" --prefix mem2 --environments 2
measure ours-ddb "$BIN/dtx-bench" move --root "$WORK/tree" --s3-endpoint "$S3_ENDPOINT" --prefix ddb$$ --state "$STATE_ENDPOINT"

# Records the worker gave back and the harness delivered again ("redelivered" in each JSON
# line), with the worker's reasons.
grep -h "record will be retried" "$WORK"/ours-*.err 2>/dev/null | head -n 5 >&2 || true
BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
GIB=$(echo "$BYTES / 1073741824" | bc -l)
printf '%-12s %8s %10s %12s %16s %10s\n' client wall_s cpu_s cpu_s/GiB cpu_s/1000files maxRSS_MiB
for tool in rclone awscli ours-mem ours-mem-x2 ours-ddb; do
  wall=$(field "$tool" 2); cpu=$(field "$tool" 3); rss=$(field "$tool" 4)
  printf '%-12s %8.2f %10.2f %12.2f %16.2f %10d\n' "$tool" "$wall" "$cpu" "$(echo "$cpu / $GIB" | bc -l)" \
    "$(echo "$cpu * 1000 / $FILES" | bc -l)" $((rss / 1024))
done
for run in ours-mem ours-mem-x2 ours-ddb; do echo "$run: $(cat "$WORK/$run.out")"; done
WALL_RATIO=$(echo "$(field ours-mem 2) / $(field rclone 2)" | bc -l)
BEST_WALL_RATIO=$(echo "$(field ours-mem-x2 2) / $(field rclone 2)" | bc -l)
CPU_PER_GIB=$(echo "$(field ours-ddb 3) / $GIB" | bc -l)
printf 'wall time vs rclone: ours-mem %.2fx, ours-mem-x2 %.2fx (below 1 is faster)\n' "$WALL_RATIO" "$BEST_WALL_RATIO"
printf 'client CPU vs rclone: %.2fx (ours-ddb), vs aws cli: %.2fx\n' \
  "$(echo "$(field ours-ddb 3) / $(field rclone 3)" | bc -l)" "$(echo "$(field ours-ddb 3) / $(field awscli 3)" | bc -l)"
verdict "faster than rclone in wall time (one environment)" "$(echo "$WALL_RATIO < 1" | bc)"
verdict "<= 2.0 client CPU s/GiB with DynamoDB state (measured: $(printf %.2f "$CPU_PER_GIB"))" "$(echo "$CPU_PER_GIB <= 2.0" | bc)"
