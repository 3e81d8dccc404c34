#!/usr/bin/env bash
# Installs Debian's cloud-init package (for its `cloud-init schema` validator) with apt-get, as root, and
# prints the path of the cloud-init executable on stdout. Idempotent: nothing is fetched when it is there.
# Exit status 3 means it could not be installed here (not root, no apt-get, or the package cannot be
# fetched); tests skip the real-validator assertion then.
set -euo pipefail

if BIN="$(command -v cloud-init)"; then
  echo "$BIN"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "cloud-init.sh: installing cloud-init needs root and apt-get" >&2
  exit 3
fi
export DEBIAN_FRONTEND=noninteractive
# About 20 small Python packages with --no-install-recommends; nothing is started in a container.
if ! apt-get install -y -q --no-install-recommends cloud-init >&2; then
  apt-get update -q >&2 || true
  if ! apt-get install -y -q --no-install-recommends cloud-init >&2; then
    echo "cloud-init.sh: apt-get could not install cloud-init" >&2
    exit 3
  fi
fi
command -v cloud-init
