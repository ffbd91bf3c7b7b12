#!/usr/bin/env bash
# A grid script sharded over a real Slurm cluster: a one-node Slurm (slurm-wlm and munge from
# Debian, started in the foreground by scripts/slurm_local.sh and stopped at the end) runs a 3x3
# grid on the demo model as a 3-task job array; `sdshell merge` assembles it; its grid must have
# the single-machine run's pixels and its journal must replay (`reproduced N/N`). Then task 1 is
# killed mid-run (scancel), resubmitted alone (`--array=1`, `--shards 3`), and the merge must give
# the same grid with no image missing or doubled.
# Usage: scripts/check_slurm_shards.sh [SDSHELL_BINARY]    (default: a debug build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/sdshell_binary.sh "${1:-}"
source scripts/slurm_local.sh
slurm_local_install
WORK="$(mktemp -d /tmp/sdshell-slurm-XXXXXX)"
trap 'slurm_local_stop "$WORK/slurm"; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/single" "$WORK/cluster"
cat > "$WORK/grid.sdscript" <<SCRIPT
model "$ROOT/models/demo.safetensors"
set sampler="Euler a" steps=30 cfg=1.5
grid "a red circle on a blue background" sr=["red circle", "green square", "white triangle"] seed=[1, 2, 3]
SCRIPT

(cd "$WORK/single" && "$BIN" "$WORK/grid.sdscript" > "$WORK/single.log" 2>&1) || { cat "$WORK/single.log"; exit 1; }
single_grid="$(ls "$WORK"/single/outputs/txt2img-grids/*.png)"

slurm_local_start "$WORK/slurm"
started=$(date +%s)
sbatch --array=0-2 --wait --cpus-per-task=1 --chdir="$WORK/cluster" --output="$WORK/task-%a.log" \
  --wrap "'$BIN' '$WORK/grid.sdscript'" >/dev/null
echo "slurm: the 3-task array ran in $(( $(date +%s) - started )) s"
for k in 0 1 2; do grep -q "running shard $k of 3" "$WORK/task-$k.log" || { cat "$WORK/task-$k.log"; exit 1; }; done

merge() {
  "$BIN" merge "$WORK/cluster/outputs" > "$WORK/merge.txt"
  merged_grid="$(awk '/  grid$/ {print $1}' "$WORK/merge.txt" | tail -1)"
  journal="$(awk '/^journal / {print $2}' "$WORK/merge.txt")"
  python3 scripts/png_pixels.py "$single_grid" "$merged_grid"
  (cd "$WORK/cluster" && "$BIN" -e "replay \"$journal\" verify=true") > "$WORK/replay.txt" 2>&1 || { cat "$WORK/replay.txt"; exit 1; }
  grep -Eq '^reproduced ([0-9]+)/\1$' "$WORK/replay.txt" || { cat "$WORK/replay.txt"; exit 1; }
  echo "merged journal: $(grep '^reproduced' "$WORK/replay.txt")"
}
merge

# Task 1 killed mid-run, resubmitted alone: the set is whole again, nothing doubled.
cells_before="$(ls "$WORK"/cluster/outputs/shards/1-of-3/txt2img | sort)"
job=$(sbatch --parsable --array=1 --cpus-per-task=1 --chdir="$WORK/cluster" --output="$WORK/killed.log" \
  --wrap "'$BIN' --shards 3 '$WORK/grid.sdscript'")
# Killed once it has saved its first cell (two of its three remain, about 2 s of work).
for _ in $(seq 1 1200); do
  # (the earlier run's folder, `done` and all, is moved away when the new run starts)
  [ ! -e "$WORK/cluster/outputs/shards/1-of-3/done" ] \
    && compgen -G "$WORK/cluster/outputs/shards/1-of-3/txt2img/*.png" >/dev/null && break
  sleep 0.05
done
scancel --signal=KILL "$job"
for _ in $(seq 1 300); do squeue -h -j "$job" 2>/dev/null | grep -q . || break; sleep 0.1; done
if "$BIN" merge "$WORK/cluster/outputs" > "$WORK/missing.txt" 2>&1; then echo "merge accepted a killed shard"; exit 1; fi
grep -q "shard 1 (no " "$WORK/missing.txt" || { cat "$WORK/missing.txt"; exit 1; }
sbatch --array=1 --wait --cpus-per-task=1 --chdir="$WORK/cluster" --output="$WORK/rerun.log" \
  --wrap "'$BIN' --shards 3 '$WORK/grid.sdscript'" >/dev/null
[ "$(ls "$WORK"/cluster/outputs/shards/1-of-3/txt2img | sort)" = "$cells_before" ] || { echo "shard 1's images changed on rerun"; exit 1; }
merge
echo "slurm shards: all checks passed"
