#!/usr/bin/env bash
# Trains the demo embeddings shipped in embeddings/ with sdshell itself, on the demo model:
#   blot: examples/data/blot (a black circle on a red background), 2 vectors
#   tent: examples/data/tent (a green triangle on a white background), 5 vectors
# (pictures from Tests/Fixtures/generators/make_concept_data.py; captions never name them, the template is "a [name]").
# Both start from "object" and train 300 steps at lr 0.05 with flips, seed 1. The vector count is
# per embedding: the demo model's 2-layer text encoder reads a caption ("a green triangle on a white
# background") by position, the background's colour at token 5, so "a [name]" reaches it only with
# at least 5 vectors; with 2, tent drew blue squares on red (issue #26 item 29; docs/demo-model.md).
# Each gets NAME.pt, its optimizer and resume state NAME.pt.optim and NAME.pt.loss.csv; numbered
# copies and loss plots go to outputs/demo-embeddings/train/NAME/.
#   Tests/Fixtures/generators/make_demo_embeddings.sh [SDSHELL_BINARY]      (default: the release build)
set -euo pipefail
cd "$(dirname "$0")/../../.."   # the repository
bin=${1:-.build/release/sdshell}
[ -x "$bin" ] || swift build -c release --product sdshell
for spec in blot:2 tent:5; do
  name=${spec%%:*} vectors=${spec#*:}
  "$bin" -e 'model "models/demo.safetensors"' \
    -e 'set embeddings_dir="embeddings" outdir="outputs/demo-embeddings"' \
    -e "embedding new \"$name\" init=\"object\" vectors=$vectors overwrite=true" \
    -e "train \"$name\" data=\"examples/data/$name\" steps=300 lr=\"0.05\" template=\"examples/data/name.template\" save_every=100 flip=true seed=1"
done
