#!/usr/bin/env bash
# scripts/bench-e2e.sh — end-to-end throughput: rows/s applied through `strata run` into
# each sink for a 100,000-row workload, against the same rows written straight into the
# store with its bulk API, and the ratio (benches/e2e.rs).
#
# Usage: scripts/bench-e2e.sh
#   BENCH_ROWS=20000 scripts/bench-e2e.sh        # a smaller workload
#   BENCH_SINKS=redis,postgres scripts/bench-e2e.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/services.sh up
eval "$(scripts/services.sh env)"
# The replicator under test is the release build.
cargo build --release --bin strata
export STRATA_BIN="$PWD/target/release/strata"
exec cargo bench --bench e2e "$@"
