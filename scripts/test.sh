#!/usr/bin/env bash
# Runs teiten's tests: the release build with CTest, then the same unit tests built with
# AddressSanitizer and UndefinedBehaviorSanitizer. Installs what it needs first.
#   scripts/test.sh            (set TEITEN_NO_SANITIZE=1 to skip the sanitizer pass,
#                               TEITEN_NO_FUZZ=1 to skip the short fuzzing pass)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build Release
export TEITEN_SHARED_DIR=${TEITEN_SHARED_DIR:-$(cd .. && pwd)/shared}
cmake --build build -j"$(nproc)"
(cd build && ctest -j"$(nproc)" --output-on-failure --timeout 900)
if [ -z "${TEITEN_NO_SANITIZE:-}" ]; then
  [ -f build-asan/build.ninja ] || cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$(nproc)"
  (cd build-asan && ctest -j"$(nproc)" --output-on-failure --timeout 1800 -LE slow)
fi
# A short fuzzing pass (docs/FUZZING.md): every target 20 s from the committed seeds; a crash
# fails the run. TEITEN_NO_FUZZ=1 skips it, TEITEN_FUZZ_SECONDS sets the time per target.
if [ -z "${TEITEN_NO_FUZZ:-}" ]; then
  scripts/fuzz.sh "${TEITEN_FUZZ_SECONDS:-20}"
fi
