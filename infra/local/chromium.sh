#!/usr/bin/env bash
# Installs Debian's chromium (for the test that renders `dtx-migrate report --html` headless)
# when it is not on the machine yet. Debian's package registry is the only network it needs.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
export DEBIAN_FRONTEND=noninteractive
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
echo "installing chromium (Debian package) for the HTML report test" >&2
sudo_if_needed apt-get install -y -q chromium >/dev/null 2>&1 || {
  sudo_if_needed apt-get update -q >/dev/null
  sudo_if_needed apt-get install -y -q chromium >/dev/null
}
command -v chromium >/dev/null
