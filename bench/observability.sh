#!/usr/bin/env bash
# Overhead of tracing + metrics on an authenticated endpoint, measured in one run:
# GET /api/v1/app/users/me at 64 connections against two servers started side by side, one
# with OpenTelemetry export and metrics off, one exporting every span to a local OTLP receiver
# with metrics on. SAMPLER=<ratio> (e.g. SAMPLER=0.1) samples new traces instead;
# TRACING=off measures metrics alone.
#
#   bench/observability.sh [seconds per burst] [rounds]
#
# The servers take turns: `rounds` (default 10) pairs of bursts of `seconds` (default 3), so
# drift on a shared machine hits both alike. It reports the throughput of each (median burst)
# and each server's CPU time per request over the whole run, background export included; CPU
# per request is steadier than throughput when neighbours compete for the cores.
# The receiver is crates/server/examples/otlp_sink.rs. Needs `wrk` and `curl`. Traffic goes to
# 127.0.0.1 only.
# NO_BUILD=1 skips `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-3}"
rounds="${2:-10}"
off_port=18082
on_port=18083
sink_port=18318
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin omnistack --example otlp_sink

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/examples/otlp_sink "$sink_port" &
pids+=($!)

sampler=()
[ -n "${SAMPLER:-}" ] && sampler=(OTEL_TRACES_SAMPLER=parentbased_traceidratio "OTEL_TRACES_SAMPLER_ARG=$SAMPLER")
on=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" "${sampler[@]}")
[ "${TRACING:-on}" = off ] && on=(OTEL_SDK_DISABLED=true)

# start <name> <port> env... : starts a server, registers a user, writes its token to $work/<name>.token
start() {
  local name=$1 port=$2; shift 2
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env PORT="$port" LOG_LEVEL=warn RATE_LIMIT_APP=1000000000/minute "$@" \
    "$OLDPWD/target/release/omnistack" serve >/dev/null 2>&1) &
  pids+=($!)
  echo $! >"$work/$name.pid"
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/public/health" >/dev/null && break; sleep 0.1; done
  curl -fs -X POST "http://127.0.0.1:$port/api/v1/public/auth/register" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password-1"}' |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/' >"$work/$name.token"
}
start off "$off_port" OTEL_SDK_DISABLED=true METRICS_ENABLED=false
start on "$on_port" "${on[@]}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$(cat "$work/$1.pid")/stat"; }
# burst <name> <port> <seconds>: prints "<requests> <requests/s>"
burst() {
  wrk -t2 -c64 -d"$3s" -H "authorization: Bearer $(cat "$work/$1.token")" "http://127.0.0.1:$2/api/v1/app/users/me" |
    awk '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {print n, r}'
}
burst off "$off_port" 2 >/dev/null
burst on "$on_port" 2 >/dev/null

off_start=$(cpu_ticks off); on_start=$(cpu_ticks on)
off_n=0; on_n=0; off_rps=(); on_rps=()
for round in $(seq 1 "$rounds"); do
  read -r n a < <(burst off "$off_port" "$seconds"); off_n=$((off_n + n)); off_rps+=("$a")
  read -r n b < <(burst on "$on_port" "$seconds"); on_n=$((on_n + n)); on_rps+=("$b")
  echo "round $round: off $a req/s, on $b req/s"
done
sleep 6 # the exporter's batch interval: the last spans are sent, and counted
off_us=$(awk -v t=$(($(cpu_ticks off) - off_start)) -v n=$off_n 'BEGIN {printf "%.1f", t * 10000 / n}')
on_us=$(awk -v t=$(($(cpu_ticks on) - on_start)) -v n=$on_n 'BEGIN {printf "%.1f", t * 10000 / n}')

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
r_off=$(median "${off_rps[@]}"); r_on=$(median "${on_rps[@]}")
awk -v a="$r_off" -v b="$r_on" 'BEGIN { printf "median throughput: off %s req/s, on %s req/s (%.1f%% fewer)\n", a, b, (a - b) / a * 100 }'
awk -v a="$off_us" -v b="$on_us" 'BEGIN { printf "server CPU per request: off %s us, on %s us (%.1f%% more)\n", a, b, (b - a) / a * 100 }'
