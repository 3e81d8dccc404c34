#!/bin/sh
# Is this node on the ZeroTier network? `zerotier-cli -j listnetworks` shows the network with status OK
# and the managed address Strata allocated (the controller hands it out once authorize.sh ran).
# Built to ZeroTier's documented CLI; not run against a real ZeroTier.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
command -v zerotier-cli >/dev/null 2>&1 || { echo "zerotier-one is not installed"; exit 1; }
net=$(zerotier-cli -j listnetworks | jq -c --arg n "$NETWORK_ID" '.[] | select(.nwid == $n)')
[ -n "$net" ] || { echo "not joined to $NETWORK_ID"; exit 1; }
status=$(printf '%s' "$net" | jq -r .status)
[ "$status" = OK ] || { echo "network $NETWORK_ID status $status (ACCESS_DENIED: not authorised yet)"; exit 1; }
printf '%s' "$net" | jq -e --arg a "$ADDRESS" '(.assignedAddresses // []) | map(split("/")[0]) | index($a) != null' >/dev/null ||
  { echo "managed address $ADDRESS not assigned yet"; exit 1; }
