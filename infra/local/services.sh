#!/usr/bin/env bash
# (Re)starts the local PostgreSQL and MariaDB if they are down (the machine's own services),
# then waits until both accept connections.
set -euo pipefail
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
for _ in $(seq 1 60); do
  if pg_isready -h 127.0.0.1 -p 5432 -q && mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "databases did not come up" >&2
exit 1
