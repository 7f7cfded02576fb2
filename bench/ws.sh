#!/usr/bin/env bash
# Realtime WebSocket load: N authenticated sockets in one room, messages published into it at
# a fixed rate; reports delivered messages/s, publish-to-receive p50/p99 and the server's RSS
# per idle socket. Builds the release binary and crates/server/examples/ws_load.rs.
#
#   bench/ws.sh                                   # 1,000 sockets, one instance, SQLite
#   CONNECTIONS=10000 bench/ws.sh                 # 10,000 sockets (see the file limit below)
#   INSTANCES=2 BENCH_REDIS_URL=redis://127.0.0.1:6379 bench/ws.sh
#                                                 # two instances sharing Redis (and SQLite);
#                                                 # sockets are spread over both
#
# Knobs: CONNECTIONS (1000), RATE messages/s (50), DURATION seconds (10), PER_ACCOUNT sockets per
# account (10), PUBLISHERS (4), BENCH_PORT (18090; a second instance uses the next port).
# Every socket is a file descriptor on both ends: the script raises `ulimit -n` to the hard
# limit; 10,000 sockets need a hard limit above ~10,200 per process (e.g. `ulimit -Hn 65536` as root, or
# LimitNOFILE in systemd). Traffic goes to 127.0.0.1 only. Redis keys use a fresh prefix.
set -euo pipefail
cd "$(dirname "$0")/.."

connections="${CONNECTIONS:-1000}"
rate="${RATE:-50}"
seconds="${DURATION:-10}"
per_account="${PER_ACCOUNT:-10}"
publishers="${PUBLISHERS:-4}"
instances="${INSTANCES:-1}"
port="${BENCH_PORT:-18090}"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Each process (the server, the load tool) holds one end of every socket.
needed=$((connections + 200))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$needed" ]; then
  echo "ulimit -n is $(ulimit -n); $connections sockets need about $needed (raise the hard limit)" >&2
  exit 1
fi
if [ "$instances" -gt 1 ] && [ -z "${BENCH_REDIS_URL:-}" ]; then
  echo "INSTANCES=$instances needs BENCH_REDIS_URL" >&2
  exit 1
fi

cargo build --release --quiet --bin omnistack --example ws_load

workdir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$workdir"
}
trap cleanup EXIT

env_args=(
  LOG_LEVEL=warn
  SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  DATA_DIR="$workdir"
  DATABASE_URL="sqlite://$workdir/omnistack.db"
  WS_MAX_CONNECTIONS_PER_USER="$per_account"
  WS_MESSAGES_PER_SECOND=1000
  # The load tool signs up its accounts and opens every socket from one address: lift the
  # sign-up, API, handshake and room-join limits.
  RATE_LIMIT_AUTH=1000000/minute
  RATE_LIMIT_APP=1000000/minute
  RATE_LIMIT_WEBSOCKET=1000000/minute
  RATE_LIMIT_ROOMS=1000000/minute
)
[ -n "${BENCH_REDIS_URL:-}" ] && env_args+=(REDIS_URL="$BENCH_REDIS_URL" REDIS_KEY_PREFIX="omnistack-bench-$$:")

urls=()
for i in $(seq 0 $((instances - 1))); do
  p=$((port + i))
  (cd "$workdir" && exec env "${env_args[@]}" PORT="$p" "$OLDPWD/target/release/omnistack" serve >"${SERVER_LOG:-/dev/null}" 2>&1) &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$p/api/v1/public/health" >/dev/null && break; sleep 0.1; done
  urls+=(--url "http://127.0.0.1:$p")
done

echo "instances: $instances; redis: ${BENCH_REDIS_URL:-none}; sockets: $connections; rate: $rate/s; ${seconds}s"
echo "server RSS after start: $(awk '/VmRSS/ {print $2}' "/proc/${pids[0]}/status") KiB"
target/release/examples/ws_load "${urls[@]}" --connections "$connections" --rate "$rate" \
  --seconds "$seconds" --per-account "$per_account" --publishers "$publishers" --pid "${pids[0]}"
