#!/usr/bin/env bash
# Usage report latency: one account with a year of daily usage (6 metrics, 366 days, 30
# endpoints and 9 model/provider values as dimensions: ~2,200 daily rows and ~14,000
# dimension rows), 2,000 other accounts with 30 days each (60,000 rows) for `top-users`.
# Each report is measured with wrk (BENCH_CONNECTIONS, default 4) on embedded SQLite or (with
# BENCH_DATABASE_URL) on PostgreSQL; the PostgreSQL database is dropped and recreated: use a
# scratch one.
#
#   bench/usage_reports.sh [seconds]
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/omnistack_bench \
#   BENCH_REDIS_URL=redis://127.0.0.1:6379 bench/usage_reports.sh
#
# Needs `wrk`, `curl`, and `sqlite3` or `psql`. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
connections="${BENCH_CONNECTIONS:-4}"
port="${BENCH_PORT:-18083}"
base="http://127.0.0.1:$port"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
[ -n "${BENCH_SKIP_BUILD:-}" ] || cargo build --release --quiet -p omnistack

workdir=$(mktemp -d)
env_args=(PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute DATA_DIR="$workdir/data")
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  env_args+=(DATABASE_URL="$BENCH_DATABASE_URL")
fi
[ -n "${BENCH_REDIS_URL:-}" ] && env_args+=(REDIS_URL="$BENCH_REDIS_URL")

(cd "$workdir" && exec env "${env_args[@]}" "$OLDPWD/target/${BENCH_PROFILE:-release}/omnistack" serve >/dev/null) &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done

register() {
  curl -fs -X POST "$base/api/v1/public/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"bench-password-1\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
token=$(register bench@example.com)
admin_token=$(register admin@example.com)

# A year for the bench account, a month for 2,000 others.
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  psql "$BENCH_DATABASE_URL" -q <<'SQL'
UPDATE users SET role = 'admin' WHERE email = 'admin@example.com';
INSERT INTO usage_daily (user_id, metric, day, value, updated_at)
SELECT u.id, m.metric, CURRENT_DATE - d.n, m.base + (d.n * 7) % 100, now()
FROM users u, generate_series(0, 365) AS d(n),
     (VALUES ('api_requests', 900), ('ai_requests', 40), ('ai_tokens', 50000), ('file_uploads', 12),
             ('emails_sent', 3), ('storage_bytes', 1000)) AS m(metric, base)
WHERE u.email = 'bench@example.com';
INSERT INTO usage_daily_dimensions (user_id, metric, day, name, item, value)
SELECT u.id, 'api_requests', CURRENT_DATE - d.n, 'endpoint', '/api/v1/app/r' || e.k, 1 + (d.n + e.k) % 50
FROM users u, generate_series(0, 365) AS d(n), generate_series(1, 30) AS e(k) WHERE u.email = 'bench@example.com';
INSERT INTO usage_daily_dimensions (user_id, metric, day, name, item, value)
SELECT u.id, 'ai_tokens', CURRENT_DATE - d.n, x.name, x.item, 100 + d.n
FROM users u, generate_series(0, 365) AS d(n),
     (VALUES ('model', 'gpt-4o'), ('model', 'gpt-4o-mini'), ('model', 'claude-3-5'), ('model', 'claude-3-haiku'),
             ('model', 'gemini-1.5'), ('model', 'llama-3'), ('provider', 'openai'), ('provider', 'anthropic'),
             ('provider', 'google')) AS x(name, item)
WHERE u.email = 'bench@example.com';
INSERT INTO users (id, role, is_active, email_verified, subscription_plan, subscription_status,
                   cancel_at_period_end, login_count, created_at, updated_at)
SELECT gen_random_uuid(), 'user', TRUE, FALSE, 'free', 'inactive', FALSE, 0, now(), now() FROM generate_series(1, 2000);
INSERT INTO usage_daily (user_id, metric, day, value, updated_at)
SELECT u.id, 'api_requests', CURRENT_DATE - d.n, 1 + (abs(hashtext(u.id::text)) + d.n) % 500, now()
FROM users u, generate_series(0, 29) AS d(n) WHERE u.email IS NULL;
INSERT INTO usage_monthly (user_id, metric, period, value)
SELECT user_id, metric, to_char(day, 'YYYY-MM'), SUM(value) FROM usage_daily GROUP BY 1, 2, 3;
INSERT INTO usage_monthly_dimensions (user_id, metric, period, name, item, value)
SELECT user_id, metric, to_char(day, 'YYYY-MM'), name, item, SUM(value) FROM usage_daily_dimensions GROUP BY 1, 2, 3, 4, 5;
ANALYZE;
SQL
else
  sqlite3 -cmd ".timeout 5000" "$workdir/data/omnistack.db" <<'SQL'
UPDATE users SET role = 'admin' WHERE email = 'admin@example.com';
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 365),
m(metric, base) AS (VALUES ('api_requests', 900), ('ai_requests', 40), ('ai_tokens', 50000), ('file_uploads', 12),
                           ('emails_sent', 3), ('storage_bytes', 1000))
