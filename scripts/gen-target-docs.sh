#!/usr/bin/env bash
# Regenerates docs/targets.md from the module documentation of each sink (the source of truth).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
{
  echo "# How each target stores a row"
  echo
  echo "Generated from the module documentation of \`crates/strata-sinks/src/<store>/mod.rs\` (the source of truth); refresh with \`scripts/gen-target-docs.sh\`."
  for s in redis mongo search postgres; do
    echo
    awk '/^\/\/!/{sub(/^\/\/! ?/,""); print; next} {exit}' "crates/strata-sinks/src/$s/mod.rs" |
      sed -E 's/^# /### /; 1s/^/## /' | sed -E 's/\[`([^`]+)`\]/`\1`/g'
  done
} > docs/targets.md
