#!/usr/bin/env bash
# Metering overhead, A/B in one run: two `omnistack serve` from the same release binary, one
# counting `api_requests` (USAGE_METERING=true, flushed every USAGE_FLUSH_SECONDS=10) and one
# not (USAGE_METERING=false), each on its own SQLite database, under wrk in alternating bursts
# of `GET /api/v1/app/users/me` (each with its own user's token), so machine drift hits both
# alike. Prints each burst, the ratio on/off and the overhead.
#
#   bench/usage_metering.sh
#
# It first prints the in-process cost of one count (examples/usage_count.rs), then the A/B.
# The ratio of each round is printed, then the ratio of the sums and the median round ratio.
#
# Knobs: SECONDS_PER_BURST (8), ROUNDS (3), CONNECTIONS (64), BIN (target/release/omnistack).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_BURST:-8}
rounds=${ROUNDS:-3}
connections=${CONNECTIONS:-64}
bin=${BIN:-target/release/omnistack}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
[[ -n "${BIN:-}" ]] || cargo build --release -q -p omnistack --bin omnistack --example usage_count
[[ -n "${BIN:-}" ]] || target/release/examples/usage_count
bin=$(realpath "$bin")
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start() { # name port metering
  mkdir -p "$work/$1"
  (cd "$work/$1" && PORT=$2 HOST=127.0.0.1 LOG_LEVEL=warn USAGE_METERING=$3 USAGE_FLUSH_SECONDS=10 \
    SECRET_KEY="bench-usage-metering-secret-key-0123456789" JOBS_WORKERS=1 \
    RATE_LIMIT_APP=100000000/minute RATE_LIMIT_PUBLIC=100000000/minute RATE_LIMIT_AUTH=1000/minute \
    exec "$bin" serve >"$work/$1/log" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$2/api/v1/public/health" >/dev/null && break; sleep 0.2; done
  local token
  token=$(curl -sf -X POST "http://127.0.0.1:$2/api/v1/public/auth/register" -H 'content-type: application/json' \
    -d '{"email":"meter@example.com","password":"bench-password-1","full_name":"Bench"}' \
    | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$token" > "$work/$1.lua"
}
start on 18291 true
start off 18292 false

# Each burst's requests/s; its request count is added to $work/<name>.count.
rps() {
  local out
  out=$(wrk -t2 -c"$connections" -d"${secs}s" -s "$work/$1.lua" "http://127.0.0.1:$2/api/v1/app/users/me")
  awk '/requests in/ {print $1}' <<<"$out" >> "$work/$1.count"
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
# CPU time (user + system, clock ticks) of process $1.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rps on 18291 >/dev/null; rps off 18292 >/dev/null   # warm-up
rm -f "$work/on.count" "$work/off.count"
cpu_on=$(ticks "${pids[0]}"); cpu_off=$(ticks "${pids[1]}")
sum_on=0; sum_off=0; ratios=()
for r in $(seq 1 "$rounds"); do
  # Alternate which goes first, so neither always follows the other.
  if (( r % 2 )); then a=$(rps on 18291); b=$(rps off 18292); else b=$(rps off 18292); a=$(rps on 18291); fi
  ratio=$(python3 -c "print(f'{$a / $b:.3f}')")
  ratios+=("$ratio")
  echo "round $r: metering on $a req/s, metering off $b req/s, ratio $ratio"
  sum_on=$(python3 -c "print($sum_on + $a)"); sum_off=$(python3 -c "print($sum_off + $b)")
done
python3 -c "r = $sum_on / $sum_off; print(f'ratio of sums on/off: {r:.3f} (overhead {(1 - r) * 100:.1f}%)')"
cpu_on=$(( $(ticks "${pids[0]}") - cpu_on )); cpu_off=$(( $(ticks "${pids[1]}") - cpu_off ))
hz=$(getconf CLK_TCK)
python3 - "$cpu_on" "$cpu_off" "$hz" "$(paste -sd+ "$work/on.count" | bc)" "$(paste -sd+ "$work/off.count" | bc)" <<'PY'
import sys
cpu_on, cpu_off, hz, n_on, n_off = (float(x) for x in sys.argv[1:])
on, off = cpu_on / hz / n_on * 1e6, cpu_off / hz / n_off * 1e6
print(f"server CPU per request: on {on:.1f} µs, off {off:.1f} µs ({(on / off - 1) * 100:+.1f}%)")
PY
python3 -c "import statistics; m = statistics.median([$(IFS=,; echo "${ratios[*]}")]); print(f'median round ratio: {m:.3f} (overhead {(1 - m) * 100:.1f}%)')"
sleep 11   # one flush interval: the counted requests are written
python3 - "$work/on" <<'PY'
import sqlite3, sys, glob
dbs = glob.glob(sys.argv[1] + "/**/*.db", recursive=True) + glob.glob(sys.argv[1] + "/**/*.sqlite*", recursive=True)
for path in dbs:
    try:
        total = sqlite3.connect(path).execute("SELECT COALESCE(SUM(value), 0) FROM usage_daily WHERE metric = 'api_requests'").fetchone()[0]
        print(f"api_requests counted by the metered server: {total}")
        break
    except sqlite3.Error:
        continue
PY
