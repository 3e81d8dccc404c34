#!/usr/bin/env bash
# Installs the real kickstart validator, `ksvalidator` from PyPI's pykickstart, into a venv under
# .cache/tools/pykickstart (git-ignored) and prints the path of the ksvalidator executable on stdout.
# Idempotent: a venv that already has ksvalidator is reused without touching the network.
# Exit status 3 means PyPI could not be reached (tests skip the real-validator assertion then);
# any other failure is a real error.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.cache/tools/pykickstart
BIN="$PWD/$VENV/bin/ksvalidator"
VERSION="${PYKICKSTART_VERSION:-3.62}"

if [ -x "$BIN" ] && "$BIN" --help >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

PY="$(command -v python3 || true)"
if [ -z "$PY" ]; then
  echo "pykickstart.sh: python3 is not installed" >&2
  exit 2
fi
mkdir -p .cache/tools
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
if ! "$VENV/bin/pip" install -q --disable-pip-version-check --retries 1 --timeout 20 \
  "pykickstart==$VERSION" >&2; then
  # Tell "PyPI unreachable" apart from a broken install: only the former is a reason to skip.
  if ! "$VENV/bin/pip" download -q --no-deps --disable-pip-version-check --retries 0 --timeout 10 \
    -d "$(mktemp -d)" "pykickstart==$VERSION" >/dev/null 2>&1; then
    echo "pykickstart.sh: cannot reach PyPI to install pykickstart==$VERSION" >&2
    rm -rf "$VENV"
    exit 3
  fi
  echo "pykickstart.sh: pip install pykickstart==$VERSION failed" >&2
  exit 1
fi
echo "$BIN"
