#!/usr/bin/env bash
# Create .venv (if needed) and install biodl with its dependencies.
# torch is pinned to the CPU build 2.13.0 first, so the range in pyproject.toml is already
# satisfied and no multi-GB CUDA build is pulled. Extra pip arguments: EXTRAS=test,bench.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  .venv/bin/python -m pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
fi
EXTRAS=${EXTRAS:-}
SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[${EXTRAS}]"
.venv/bin/python -m pip install -q -e "$SPEC" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import biodl, torch; print(f'biodl {biodl.__version__} ready (torch {torch.__version__})')"
