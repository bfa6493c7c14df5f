#!/usr/bin/env bash
# scripts/bench-backfill.sh — backfill and verify throughput: rows/s of `strata snapshot`
# into each sink next to the rate at which the source alone can be read (the same chunked
# SELECTs, nothing written) and their ratio, and rows/s of `strata verify` on the clean
# backfilled table (benches/backfill.rs).
#
# Usage: scripts/bench-backfill.sh
#   BENCH_ROWS=200000 scripts/bench-backfill.sh        # a smaller table
#   BENCH_SINKS=redis,postgres scripts/bench-backfill.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/services.sh up
eval "$(scripts/services.sh env)"
# The binary under test is the release build.
cargo build --release --bin strata
export STRATA_BIN="$PWD/target/release/strata"
exec cargo bench --bench backfill "$@"
