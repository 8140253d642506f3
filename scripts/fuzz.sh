#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, build-fuzz: libraries with coverage, ASan and UBSan) and
# runs each for a bounded time, one at a time, starting from the committed seeds plus what the
# previous runs found (build-fuzz/corpus/<target>). Prints executions and coverage per target
# and fails if any target crashes; the crashing input is left in build-fuzz/crashes/<target>/
# (commit it under tests/fuzz/regressions/<target>/ with the fix, see docs/FUZZING.md).
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default 60 s, every target)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
all=(decoder pcap config nflog wire scenario segment rollup source_index manifest)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
[ -f build-fuzz/build.ninja ] || cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTEITEN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
  $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache) >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(printf 'teiten-%s-fuzz ' "${targets[@]}")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
printf '%-13s %12s %8s %8s %6s\n' target runs cov ft crash
for t in "${targets[@]}"; do
  work=build-fuzz/corpus/$t
  crashes=build-fuzz/crashes/$t
  log=build-fuzz/fuzz-$t.log
  mkdir -p "$work" "$crashes"
  # -rss_limit_mb/-malloc_limit_mb: an input that makes a reader allocate gigabytes is a finding.
  set +e
  build-fuzz/src/fuzz/teiten-$t-fuzz "$work" tests/fuzz/corpus/$t -max_total_time="$secs" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=65536 \
    -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  last=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  printf '%-13s %12s %8s %8s %6s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$([ $rc -eq 0 ] && echo no || echo YES)"
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -5 | sed 's/^/    /'
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (logs build-fuzz/fuzz-<target>.log, inputs build-fuzz/crashes/)" >&2
  exit 1
fi
