#!/bin/sh
# Takes this node off the Nebula overlay: stops nebula@OVERLAY (or its daemon) and removes its config (and key).
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
if [ -d /run/systemd/system ]; then
  systemctl disable --now "nebula@$OVERLAY" >/dev/null 2>&1 || true
fi
pidf="/run/nebula-$OVERLAY.pid"
if [ -f "$pidf" ]; then
  kill "$(cat "$pidf")" 2>/dev/null || true
  rm -f "$pidf"
fi
rm -f "/etc/nebula/$OVERLAY.yml"
