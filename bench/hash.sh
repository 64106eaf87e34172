#!/usr/bin/env bash
# Benchmark 1, hashing: the worker's SHA-256 path (dtx-bench hash: located through the mounted
# source, read like the worker reads, hashed on the blocking pool) over a generated tree of
# >= 2 GiB, against `openssl dgst -sha256` and coreutils `sha256sum` on the same files, one
# file after another in each tool. The page cache is warmed first so all three read from
# memory; each tool runs 3 times and its best run counts. The three digest lists must agree.
#
#   bash bench/hash.sh            # ~2.2 GiB tree
#   bash bench/hash.sh --smoke    # tiny tree, debug build: checks that it works
# Target (issue 7): >= 0.9x OpenSSL's throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

FILES=4400; PROFILE=release; RUNS=3
for arg in "$@"; do
  case "$arg" in
    --smoke) FILES=40; PROFILE=debug; RUNS=1 ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
  esac
done
build_bins "$PROFILE"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dtx-bench-hash.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/results"
"$BIN/dtx-bench" tree --root "$WORK/tree" --files "$FILES" --seed 11 --dup-fraction 0
find "$WORK/tree/attachments" -type f | sort > "$WORK/list"
xargs -a "$WORK/list" cat > /dev/null   # warm the page cache

for run in $(seq 1 "$RUNS"); do
  measure "openssl.$run" xargs -a "$WORK/list" openssl dgst -sha256 -r
  measure "sha256sum.$run" xargs -a "$WORK/list" sha256sum
  measure "ours.$run" "$BIN/dtx-bench" hash --root "$WORK/tree" --print
done

# Same digests from all three (openssl -r prints "<hex> *<path>").
sed 's/ \*/  /' "$WORK/openssl.1.out" | sort > "$WORK/d.openssl"
sort "$WORK/sha256sum.1.out" > "$WORK/d.sha256sum"
sort "$WORK/ours.1.out" > "$WORK/d.ours"
cmp -s "$WORK/d.openssl" "$WORK/d.ours" || { echo "our digests differ from openssl's" >&2; exit 1; }
cmp -s "$WORK/d.sha256sum" "$WORK/d.ours" || { echo "our digests differ from sha256sum's" >&2; exit 1; }

BYTES=$(xargs -a "$WORK/list" stat -c %s | awk '{ s += $1 } END { print s }')
GIB=$(echo "$BYTES / 1073741824" | bc -l)
best() { for run in $(seq 1 "$RUNS"); do echo "$(field "$1.$run" 2) $(field "$1.$run" 3)"; done | sort -n | head -n 1; }
printf '%d files, %.2f GiB, digests agree\n' "$(wc -l < "$WORK/list")" "$GIB"
printf '%-10s %8s %8s %12s\n' tool wall_s GB/s cpu_s/GiB
for tool in openssl sha256sum ours; do
  read -r wall cpu < <(best "$tool")
  printf '%-10s %8.2f %8.2f %12.2f\n' "$tool" "$wall" "$(echo "$BYTES / $wall / 1000000000" | bc -l)" "$(echo "$cpu / $GIB" | bc -l)"
done
read -r ours_wall _ < <(best ours)
read -r openssl_wall _ < <(best openssl)
read -r sha256sum_wall _ < <(best sha256sum)
RATIO=$(echo "$openssl_wall / $ours_wall" | bc -l)
printf 'ours / openssl throughput: %.2fx; ours / sha256sum: %.2fx\n' "$RATIO" "$(echo "$sha256sum_wall / $ours_wall" | bc -l)"
verdict "hashing >= 0.9x OpenSSL's throughput" "$(echo "$RATIO >= 0.9" | bc)"
