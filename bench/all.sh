#!/usr/bin/env bash
# Every benchmark of issue 7 in turn, each with its peer tool in the same run:
#   bash bench/all.sh           # full sizes (about 20 minutes here, plus first-use installs)
#   bash bench/all.sh --smoke   # tiny data, debug build: what the test command runs
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in hash move memory coldstart inventory loader-scale; do
  echo "=== bench/$bench.sh $*"
  bash "bench/$bench.sh" "$@"
done
