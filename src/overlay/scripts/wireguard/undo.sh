#!/bin/sh
# Takes this node off the WireGuard overlay: brings the interface down and removes its config (and key).
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
systemctl disable --now "wg-quick@$IFACE" >/dev/null 2>&1 || true
ip link del dev "$IFACE" 2>/dev/null || true
rm -f "/etc/wireguard/$IFACE.conf"