INSERT INTO usage_daily (user_id, metric, day, value, updated_at)
SELECT u.id, m.metric, date('now', '-' || d.n || ' days'), m.base + (d.n * 7) % 100,
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
FROM users u, m, d WHERE u.email = 'bench@example.com';
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 365),
e(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM e WHERE k < 30)
INSERT INTO usage_daily_dimensions (user_id, metric, day, name, item, value)
SELECT u.id, 'api_requests', date('now', '-' || d.n || ' days'), 'endpoint', '/api/v1/app/r' || e.k, 1 + (d.n + e.k) % 50
FROM users u, d, e WHERE u.email = 'bench@example.com';
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 365),
x(name, item) AS (VALUES ('model', 'gpt-4o'), ('model', 'gpt-4o-mini'), ('model', 'claude-3-5'),
                         ('model', 'claude-3-haiku'), ('model', 'gemini-1.5'), ('model', 'llama-3'),
                         ('provider', 'openai'), ('provider', 'anthropic'), ('provider', 'google'))
INSERT INTO usage_daily_dimensions (user_id, metric, day, name, item, value)
SELECT u.id, 'ai_tokens', date('now', '-' || d.n || ' days'), x.name, x.item, 100 + d.n
FROM users u, d, x WHERE u.email = 'bench@example.com';
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 2000)
INSERT INTO users (id, role, is_active, email_verified, subscription_plan, subscription_status,
                   cancel_at_period_end, login_count, created_at, updated_at)
SELECT randomblob(16), 'user', 1, 0, 'free', 'inactive', 0, 0,
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'), strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') FROM k;
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 29)
INSERT INTO usage_daily (user_id, metric, day, value, updated_at)
SELECT u.id, 'api_requests', date('now', '-' || d.n || ' days'), 1 + abs(random() % 500),
       strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
FROM users u, d WHERE u.email IS NULL;
INSERT INTO usage_monthly (user_id, metric, period, value)
SELECT user_id, metric, substr(day, 1, 7), SUM(value) FROM usage_daily GROUP BY 1, 2, 3;
INSERT INTO usage_monthly_dimensions (user_id, metric, period, name, item, value)
SELECT user_id, metric, substr(day, 1, 7), name, item, SUM(value) FROM usage_daily_dimensions GROUP BY 1, 2, 3, 4, 5;
ANALYZE;
SQL
fi

