#!/usr/bin/env bash
# Interruption loses nothing, with real signals on the real binary: a 60-step deterministic
# training of the tiny SD 1.x model (A1111's toy.pt; with aspect-ratio buckets and caption tag
# shuffling and dropout) and of the tiny SDXL model (kohya's
# toy.safetensors with clip_l and clip_g) is each run once straight through, once killed with SIGKILL at a random
# moment and resumed, and once stopped with SIGINT (Ctrl-C) at a random moment and resumed.
# The three embeddings must be byte-identical and every loss.csv must list steps 1..60 once.
# Then a save on a full disk (writes over 1 KiB refused with `ulimit -f`) must fail with a message
# naming the file and leave the saved embedding, optimizer state and loss.csv unchanged.
#   scripts/check_training_resume.sh [SDSHELL_BINARY]     (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build --show-bin-path)/sdshell}
[ -x "$bin" ] || swift build --product sdshell
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/pics"
cp Tests/TrainingTests/Fixtures/images/wide-37x23.png "$work/pics/01-a wide picture.png"
cp Tests/TrainingTests/Fixtures/images/photo-30x20.jpg "$work/pics/02-a photo.jpg"
cp Tests/TrainingTests/Fixtures/images/square-16x16.png "$work/pics/03-a square.png"
printf 'red, wide, soft light' > "$work/pics/01-a wide picture.txt"
printf 'a photo, blue, grain, a cat' > "$work/pics/02-a photo.txt"
model=tiny-sd file=toy.pt extra=()
train() {  # train FOLDER [STEPS]: in this process (exec), so that `train X &` gives sdshell's own PID in $!
  exec "$bin" train --model "Tests/Fixtures/$model" toy --data "$work/pics" --steps "${2:-60}" --save-every 5 --size 64 \
    --seed 7 --flip --lr "0.02:20, 0.005" --embeddings-dir "$work/$1" --init-text "a cat" --vectors 2 --outdir "$work/$1-out" ${extra[@]+"${extra[@]}"}
}
interrupt() {  # interrupt FOLDER SIGNAL: start a run, signal it after a random 3-10 s, then resume it
  (train "$1") > "$work/$1.first.log" &
  local pid=$!
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 3 + 7 * r / 32768 }')"
  kill "-$2" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$2: the first run's loss.csv ends at step $(tail -n 1 "$work/$1/$file.loss.csv" 2>/dev/null | cut -d, -f1) ($(tail -1 "$work/$1.first.log"))"
  (train "$1") > "$work/$1.second.log"
  head -1 "$work/$1.second.log"
}
status=0
for run in tiny-sd:toy.pt tiny-sdxl:toy.safetensors; do
  model=${run%%:*} file=${run#*:}
  # The SD 1.x runs also keep the pictures' aspect ratios (buckets) and shuffle and drop caption tags.
  if [ "$model" = tiny-sd ]; then extra=(--buckets --shuffle-tags --tag-dropout 0.3 --keep-tokens 1); else extra=(); fi
  echo "== $model ($file)"
  (train "$model-straight") > "$work/$model-straight.log"
  interrupt "$model-killed" KILL
  interrupt "$model-stopped" INT
  for dir in "$model-killed" "$model-stopped"; do
    if cmp -s "$work/$model-straight/$file" "$work/$dir/$file"; then echo "$dir: embedding identical to the uninterrupted run"
    else echo "$dir: embedding DIFFERS from the uninterrupted run"; status=1; fi
    steps=$(tail -n +2 "$work/$dir/$file.loss.csv" | cut -d, -f1 | tr -d '\r' | tr '\n' ' ')
    if [ "$steps" = "$(seq -s ' ' 1 60) " ]; then echo "$dir: loss.csv has steps 1..60 once"
    else echo "$dir: loss.csv steps: $steps"; status=1; fi
    cmp -s "$work/$model-straight/$file.loss.csv" "$work/$dir/$file.loss.csv" || { echo "$dir: loss.csv differs"; status=1; }
  done
done
model=tiny-sd file=toy.pt extra=(--buckets --shuffle-tags --tag-dropout 0.3 --keep-tokens 1)
cp -r "$work/tiny-sd-straight" "$work/full"
before=$(cd "$work/full" && sha256sum toy.pt toy.pt.optim toy.pt.loss.csv)
if (ulimit -f 1; train full 70) > "$work/full.log" 2>&1; then
  echo "full disk: the run did not fail"; status=1
elif grep -q "toy.pt.optim: .*File too large" "$work/full.log"; then
  echo "full disk: failed naming the file: $(grep -o 'toy.pt.optim: .*' "$work/full.log" | head -1)"
else
  echo "full disk: unexpected output:"; cat "$work/full.log"; status=1
fi
after=$(cd "$work/full" && sha256sum toy.pt toy.pt.optim toy.pt.loss.csv)
if [ "$before" = "$after" ] && [ -z "$(find "$work/full" -name '.*.tmp-*')" ]; then echo "full disk: saved files unchanged, no temporary left"
else echo "full disk: saved files CHANGED or a temporary was left"; status=1; fi
exit $status
