#!/usr/bin/env bash
# Where a release server's CPU time goes under load: `perf record` of the whole process while
# wrk drives one endpoint (64 connections), then the hottest symbols, kernel included (the
# system calls show there). A flat profile: the release binary keeps its symbols but no
# unwinding information; for call trees use bench/callgrind.sh.
#
#   bench/perf.sh [path] [seconds]      # default: /api/v1/public/health, 10 s
#
# Paths under /api/v1/app/ get a registered account's token. Defaults: target/release/omnistack
# (BIN= for another binary; built first when not given), embedded SQLite, LOG_LEVEL=warn,
# rate limits no run reaches. The profile stays in $OUT (default: a temporary folder, printed)
# for `perf report -i $OUT/perf.data`. Needs perf and wrk. Traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

path="${1:-/api/v1/public/health}"
seconds="${2:-10}"
port="${BENCH_PORT:-18292}"
out="${OUT:-$(mktemp -d)}"
for tool in perf wrk; do command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }; done
[ -n "${BIN:-}" ] || cargo build --release --quiet -p omnistack
bin=$(realpath "${BIN:-target/release/omnistack}")

work=$(mktemp -d)
(cd "$work" && exec env PORT="$port" HOST=127.0.0.1 LOG_LEVEL=warn RATE_LIMIT_APP=100000000/minute \
  RATE_LIMIT_PUBLIC=100000000/minute RATE_LIMIT_AUTH=1000/minute "$bin" serve >"$work/log" 2>&1) &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -fs "$base/api/v1/public/health" >/dev/null && break; sleep 0.1; done

script=()
if [[ "$path" == /api/v1/app/* ]]; then
  token=$(curl -fs -X POST "$base/api/v1/public/auth/register" -H 'content-type: application/json' \
    -d '{"email":"perf@example.com","password":"bench-password-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" >"$work/auth.lua"
  script=(-s "$work/auth.lua")
fi

wrk -t2 -c64 -d2s "${script[@]}" "$base$path" >/dev/null # warm-up
perf record -q -F 1999 -p "$server" -o "$out/perf.data" -- sleep "$seconds" 2>/dev/null &
recorder=$!
wrk -t2 -c64 -d"${seconds}s" "${script[@]}" "$base$path" | grep -E "Requests/sec|Latency"
wait "$recorder" || true
echo "profile: $out/perf.data"
perf report -i "$out/perf.data" --no-children --sort symbol --percent-limit 0.7 --stdio 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | head -60
