# Shared by the bench/*.sh scripts (sourced, not run): the build, the peer tools, the local S3
# endpoint and the timing wrapper. Peers are installed on first use into the state directory,
# never into the repository.
STATE="${DTX_STATE_DIR:-$HOME/.cache/dtx-migrate}"
PEERS="$STATE/peers"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STATE/target}"
S3S_FS_VERSION=0.14.1
AWSCLI_VERSION=1.46.3
mkdir -p "$PEERS"

# Release binaries for measurements, built like the Lambda packages (only the crates shipped,
# so no test-only feature such as crash points is compiled in); for --smoke, the debug build
# the test command already made (CI checks that the scripts work and must not pay for a
# second, optimized build of the dependency tree).
# DTX_BENCH_PREBUILT=1 measures the binaries already in the build directory as they are.
build_bins() {
  local profile="$1"
  if [ "${DTX_BENCH_PREBUILT:-0}" = 1 ]; then
    echo "measuring the $profile binaries already built (DTX_BENCH_PREBUILT=1)" >&2
  elif [ "$profile" = release ]; then
    cargo build -q --release -p bench -p cli -p worker -p inventory
  else
    cargo build -q --workspace --all-targets
  fi
  BIN="$CARGO_TARGET_DIR/$profile"
}

need_debian() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (Debian)" >&2
  if ! apt-get install -y -q "$2" >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$2" >/dev/null
  fi
}

peer_rclone() { need_debian rclone rclone; }
peer_pgloader() { need_debian pgloader pgloader; }

peer_awscli() {
  AWS_CLI="$PEERS/awscli/bin/aws"
  if [ ! -x "$AWS_CLI" ]; then
    echo "installing awscli==$AWSCLI_VERSION (PyPI)" >&2
    python3 -m venv "$PEERS/awscli"
    "$PEERS/awscli/bin/pip" install -q --disable-pip-version-check "awscli==$AWSCLI_VERSION"
  fi
}

peer_s3s_fs() {
  S3S_FS="$PEERS/bin/s3s-fs"
  if [ ! -x "$S3S_FS" ]; then
    echo "installing s3s-fs $S3S_FS_VERSION (crates.io; a few minutes once)" >&2
    # Its own target directory: the project's build directory must not take its features.
    CARGO_TARGET_DIR="$PEERS/target" cargo install -q --locked --root "$PEERS" --features binary s3s-fs --version "$S3S_FS_VERSION"
  fi
}

# A free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for_http URL WHAT LOG: waits up to 10 s for URL to answer, else says where WHAT logged.
wait_for_http() {
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not start; see $3" >&2
  return 1
}

# Starts s3s-fs over a fresh directory on a free loopback port; sets S3_ENDPOINT.
start_s3s_fs() {
  peer_s3s_fs
  S3S_DIR="$(mktemp -d "${TMPDIR:-/tmp}/dtx-bench-s3.XXXXXX")"
  local port
  port=$(free_port)
  "$S3S_FS" --host 127.0.0.1 --port "$port" --access-key testing --secret-key testing "$S3S_DIR" >"$S3S_DIR.log" 2>&1 &
  S3S_PID=$!
  S3_ENDPOINT="http://127.0.0.1:$port"
  wait_for_http "$S3_ENDPOINT" s3s-fs "$S3S_DIR.log"
}

# A private moto (DynamoDB for the worker's state) served by waitress, which keeps connections
# alive as AWS does (moto_server closes every connection: a TCP setup per request that no real
# run pays). Sets STATE_ENDPOINT; stop with stop_moto_keepalive.
WAITRESS_VERSION=3.0.2
start_moto_keepalive() {
  local venv="${DTX_VENV:-$HOME/.cache/dtx-migrate/venv}" port
  bash infra/local/moto.sh start >/dev/null   # installs moto into the venv if needed
  if ! "$venv/bin/python" -c "import importlib.metadata as m,sys; sys.exit(m.version('waitress') != '$WAITRESS_VERSION')" 2>/dev/null; then
    echo "installing waitress $WAITRESS_VERSION (PyPI) into $venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "waitress==$WAITRESS_VERSION"
  fi
  port=$(free_port)
  MOTO_KA_LOG="$(mktemp "${TMPDIR:-/tmp}/dtx-bench-moto.XXXXXX")"
  (cd bench && exec "$venv/bin/waitress-serve" --host=127.0.0.1 --port="$port" --threads=8 moto_keepalive:app) >"$MOTO_KA_LOG" 2>&1 &
  MOTO_KA_PID=$!
  STATE_ENDPOINT="http://127.0.0.1:$port"
  wait_for_http "$STATE_ENDPOINT" "moto under waitress" "$MOTO_KA_LOG"
}

stop_moto_keepalive() {
  if [ -n "${MOTO_KA_PID:-}" ]; then kill "$MOTO_KA_PID" 2>/dev/null || true; wait "$MOTO_KA_PID" 2>/dev/null || true; fi
  [ -n "${MOTO_KA_LOG:-}" ] && rm -f "$MOTO_KA_LOG"
  MOTO_KA_PID=""
}

# rclone's remote "bench:" on the s3s-fs endpoint (configured through the environment).
rclone_remote() {
  export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENDPOINT="$S3_ENDPOINT" \
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=testing RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=testing \
    RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
}

stop_s3s_fs() {
  if [ -n "${S3S_PID:-}" ]; then kill "$S3S_PID" 2>/dev/null || true; wait "$S3S_PID" 2>/dev/null || true; fi
  [ -n "${S3S_DIR:-}" ] && rm -rf "$S3S_DIR" "$S3S_DIR.log"
  S3S_PID=""
}

# measure NAME CMD...: runs CMD under /usr/bin/time and appends "NAME wall_s cpu_s maxrss_kib"
# to $RESULTS. The command's stdout goes to $WORK/NAME.out.
measure() {
  local name="$1"; shift
  local tf="$WORK/$name.time"
  if ! /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
    echo "$name failed:" >&2; tail -n 20 "$WORK/$name.err" >&2; return 1
  fi
  read -r wall user sys rss < <(tail -n 1 "$tf")
  echo "$name $wall $(echo "$user + $sys" | bc) $rss" >>"$RESULTS"
}

# field NAME COLUMN: a column of a measure line (2 wall, 3 cpu, 4 rss).
field() { awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$RESULTS"; }

verdict() { # label ok(0/1)
  if [ "$2" = 1 ]; then echo "PASS  $1"; else echo "MISS  $1"; fi
}
