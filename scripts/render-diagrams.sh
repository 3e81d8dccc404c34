#!/usr/bin/env bash
# Renders the docs' diagrams from their Graphviz sources (docs/*.dot → docs/*.svg). Needs `dot` from
# Debian's graphviz (scripts/setup.sh installs it). The SVGs are committed next to their sources, so the
# docs read without Graphviz; test/unit/docs/boot-flow.test.ts fails when one is older than its source.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dot >/dev/null || { echo "render-diagrams: dot not found: apt-get install graphviz (scripts/setup.sh)" >&2; exit 1; }
for src in docs/*.dot; do
  dot -Tsvg "$src" -o "${src%.dot}.svg"
  echo "rendered ${src%.dot}.svg"
done
