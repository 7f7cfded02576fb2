#!/usr/bin/env bash
# Overhead of tracing + metrics on an authenticated endpoint, measured in one run:
# GET /api/v1/app/users/me at 64 connections, first with OpenTelemetry export and metrics
# off, then with every span exported to a local OTLP receiver and metrics on.
#
#   bench/observability.sh [seconds]
#
# Needs `wrk`, `curl` and python3 (for the receiver). Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-15}"
port=18082
sink_port=18318
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

python3 bench/otlp-sink.py "$sink_port" &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT

run() {
  local label="$1"; shift
  local workdir; workdir=$(mktemp -d)
  (cd "$workdir" && exec env PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute "$@" \
    "$OLDPWD/target/release/omnistack" serve >/dev/null) &
  local server=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/public/health" >/dev/null && break; sleep 0.1; done
  local token
  token=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/public/auth/register" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  wrk -t2 -c64 -d2s -H "authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/app/users/me" >/dev/null
  local rps
  rps=$(wrk -t2 -c64 -d"${seconds}s" --latency -H "authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/app/users/me" | tee /dev/stderr | awk '/Requests\/sec/ {print $2}')
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$workdir"
  echo "$label $rps"
}

off=$(run off OTEL_SDK_DISABLED=true METRICS_ENABLED=false 2>/dev/null | tail -1)
on=$(run on OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" 2>/dev/null | tail -1)
echo "$off requests/s (tracing and metrics off)"
echo "$on requests/s (every span exported, metrics on)"
awk -v a="${off#* }" -v b="${on#* }" 'BEGIN { printf "overhead: %.1f%%\n", (a - b) / a * 100 }'
