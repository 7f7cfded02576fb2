#!/usr/bin/env bash
# What the health response's size alone costs: the bare-axum ceiling (../shared/bench/ceiling)
# against the same app sending omnistack's exact response (bench/ceiling-response: its headers
# and body fields, as constants; 696 bytes against about 170), alternating under wrk (64
# connections, 2 threads) like ../shared/bench/ab.sh. The ratio is the most any server sending
# that response can reach against the ceiling on this machine.
#
#   bench/response_bytes.sh [seconds per burst] [rounds]     # default: 8 s, 3 rounds
#
# Needs wrk. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-3}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --locked --manifest-path ../shared/bench/ceiling/Cargo.toml --target-dir target/ceiling
cargo build --release --quiet --locked --manifest-path bench/ceiling-response/Cargo.toml --target-dir target/ceiling-response
target/ceiling/release/ceiling 18490 & ceiling=$!
target/ceiling-response/release/ceiling-response 18491 & same=$!
trap 'kill "$ceiling" "$same" 2>/dev/null || true' EXIT
for port in 18490 18491; do
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/public/health" >/dev/null && break; sleep 0.1; done
done
echo "response bytes: ceiling $(curl -si http://127.0.0.1:18490/api/v1/public/health | wc -c), omnistack's $(curl -si http://127.0.0.1:18491/api/v1/public/health | wc -c)"
rps() { wrk -t2 -c64 -d"${secs}s" "http://127.0.0.1:$1/api/v1/public/health" | awk '/Requests\/sec/ {print $2}'; }
sum_c=0; sum_s=0
for r in $(seq 1 "$rounds"); do
  c=$(rps 18490); s=$(rps 18491)
  echo "round $r: ceiling $c req/s, ceiling with omnistack's response $s req/s"
  sum_c=$(python3 -c "print($sum_c + $c)"); sum_s=$(python3 -c "print($sum_s + $s)")
done
python3 -c "print(f'ratio (omnistack\'s response)/ceiling: {$sum_s / $sum_c:.3f}')"
