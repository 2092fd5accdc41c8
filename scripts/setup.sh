#!/usr/bin/env bash
# Homeward set-up: one idempotent step for a fresh Debian 12 machine.
#
#   scripts/setup.sh deps     install missing Debian packages (as root)
#   scripts/setup.sh models   fetch @vladmandic/face-api (pinned, verified) and convert its weights
#   scripts/setup.sh build    configure and build into build/
#   scripts/setup.sh test     all of the above, then run every test (ctest) and a fuzz smoke run
#   scripts/setup.sh run      all of the above, then start the service
#
# Environment: HOMEWARD_BUILD_DIR (default build), HOMEWARD_MODELS_DIR (default models),
# HOMEWARD_JOBS (default nproc).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${HOMEWARD_BUILD_DIR:-$ROOT/build}"
MODELS_DIR="${HOMEWARD_MODELS_DIR:-$ROOT/models}"
JOBS="${HOMEWARD_JOBS:-$(nproc)}"

FACEAPI_VERSION=1.7.15
FACEAPI_SHA512="WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
RECOGNITION_MODEL="$MODELS_DIR/faceapi_${FACEAPI_VERSION}_resnet.dat"
LANDMARK_MODEL=/usr/share/dlib/shape_predictor_68_face_landmarks.dat

PACKAGES=(
  build-essential cmake pkg-config git python3 ca-certificates
  clang libclang-rt-14-dev
  libdlib-dev libdlib-data libopenblas-dev
  libfaiss-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libopencv-dev libsqlite3-dev sqlite3 libssl-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libcpp-httplib-dev
  googletest libgtest-dev libgmock-dev
  python3-grpcio python3-protobuf
  nodejs npm
  chromium chromium-driver
)

log() { printf '[setup] %s\n' "$*" >&2; }

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    if [[ "$p" == npm ]] && command -v npm >/dev/null 2>&1; then continue; fi
    if [[ "$p" == nodejs ]] && command -v node >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "all Debian packages present"
    return
  fi
  log "installing: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    log "not root: run 'sudo apt-get install ${missing[*]}' first"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

models() {
  local cache="$MODELS_DIR/cache" pkg="$MODELS_DIR/cache/face-api-$FACEAPI_VERSION"
  mkdir -p "$cache"
  local tgz="$cache/vladmandic-face-api-$FACEAPI_VERSION.tgz"
  if [[ ! -f "$tgz" ]]; then
    log "fetching @vladmandic/face-api@$FACEAPI_VERSION from the npm registry"
    (cd "$cache" && npm pack "@vladmandic/face-api@$FACEAPI_VERSION" --silent >/dev/null)
  fi
  local got
  got=$(python3 -c 'import base64,hashlib,sys;print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tgz")
  if [[ "$got" != "$FACEAPI_SHA512" ]]; then
    log "integrity check FAILED for $tgz (sha512-$got); deleting it"
    rm -f "$tgz"
    exit 1
  fi
  if [[ ! -f "$pkg/model/face_recognition_model.bin" ]]; then
    rm -rf "$pkg" && mkdir -p "$pkg"
    tar -xzf "$tgz" -C "$pkg" --strip-components=1 \
      package/model/face_recognition_model-weights_manifest.json \
      package/model/face_recognition_model.bin \
      package/demo/sample1.jpg package/demo/sample2.jpg package/demo/sample3.jpg \
      package/demo/sample4.jpg package/demo/sample5.jpg package/demo/sample6.jpg \
      package/LICENSE
  fi
  if [[ ! -f "$RECOGNITION_MODEL" ]]; then
    cmake --build "$BUILD_DIR" -j "$JOBS" --target homeward-convert-model >/dev/null
    "$BUILD_DIR/tools/homeward-convert-model" \
      "$pkg/model/face_recognition_model-weights_manifest.json" \
      "$pkg/model/face_recognition_model.bin" "$RECOGNITION_MODEL"
  fi
  if [[ ! -f "$LANDMARK_MODEL" ]]; then
    log "missing $LANDMARK_MODEL (Debian package libdlib-data)"
    exit 1
  fi
  log "models ready: $RECOGNITION_MODEL"
}

export HOMEWARD_RECOGNITION_MODEL="$RECOGNITION_MODEL"
export HOMEWARD_LANDMARK_MODEL="$LANDMARK_MODEL"
export HOMEWARD_DEMO_DIR="$MODELS_DIR/cache/face-api-$FACEAPI_VERSION/demo"
export HOMEWARD_SHARED_DATA="${HOMEWARD_SHARED_DATA:-$ROOT/../shared/data}"
# OpenMP threads spin by default and starve OpenBLAS on small machines.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

# tests/browser's pinned npm packages (playwright-core): `npm ci` unless node_modules already
# matches package-lock.json.
browser_test_deps() {
  local dir="$ROOT/tests/browser"
  # npm writes node_modules/.package-lock.json at install time.
  if [[ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]]; then return; fi
  log "npm ci in tests/browser"
  (cd "$dir" && npm ci --no-audit --no-fund --silent)
}

cmd="${1:-}"
case "$cmd" in
  deps) deps ;;
  build) deps; build ;;
  models) deps; cmake -S "$ROOT" -B "$BUILD_DIR" >/dev/null; models ;;
  test)
    deps; cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" >/dev/null
    models; build
    browser_test_deps
    cd "$BUILD_DIR" && ctest --output-on-failure -j "${HOMEWARD_TEST_JOBS:-2}" --timeout 1500
    # libFuzzer smoke run of every fuzz target (clang build in build-fuzz/; docs/reliability/fuzzing.md).
    HOMEWARD_JOBS="$JOBS" "$ROOT/scripts/fuzz.sh" smoke
    ;;
  run)
    deps; cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" >/dev/null
    models; build
    shift || true
    if [[ -x "$BUILD_DIR/server/homeward-server" ]]; then
      exec "$BUILD_DIR/server/homeward-server" --listen "${HOMEWARD_LISTEN:-127.0.0.1:50051}" \
        --data-dir "${HOMEWARD_DATA_DIR:-$ROOT/var}" --insecure-dev \
        --recognition-model "$RECOGNITION_MODEL" "$@"
    else
      exec "$BUILD_DIR/clients/homeward" embed "$HOMEWARD_DEMO_DIR/sample1.jpg" "$@"
    fi
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
