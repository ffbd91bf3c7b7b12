#!/usr/bin/env bash
# Trains the demo embeddings shipped in embeddings/ with sdshell itself, on the demo model:
#   blot: examples/data/blot (a black circle on a red background)
#   tent: examples/data/tent (a green triangle on a white background)
# (pictures from scripts/make_concept_data.py; captions never name them, the template is "a [name]").
# Each gets NAME.pt, its optimizer and resume state NAME.pt.optim and NAME.pt.loss.csv; numbered
# copies and loss plots go to outputs/demo-embeddings/train/NAME/.
#   scripts/make_demo_embeddings.sh [SDSHELL_BINARY]      (default: the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/sdshell}
[ -x "$bin" ] || swift build -c release --product sdshell
for name in blot tent; do
  "$bin" -e 'model "models/demo.safetensors"' \
    -e 'set embeddings_dir="embeddings" outdir="outputs/demo-embeddings"' \
    -e "embedding new \"$name\" init=\"object\" vectors=2 overwrite=true" \
    -e "train \"$name\" data=\"examples/data/$name\" steps=300 lr=\"0.05\" template=\"examples/data/name.template\" save_every=100 flip=true seed=1"
done
