#!/usr/bin/env bash
# CPU time per request of a release server under wrk, split into user and system time, with
# the page faults it took, beside the bare axum ceiling (../shared/bench/ceiling) under the
# same load. Read from /proc, so it works where perf counters do not.
#
#   bench/cpu.sh [path] [seconds] [rounds]     # default: /api/v1/public/health, 6 s, 2 rounds
#
# Defaults: target/release/omnistack (BIN= for another binary; built first when not given),
# embedded SQLite, LOG_LEVEL=warn, rate limits no run reaches, 64 connections, 2 wrk threads.
# Paths under /api/v1/app/ get a registered account's token. The ceiling always answers its
# health route. Needs wrk. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

path="${1:-/api/v1/public/health}"
seconds="${2:-6}"
rounds="${3:-2}"
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
[ -n "${BIN:-}" ] || cargo build --release --quiet -p omnistack
bin=$(realpath "${BIN:-target/release/omnistack}")
ceiling_dir=$(realpath ../shared/bench/ceiling)
cargo build --release --quiet --locked --manifest-path "$ceiling_dir/Cargo.toml" --target-dir target/ceiling

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
target/ceiling/release/ceiling 18390 & pids+=($!); ceiling=$!
(cd "$work" && exec env PORT=18391 HOST=127.0.0.1 LOG_LEVEL=warn RATE_LIMIT_APP=100000000/minute \
  RATE_LIMIT_PUBLIC=100000000/minute RATE_LIMIT_AUTH=1000/minute "$bin" serve >"$work/log" 2>&1) & pids+=($!); ours=$!
for port in 18390 18391; do
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/v1/public/health" >/dev/null && break; sleep 0.1; done
done
script=()
if [[ "$path" == /api/v1/app/* ]]; then
  token=$(curl -fs -X POST http://127.0.0.1:18391/api/v1/public/auth/register -H 'content-type: application/json' \
    -d '{"email":"cpu@example.com","password":"bench-password-1","full_name":"Bench"}' |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" > "$work/auth.lua"
  script=(-s "$work/auth.lua")
fi

# name pid url [wrk args…]: one burst; prints requests/s, user µs, system µs, faults per request
measure() {
  local name=$1 pid=$2 url=$3 before after out
  shift 3
  wrk -t2 -c64 -d2s "$@" "$url" >/dev/null # warm-up
  before=$(awk '{print $10, $14, $15}' "/proc/$pid/stat")
  out=$(wrk -t2 -c64 -d"${seconds}s" "$@" "$url")
  after=$(awk '{print $10, $14, $15}' "/proc/$pid/stat")
  python3 - "$name" "$before" "$after" "$out" "$(getconf CLK_TCK)" <<'PY'
import re, sys
name, before, after, out, hz = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4], int(sys.argv[5])
n = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
faults, user, system = (int(a) - int(b) for a, b in zip(after, before))
print(f"{name:10} {rps:10.0f} req/s  user {user / hz / n * 1e6:6.2f} µs  system {system / hz / n * 1e6:6.2f} µs"
      f"  page faults {faults / n:.3f} per request")
PY
}

for round in $(seq 1 "$rounds"); do
  echo "round $round"
  measure ceiling "$ceiling" http://127.0.0.1:18390/api/v1/public/health
  measure omnistack "$ours" "http://127.0.0.1:18391$path" "${script[@]}"
done
