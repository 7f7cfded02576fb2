#!/usr/bin/env bash
# Admin dashboard latency with USERS accounts (100,000 by default) seeded in SQL: GET
# /api/v1/admin/dashboard/stats at 16 connections (wrk), p50 and p99, after GET
# /api/v1/app/users/me as the baseline of an authenticated request; on embedded SQLite or (with BENCH_DATABASE_URL / BENCH_REDIS_URL)
# on PostgreSQL + Redis. The PostgreSQL database is dropped and recreated: use a scratch one.
#
#   bench/dashboard.sh [seconds] [users]
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/omnistack_bench \
#   BENCH_REDIS_URL=redis://127.0.0.1:6379 bench/dashboard.sh
#
# Needs `wrk`, `curl`, and `sqlite3` or `psql`. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
users="${2:-100000}"
port="${BENCH_PORT:-18082}"
base="http://127.0.0.1:$port"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

workdir=$(mktemp -d)
env_args=(PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute DATA_DIR="$workdir/data")
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  env_args+=(DATABASE_URL="$BENCH_DATABASE_URL")
fi
[ -n "${BENCH_REDIS_URL:-}" ] && env_args+=(REDIS_URL="$BENCH_REDIS_URL")
binary="$PWD/target/release/omnistack"

(cd "$workdir" && exec env "${env_args[@]}" "$binary" serve >/dev/null) &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done

# Accounts created over the last 60 days, a tenth deactivated, a fifth on paid plans.
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  psql "$BENCH_DATABASE_URL" -q <<SQL
INSERT INTO users (id, email, role, is_active, subscription_plan, subscription_status, created_at, updated_at)
SELECT gen_random_uuid(), 'seed' || i || '@example.com', CASE WHEN i % 1000 = 0 THEN 'admin' ELSE 'user' END,
       i % 10 <> 0, CASE WHEN i % 5 = 0 THEN 'pro' ELSE 'free' END,
       CASE WHEN i % 5 = 0 THEN 'active' ELSE 'inactive' END,
       now() - (i % 60) * interval '1 day', now()
FROM generate_series(1, $users) AS i;
ANALYZE users;
SQL
else
  sqlite3 "$workdir/data/omnistack.db" <<SQL
.timeout 5000
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $users)
INSERT INTO users (id, email, role, is_active, subscription_plan, subscription_status, created_at, updated_at)
SELECT randomblob(16), 'seed' || i || '@example.com', CASE WHEN i % 1000 = 0 THEN 'admin' ELSE 'user' END,
       i % 10 <> 0, CASE WHEN i % 5 = 0 THEN 'pro' ELSE 'free' END,
       CASE WHEN i % 5 = 0 THEN 'active' ELSE 'inactive' END,
       strftime('%Y-%m-%dT%H:%M:%f', 'now', '-' || (i % 60) || ' days') || '+00:00',
       strftime('%Y-%m-%dT%H:%M:%f', 'now') || '+00:00'
FROM n;
SQL
fi

curl -fs -X POST "$base/api/v1/public/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench-admin@example.com","password":"bench-password-1"}' >/dev/null
(cd "$workdir" && env "${env_args[@]}" "$binary" users set-role --email bench-admin@example.com --role admin >/dev/null)
token=$(curl -fs -X POST "$base/api/v1/public/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench-admin@example.com","password":"bench-password-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

path=/api/v1/admin/dashboard/stats
echo "database: ${BENCH_DATABASE_URL:-embedded SQLite}; redis: ${BENCH_REDIS_URL:-none}; $users seeded accounts"
curl -fs -H "authorization: Bearer $token" "$base$path" | head -c 300; echo
for path_ in /api/v1/app/users/me "$path"; do
  echo "GET $path_ (16 connections, ${seconds}s)"
  wrk -t2 -c16 -d"${seconds}s" --latency -H "authorization: Bearer $token" "$base$path_" \
    | grep -E "Requests/sec|50%|90%|99%|Non-2xx"
done
