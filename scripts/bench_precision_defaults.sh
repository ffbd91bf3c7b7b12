#!/bin/sh
# The figures #23 asks for on the default precision and the engine's GEMM, sdshell and PyTorch one
# after the other in one run (docs/performance.md, "Defaults and the engine's GEMM"):
#   - a 20-step 512x512 generation on the full-size SD 1.5-shaped f16 folder: the default
#     (precision auto = half for a 16-bit checkpoint), precision full, and precision full with
#     oneDNN's sgemm (SDSHELL_GEMM=onednn: the code paths before the engine's GEMM);
#   - the UNet CFG step at 256 and 512 in the same three configurations and PyTorch's f32 step;
#   - the textual-inversion step at 256 and 512, full and half precision, and PyTorch's.
# Each line carries the peak resident set from /usr/bin/time. Needs a release sdbench and .venv-ref.
#   scripts/bench_precision_defaults.sh [STEPS] [UNET_SIZES] [TRAIN_SIZES]
set -eu
cd "$(dirname "$0")/.."
steps=${1:-20}
sizes=${2:-"256 512"}
bench=.build/release/sdbench
timed() { /usr/bin/time -f "    peak RSS %M kB, wall %e s" "$@" 2>&1 | grep -E 'step|decode|peak RSS|s/step|passes|median' || true; }
train=${3:-"256 512"}
echo "== $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "== whole generation, 512x512, $steps steps"
for config in "auto engine" "full engine" "full onednn"; do
    set -- $config
    echo "-- precision $1, GEMM $2"
    SDSHELL_GEMM=$2 timed $bench pipeline --sizes 512 --steps "$steps" --precision "$1"
done
for size in $sizes; do
    repeats=3; [ "$size" -ge 512 ] && repeats=2
    echo "== UNet CFG step, ${size}x${size}"
    for config in "auto engine" "full engine" "full onednn"; do
        set -- $config
        echo "-- precision $1, GEMM $2"
        SDSHELL_GEMM=$2 timed $bench unet --size "$size" --repeats $repeats --precision "$1"
    done
    echo "-- PyTorch f32"
    timed .venv-ref/bin/python scripts/bench_reference_unet.py "$size" $repeats 2
done
for size in $train; do
    echo "== textual-inversion step, ${size}x${size}"
    for precision in full half; do
        echo "-- precision $precision"
        timed $bench train --sizes "$size" --steps 4 --precision $precision
    done
    echo "-- PyTorch f32"
    timed .venv-ref/bin/python scripts/bench_reference_train.py "$size" 4 2
done
