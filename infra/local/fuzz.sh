#!/usr/bin/env bash
# Fuzzes the message parser and the path resolver with cargo-fuzz (libFuzzer):
#   bash infra/local/fuzz.sh [seconds-per-target]        (default 60)
# Not part of the test command. Needs the nightly toolchain; installs cargo-fuzz if missing.
# Builds fuzz/ (its own workspace) once into $CARGO_TARGET_DIR (default
# ~/.cache/dtx-migrate/fuzz-target, apart from the main build), then runs each target for the
# given time from a scratch corpus, fuzz/corpus/<target> (git-ignored, kept between runs),
# seeded with a copy of the committed fuzz/seeds/<target>. Prints each target's executions and
# result; a crashing input lands in fuzz/artifacts/<target>/ and is printed in base64, and the
# script then exits 1.
#   FUZZ_TARGETS="path_resolve"  only these targets
#   FUZZ_KEEP_GOING=1            keep fuzzing after a crash (libFuzzer's fork mode) to collect
#                                every crashing input found in the time
#   FUZZ_NICE=10                 niceness of the build and the runs (the machine is shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"

seconds="${1:-60}"
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bash infra/local/fuzz.sh [seconds-per-target]" >&2
  exit 2
fi
read -r -a targets <<<"${FUZZ_TARGETS:-message_parse path_resolve}"
niceness="${FUZZ_NICE:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dtx-migrate/fuzz-target}"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

echo "building the fuzz targets (nightly, release + debug assertions, AddressSanitizer) into $CARGO_TARGET_DIR" >&2
nice -n "$niceness" cargo +nightly fuzz build --target-dir "$CARGO_TARGET_DIR"

artifacts_of() { find "$repo/fuzz/artifacts/$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) 2>/dev/null | sort; }

failed=0
summary=()
for t in "${targets[@]}"; do
  corpus="$repo/fuzz/corpus/$t"
  mkdir -p "$corpus" "$repo/fuzz/artifacts/$t"
  cp -n "$repo/fuzz/seeds/$t/"* "$corpus/"
  before="$(artifacts_of "$t")"
  log="$repo/fuzz/artifacts/$t.log"
  args=(-max_total_time="$seconds" -timeout=10 -max_len=4096 -print_final_stats=1 -dict="$repo/fuzz/dicts/$t.dict")
  if [[ ${FUZZ_KEEP_GOING:-0} == 1 ]]; then
    args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  echo "fuzzing $t for ${seconds}s (corpus $(find "$corpus" -type f | wc -l) inputs, log $log)" >&2
  start=$SECONDS
  set +e
  nice -n "$niceness" cargo +nightly fuzz run --target-dir "$CARGO_TARGET_DIR" "$t" "$corpus" -- "${args[@]}" >"$log" 2>&1
  rc=$?
  set -e
  elapsed=$((SECONDS - start))

  # Executions: libFuzzer's final stats, else the last status line (`#N ...`, fork mode `#N: ...`).
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  if [[ -z $execs ]]; then
    execs="$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#')"
  fi
  execs="${execs:-0}"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
  rate="${rate:-$((execs / (elapsed > 0 ? elapsed : 1)))}"
  cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)"
  new="$(comm -13 <(echo "$before") <(artifacts_of "$t") | sed '/^$/d')"
  if [[ $rc -ne 0 || -n $new ]]; then
    result="FAILED (exit $rc)"
    failed=1
  else
    result="ok"
  fi
  line="$t: $result; $execs executions in ${elapsed}s ($rate/s); ${cov:-no coverage line}; corpus $(find "$corpus" -type f | wc -l) inputs"
  summary+=("$line")
  echo "$line"
  if [[ -n $new ]]; then
    echo "  $(echo "$new" | wc -l) new crashing input(s); the first 5, each rerun alone for its panic message:"
    while read -r artifact; do
      echo "  input $artifact (base64): $(base64 -w0 "$artifact")"
      cargo +nightly fuzz run --target-dir "$CARGO_TARGET_DIR" "$t" "$artifact" 2>&1 | grep -m1 -A1 'panicked at' | sed 's/^/    /' || true
      echo "    reproduce: cargo +nightly fuzz run --target-dir \"$CARGO_TARGET_DIR\" $t $artifact"
    done < <(echo "$new" | head -n 5)
  elif [[ $rc -ne 0 ]]; then
    tail -n 30 "$log"
  fi
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
