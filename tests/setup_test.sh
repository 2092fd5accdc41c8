#!/usr/bin/env bash
# Tests of scripts/setup.sh that need no network, no root and no build (tests/setup.cmake):
#
#   setup_test.sh offline   `setup.sh models` with the npm registry unreachable stops with npm's
#                           own error and the by-hand instructions (file, place, checksum)
#   setup_test.sh run       `setup.sh run` starts the server with the gRPC port, the web pages
#                           and the JSON gateway, and prints the URL (HOMEWARD_DRY_RUN=1)
#
# Everything happens in a temporary directory: the real models/, build/ and var/ are not read
# or written, and no server is started. SETUP_SH overrides the script under test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SETUP="${SETUP_SH:-$ROOT/scripts/setup.sh}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

FAILURES=0
expect() {  # expect DESCRIPTION FIXED-STRING FILE
  if grep -qF -- "$2" "$3"; then
    echo "ok: $1"
  else
    echo "FAIL: $1: no '$2' in the output"
    FAILURES=$((FAILURES + 1))
  fi
}
expect_not() {
  if grep -qF -- "$2" "$3"; then
    echo "FAIL: $1: '$2' in the output"
    FAILURES=$((FAILURES + 1))
  else
    echo "ok: $1"
  fi
}
finish() {
  if ((FAILURES)); then
    echo "--- output of setup.sh ---"
    cat "$TMP/out"
    echo "FAILED: $FAILURES check(s)"
    exit 1
  fi
  echo "PASS"
}

offline() {
  # The face-api tarball's sha512, as scripts/setup.sh and models/README.md pin it.
  local hex=5833262b709f34ba3c8f2956a8ca1081fe2722cb773347f3c7576769cf7ac2ffddbcc4cde03c42fcfab50c6b5db83935964b426a64373080d7167beb7474d70f
  local tgz="$TMP/models/cache/vladmandic-face-api-1.7.15.tgz"
  local rc=0
  # Port 9 (discard) on loopback refuses at once; no retries, an empty npm cache and no user
  # npmrc or proxy, so nothing cached or configured elsewhere can answer instead.
  env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY \
    HOMEWARD_MODELS_DIR="$TMP/models" HOMEWARD_BUILD_DIR="$TMP/build" \
    npm_config_registry=http://127.0.0.1:9/ npm_config_cache="$TMP/npm-cache" \
    npm_config_userconfig="$TMP/npmrc" npm_config_fetch_retries=0 \
    timeout 100 "$SETUP" models >"$TMP/out" 2>&1 || rc=$?
  if ((rc == 0)); then
    echo "FAIL: setup.sh models exited 0 with the registry unreachable"
    FAILURES=$((FAILURES + 1))
  elif ((rc == 124)); then
    echo "FAIL: setup.sh models did not stop within 100 s"
    FAILURES=$((FAILURES + 1))
  else
    echo "ok: exit code $rc"
  fi
  expect "names the failed step" "FAILED: models: fetch @vladmandic/face-api@1.7.15" "$TMP/out"
  expect "shows npm's own error" "npm error code ECONNREFUSED" "$TMP/out"
  expect "shows npm's error message" "connect ECONNREFUSED 127.0.0.1:9" "$TMP/out"
  expect "says where to place the file" "$tgz" "$TMP/out"
  expect "gives the sha512 (sha512sum)" "$hex" "$TMP/out"
  expect "gives npm's integrity string" \
    "sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw==" \
    "$TMP/out"
  expect "says where to get it" "npm pack @vladmandic/face-api@1.7.15" "$TMP/out"
  if [[ -e "$tgz" || -e "$TMP/build" ]]; then
    echo "FAIL: left a tarball or configured a build dir after the failed fetch"
    FAILURES=$((FAILURES + 1))
  else
    echo "ok: nothing left behind"
  fi
  finish
}

run() {
  # A stand-in server binary: the dry run only checks that it is executable.
  mkdir -p "$TMP/build/server"
  printf '#!/bin/sh\nexit 99\n' >"$TMP/build/server/homeward-server"
  chmod +x "$TMP/build/server/homeward-server"
  local base=(env -u HOMEWARD_LISTEN -u HOMEWARD_HTTP_LISTEN -u HOMEWARD_WEB_DIR
              HOMEWARD_DRY_RUN=1 HOMEWARD_BUILD_DIR="$TMP/build" HOMEWARD_MODELS_DIR="$TMP/models"
              HOMEWARD_DATA_DIR="$TMP/var")
  local server="$TMP/build/server/homeward-server"
  # The dry run must neither set up nor start anything: 30 s is ample.
  dry_run() {
    local rc=0
    "${base[@]}" timeout 30 "$SETUP" run "$@" >"$TMP/out" 2>&1 || rc=$?
    if ((rc != 0)); then
      echo "FAIL: HOMEWARD_DRY_RUN=1 setup.sh run $* exited $rc"
      FAILURES=$((FAILURES + 1))
      finish
    fi
  }

  dry_run --workers 2
  expect "gRPC on loopback" "$server --listen 127.0.0.1:50051 " "$TMP/out"
  expect "data dir" "--data-dir $TMP/var " "$TMP/out"
  expect "development mode" " --insecure-dev " "$TMP/out"
  expect "web pages and gateway on 8080" " --http-listen 127.0.0.1:8080 --web-dir $ROOT/web " \
    "$TMP/out"
  expect "extra arguments last" " --workers 2 " "$TMP/out"
  expect "prints the URL" "open http://127.0.0.1:8080/" "$TMP/out"
  expect "says what to type at sign-in" "on the sign-in page type any key, e.g. dev" "$TMP/out"

  base+=(HOMEWARD_HTTP_LISTEN=127.0.0.1:18080 HOMEWARD_LISTEN=127.0.0.1:15051)
  dry_run
  expect "HOMEWARD_HTTP_LISTEN" " --http-listen 127.0.0.1:18080 " "$TMP/out"
  expect "HOMEWARD_LISTEN" " --listen 127.0.0.1:15051 " "$TMP/out"
  expect "URL follows HOMEWARD_HTTP_LISTEN" "open http://127.0.0.1:18080/" "$TMP/out"

  base+=(HOMEWARD_HTTP_LISTEN=none)
  dry_run --api-keys "$TMP/keys.jsonl"
  expect_not "HOMEWARD_HTTP_LISTEN=none: no gateway" "--http-listen" "$TMP/out"
  expect_not "--api-keys: not development mode" "--insecure-dev" "$TMP/out"
  expect "--api-keys passed on" " --api-keys $TMP/keys.jsonl" "$TMP/out"
  if [[ -e "$TMP/models" || -e "$TMP/var" || -e "$TMP/build/CMakeCache.txt" ]]; then
    echo "FAIL: the dry run set something up"
    FAILURES=$((FAILURES + 1))
  else
    echo "ok: the dry run set nothing up"
  fi
  finish
}

case "${1:-}" in
  offline) offline ;;
  run) run ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
