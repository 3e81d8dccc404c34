#!/bin/sh
# Joins this node to a WireGuard overlay: installs the wg-quick file Strata rendered (0600: it holds the
# private key). A running interface with its address gets the new peer list with `wg syncconf` (existing
# sessions stay up); otherwise wg-quick@IFACE (re)starts it (wg-quick falls back to wireguard-go
# without the kernel module). Without systemd (a container, a minimal system) wg-quick runs directly.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
if ! command -v wg >/dev/null 2>&1; then
  deb="${STRATA_ARTIFACTS:-$here/artifacts}/wireguard-tools.deb"
  [ -f "$deb" ] || { echo "wg is not installed and the bundle carries no wireguard-tools.deb: push the Debian package wireguard-tools into Strata's registry (scripts/registry/debian-packages.sh)" >&2; exit 1; }
  dpkg -i "$deb"
fi
install -d -m 0700 /etc/wireguard
install -m 0600 "$here/wg-quick.conf" "/etc/wireguard/$IFACE.conf"
if ip -4 -o addr show dev "$IFACE" 2>/dev/null | grep -q "inet $ADDRESS/"; then
  [ -d /run/systemd/system ] && systemctl enable "wg-quick@$IFACE" >/dev/null 2>&1
  wg syncconf "$IFACE" "$here/wg.conf"
elif [ -d /run/systemd/system ]; then
  # Not up yet, or up with another address: wg-quick sets the address and the peers.
  systemctl enable "wg-quick@$IFACE" >/dev/null 2>&1
  systemctl restart "wg-quick@$IFACE"
else
  ip link del dev "$IFACE" 2>/dev/null || true
  WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wg-quick up "/etc/wireguard/$IFACE.conf"
fi
