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
# pip's own messages pass through (less a noisy location warning); a failed install stops here
# (set -e with pipefail) instead of at a confusing "No module named biodl" later. No wheel cache
# is kept: on a fresh machine it only doubles the disk the install needs.
pip_install() {
  .venv/bin/python -m pip install -q --no-cache-dir "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}
pip_install --upgrade pip
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  pip_install torch==2.13.0
fi
EXTRAS=${EXTRAS:-}
SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[${EXTRAS}]"
pip_install -e "$SPEC"
.venv/bin/python -c "import biodl, torch; print(f'biodl {biodl.__version__} ready (torch {torch.__version__})')"
