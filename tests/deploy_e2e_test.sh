#!/usr/bin/env bash
# The deployment of docs/DEPLOY.md end to end (scripts/deploy_local.sh): PostgreSQL, two
# homeward-server processes on it, nginx in front ending TLS.
#  1. Through nginx: gRPC over TLS (the CLI with the certificate) and HTTPS JSON (curl); both
#     servers served calls.
#  2. Writing through one server and reading through the other: a case and photo stored via
#     server 1 are found via server 2 within 2 s; a volunteer's sighting via server 2 makes
#     one lead that server 1 lists and reviews; a deletion via server 1 disappears from
#     server 2's results within 2 s.
# Exit 77 (ctest: skipped) only when postgresql-15 or nginx is not installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${HOMEWARD_BUILD_DIR:-$ROOT/build}"
CLI="$BUILD_DIR/clients/homeward"
DEMO="${HOMEWARD_DEMO_DIR:-$ROOT/models/cache/face-api-1.7.15/demo}"

if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]]; then
  echo "SKIP: postgresql-15 is not installed (scripts/setup.sh deps)"; exit 77
fi
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  echo "SKIP: nginx is not installed (scripts/setup.sh deps)"; exit 77
fi
[[ -f "$DEMO/sample2.jpg" ]] || { echo "FAIL: no demo photos in $DEMO (scripts/setup.sh models)"; exit 1; }

DIR="$(mktemp -d /tmp/hw_deploy_XXXXXX)"
cleanup() {
  local rc=$?
  "$ROOT/scripts/deploy_local.sh" stop "$DIR" >/dev/null 2>&1 || true
  if [[ $rc != 0 ]]; then
    for f in server1.log server2.log nginx/error.log; do
      echo "---- tail of $f"; tail -15 "$DIR/$f" 2>/dev/null || true
    done
  fi
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$ROOT/scripts/deploy_local.sh" start "$DIR"
# shellcheck disable=SC1091
source "$DIR/env"

# json FIELD-PATH: reads JSON on stdin and prints the value at a dotted path (a.0.b).
json() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}
via() {  # via TARGET KEY ARGS...: the CLI against a server (TARGET nginx, 1 or 2)
  local target="$1" key="$2"
  shift 2
  case "$target" in
    nginx) HOMEWARD_API_KEY="$key" "$CLI" --json --server "$NGINX_GRPC" --ca-cert "$CA_CERT" "$@" ;;
    1) HOMEWARD_API_KEY="$key" "$CLI" --json --server "$SERVER1_GRPC" "$@" ;;
    2) HOMEWARD_API_KEY="$key" "$CLI" --json --server "$SERVER2_GRPC" "$@" ;;
  esac
}
# found_via N FACE CASE: whether server N lists CASE among the candidates of stored face FACE.
# has_case CASE: whether the SearchResponse JSON on stdin lists CASE among its candidates.
has_case() {
  python3 -c 'import json, sys
d = json.load(sys.stdin)
ids = {c.get("case", {}).get("id") for r in d.get("results", []) for c in r.get("candidates", [])}
sys.exit(0 if sys.argv[1] in ids else 1)' "$1"
}
found_via() {
  via "$1" "$KEY_INVESTIGATOR" search --face "$2" --kind missing,found --top 10 | has_case "$3"
}
# seconds_until CMD...: seconds until CMD succeeds (polling every 0.1 s), or fails after 10 s.
seconds_until() {
  local start now
  start="$(date +%s.%N)"
  for _ in $(seq 100); do
    if "$@" >/dev/null 2>&1; then
      now="$(date +%s.%N)"
      python3 -c "print(f'{$now - $start:.2f}')"
      return 0
    fi
    sleep 0.1
  done
  return 1
}
within_2s() { python3 -c "import sys; sys.exit(0 if $1 <= 2.0 else 1)"; }

