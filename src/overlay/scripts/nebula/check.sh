#!/bin/sh
# Is this node on the Nebula overlay? The rendered config is in place, nebula@OVERLAY runs (or its daemon,
# without systemd), the tunnel interface carries the allocated address, and the lighthouse answers over
# the overlay (when a ping is at hand; Strata's own SSH over the overlay is the final word).
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
cmp -s "$here/config.yml" "/etc/nebula/$OVERLAY.yml" || { echo "config differs from the rendered one"; exit 1; }
if [ -d /run/systemd/system ]; then
  systemctl is-active --quiet "nebula@$OVERLAY" || { echo "nebula@$OVERLAY is not running"; exit 1; }
else
  pidf="/run/nebula-$OVERLAY.pid"
  { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; } || { echo "nebula for $OVERLAY is not running"; exit 1; }
fi
ip -4 -o addr show dev "$TUN" | grep -q "inet $ADDRESS/" || { echo "$TUN does not carry $ADDRESS"; exit 1; }
if [ "$ADDRESS" != "$LIGHTHOUSE" ]; then
  if command -v ping >/dev/null 2>&1; then ping="ping"
  elif command -v busybox >/dev/null 2>&1; then ping="busybox ping"
  else exit 0
  fi
  for _ in 1 2 3 4 5; do
    if $ping -c 1 -W 2 "$LIGHTHOUSE" >/dev/null 2>&1; then exit 0; fi
  done
  echo "lighthouse $LIGHTHOUSE does not answer over the overlay"
  exit 1
fi
