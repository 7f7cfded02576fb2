#!/usr/bin/env bash
# Instructions per request of a release binary, counted by callgrind (whole process, every
# thread): stable while other work shares the machine, unlike requests per second.
#
#   bench/callgrind.sh [binary] [requests]
#
# Defaults: target/release/omnistack (built first), 2000 requests. Three runs of the server
# under valgrind, each warmed up the same way (start, one sign-up, 300 requests to each
# endpoint): one stops there, one then serves `requests` × GET /api/v1/public/health, one
# `requests` × GET /api/v1/app/users/me (embedded SQLite, one connection, keep-alive). The
# differences divided by `requests` are the figures. Background job workers are off
# (JOBS_WORKERS=0) so that their polling does not count. Set ACCEPT_ENCODING=gzip to send it.
# Needs valgrind (apt-get install valgrind). Traffic goes to 127.0.0.1 only. The profiles stay
# in $OUT (default: a temporary folder, printed) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${1:-}" ]]; then cargo build --release --quiet; fi
bin=$(realpath "${1:-target/release/omnistack}")
n="${2:-2000}"
port="${BENCH_PORT:-18291}"
out="${OUT:-$(mktemp -d)}"
command -v valgrind >/dev/null || { echo "valgrind is required: apt-get install valgrind" >&2; exit 1; }

client() { # path count [token]
  python3 - "$port" "$@" <<'PY'
import http.client, os, sys
port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
headers = {"Authorization": "Bearer " + sys.argv[4]} if len(sys.argv) > 4 else {}
if os.environ.get("ACCEPT_ENCODING"):
    headers["Accept-Encoding"] = os.environ["ACCEPT_ENCODING"]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(count):
    # Like wrk: no Accept-Encoding unless asked for (http.client would add `identity`).
    conn.putrequest("GET", path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"{path}: {response.status}")
PY
}

run() { # mode -> total instructions
  local mode=$1 work vp token
  work=$(mktemp -d)
  (cd "$work" && PORT=$port HOST=127.0.0.1 LOG_LEVEL=warn JOBS_WORKERS=0 RATE_LIMIT_APP=100000000/minute \
    RATE_LIMIT_PUBLIC=100000000/minute RATE_LIMIT_AUTH=1000/minute exec valgrind --tool=callgrind \
    --callgrind-out-file="$out/$mode.cg" "$bin" serve >"$work/log" 2>&1) &
  vp=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/api/v1/public/health" >/dev/null && break; sleep 0.5; done
  token=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/public/auth/register" -H 'content-type: application/json' \
    -d '{"email":"cg@example.com","password":"bench-password-1","full_name":"Bench"}' |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
  client /api/v1/public/health 300
  client /api/v1/app/users/me 300 "$token"
  case $mode in
    health) client /api/v1/public/health "$n" ;;
    me) client /api/v1/app/users/me "$n" "$token" ;;
  esac
  kill -INT "$vp"
  wait "$vp" || true
  rm -rf "$work"
  callgrind_annotate "$out/$mode.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

warm=$(run warm)
health=$(run health)
me=$(run me)
echo "GET /api/v1/public/health: $(((health - warm) / n)) instructions/request"
echo "GET /api/v1/app/users/me:  $(((me - warm) / n)) instructions/request"
echo "profiles: $out"