from=$(date -u -d '-365 days' +%F)
to=$(date -u +%F)
echo "database: ${BENCH_DATABASE_URL:-embedded SQLite}; $connections connections, ${seconds}s per report"
run() { # label path token
  curl -fs -o /dev/null -H "authorization: Bearer $3" "$base$2" || { echo "$1: request failed" >&2; exit 1; }
  wrk -t2 -c"$connections" -d2s -H "authorization: Bearer $3" "$base$2" >/dev/null
  printf '%-18s ' "$1"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "authorization: Bearer $3" "$base$2" \
    | awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$0}
           END {printf "%10s req/s  p50 %8s  p99 %8s %s\n", rps, p50, p99, bad}'
}
run metrics "/api/v1/app/usage/metrics" "$token"
run current-period "/api/v1/app/usage/current-period" "$token"
run summary-366d "/api/v1/app/usage/summary?from=$from&to=$to" "$token"
run daily-366d "/api/v1/app/usage/daily?metric=api_requests&days=366" "$token"
run daily-level "/api/v1/app/usage/daily?metric=storage_bytes&days=366" "$token"
run breakdown-366d "/api/v1/app/usage/breakdown?metric=api_requests&days=366" "$token"
run breakdown-model "/api/v1/app/usage/breakdown?metric=ai_tokens&days=366&dimension=model" "$token"
run trends "/api/v1/app/usage/trends?metric=api_requests" "$token"
run top-users "/api/v1/admin/usage/top-users?metric=api_requests&limit=20" "$admin_token"
run top-users-month "/api/v1/admin/usage/top-users?metric=api_requests&limit=20&period=$(date -u -d '-30 days' +%Y-%m)" "$admin_token"

# BENCH_SQL=1: each report's heaviest statement alone, timed by the database's own client
# (5 runs each), without HTTP: PostgreSQL's round trip as psql sees it (wall time); SQLite's
# CPU time (user + sys), which other work on the machine does not inflate.
if [ -n "${BENCH_SQL:-}" ]; then
  user="(SELECT id FROM users WHERE email = 'bench@example.com')"
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then year="CURRENT_DATE - 365"; period="to_char(CURRENT_DATE - 30, 'YYYY-MM')"; today="CURRENT_DATE"
  else year="date('now', '-365 days')"; period="strftime('%Y-%m', 'now', '-30 days')"; today="date('now')"; fi
  statements=(
    "summary|SELECT metric, CAST(SUM(value) AS BIGINT) FROM usage_daily WHERE user_id = $user AND day >= $year AND day <= $today GROUP BY metric"
    "daily|SELECT day, value FROM usage_daily WHERE user_id = $user AND metric = 'api_requests' AND day >= $year AND day <= $today ORDER BY day"
    "breakdown|SELECT name, item, value, total FROM (SELECT name, item, CAST(SUM(value) AS BIGINT) AS value, CAST(SUM(SUM(value)) OVER (PARTITION BY name) AS BIGINT) AS total, ROW_NUMBER() OVER (PARTITION BY name ORDER BY SUM(value) DESC, item) AS place FROM usage_daily_dimensions WHERE user_id = $user AND metric = 'api_requests' AND day >= $year AND day <= $today GROUP BY name, item) ranked WHERE place <= 20 ORDER BY name, place"
    "top-users|SELECT t.user_id, u.email, t.value FROM (SELECT user_id, CAST(SUM(value) AS BIGINT) AS value FROM usage_monthly WHERE metric = 'api_requests' AND period >= $period AND period <= $period GROUP BY user_id ORDER BY value DESC, user_id LIMIT 20) t JOIN users u ON u.id = t.user_id ORDER BY t.value DESC, t.user_id"
  )
  for entry in "${statements[@]}"; do
    label="${entry%%|*}"; sql="${entry#*|}"
    if [ -n "${BENCH_DATABASE_URL:-}" ]; then
      times=$(for _ in 1 2 3 4 5; do psql "$BENCH_DATABASE_URL" -qAt -c '\timing on' -c "$sql" | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p'; done)
    else
      times=$(for _ in 1 2 3 4 5; do printf '.timer on\n%s;\n' "$sql" | sqlite3 "$workdir/data/omnistack.db" | sed -nE 's/^Run Time: real [0-9.]+ user ([0-9.]+) sys ([0-9.]+).*/\1 \2/p' | awk '{printf "%.1f\n", ($1 + $2) * 1000}'; done)
    fi
    printf 'sql %-14s %s ms\n' "$label" "$(echo $times | tr ' ' '/')"
  done
fi
