#!/usr/bin/env bash
# Fresh machine -> the test suite (installs the test extras first).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
