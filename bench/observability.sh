#!/usr/bin/env bash
# Overhead of tracing + metrics on an authenticated endpoint, measured in one run:
# GET /api/v1/app/users/me at 64 connections, with OpenTelemetry export and metrics off, then
# with spans exported to a local OTLP receiver and metrics on. Every span is kept unless
# SAMPLER=<ratio> (e.g. SAMPLER=0.1) samples new traces; TRACING=off measures metrics alone.
#
#   bench/observability.sh [seconds] [rounds]
#
# The two set-ups alternate for `rounds` rounds (default 3) and medians are compared, so drift
# on a shared machine hits both alike. Besides throughput it reports the server's CPU time per
# request, which is steadier than throughput when neighbours compete for the cores.
# Needs `wrk`, `curl` and python3 (for the receiver). Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
rounds="${2:-3}"
port=18082
sink_port=18318
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

python3 bench/otlp-sink.py "$sink_port" &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Prints "<requests/s> <server CPU microseconds per request>".
run() {
  local workdir; workdir=$(mktemp -d)
  (cd "$workdir" && exec env PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute "$@" \
    "$OLDPWD/target/release/omnistack" serve >/dev/null 2>&1) &
  local server=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/public/health" >/dev/null && break; sleep 0.1; done
  local token
  token=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/public/auth/register" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  local url="http://127.0.0.1:$port/api/v1/app/users/me"
  wrk -t2 -c64 -d2s -H "authorization: Bearer $token" "$url" >/dev/null
  local before after out
  before=$(cpu_ticks "$server")
  out=$(wrk -t2 -c64 -d"${seconds}s" -H "authorization: Bearer $token" "$url")
  after=$(cpu_ticks "$server")
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$workdir"
  awk -v t=$((after - before)) '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END { printf "%s %.1f\n", r, t * 10000 / n }' <<<"$out"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sampler=()
[ -n "${SAMPLER:-}" ] && sampler=(OTEL_TRACES_SAMPLER=parentbased_traceidratio "OTEL_TRACES_SAMPLER_ARG=$SAMPLER")
on=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" "${sampler[@]}")
[ "${TRACING:-on}" = off ] && on=(OTEL_SDK_DISABLED=true)

off_rps=(); on_rps=(); off_us=(); on_us=()
for round in $(seq 1 "$rounds"); do
  read -r a b < <(run OTEL_SDK_DISABLED=true METRICS_ENABLED=false)
  read -r c d < <(run "${on[@]}")
  echo "round $round: off $a req/s ($b us CPU/req), on $c req/s ($d us CPU/req)"
  off_rps+=("$a"); off_us+=("$b"); on_rps+=("$c"); on_us+=("$d")
done
r_off=$(median "${off_rps[@]}"); r_on=$(median "${on_rps[@]}")
c_off=$(median "${off_us[@]}"); c_on=$(median "${on_us[@]}")
awk -v a="$r_off" -v b="$r_on" 'BEGIN { printf "median throughput: off %s req/s, on %s req/s (%.1f%% fewer)\n", a, b, (a - b) / a * 100 }'
awk -v a="$c_off" -v b="$c_on" 'BEGIN { printf "median server CPU per request: off %s us, on %s us (%.1f%% more)\n", a, b, (b - a) / a * 100 }'
