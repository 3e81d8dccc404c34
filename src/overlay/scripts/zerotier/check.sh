#!/bin/sh
# Is this node a member of the ZeroTier network? It passes once zerotier-one runs and has joined, and
# prints the member id (MEMBER_ID=...) that Strata authorises at the controller. Until then the status is
# REQUESTING_CONFIGURATION or ACCESS_DENIED; after it, status OK with the managed address Strata
# allocated. OK with another address fails: the controller was given a different one. Whether Strata
# reaches the node over that address is the overlay.join step's own check.
# Built to ZeroTier's documented CLI (`info`, `get NETWORK status|ip4`); not run against a real ZeroTier.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
command -v zerotier-cli >/dev/null 2>&1 || { echo "zerotier-one is not installed"; exit 1; }
id=$(zerotier-cli info 2>/dev/null | awk '{print $3}')
[ -n "$id" ] || { echo "zerotier-one does not answer zerotier-cli"; exit 1; }
echo "MEMBER_ID=$id"
status=$(zerotier-cli get "$NETWORK_ID" status 2>/dev/null || true)
case "$status" in
  OK)
    ip4=$(zerotier-cli get "$NETWORK_ID" ip4 2>/dev/null || true)
    [ "${ip4%%/*}" = "$ADDRESS" ] || { echo "network $NETWORK_ID gives this node ${ip4:-no IPv4 address}, not $ADDRESS: the controller has another assignment for member $id"; exit 1; }
    ;;
  REQUESTING_CONFIGURATION | ACCESS_DENIED) echo "joined $NETWORK_ID, status $status: waiting for Strata to authorise member $id" ;;
  *) echo "not joined to $NETWORK_ID (status: ${status:-none})"; exit 1 ;;
esac
