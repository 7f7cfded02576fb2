#!/usr/bin/env bash
# Job queue throughput end to end (enqueue → claimed → done, a no-op kind): JOBS jobs enqueued
# by 8 concurrent tasks while JOBS_WORKERS workers drain them, in one release process, on embedded SQLite
# and, with BENCH_DATABASE_URL, on PostgreSQL (the database is dropped and recreated: use a
# scratch one).
#
#   bench/jobs.sh [jobs] [workers]
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/omnistack_bench bench/jobs.sh 20000 32
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${1:-20000}"
workers="${2:-32}"
cargo build --release --quiet --example jobs_bench

run() {
  local workdir
  workdir=$(mktemp -d)
  (cd "$workdir" && env -i PATH="$PATH" ENVIRONMENT=test LOG_LEVEL=warn DATA_DIR=. JOBS="$jobs" \
    JOBS_WORKERS="$workers" JOBS_POLL_INTERVAL_MS=50 DATABASE_POOL_SIZE="${POOL:-20}" \
    JOBS_SCHEDULE_DAILY_REPORT=off JOBS_SCHEDULE_CLEANUP=off "$@" \
    "$OLDPWD/target/release/examples/jobs_bench")
  rm -rf "$workdir"
}

run
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  admin_url="${BENCH_DATABASE_URL%/*}/postgres"
  db_name="${BENCH_DATABASE_URL##*/}"
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
  run DATABASE_URL="$BENCH_DATABASE_URL"
fi
