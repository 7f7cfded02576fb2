#!/usr/bin/env bash
# Feature flag evaluation cost, in process: EVALUATIONS (default 10 M) evaluations per rule
# kind through the in-memory snapshot, 1,000 flags loaded; prints ns per evaluation.
#
#   bench/flags.sh [evaluations]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --example flag_eval
EVALUATIONS="${1:-10000000}" target/release/examples/flag_eval
