#!/usr/bin/env bash
# Authenticated throughput: GET /api/v1/app/users/me and GET /api/v1/app/projects (20 items),
# 64 connections, on embedded SQLite or (with BENCH_DATABASE_URL / BENCH_REDIS_URL) on
# PostgreSQL + Redis. The PostgreSQL database is dropped and recreated: use a scratch one.
#
#   bench/api.sh [seconds]
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/omnistack_bench \
#   BENCH_REDIS_URL=redis://127.0.0.1:6379 bench/api.sh
#
# Needs `wrk` and `curl`. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-15}"
port="${BENCH_PORT:-18081}"
base="http://127.0.0.1:$port"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

workdir=$(mktemp -d)
# The limiter stays on (its cost is part of the figure) with a limit no run reaches.
env_args=(PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute)
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  env_args+=(DATABASE_URL="$BENCH_DATABASE_URL")
fi
[ -n "${BENCH_REDIS_URL:-}" ] && env_args+=(REDIS_URL="$BENCH_REDIS_URL")

(cd "$workdir" && exec env "${env_args[@]}" "$OLDPWD/target/release/omnistack" serve >/dev/null) &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done

token=$(curl -fs -X POST "$base/api/v1/public/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
for i in $(seq 1 20); do
  curl -fs -X POST "$base/api/v1/app/projects" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -d "{\"name\":\"project $i\",\"description\":\"bench\"}" >/dev/null
done

echo "database: ${BENCH_DATABASE_URL:-embedded SQLite}; redis: ${BENCH_REDIS_URL:-none}"
for path in /api/v1/app/users/me /api/v1/app/projects; do
  wrk -t2 -c64 -d2s -H "authorization: Bearer $token" "$base$path" >/dev/null
  echo "GET $path (64 connections, ${seconds}s)"
  wrk -t2 -c64 -d"${seconds}s" --latency -H "authorization: Bearer $token" "$base$path" \
    | grep -E "Requests/sec|50%|99%|Non-2xx"
done
