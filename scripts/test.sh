#!/usr/bin/env bash
# scripts/test.sh — start the test servers, export their URLs, run the whole test suite.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -- --nocapture`).
# Plain `cargo test`, not nextest: nextest is not installed on a fresh machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/services.sh up
eval "$(scripts/services.sh env)"
# exec: the script's exit code is cargo's.
# Not --all-targets: benches are measured with `cargo bench`, not run as tests (clippy in
# .ci/run still compiles them).
exec cargo test --workspace "$@"
