#!/usr/bin/env bash
# Checks scripts/slurm_local.sh: installs Slurm and munge if missing, starts a one-node cluster in
# a temporary folder, runs a 3-task job array with `sbatch --wait`, checks each task's output,
# and stops the cluster (also on failure).
#   scripts/check_slurm_local.sh
set -euo pipefail
source "$(dirname "$0")/slurm_local.sh"
slurm_local_install
dir=$(mktemp -d)
trap 'slurm_local_stop "$dir"; rm -rf "$dir"' EXIT
slurm_local_start "$dir"
timeout 120 sbatch --array=0-2 --wait --output="$dir/out-%a.txt" \
  --wrap 'echo task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT'
for a in 0 1 2; do
  got=$(cat "$dir/out-$a.txt")
  [ "$got" = "task $a of 3" ] || { echo "out-$a.txt: '$got', expected 'task $a of 3'" >&2; exit 1; }
done
# A failing task makes `sbatch --wait` fail.
if timeout 120 sbatch --array=0-1 --wait --output=/dev/null --wrap 'exit $SLURM_ARRAY_TASK_ID'; then
  echo "sbatch --wait returned 0 for an array with a failing task" >&2; exit 1
fi
echo "slurm_local: OK"