echo "== 1. through nginx (TLS)"
case_a="$(via nginx "$KEY_FAMILY" case create --kind missing --name 'Amina' --birth-date 2010-01-01 | json id)"
# sample2.jpg shows three faces to the CNN detector (the default): --face 0 is the right-hand
# one, the face HOG finds alone.
photo="$(via nginx "$KEY_FAMILY" photo add "$case_a" "$DEMO/sample2.jpg" --face 0 --taken 2016-06-01)"
face_a="$(echo "$photo" | json faces.0.faceId)"
[[ -n "$face_a" ]] || fail "no face stored through nginx"
for _ in 1 2 3 4; do via nginx "$KEY_INVESTIGATOR" stats >/dev/null; done
stats="$(curl -sf --cacert "$CA_CERT" -H "Authorization: Bearer $KEY_INVESTIGATOR" "$NGINX_HTTPS/v1/stats")" \
  || fail "GET /v1/stats through nginx"
echo "$stats" | grep -q '"kinds"' || fail "stats through nginx: $stats"
python3 -c 'import base64, json, sys; print(json.dumps({"image": base64.b64encode(open(sys.argv[1], "rb").read()).decode(), "topK": 5}))' \
  "$DEMO/sample2.jpg" >"$DIR/search.json"
search="$(curl -sf --cacert "$CA_CERT" -H "Authorization: Bearer $KEY_INVESTIGATOR" \
  -H 'Content-Type: application/json' --data-binary "@$DIR/search.json" "$NGINX_HTTPS/v1/search")" \
  || fail "POST /v1/search through nginx"
echo "$search" | has_case "$case_a" || fail "the search through nginx did not find case $case_a"
s1="$(grep -c 'rpc method=' "$DIR/server1.log" || true)"
s2="$(grep -c 'rpc method=' "$DIR/server2.log" || true)"
echo "calls served: server 1: $s1, server 2: $s2"
[[ "$s1" -gt 0 && "$s2" -gt 0 ]] || fail "nginx did not spread the calls over both servers"

echo "== 2. write through one server, read through the other"
case_b="$(via 1 "$KEY_FAMILY" case create --kind missing --name 'Musa' --birth-date 2010-01-01 | json id)"
face_b="$(via 1 "$KEY_FAMILY" photo add "$case_b" "$DEMO/sample2.jpg" --face 0 --taken 2016-06-01 | json faces.0.faceId)"
t="$(seconds_until found_via 2 "$face_a" "$case_b")" || fail "server 2 never found case $case_b stored through server 1"
echo "a photo stored through server 1 is found through server 2 after ${t} s"
within_2s "$t" || fail "visibility took $t s (more than 2 s)"

leads_before="$(via 1 "$KEY_INVESTIGATOR" leads list | python3 -c 'import json, sys; print(len(json.load(sys.stdin).get("leads", [])))')"
sighting="$(via 2 "$KEY_VOLUNTEER" sighting submit "$DEMO/sample2.jpg" --place 'Main St' --seen-at 2024-04-02)"
sighting_case="$(echo "$sighting" | json caseId)"
[[ -n "$sighting_case" ]] || fail "no sighting case"
leads="$(via 1 "$KEY_INVESTIGATOR" leads list)"
n_leads="$(echo "$leads" | python3 -c 'import json, sys; print(len(json.load(sys.stdin).get("leads", [])))')"
echo "leads: $leads_before before the sighting, $n_leads after"
[[ "$n_leads" -gt "$leads_before" ]] || fail "the sighting through server 2 made no lead visible through server 1"
lead="$(echo "$leads" | python3 -c 'import json, sys
for l in json.load(sys.stdin)["leads"]:
    if sys.argv[1] in (l.get("caseAId"), l.get("caseBId")):
        print(l["id"]); break' "$sighting_case")"
[[ -n "$lead" ]] || fail "no lead names the sighting $sighting_case: $leads"
via 1 "$KEY_INVESTIGATOR" leads review "$lead" --decision needs-better-photo --note 'closer photo' >/dev/null \
  || fail "review through server 1"
status="$(via 2 "$KEY_INVESTIGATOR" leads show "$lead" | json status)"
[[ "$status" == "LEAD_NEEDS_BETTER_PHOTO" ]] || fail "server 2 sees the lead as $status"

via 1 "$KEY_FAMILY" case delete "$case_b" >/dev/null || fail "delete through server 1"
not_found_via() { ! found_via "$@"; }
t="$(seconds_until not_found_via 2 "$face_a" "$case_b")" \
  || fail "server 2 still finds deleted case $case_b"
echo "a case deleted through server 1 leaves server 2's results after ${t} s"
within_2s "$t" || fail "deletion took $t s (more than 2 s)"
echo "PASS"
