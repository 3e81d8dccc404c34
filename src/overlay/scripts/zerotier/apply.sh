#!/bin/sh
# Joins this node to a ZeroTier network, the seed's way: install zerotier-one from the bundle's verified
# .deb when it is missing (the local registry; nodes never reach the internet), orbit the site's moon, join
# the network, and print this node's member id (MEMBER_ID=...): Strata then authorises that member at the
# controller with the address it allocated (src/overlay/zerotier.ts). orbit and join are idempotent in
# zerotier-cli itself. Plain-text zerotier-cli output only, so a minimal Debian needs no jq.
# Built to ZeroTier's documented CLI; not run against a real ZeroTier (none can be had where it was built).
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
if ! command -v zerotier-cli >/dev/null 2>&1; then
  deb="${STRATA_ARTIFACTS:-$here/artifacts}/$PACKAGE_FILE"
  [ -f "$deb" ] || { echo "zerotier-one is not installed and the bundle carries no $PACKAGE_FILE: push ZeroTier's .deb into Strata's registry as debian/CODENAME/ARCH/${PACKAGE_FILE%.deb} (strata registry push FILE --name ... --version ...)" >&2; exit 1; }
  dpkg -i "$deb"
fi
systemctl enable --now zerotier-one >/dev/null
i=0
until zerotier-cli info >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -lt 30 ] || { echo "zerotier-one does not answer zerotier-cli after 30 s" >&2; exit 1; }
  sleep 1
done
if [ -n "${MOON_ID:-}" ]; then
  zerotier-cli orbit "$MOON_ID" "${MOON_SEED:-$MOON_ID}" >/dev/null
fi
zerotier-cli join "$NETWORK_ID" >/dev/null
# "200 info <address> <version> <ONLINE|OFFLINE|TUNNELED>"
echo "MEMBER_ID=$(zerotier-cli info | awk '{print $3}')"
