#!/usr/bin/env bash
# Upload-URL issue rate: POST /api/v1/app/files/upload-url (authenticated, a JSON body), 64
# connections, local provider (the signed URL is an HMAC) or, with BENCH_S3=1, the s3 provider
# (a SigV4 presign; nothing is sent to the store, so no bucket is needed). Each request checks
# the name, type and size, counts the pending uploads, reads the storage quota and inserts the
# pending row. Embedded SQLite by default, PostgreSQL with BENCH_DATABASE_URL (dropped and
# recreated: use a scratch database).
#
#   bench/files.sh [seconds]
#   BENCH_S3=1 bench/files.sh
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/omnistack_bench bench/files.sh
#
# Needs `wrk` and `curl`. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
port="${BENCH_PORT:-18083}"
base="http://127.0.0.1:$port"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

workdir=$(mktemp -d)
env_args=(PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute FILES_MAX_PENDING=1000000000)
if [ -n "${BENCH_S3:-}" ]; then
  env_args+=(STORAGE_PROVIDER=s3 S3_BUCKET=bench S3_ENDPOINT=http://127.0.0.1:9 S3_FORCE_PATH_STYLE=true
    S3_ACCESS_KEY_ID=bench S3_SECRET_ACCESS_KEY=bench-secret)
fi
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  env_args+=(DATABASE_URL="$BENCH_DATABASE_URL")
fi

(cd "$workdir" && exec env "${env_args[@]}" "$OLDPWD/target/release/omnistack" serve >/dev/null) &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done

token=$(curl -fs -X POST "$base/api/v1/public/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
script="$workdir/upload-url.lua"
cat >"$script" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"filename":"report.pdf","content_type":"application/pdf","size":1048576}'
LUA

echo "provider: ${BENCH_S3:+s3}${BENCH_S3:-local}; database: ${BENCH_DATABASE_URL:-embedded SQLite}"
wrk -t2 -c64 -d2s -s "$script" -H "authorization: Bearer $token" "$base/api/v1/app/files/upload-url" >/dev/null
echo "POST /api/v1/app/files/upload-url (64 connections, ${seconds}s)"
wrk -t2 -c64 -d"${seconds}s" --latency -s "$script" -H "authorization: Bearer $token" \
  "$base/api/v1/app/files/upload-url" | grep -E "Requests/sec|50%|99%|Non-2xx"
