#!/usr/bin/env bash
# Reruns every fixture generator of this folder in dependency order, then checks with
# `git diff --exit-code` that the committed fixtures came out byte for byte the same.
#
#   Tests/Fixtures/generators/run_all.sh [--no-verify] [--demo-model] [--demo-embeddings]
#
# Needs the reference environment (scripts/setup_reference_env.sh; PYTHON overrides
# .venv-ref/bin/python). About 5 minutes on 2 cores. Skipped unless asked for:
#   --demo-model       train_demo_model.py, then make_demo_xl_model.py: trains
#                      models/demo.safetensors and models/demo-xl/ (about half an hour each);
#                      their phases stop on a time budget, so they are not byte-reproducible
#   --demo-embeddings  make_demo_embeddings.sh: trains embeddings/blot.pt and tent.pt with
#                      sdshell's release build (swift build -c release if it is missing)
# make_prompt_fixtures.py runs only where A1111's modules/prompt_parser.py is at
# .a1111/prompt_parser.py or $A1111_PROMPT_PARSER (AGPL, not in this repository);
# make_training_image_fixtures.py needs Pillow 9-12: with Pillow 13 in the environment it
# installs pillow==11.3.0 into .venv-ref/pillow-11 (pip, once) and uses that.
#
# Float32 results follow the CPU's kernels: the committed files were made on an AVX-512
# machine, and an AVX2 machine changes the last bits of many values (see README.md).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$(pwd)
G=Tests/Fixtures/generators
PY=${PYTHON:-$ROOT/.venv-ref/bin/python}
verify=1 demo_model=0 demo_embeddings=0
for a in "$@"; do
  case $a in
    --no-verify) verify=0 ;;
    --demo-model) demo_model=1 ;;
    --demo-embeddings) demo_embeddings=1 ;;
    *) echo "usage: $0 [--no-verify] [--demo-model] [--demo-embeddings]" >&2; exit 2 ;;
  esac
done
[ -x "$PY" ] || { echo "run_all: no $PY; run scripts/setup_reference_env.sh first" >&2; exit 1; }

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
run() {
  local t0=$SECONDS
  echo "run_all: $*"
  "$@" > "$LOG" 2>&1 || { cat "$LOG" >&2; echo "run_all: FAILED: $*" >&2; exit 1; }
  echo "run_all:   ok ($((SECONDS - t0)) s)"
}

# independent of the other fixtures
run "$PY" $G/make_tokenizer_fixtures.py
run "$PY" $G/make_ftfy_tables.py
run "$PY" $G/make_rng_fixtures.py
run "$PY" $G/make_sampler_fixtures.py
run "$PY" $G/make_schedule_fixtures.py
run "$PY" $G/make_brownian_fixtures.py
run "$PY" $G/make_engine_fixtures.py
# Tests/FormatsTests/Fixtures (with diffusers_tiny), then what reads diffusers_tiny
run "$PY" $G/make_model_file_fixtures.py
run "$PY" $G/make_network_fixtures.py
run "$PY" $G/make_tiled_vae_fixture.py
# the tiny model, then what runs on it (the pipeline also reads the embedding folders
# and embedding_conditioning.json)
run "$PY" $G/make_tiny_sd.py
run "$PY" $G/make_embedding_fixtures.py
run "$PY" $G/make_png_embedding_fixtures.py
run "$PY" $G/make_pipeline_fixtures.py
run "$PY" $G/make_pipeline_image_fixtures.py
run "$PY" $G/make_hires_fixtures.py
run "$PY" $G/make_img2img_fixtures.py
# the tiny ESRGAN upscaler files and A1111's pixel upscalers (spandrel 0.3.4, A1111 1.10's pin, installed
# without its dependencies: its torchvision imports are stubbed), then the hires fix with pixel upscalers
"$PY" -c 'import importlib.metadata as m, sys; sys.exit(m.version("spandrel") != "0.3.4")' 2>/dev/null \
  || "$PY" -m pip install -q --disable-pip-version-check --no-deps spandrel==0.3.4
