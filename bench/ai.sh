#!/usr/bin/env bash
# AI gateway overhead: the same chat sent straight to a fake OpenAI that answers at once
# (`crates/testkit/examples/fake_ai.rs`) and through POST /api/v1/app/ai/chat, one connection
# (latency) and 16 connections (throughput). The difference of the p50s is what the gateway
# adds: authentication, the `ai` rate class, the plan check, the upstream call's span, and
# metering (both usage metrics in one transaction). Embedded SQLite unless BENCH_DATABASE_URL /
# BENCH_REDIS_URL are given (the PostgreSQL database is dropped and recreated: use a scratch one).
#
#   bench/ai.sh [seconds]
#   BENCH_PROFILE=dev bench/ai.sh     # the debug build (no release build needed)
#
# Needs `wrk`, `curl` and `sqlite3` (SQLite runs only). Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
port="${BENCH_PORT:-18082}"
fake_port="${BENCH_FAKE_PORT:-18090}"
base="http://127.0.0.1:$port"
fake="http://127.0.0.1:$fake_port"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
profile="${BENCH_PROFILE:-release}"
bin_dir=target/release
[ "$profile" = dev ] && bin_dir=target/debug
cargo build --profile "$profile" --quiet -p omnistack --bin omnistack -p omnistack-testkit --example fake_ai

workdir=$(mktemp -d)
env_args=(PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute RATE_LIMIT_AI=1000000000/minute
  OPENAI_API_KEY=sk-test-openai-0123456789 OPENAI_BASE_URL="$fake/v1" AI_DEFAULT_MODEL=openai/gpt-4o-mini)
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  env_args+=(DATABASE_URL="$BENCH_DATABASE_URL")
fi
[ -n "${BENCH_REDIS_URL:-}" ] && env_args+=(REDIS_URL="$BENCH_REDIS_URL")

"$bin_dir/examples/fake_ai" "127.0.0.1:$fake_port" >/dev/null &
fake_pid=$!
(cd "$workdir" && exec env "${env_args[@]}" "$OLDPWD/$bin_dir/omnistack" serve >/dev/null) &
server=$!
trap 'kill "$server" "$fake_pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done

token=$(curl -fs -X POST "$base/api/v1/public/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
# An enterprise account has no AI limit, so the run measures the gateway, not the 402.
plan="UPDATE users SET subscription_plan = 'enterprise', subscription_status = 'active' WHERE email = 'bench@example.com'"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then psql "$BENCH_DATABASE_URL" -qc "$plan"; else sqlite3 "$workdir/data/omnistack.db" "$plan"; fi

lua="$workdir/post.lua"
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = os.getenv("BODY")
LUA
gateway_body='{"messages":[{"role":"user","content":"Say hello."}]}'
direct_body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"max_completion_tokens":4096}'
curl -fs -X POST "$base/api/v1/app/ai/chat" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "$gateway_body" | grep -q '"provider":"openai"' || { echo "the gateway does not answer" >&2; exit 1; }

echo "build: $profile; database: ${BENCH_DATABASE_URL:-embedded SQLite}; redis: ${BENCH_REDIS_URL:-none}"
for connections in 1 16; do
  BODY="$direct_body" wrk -t1 -c"$connections" -d2s -s "$lua" -H "authorization: Bearer sk-test-openai-0123456789" \
    "$fake/v1/chat/completions" >/dev/null
  echo "direct to the fake: POST /v1/chat/completions ($connections connections, ${seconds}s)"
  BODY="$direct_body" wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$lua" \
    -H "authorization: Bearer sk-test-openai-0123456789" "$fake/v1/chat/completions" | grep -E "Requests/sec|50%|99%|Non-2xx"
  BODY="$gateway_body" wrk -t1 -c"$connections" -d2s -s "$lua" -H "authorization: Bearer $token" \
    "$base/api/v1/app/ai/chat" >/dev/null
  echo "through the gateway: POST /api/v1/app/ai/chat ($connections connections, ${seconds}s)"
  BODY="$gateway_body" wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$lua" -H "authorization: Bearer $token" \
    "$base/api/v1/app/ai/chat" | grep -E "Requests/sec|50%|99%|Non-2xx"
done
