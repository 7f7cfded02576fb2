#!/usr/bin/env bash
# HTTP throughput and latency of the release binary, plus its idle memory.
#
#   bench/http.sh [path] [connections] [seconds]
#
# Defaults: GET /api/v1/public/health, 64 connections, 15 s, on embedded SQLite.
# Set DATABASE_URL / REDIS_URL to measure other set-ups; BENCH_LOG_LEVEL=info to include the
# access log (written to /dev/null). Needs `wrk` (apt-get install wrk).
# Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

path="${1:-/api/v1/public/health}"
connections="${2:-64}"
seconds="${3:-15}"
port="${BENCH_PORT:-18080}"

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet

workdir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
(cd "$workdir" && PORT="$port" LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" exec "$OLDPWD/target/release/omnistack" serve >/dev/null) &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/api/v1/public/health" >/dev/null && break
  sleep 0.1
done

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
echo "idle RSS after start: $(rss_kib) KiB"

wrk -t2 -c"$connections" -d2s "http://127.0.0.1:$port$path" >/dev/null   # warm-up
echo "wrk: ${connections} connections, ${seconds}s, GET $path"
wrk -t2 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port$path" \
  | grep -E "Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx"
sleep 1
echo "RSS after load: $(rss_kib) KiB"
