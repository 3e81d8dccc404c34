#!/bin/sh
# Is this node on the Nebula overlay? The rendered config is in place, nebula@OVERLAY runs, the tunnel
# interface carries the allocated address, and the lighthouse answers over the overlay.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
cmp -s "$here/config.yml" "/etc/nebula/$OVERLAY.yml" || { echo "config differs from the rendered one"; exit 1; }
systemctl is-active --quiet "nebula@$OVERLAY" || { echo "nebula@$OVERLAY is not running"; exit 1; }
ip -4 -o addr show dev "$TUN" | grep -q "inet $ADDRESS/" || { echo "$TUN does not carry $ADDRESS"; exit 1; }
if [ "$ADDRESS" != "$LIGHTHOUSE" ]; then
  ping -c 1 -W 3 "$LIGHTHOUSE" >/dev/null || { echo "lighthouse $LIGHTHOUSE does not answer over the overlay"; exit 1; }
fi
