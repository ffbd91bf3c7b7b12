#!/bin/sh
# #23's bf16 figures, sdshell and PyTorch one after the other in one run (docs/performance.md,
# "bf16 products"): the SD 1.5 UNet CFG step at 512 (and 256) in sdshell f32 and bf16 and PyTorch
# f32 and bf16 autocast; the VAE decode at 512 likewise; the textual-inversion step at 256 and 512
# in sdshell full, half and bf16 and PyTorch f32 and bf16 autocast. Each line carries the peak resident
# set. Needs a CPU with AVX512_BF16, a release sdbench and .venv-ref.
#   scripts/bench_bf16.sh [UNET_SIZES] [TRAIN_SIZES]
set -eu
cd "$(dirname "$0")/.."
sizes=${1:-"512 256"}
train=${2:-"256 512"}
bench=.build/release/sdbench
timed() { /usr/bin/time -f "    peak RSS %M kB, wall %e s" "$@" 2>&1 | grep -E 'step|decode|peak RSS|s/step|passes|median' || true; }
echo "== $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), flags: $(grep -o -m1 -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
for size in $sizes; do
    repeats=3; [ "$size" -ge 512 ] && repeats=2
    echo "== UNet CFG step, ${size}x${size}"
    for precision in full bf16; do
        echo "-- sdshell precision $precision"
        timed $bench unet --size "$size" --repeats $repeats --precision $precision
    done
    for mode in "" --bf16; do
        echo "-- PyTorch ${mode:-f32}"
        timed .venv-ref/bin/python scripts/bench_reference_unet.py "$size" $repeats 2 $mode
    done
done
echo "== VAE decode, 512x512"
for precision in full bf16; do
    echo "-- sdshell precision $precision"
    timed $bench vae --size 512 --precision $precision
done
for mode in "" --bf16; do
    echo "-- PyTorch ${mode:-f32}"
    timed .venv-ref/bin/python scripts/bench_reference_unet.py 512 2 2 --vae $mode
done
for size in $train; do
    echo "== textual-inversion step, ${size}x${size}"
    for precision in full half bf16; do
        echo "-- sdshell precision $precision"
        timed $bench train --sizes "$size" --steps 4 --precision $precision
    done
    for mode in "" --bf16; do
        echo "-- PyTorch ${mode:-f32}"
        timed .venv-ref/bin/python scripts/bench_reference_train.py "$size" 4 2 $mode
    done
done
