#!/usr/bin/env bash
# Creates .venv-kernel (at the repo root): a real Jupyter client (jupyter_client, nbclient,
# nbformat, pyzmq) that scripts/check_jupyter_kernel.sh drives sdshell's kernel with. No torch.
# Idempotent: does nothing when the stamp file names this package list.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-kernel"
PACKAGES=("jupyter_client>=8,<9" "nbclient>=0.10,<1" "nbformat>=5.9,<6")
STAMP="$VENV/.sdshell-kernel-stamp"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PACKAGES[*]}" ] && "$VENV/bin/python" -c "import jupyter_client, nbclient, nbformat" 2>/dev/null; then
  echo "kernel test env: ready"
  exit 0
fi
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV" || { echo "kernel test env: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$VENV/bin/pip" install -q "${PACKAGES[@]}"
echo "${PACKAGES[*]}" > "$STAMP"
echo "kernel test env: installed ${PACKAGES[*]}"
