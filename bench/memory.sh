#!/usr/bin/env bash
# Benchmark 3, worker memory: peak RSS of the worker handler (dtx-bench move, default worker
# settings: 64 MiB multipart threshold, 16 MiB parts, 4 parts in flight, 10 records at once,
# 192 MiB memory budget) while moving one 512 MiB file, one 2 GiB file, and 1,000 small files
# with full batch concurrency, to s3s-fs. rclone's peak RSS on the 2 GiB file is printed
# beside it as the peer's figure.
#
#   bash bench/memory.sh          # the sizes above
#   bash bench/memory.sh --smoke  # 70 and 90 MiB files and 50 small ones, debug build
# Target (issue 7): bounded by configuration (<= 256 MiB at defaults), independent of file size.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

SMALL=512; LARGE=2048; FILES=1000; PROFILE=release
for arg in "$@"; do
  case "$arg" in
    --smoke) SMALL=70; LARGE=90; FILES=50; PROFILE=debug ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
  esac
done
build_bins "$PROFILE"
peer_rclone
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dtx-bench-memory.XXXXXX")"
trap 'stop_s3s_fs; rm -rf "$WORK"' EXIT
RESULTS="$WORK/results"
"$BIN/dtx-bench" tree --root "$WORK/small-file" --single-bytes $((SMALL << 20)) >/dev/null
"$BIN/dtx-bench" tree --root "$WORK/large-file" --single-bytes $((LARGE << 20)) --seed 8 >/dev/null
"$BIN/dtx-bench" tree --root "$WORK/many" --files "$FILES" --tail-fraction 0 --seed 9 >/dev/null
start_s3s_fs
rclone_remote

measure "file-${SMALL}MiB" "$BIN/dtx-bench" move --root "$WORK/small-file" --s3-endpoint "$S3_ENDPOINT" --prefix small
measure "file-${LARGE}MiB" "$BIN/dtx-bench" move --root "$WORK/large-file" --s3-endpoint "$S3_ENDPOINT" --prefix large
measure "files-$FILES" "$BIN/dtx-bench" move --root "$WORK/many" --s3-endpoint "$S3_ENDPOINT" --prefix many
measure "rclone-${LARGE}MiB" env -u AWS_CA_BUNDLE rclone copy "$WORK/large-file/attachments" bench:dtx-bench/rclone-large

printf '%-16s %8s %12s\n' run wall_s maxRSS_MiB
worst=0
for run in "file-${SMALL}MiB" "file-${LARGE}MiB" "files-$FILES" "rclone-${LARGE}MiB"; do
  rss=$(( $(field "$run" 4) / 1024 ))
  printf '%-16s %8.2f %12d\n' "$run" "$(field "$run" 2)" "$rss"
  case "$run" in rclone*) ;; *) [ "$rss" -gt "$worst" ] && worst=$rss ;; esac
done
verdict "worker peak RSS <= 256 MiB at default settings (worst: $worst MiB)" "$([ "$worst" -le 256 ] && echo 1 || echo 0)"
a=$(( $(field "file-${SMALL}MiB" 4) / 1024 )); b=$(( $(field "file-${LARGE}MiB" 4) / 1024 ))
verdict "independent of file size (${SMALL} MiB: $a MiB, ${LARGE} MiB: $b MiB, within 10%)" \
  "$(echo "$b <= $a * 1.1 + 8" | bc)"
