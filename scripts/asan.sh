#!/usr/bin/env bash
# The whole GoogleTest suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (issue 7; results in docs/reliability/sanitizers.md).
#
#   scripts/asan.sh [all]   configure + build build-asan/, then run every ctest test in it
#   scripts/asan.sh build   configure + build only
#   scripts/asan.sh test    run the suite in an existing build-asan/
#   scripts/asan.sh tsan    ThreadSanitizer build (build-tsan/) of the index and grants tests,
#                           run 5 times: concurrent searches while a writer adds and removes
#
# build-asan/ is a clang build with -DHOMEWARD_SANITIZE=ON at the project's RelWithDebInfo
# flags (-O2 -g1, CMakeLists.txt): our code,
# dlib's header-only network and the tests are instrumented; Debian's shared libraries (Faiss,
# gRPC, OpenCV, OpenBLAS, SQLite) are not, but their calls into our code and our reads and
# writes of their buffers are. Clang, not GCC: GCC at RelWithDebInfo needed 2.5 GB and 6+
# CPU-minutes per dlib translation unit under ASan; clang builds the tree in ~15 min on
# 2 cores. Child processes (homeward-server, the CLI) are the instrumented builds too.
#
# A sanitizer report fails the test that triggered it: UBSan halts on the first error, ASan
# always does, LeakSanitizer exits non-zero at process exit. tests/sanitizers/lsan.supp lists
# the leaks inside third-party libraries that are suppressed, each with its reason.
#
# Environment: HOMEWARD_ASAN_DIR (default build-asan), HOMEWARD_JOBS (default nproc).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${HOMEWARD_ASAN_DIR:-$ROOT/build-asan}"
JOBS="${HOMEWARD_JOBS:-$(nproc)}"

# configure DIR CMAKE_ARGS...: a clang RelWithDebInfo build dir without benchmarks.
configure() {
  local dir="$1" launcher=()
  shift
  command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DHOMEWARD_BUILD_BENCH=OFF "${launcher[@]}" "$@"
}

build() {
  configure "$DIR" -DHOMEWARD_SANITIZE=ON
  nice cmake --build "$DIR" -j "$JOBS"
}

run_tests() {
  export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=1${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  export OMP_WAIT_POLICY=PASSIVE
  ctest --test-dir "$DIR" -j "$JOBS" --output-on-failure --timeout 3600
}

# ThreadSanitizer over the concurrency tests of index/ (searches while a writer adds; the
# filtered and widened searches) and of the volunteer grants. OMP_NUM_THREADS=1: the OpenMP
# runtime clang links (libomp) is not instrumented, and TSan reports its own worker start-up
# as a race (a mutex initialised by a worker, locked by the master); with one OpenMP thread
# Faiss's parallel regions run on the calling thread and our threads are what is checked.
run_tsan() {
  local dir="${HOMEWARD_TSAN_DIR:-$ROOT/build-tsan}"
  configure "$dir" -DHOMEWARD_TSAN=ON
  nice cmake --build "$dir" -j "$JOBS" --target face_index_test candidate_grants_test
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE "$dir/tests/face_index_test" --gtest_repeat=5
  "$dir/tests/candidate_grants_test" --gtest_repeat=5
}

case "${1:-all}" in
  tsan) run_tsan ;;
  build) build ;;
  test) run_tests ;;
  all) build && run_tests ;;
  *) echo "usage: $0 [all|build|test|tsan]" >&2; exit 2 ;;
esac
