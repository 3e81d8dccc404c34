#!/bin/sh
# Joins this node to a ZeroTier network, the seed's way: install zerotier-one (and jq) from the packages
# shipped with this distributable (the local registry; nodes never reach the internet), orbit the site's
# moon, join the network, and print this node's member id (MEMBER_ID=...) for Strata to authorise it
# through the controller API (authorize.sh). orbit and join are idempotent in zerotier-cli itself.
# Built to ZeroTier's documented CLI; not run against a real ZeroTier (none can be had where it was built).
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
for pkg in $PACKAGE_FILES; do
  name=$(dpkg-deb --field "$here/$pkg" Package)
  dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'install ok installed' || dpkg -i "$here/$pkg"
done
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
echo "MEMBER_ID=$(zerotier-cli -j info | jq -r .address)"
