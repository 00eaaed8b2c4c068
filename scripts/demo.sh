#!/usr/bin/env bash
# Fresh machine -> DeepBind trained on real ENCODE ChIP-seq, tested on the held-out fold, report written.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/biodl demo --out biodl-demo --device cpu "$@"
