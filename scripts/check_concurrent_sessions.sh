#!/usr/bin/env bash
# Concurrent sessions lose nothing (issue #26's soak check), with real processes and signals on
# the real binary. Four sdshell sessions share one output folder and one embeddings folder; each
# generates (several batches), creates and trains its own embedding, generates with it, and two of
# them also try to train the first session's embedding while it is being trained (one of them is
# refused by the lock). Once two of them have made an image, a random 0-4 s later, one session is
# killed with SIGKILL and one stopped with SIGINT. Then:
#   - no two journals name the same image, and every image a journal names exists;
#   - every PNG in the folder is whole (read back by `info`), none is a temporary;
#   - every embedding in the folder loads;
#   - every journal (the killed session's too: it ends with its last whole entry) replays with
#     `verify=true`, all its images reproduced.
#   scripts/check_concurrent_sessions.sh [SDSHELL_BINARY]     (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build --show-bin-path)/sdshell}
[ -x "$bin" ] || swift build --product sdshell
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model=$PWD/Tests/Fixtures/tiny-sd
pictures=$PWD/examples/pictures
mkdir -p "$work/out" "$work/emb"

session() {  # session K: the script of session K, run in this process (exec) so that $! is sdshell
  local k=$1 other=""
  # Sessions 2 and 3 also try to train session 0's embedding: refused while it trains, or a
  # training of their own when it is free (both are fine; a lost training is not).
  if [ "$k" -ge 2 ]; then other="train \"s0\" data=\"$pictures\" steps=6 size=64 seed=9 save_every=2"; fi
  cat > "$work/s$k.sdscript" <<EOF
model "$model"
set size=64x64 steps=2 outdir="$work/out" embeddings_dir="$work/emb" sampler="Euler a"
generate "a red circle" seed=$((k * 100)) count=3 batch=2
embedding new "s$k" init="a cat" vectors=2
train "s$k" data="$pictures" steps=6 size=64 seed=$k save_every=2
generate "a s$k on a table" seed=$((k * 100 + 50)) count=2
$other
generate "a blue square" seed=$((k * 100 + 70)) count=3
EOF
  exec "$bin" "$work/s$k.sdscript"
}

pids=()
for k in 0 1 2 3; do
  (session "$k") > "$work/s$k.log" 2>&1 &
  pids+=($!)
done
# The signals land mid-work however loaded the machine is: once sessions 1 and 2 have each made
# an image (or after 120 s), then a random 0-4 s later.
deadline=$((SECONDS + 120))
until { grep -q '\.png  seed' "$work/s1.log" && grep -q '\.png  seed' "$work/s2.log"; } 2>/dev/null || [ $SECONDS -ge $deadline ]; do
  sleep 0.2
done
sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 4 * r / 32768 }')"
kill -KILL "${pids[1]}" 2>/dev/null || true
kill -INT "${pids[2]}" 2>/dev/null || true
for k in 0 1 2 3; do
  code=0
  wait "${pids[$k]}" 2>/dev/null || code=$?
  echo "session $k: exit $code, $(grep -c '\.png  seed' "$work/s$k.log" || true) images$(grep -m1 -o 'cannot train it: another session' "$work/s$k.log" | sed 's/^/, refused: /' || true)"
done

status=0
journals=("$work"/out/sessions/*.sdscript)
echo "${#journals[@]} journals"
[ "${#journals[@]}" -ge 3 ] || { echo "expected a journal from each session that made an image"; status=1; }

# No image named twice; every named image exists.
named=$(grep -h '^#> ' "${journals[@]}" | awk '{ $1 = ""; $NF = ""; sub(/^ /, ""); sub(/ $/, ""); print }' | sort)
if [ -n "$(printf '%s\n' "$named" | uniq -d)" ]; then echo "journals name the same image twice:"; printf '%s\n' "$named" | uniq -d; status=1; fi
missing=0
while IFS= read -r path; do [ -z "$path" ] || [ -f "$path" ] || { echo "missing: $path"; missing=1; }; done <<< "$named"
[ "$missing" = 0 ] && echo "$(printf '%s\n' "$named" | grep -c .) journalled images, each named once and present" || status=1

# Every PNG is whole and none is a leftover temporary.
pngs=("$work"/out/txt2img/*.png)
list=$(printf '"%s", ' "${pngs[@]}")
if "$bin" -e "for f in [${list%, }] { info f }" > "$work/info.log" 2>&1; then echo "${#pngs[@]} images read back whole"
else echo "an image does not read back:"; tail -3 "$work/info.log"; status=1; fi
temps=$(find "$work/out" -name '*.tmp-*' | wc -l)
echo "$temps temporaries left (only a SIGKILLed writer may leave one)"
[ "$temps" -le 1 ] || status=1

# Every embedding loads.
if "$bin" -e "set embeddings_dir=\"$work/emb\"" -e 'model "'"$model"'"' -e 'embeddings' > "$work/emb.log" 2>&1 && ! grep -q skipped "$work/emb.log"; then
  echo "embeddings: $(grep -c '^embedding .* loaded' "$work/emb.log" || true) load"
else echo "an embedding does not load:"; cat "$work/emb.log"; status=1; fi

# Every journal replays with all its images reproduced.
for j in "${journals[@]}"; do
  if "$bin" -e "set outdir=\"$work/replays\"" -e "replay \"$j\" verify=true" > "$work/replay.log" 2>&1; then
    echo "$(basename "$j"): $(grep -o 'reproduced [0-9]*/[0-9]*' "$work/replay.log" || echo 'no images')"
  else
    echo "$(basename "$j"): replay FAILED"; tail -5 "$work/replay.log"; status=1
  fi
done
exit $status
