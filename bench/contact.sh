#!/usr/bin/env bash
# Contact form throughput: POST /api/v1/public/contact (valid submissions: each stores a row and
# enqueues its admin email in one transaction; the console mailer sends them), 64 connections,
# on embedded SQLite or (with BENCH_DATABASE_URL / BENCH_REDIS_URL) on PostgreSQL + Redis. The
# PostgreSQL database is dropped and recreated: use a scratch one.
#
#   bench/contact.sh [seconds]
#
# Needs `wrk` and `curl`. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
port="${BENCH_PORT:-18082}"
base="http://127.0.0.1:$port"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

workdir=$(mktemp -d)
# The per-IP budgets (`public`, `contact`) stay on (their cost is part of the figure) with limits
# no run reaches.
env_args=(PORT="$port" LOG_LEVEL=warn RATE_LIMIT_CONTACT=1000000000/minute RATE_LIMIT_PUBLIC=1000000000/minute CONTACT_NOTIFY_EMAIL=ops@example.com)
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  env_args+=(DATABASE_URL="$BENCH_DATABASE_URL")
fi
[ -n "${BENCH_REDIS_URL:-}" ] && env_args+=(REDIS_URL="$BENCH_REDIS_URL")

cat > "$workdir/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"name":"Bench Sender","email":"sender@example.com","subject":"Hello",' ..
  '"message":"A message long enough to pass the form rules."}'
LUA
(cd "$workdir" && exec env "${env_args[@]}" "$OLDPWD/target/release/omnistack" serve >"$workdir/server.log" 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done
curl -fs "$base/api/v1/public/health" >/dev/null || { echo "the server did not start:" >&2; cat "$workdir/server.log" >&2; exit 1; }

status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/public/contact" -H 'content-type: application/json' \
  -d '{"name":"Bench Sender","email":"sender@example.com","message":"A message long enough to pass the form rules."}')
[ "$status" = 201 ] || { echo "a submission answered $status, not 201" >&2; exit 1; }
echo "database: ${BENCH_DATABASE_URL:-embedded SQLite}; redis: ${BENCH_REDIS_URL:-none}"
echo "POST /api/v1/public/contact (64 connections, ${seconds}s)"
wrk -t2 -c64 -d"${seconds}s" --latency -s "$workdir/post.lua" "$base/api/v1/public/contact" \
  | grep -E "Requests/sec|50%|99%|Non-2xx"
