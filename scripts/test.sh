#!/usr/bin/env bash
# Fresh machine -> the test suite (installs the test extras first).
# The report test renders HTML in headless Chromium (Debian package `chromium`); it is
# installed here when missing and we are root, otherwise the script says how to get it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the browser test..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: the browser test needs chromium: sudo apt-get install chromium" >&2
  fi
fi
EXTRAS=test bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