run "$PY" $G/make_esrgan_fixtures.py
run "$PY" $G/make_hires_pixel_fixtures.py
"$PY" -c "import cv2" 2>/dev/null || "$PY" -m pip install -q --disable-pip-version-check opencv-python-headless==4.10.0.84
run "$PY" $G/make_inpaint_fixtures.py
# tiny SD 2.x / SD 2.x-v / SDXL models (folders and single files) and their reference runs
run "$PY" $G/make_family_fixtures.py
run "$PY" $G/make_family_embedding_fixtures.py
run "$PY" $G/make_family_training_fixtures.py
# tiny LoRA / LoCon / LoHa / LoKr / PEFT networks for tiny-sd and tiny-sdxl and A1111's merges of them
"$PY" -c "import peft" 2>/dev/null || "$PY" -m pip install -q --disable-pip-version-check peft==0.21.2
run "$PY" $G/make_lora_fixtures.py
run "$PY" $G/make_training_fixtures.py
run "$PY" $G/make_workbench_fixtures.py
run "$PY" $G/make_optim_fixtures.py
run "$PY" $G/make_clipping_fixtures.py
if "$PY" -c 'import PIL, sys; sys.exit(int(PIL.__version__.split(".")[0]) >= 13)'; then
  run "$PY" $G/make_training_image_fixtures.py
else
  PIL12="$ROOT/.venv-ref/pillow-11"
  [ -d "$PIL12/PIL" ] || "$PY" -m pip install -q --disable-pip-version-check --target "$PIL12" pillow==11.3.0
  run env PYTHONPATH="$PIL12" "$PY" $G/make_training_image_fixtures.py
fi
parser=${A1111_PROMPT_PARSER:-$ROOT/.a1111/prompt_parser.py}
if [ -f "$parser" ]; then
  run env A1111_PROMPT_PARSER="$parser" "$PY" $G/make_prompt_fixtures.py
else
  echo "run_all: skipped make_prompt_fixtures.py: no A1111 prompt_parser.py at $parser"
fi
# the demo dataset, then (if asked) the demo model and embeddings trained on it
run "$PY" $G/make_demo_data.py
run "$PY" $G/make_concept_data.py
if [ $demo_model = 1 ]; then
  run "$PY" $G/train_demo_model.py
  run nice -n 10 "$PY" $G/make_demo_xl_model.py --threads 1
fi
if [ $demo_embeddings = 1 ]; then run bash $G/make_demo_embeddings.sh; fi

[ $verify = 1 ] || exit 0
PATHS=(Tests/Fixtures/tiny-sd Tests/Fixtures/tiny-sd2 Tests/Fixtures/tiny-sd2.ckpt
       Tests/Fixtures/tiny-sd2-v.safetensors Tests/Fixtures/tiny-sdxl Tests/Fixtures/tiny-sdxl.safetensors Tests/Fixtures/family-embeddings
       Tests/Fixtures/tiny-sd-inpaint.safetensors
       Tests/DiffusionTests/Fixtures Tests/EngineTests/Fixtures Tests/FormatsTests/Fixtures
       Tests/ModelsTests/Fixtures Tests/PromptingTests/Fixtures Tests/TrainingTests/Fixtures
       Sources/Prompting/Resources/ftfy_tables.json examples/data models embeddings)
# torch's legacy format names each storage by its memory address, so these two differ on every
# run: compare them without that key and, when nothing else differs, put the committed bytes back.
LEGACY=(Tests/FormatsTests/Fixtures/emb_legacy.pt Tests/FormatsTests/Fixtures/evil_legacy.pt)
legacy_ok=1
for f in "${LEGACY[@]}"; do
  if git cat-file -e "HEAD:$f" 2>/dev/null && git show "HEAD:$f" | "$PY" -c '
import re, sys
key = re.compile(rb"X[\x08-\x14]\x00\x00\x00\d{8,20}")   # a pickled storage key: the address in decimal
committed, new = sys.stdin.buffer.read(), open(sys.argv[1], "rb").read()
sys.exit(key.sub(b"KEY", committed) != key.sub(b"KEY", new))' "$f"; then
    git show "HEAD:$f" > "$f"
  else
    echo "run_all: $f differs from the commit beyond its storage keys" >&2; legacy_ok=0
  fi
done
untracked=$(git status --porcelain --untracked-files=all -- "${PATHS[@]}" | grep '^??' || true)
if git diff --exit-code --stat -- "${PATHS[@]}" && [ -z "$untracked" ] && [ $legacy_ok = 1 ]; then
  echo "run_all: every fixture is byte for byte as committed"
else
  [ -z "$untracked" ] || echo "$untracked"
  echo "run_all: fixtures differ from the commit (see above; README.md says which differences a CPU other than AVX-512 makes)" >&2
  exit 1
fi
