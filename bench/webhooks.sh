#!/usr/bin/env bash
# Webhook intake throughput, Stripe format: EVENTS distinct events, each signed like Stripe
# signs (`Stripe-Signature: t=…,v1=HMAC-SHA256(t.body)`), posted to
# POST /api/v1/public/webhooks/stripe by wrk (64 connections). Every request is verified, stored
# with its `webhook_event` job in one transaction and answered 200; the workers process the
# events (no Stripe processor: each is marked processed) while intake runs. On embedded SQLite or
# (with BENCH_DATABASE_URL / BENCH_REDIS_URL) on PostgreSQL + Redis; the PostgreSQL database is
# dropped and recreated: use a scratch one.
#
#   bench/webhooks.sh [events]
#
# Needs `wrk`, `curl` and `python3`. Traffic goes to 127.0.0.1 only. The events are signed just
# before the run: their timestamps must stay within the 300 s tolerance.
set -euo pipefail
cd "$(dirname "$0")/.."

events="${1:-20000}"
port="${BENCH_PORT:-18083}"
base="http://127.0.0.1:$port"
secret="whsec_bench_secret_0123456789abcdef"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

workdir=$(mktemp -d)
# The per-IP budget (`webhooks`) stays on (its cost is part of the figure) with a limit no run reaches.
env_args=(PORT="$port" LOG_LEVEL=warn RATE_LIMIT_WEBHOOKS=1000000000/minute STRIPE_WEBHOOK_SECRETS="$secret"
  JOBS_SCHEDULE_DAILY_REPORT=off JOBS_SCHEDULE_CLEANUP=off)
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  env_args+=(DATABASE_URL="$BENCH_DATABASE_URL")
fi
[ -n "${BENCH_REDIS_URL:-}" ] && env_args+=(REDIS_URL="$BENCH_REDIS_URL")

(cd "$workdir" && exec env "${env_args[@]}" "$OLDPWD/target/release/omnistack" serve >"$workdir/server.log" 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done
curl -fs "$base/api/v1/public/health" >/dev/null || { echo "the server did not start:" >&2; cat "$workdir/server.log" >&2; exit 1; }

# Sign the events: a Lua table of {signature, body}, read by every wrk thread.
python3 - "$events" "$secret" "$workdir/events.lua" <<'PY'
import hashlib, hmac, json, sys, time
count, secret, path = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
t = int(time.time())
with open(path, "w") as out:
    out.write("return {\n")
    for n in range(count):
        body = json.dumps({"id": f"evt_bench_{n:08d}", "object": "event", "type": "customer.subscription.updated",
                           "created": t, "livemode": False,
                           "data": {"object": {"id": f"sub_{n:08d}", "object": "subscription", "status": "active"}}},
                          separators=(",", ":"))
        mac = hmac.new(secret, f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
        out.write("{%s,%s},\n" % (json.dumps(f"t={t},v1={mac}"), json.dumps(body)))
    out.write("}\n")
PY

# One signed event, checked by hand first.
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/public/webhooks/stripe" \
  -H 'content-type: application/json' -H 'stripe-signature: t=1,v1=00' -d '{"id":"evt_forged","type":"x"}')
[ "$status" = 400 ] || { echo "a forged event answered $status, not 400" >&2; exit 1; }

# Each of the 2 threads posts every other event once, then stops: every request is a new event.
cat > "$workdir/post.lua" <<LUA
local events = dofile("$workdir/events.lua")
local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end
function init(args)
  sent = 0
end
function request()
  local event = events[offset + sent * 2 + 1]
  sent = sent + 1
  if event == nil then
    wrk.thread:stop()
    event = events[1]
  end
  return wrk.format("POST", "/api/v1/public/webhooks/stripe",
    {["content-type"] = "application/json", ["stripe-signature"] = event[1]}, event[2])
end
LUA
echo "database: ${BENCH_DATABASE_URL:-embedded SQLite}; redis: ${BENCH_REDIS_URL:-none}"
echo "POST /api/v1/public/webhooks/stripe: $events distinct signed events, 64 connections"
# Long enough for every event; the threads stop once theirs are sent.
wrk -t2 -c64 -d120s --latency -s "$workdir/post.lua" "$base/api/v1/public/webhooks/stripe" \
  | grep -E "requests in|Requests/sec|50%|99%|Non-2xx"

# What was stored, and how long the workers take to process the rest.
count() {
  local sql="SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'processed' THEN 1 ELSE 0 END), 0) FROM webhook_events"
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    psql "$BENCH_DATABASE_URL" -tAF' ' -c "$sql"
  else
    python3 -c "import sqlite3,sys; print(*sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone())" \
      "$workdir/data/omnistack.db" "$sql"
  fi
}
start=$(date +%s.%N)
read -r stored processed < <(count)
echo "stored: $stored events; processed when intake ended: $processed"
for _ in $(seq 1 600); do
  read -r stored processed < <(count)
  [ "$processed" -ge "$stored" ] && break
  sleep 0.2
done
printf 'all %s processed %.1f s after intake ended\n' "$processed" "$(echo "$(date +%s.%N) - $start" | bc)"
