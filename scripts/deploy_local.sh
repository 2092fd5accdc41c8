#!/usr/bin/env bash
# The deployment of docs/DEPLOY.md rehearsed on this machine's loopback: PostgreSQL 15 (a new
# cluster in DIR, run as the postgres system user because PostgreSQL refuses root), two
# homeward-server processes sharing it as their catalog, and nginx in front of them ending
# TLS (gRPC through grpc_pass, the JSON gateway through proxy_pass; deploy/nginx/homeward.conf).
#
#   scripts/deploy_local.sh start DIR   start it all; DIR/env holds the ports, URLs and keys
#   scripts/deploy_local.sh stop DIR    stop what DIR/env names (servers, nginx, PostgreSQL)
#
# Needs: a build (scripts/setup.sh build), postgresql-15, nginx and openssl (scripts/setup.sh
# deps installs them). Environment: HOMEWARD_BUILD_DIR (default build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${HOMEWARD_BUILD_DIR:-$ROOT/build}"
SERVER="$BUILD_DIR/server/homeward-server"
PGBIN=/usr/lib/postgresql/15/bin
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] FAILED: %s\n' "$*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for FILE TEXT SECONDS: until FILE contains TEXT.
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

start() {
  local dir="$1"
  [[ -x "$PGBIN/initdb" ]] || die "postgresql-15 is not installed: run scripts/setup.sh deps as root"
  [[ -x "$NGINX" ]] || die "nginx is not installed: run scripts/setup.sh deps as root"
  [[ -x "$SERVER" ]] || die "no $SERVER: run scripts/setup.sh build first"
  [[ "$(id -u)" == 0 ]] || die "run as root (PostgreSQL's files belong to the postgres user)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [[ ! -e "$dir/env" ]] || die "$dir already holds a deployment: stop it first ($0 stop $dir)"
  : >"$dir/env"

  # PostgreSQL: a cluster of its own, on a loopback port, its socket in DIR.
  local pgport
  pgport="$(free_port)"
  mkdir -p "$dir/pg"
  chown postgres:postgres "$dir/pg"
  chmod 700 "$dir/pg"
  chmod o+x "$dir"
  runuser -u postgres -- "$PGBIN/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 \
    >"$dir/pg/initdb.log" 2>&1 || die "initdb failed: see $dir/pg/initdb.log"
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w \
    -o "-p $pgport -k $dir/pg -c listen_addresses=127.0.0.1" start >/dev/null \
    || die "PostgreSQL did not start: see $dir/pg/server.log"
  echo "PGDATA=$dir/pg/data" >>"$dir/env"
  echo "PGPORT=$pgport" >>"$dir/env"
  runuser -u postgres -- "$PGBIN/createdb" -h 127.0.0.1 -p "$pgport" homeward
  local url="postgresql://postgres@127.0.0.1:$pgport/homeward"
  echo "CATALOG=$url" >>"$dir/env"
  log "PostgreSQL on 127.0.0.1:$pgport ($url)"

  # API keys shared by both servers (one file; each server re-reads it when it changes).
  local role
  for role in admin investigator family volunteer; do
    local key
    key="$("$SERVER" --api-keys "$dir/keys.jsonl" --add-key "$role" --key-id "$role" 2>/dev/null)" \
      || die "could not create the $role key"
    echo "KEY_${role^^}=$key" >>"$dir/env"
  done

  # Two servers on the one catalog, each with its own data dir for its index snapshots.
  local i
  for i in 1 2; do
    local gport hport
    gport="$(free_port)"
    hport="$(free_port)"
    OMP_WAIT_POLICY=PASSIVE "$SERVER" --catalog "$url" --data-dir "$dir/server$i" \
      --listen "127.0.0.1:$gport" --http-listen "127.0.0.1:$hport" \
      --api-keys "$dir/keys.jsonl" --workers 1 --follow-ms 200 \
      >"$dir/server$i.out" 2>"$dir/server$i.log" &
    echo "SERVER${i}_PID=$!" >>"$dir/env"
    echo "SERVER${i}_GRPC=127.0.0.1:$gport" >>"$dir/env"
    echo "SERVER${i}_HTTP=127.0.0.1:$hport" >>"$dir/env"
  done
  for i in 1 2; do
    wait_for "$dir/server$i.out" "http listening on" 300 \
      || die "server $i did not start: $(tail -3 "$dir/server$i.log")"
  done
  log "two servers ready"

  # TLS for nginx: a self-signed certificate for localhost (a real host uses its own).
  mkdir -p "$dir/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" >/dev/null 2>&1 \
    || die "openssl could not make a certificate"
  echo "CA_CERT=$dir/tls/cert.pem" >>"$dir/env"

  # nginx: a minimal main config including the site file of deploy/nginx/homeward.conf.
  local ngrpc nhttps
  ngrpc="$(free_port)"
  nhttps="$(free_port)"
  mkdir -p "$dir/nginx/temp"
  # shellcheck disable=SC1091
  source "$dir/env"
  sed -e "s|@GRPC_SERVERS@|    server $SERVER1_GRPC;\n    server $SERVER2_GRPC;|" \
    -e "s|@HTTP_SERVERS@|    server $SERVER1_HTTP;\n    server $SERVER2_HTTP;|" \
    -e "s|@GRPC_LISTEN@|127.0.0.1:$ngrpc|" -e "s|@HTTPS_LISTEN@|127.0.0.1:$nhttps|" \
    -e "s|@SERVER_NAME@|localhost|" -e "s|@TLS_CERT@|$dir/tls/cert.pem|" \
    -e "s|@TLS_KEY@|$dir/tls/key.pem|" \
    "$ROOT/deploy/nginx/homeward.conf" >"$dir/nginx/homeward.conf"
  cat >"$dir/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 256; }
http {
    access_log $dir/nginx/access.log;
    client_body_temp_path $dir/nginx/temp/body;
    proxy_temp_path $dir/nginx/temp/proxy;
    fastcgi_temp_path $dir/nginx/temp/fastcgi;
    uwsgi_temp_path $dir/nginx/temp/uwsgi;
    scgi_temp_path $dir/nginx/temp/scgi;
    include $dir/nginx/homeward.conf;
}
EOF
  "$NGINX" -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -t >"$dir/nginx/test.log" 2>&1 \
    || die "nginx refused the configuration: $(cat "$dir/nginx/test.log")"
  "$NGINX" -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" || die "nginx did not start"
  echo "NGINX_GRPC=localhost:$ngrpc" >>"$dir/env"
  echo "NGINX_HTTPS=https://localhost:$nhttps" >>"$dir/env"
  log "nginx: gRPC on localhost:$ngrpc, HTTPS on https://localhost:$nhttps (certificate $dir/tls/cert.pem)"
  log "ready; settings in $dir/env; stop with: $0 stop $dir"
}

stop() {
  local dir="$1"
  [[ -f "$dir/env" ]] || die "no deployment in $dir (no $dir/env)"
  # shellcheck disable=SC1091
  source "$dir/env"
  if [[ -f "$dir/nginx/nginx.pid" ]]; then
    "$NGINX" -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -s quit 2>/dev/null || true
  fi
  local pid
  for pid in "${SERVER1_PID:-}" "${SERVER2_PID:-}"; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER1_PID:-}" "${SERVER2_PID:-}"; do
    [[ -z "$pid" ]] && continue
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ -n "${PGDATA:-}" && -d "$PGDATA" ]]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -f "$dir/env"
  log "stopped"
}

case "${1:-}" in
  start) [[ $# == 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
