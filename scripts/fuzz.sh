#!/usr/bin/env bash
# libFuzzer runs of the fuzz/ targets (docs/reliability/fuzzing.md).
#
#   scripts/fuzz.sh smoke [SECONDS]  build build-fuzz/ if needed, run each target SECONDS
#                                    (default 25); fails on any crash, leak, timeout or OOM
#   scripts/fuzz.sh run [SECONDS]    bounded run, default 300 s per target, then a table of
#                                    execs, coverage and crashes
#   scripts/fuzz.sh build            configure + build only
#
# build-fuzz/ is a clang build (CMAKE_CXX_COMPILER=clang++, HOMEWARD_FUZZ=ON): our code with
# coverage, ASan and UBSan, Debian's libraries as they are. Seeds are generated into
# build-fuzz/fuzz-seeds/ by homeward-fuzz-seeds; new inputs go to build-fuzz/fuzz-corpus/
# (kept between runs), crashes to build-fuzz/fuzz-artifacts/<target>/. Kept regression
# inputs live in tests/data/fuzz/<target>/ and are replayed by ctest (tests/fuzz.cmake).
#
# Environment: HOMEWARD_FUZZ_DIR (default build-fuzz), HOMEWARD_JOBS (default nproc),
# FUZZ_TARGETS (default: all five), FUZZ_RSS_MB (default 2560).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="${HOMEWARD_FUZZ_DIR:-$ROOT/build-fuzz}"
JOBS="${HOMEWARD_JOBS:-$(nproc)}"
TARGETS=(${FUZZ_TARGETS:-fuzz_calibration fuzz_manifest fuzz_index_snapshot fuzz_image fuzz_service})
RSS_MB="${FUZZ_RSS_MB:-2560}"
SKIP_CODE=77  # fuzz/fuzz_util.h kSkipExitCode; libFuzzer's own codes are set to 1 below

log() { printf '[fuzz] %s\n' "$*" >&2; }

build() {
  if [[ ! -f "$FUZZ_DIR/CMakeCache.txt" ]]; then
    local launcher=()
    command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    cmake -S "$ROOT" -B "$FUZZ_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
      -DHOMEWARD_FUZZ=ON -DHOMEWARD_BUILD_TESTS=OFF -DHOMEWARD_BUILD_BENCH=OFF \
      "${launcher[@]}" >/dev/null
  fi
  nice cmake --build "$FUZZ_DIR" -j "$JOBS" --target "${TARGETS[@]}" homeward-fuzz-seeds
}

seeds() {
  rm -rf "$FUZZ_DIR/fuzz-seeds"
  "$FUZZ_DIR/fuzz/homeward-fuzz-seeds" "$FUZZ_DIR/fuzz-seeds" >&2
}

# run_target TARGET SECONDS -> prints one table row; returns non-zero on a finding.
run_target() {
  local t="$1" secs="$2"
  local corpus="$FUZZ_DIR/fuzz-corpus/$t" artifacts="$FUZZ_DIR/fuzz-artifacts/$t/"
  local logf="$FUZZ_DIR/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$logf")"
  local dirs=("$corpus")
  [[ -d "$FUZZ_DIR/fuzz-seeds/$t" ]] && dirs+=("$FUZZ_DIR/fuzz-seeds/$t")
  [[ -d "$ROOT/tests/data/fuzz/$t" ]] && dirs+=("$ROOT/tests/data/fuzz/$t")
  local extra=()
  local rss="$RSS_MB"
  case "$t" in
    fuzz_calibration | fuzz_manifest) extra+=(-dict="$ROOT/fuzz/json.dict") ;;
    # faiss::read_index leaks what it built when it throws (tens of KB per bad input).
    fuzz_index_snapshot) rss=$((RSS_MB + 2048)) ;;
  esac
  local before after rc=0
  # crash-, leak-, timeout-, oom- files are findings; slow-unit- files are only reported.
  before=$(find "$artifacts" -type f ! -name 'slow-unit-*' | wc -l)
  # -timeout: one input may take a few seconds under ASan (the ResNet on a large photo).
  OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    nice "$FUZZ_DIR/fuzz/$t" -max_total_time="$secs" -timeout=60 -rss_limit_mb="$rss" \
    -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "${extra[@]}" "${dirs[@]}" >"$logf" 2>&1 || rc=$?
  after=$(find "$artifacts" -type f ! -name 'slow-unit-*' | wc -l)
  local execs eps cov ft units
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$logf" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$logf" | tail -1 | cut -d' ' -f2)
  units=$(find "$corpus" -type f | wc -l)
  local result=ok
  if ((rc == SKIP_CODE)); then
    result="skipped ($(grep -m1 '^SKIPPED' "$logf" || true))"
  elif ((rc != 0 || after > before)); then
    result="FAILED rc=$rc, log $logf"
  fi
  printf '%-20s %6s %10s %8s %6s %7s %7s %8s  %s\n' "$t" "$secs" "${execs:--}" "${eps:--}" \
    "${cov:--}" "${ft:--}" "$units" "$((after - before))" "$result"
  [[ "$result" == ok || "$result" == skipped* ]]
}

fuzz_all() {
  local secs="$1" failed=0
  build
  seeds
  printf '%-20s %6s %10s %8s %6s %7s %7s %8s  %s\n' target seconds execs exec/s cov ft corpus \
    crashes result
  for t in "${TARGETS[@]}"; do
    run_target "$t" "$secs" || failed=1
  done
  if ((failed)); then
    log "a target failed: see the logs in $FUZZ_DIR/fuzz-logs/ and the inputs in $FUZZ_DIR/fuzz-artifacts/"
    log "fix the bug, then keep the input as tests/data/fuzz/<target>/<name> (replayed by ctest)"
    return 1
  fi
}

case "${1:-}" in
  build) build ;;
  smoke) fuzz_all "${2:-25}" ;;
  run) fuzz_all "${2:-300}" ;;
  *)
    sed -n '2,19p' "$0" >&2
    exit 2
    ;;
esac
