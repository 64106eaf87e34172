#!/usr/bin/env bash
# Installs moto (S3, SQS, DynamoDB emulator) into the project's venv and runs it on loopback.
#   infra/local/moto.sh start   # idempotent; prints the endpoint
#   infra/local/moto.sh stop
#   infra/local/moto.sh reset   # wipes all emulated state
set -euo pipefail
VENV="${DTX_VENV:-$HOME/.cache/dtx-migrate/venv}"
PORT="${MOTO_PORT:-5055}"
STATE="${DTX_STATE_DIR:-$HOME/.cache/dtx-migrate}"
PIDFILE="$STATE/moto-$PORT.pid"
LOG="$STATE/moto-$PORT.log"
MOTO_VERSION="5.2.5"
ENDPOINT="http://127.0.0.1:$PORT"
mkdir -p "$STATE"

install() {
  if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "installing moto[server]==$MOTO_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
}

up() { curl -fsS -o /dev/null "$ENDPOINT/moto-api/" 2>/dev/null; }

case "${1:-start}" in
  start)
    install
    if up; then echo "$ENDPOINT"; exit 0; fi
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
      if up; then echo "$ENDPOINT"; exit 0; fi
      sleep 0.2
    done
    echo "moto did not start on $ENDPOINT; see $LOG" >&2
    tail -20 "$LOG" >&2
    exit 1
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi
    ;;
  reset)
    curl -fsS -X POST "$ENDPOINT/moto-api/reset" >/dev/null
    ;;
  *) echo "usage: $0 start|stop|reset" >&2; exit 2 ;;
esac
