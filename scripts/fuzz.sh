#!/usr/bin/env bash
# The long fuzz run of every decoder (bench/fuzz.ts) at the lowest CPU priority, so it can run on a shared
# machine; results go into docs/fuzzing.md, crash inputs into test/vectors/fuzz/. Arguments pass through:
#   bash scripts/fuzz.sh                    # 45 s per decoder, about five minutes
#   bash scripts/fuzz.sh --seconds 600 --target dhcp
set -euo pipefail
cd "$(dirname "$0")/.."
exec nice -n 19 node_modules/.bin/node bench/fuzz.ts "$@"
