#!/usr/bin/env bash
# Builds realnet and runs the whole test suite through CTest (the run ends with CTest's summary line).
#   bash scripts/test.sh              install deps, build (Release) in build/, run every test
#   bash scripts/test.sh --memcheck   the same under AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/
#   extra arguments after the mode go to ctest, e.g.  bash scripts/test.sh -L gradcheck
set -euo pipefail
cd "$(dirname "$0")/.."

mode=release
if [ "${1:-}" = "--memcheck" ]; then mode=memcheck; shift; fi

bash scripts/install-deps.sh
jobs=$(nproc)

if [ "$mode" = memcheck ]; then
  dir=build-asan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DREALNET_SANITIZE=ON >/dev/null
  cmake --build "$dir" -j"$jobs"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0"
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
  dir=build
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$dir" -j"$jobs"
fi

cd "$dir"
if [ $# -eq 0 ]; then
  # The CUDA agreement tests first (CTest lists them as skipped on a machine without a GPU), then everything
  # else, so that the run ends with CTest's summary line.
  ctest --output-on-failure --no-label-summary --timeout 900 -L cuda
  ctest --output-on-failure --no-label-summary --timeout 900 -LE cuda
else
  ctest --output-on-failure --no-label-summary --timeout 900 "$@"
fi
