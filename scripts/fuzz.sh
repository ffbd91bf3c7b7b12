#!/usr/bin/env bash
# Fuzzes sdshell's file readers and the sdscript parser with libFuzzer (Swift's -sanitize=fuzzer,
# plus AddressSanitizer).
#   scripts/fuzz.sh TARGET SECONDS      TARGET: safetensors | torch | any | png | script
# Seeds come from the committed fixtures; the corpus grows in .fuzz/TARGET (git-ignored) and the
# last lines of the log (executions, coverage) go to .fuzz/TARGET.log. Crashes are saved as
# .fuzz/crash-* and fail the run; replay one with: .build/debug/sdfuzz FILE
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-any}
seconds=${2:-1800}
scratch=.build-fuzz
swift build -c release --scratch-path "$scratch" --product sdfuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
seeds=".fuzz/seeds-$target"
mkdir -p ".fuzz/$target" "$seeds"
case "$target" in
  safetensors) pattern='*.safetensors' ;;
  torch) pattern='*.p[tk]*' ;;
  png) pattern='*.png' ;;
  *) pattern='*' ;;
esac
extra=()
if [ "$target" = script ]; then
  # Seeds: the examples, the example goldens' journals and the parser's own test inputs; the
  # dictionary holds the language's words and symbols so mutations make near-valid scripts.
  cp examples/*.sdscript "$seeds/"
  extra=(-dict=scripts/sdscript.dict)
elif [ "$target" = png ]; then
  # Seeds: every small PNG and JPEG the tests use (parameters, embeddings in PNGs, pictures).
  find Tests -type f \( -name '*.png' -o -name '*.jpg' \) -size -64k -exec cp {} "$seeds/" \;
else
  # Seeds: the fixtures under 64 KiB (small inputs keep executions fast).
  find Tests/FormatsTests/Fixtures -maxdepth 1 -type f -name "$pattern" -size -64k -exec cp {} "$seeds/" \;
fi
SDFUZZ_TARGET=$target nice -n 10 "$scratch/release/sdfuzz" ".fuzz/$target" "$seeds" \
  -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -artifact_prefix=.fuzz/crash- \
  -print_final_stats=1 "${extra[@]}" 2>&1 | tail -40 | tee ".fuzz/$target.log"
