#!/usr/bin/env bash
# The Jupyter kernel driven by a real client (scripts/kernel_acceptance.py in .venv-kernel):
# examples/quickstart.ipynb executed by nbclient, completion, interrupts (SIGINT and
# interrupt_request), errors with their place, signatures checked by jupyter_client, shutdown.
# Usage: scripts/check_jupyter_kernel.sh [SDSHELL_BINARY]   (default: a debug build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/sdshell_binary.sh "${1:-}"
scripts/setup_kernel_test_env.sh
.venv-kernel/bin/python scripts/kernel_acceptance.py "$ROOT" "$BIN"
