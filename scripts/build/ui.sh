#!/usr/bin/env bash
# Builds the web UI (ui/ → ui/dist) with Vite, which `strata up` serves. Skipped when ui/dist is newer than
# every source file (ui/, and src/core, whose selector and placement code the UI bundles), so setup.sh,
# `npm ci` (the prepare script) and the browser tests can all call it.
# --force builds anyway. Nothing of ui/dist is committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=ui/dist/index.html
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] &&
  [ -z "$(find ui/index.html ui/vite.config.ts ui/src src/core package-lock.json -newer "$stamp" -print -quit)" ]; then
  exit 0
fi
if [ ! -x node_modules/.bin/vite ]; then
  echo "build-ui: node_modules/.bin/vite is missing: run npm ci (or bash scripts/setup.sh) first" >&2
  exit 1
fi
echo "build-ui: building the web UI into ui/dist" >&2
# Vite runs on the project's Node runtime (node_modules/.bin/node), like everything else.
PATH="$PWD/node_modules/.bin:$PATH" nice -n 10 vite build --config ui/vite.config.ts --logLevel warn >&2
touch "$stamp"
