#!/usr/bin/env bash
# Creates the Python reference environment .venv-ref (at the repo root) that
# the fixture generators in Tests/Fixtures/generators/ run in (PyTorch on the CPU, diffusers,
# transformers, ...). Only needed to regenerate test fixtures; CI never runs it.
#
# Idempotent: when the environment already holds this package list (stamp file)
# and torch imports, it does nothing. Safe to run twice.
#
# Usage: scripts/setup_reference_env.sh        (from anywhere)
#        PYTHON=python3.11 scripts/setup_reference_env.sh
#
# torch, numpy and safetensors are required (the script fails without them).
# The other packages are best effort: any that fail to install are listed at
# the end, no stamp is written, and the next run tries them again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-ref"
PY="$VENV/bin/python"
STAMP="$VENV/.sdshell-reference-stamp"
PYTHON="${PYTHON:-python3}"

TORCH="torch==2.13.0+cpu"   # served by pip's find-links folder (/opt/wheels here)
CORE=(numpy safetensors)
EXTRA=(diffusers "transformers<5" ftfy k-diffusion open-clip-torch sd-parsers accelerate torchsde "lark==1.1.2")
# Pins applied to every install: keep this torch build whatever later packages
# ask for, and keep huggingface-hub below 1.0 because transformers 4.x needs it
# (otherwise pip takes the newest diffusers, which needs hub>=1.32, and then
# backtracks transformers down to ancient releases that build from source).
PINS=("$TORCH" "huggingface-hub<1.0")

WANT="$(printf '%s\n' "${PINS[@]}" "$TORCH" "${CORE[@]}" "${EXTRA[@]}")"

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
   && "$PY" -c "import torch, numpy, safetensors, diffusers" 2>/dev/null; then
  echo "setup_reference_env: $VENV is up to date ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
  exit 0
fi

if [ ! -x "$PY" ]; then
  echo "setup_reference_env: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

PIP=("$PY" -m pip install --disable-pip-version-check)

CONSTRAINTS="$VENV/constraints.txt"
printf '%s\n' "${PINS[@]}" > "$CONSTRAINTS"

echo "setup_reference_env: installing $TORCH ${CORE[*]}"
"${PIP[@]}" -c "$CONSTRAINTS" "$TORCH" "${CORE[@]}"

failed=()
echo "setup_reference_env: installing ${EXTRA[*]}"
if ! "${PIP[@]}" -c "$CONSTRAINTS" "${EXTRA[@]}"; then
  # Resolve them one at a time so one bad package does not block the rest.
  echo "setup_reference_env: batch install failed; retrying one package at a time"
  for p in "${EXTRA[@]}"; do
    "${PIP[@]}" -c "$CONSTRAINTS" "$p" || failed+=("$p")
  done
fi

"$PY" -c "import torch, numpy, safetensors; print('setup_reference_env: torch', torch.__version__)"

# k-diffusion and open-clip-torch pull torchvision from PyPI, whose Linux wheels
# are CUDA builds: against this CPU torch its import raises, and that breaks
# `from transformers import CLIPTextModel` too. If it is broken, remove it
# (k-diffusion and open_clip then cannot import; transformers and diffusers
# work). A torchvision +cpu wheel in pip's find-links folder would be preferred
# by pip and import fine.
if "$PY" -m pip show -q torchvision >/dev/null 2>&1 && ! "$PY" -c "import torchvision" >/dev/null 2>&1; then
  echo "setup_reference_env: WARNING: torchvision $("$PY" -m pip show torchvision | sed -n 's/^Version: //p') does not load against $TORCH; uninstalling it" >&2
  "$PY" -m pip uninstall -y -q torchvision
fi

broken=()
for m in diffusers transformers ftfy k_diffusion open_clip sd_parsers accelerate torchsde lark; do
  "$PY" -c "import $m" >/dev/null 2>&1 || broken+=("$m")
done
"$PY" -c "from transformers import CLIPTextModel, CLIPTokenizer" >/dev/null 2>&1 || broken+=("transformers.CLIPTextModel")
if [ ${#broken[@]} -ne 0 ]; then
  echo "setup_reference_env: WARNING: installed but not importable: ${broken[*]}" >&2
fi

if [ ${#failed[@]} -ne 0 ]; then
  rm -f "$STAMP"
  echo "setup_reference_env: WARNING: could not install: ${failed[*]}" >&2
  echo "setup_reference_env: torch/numpy/safetensors are ready; rerun to retry the rest" >&2
  exit 0
fi

echo "$WANT" > "$STAMP"
echo "setup_reference_env: done"
