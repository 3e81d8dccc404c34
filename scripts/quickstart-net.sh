#!/usr/bin/env bash
# Creates (or removes) the segment that examples/quickstart.yaml names, idempotently, as root:
#   - the network namespace `strata-rack1`, where Strata runs the segment's boot worker,
#   - the bridge br0 in it with the server address 10.213.10.1/24, up,
#   - the limited-broadcast route DHCP replies need (255.255.255.255 dev br0).
# Machines reach the segment through br0: move a NIC into the namespace and enslave it
# (`ip link set eth1 netns strata-rack1 && ip -n strata-rack1 link set eth1 master br0 up`), or attach
# VM taps or veth pairs the same way. Nothing outside the namespace is touched.
#   bash scripts/quickstart-net.sh        # create
#   bash scripts/quickstart-net.sh down   # remove the namespace (and the bridge with it)
set -euo pipefail

NS="${STRATA_QUICKSTART_NS:-strata-rack1}"
BR="${STRATA_QUICKSTART_BRIDGE:-br0}"
ADDR="${STRATA_QUICKSTART_ADDR:-10.213.10.1/24}"

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart-net: must run as root (creates a network namespace)" >&2
  exit 1
fi

if [ "${1:-up}" = "down" ]; then
  ip netns del "$NS" 2>/dev/null || true
  echo "quickstart-net: removed namespace $NS" >&2
  exit 0
fi

ip netns list | grep -qw "^$NS" || ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link show "$BR" >/dev/null 2>&1 || ip -n "$NS" link add "$BR" type bridge stp_state 0 forward_delay 0
ip -n "$NS" link set "$BR" up
ip -n "$NS" addr show dev "$BR" | grep -qF "inet $ADDR" || ip -n "$NS" addr add "$ADDR" dev "$BR"
ip -n "$NS" route replace 255.255.255.255/32 dev "$BR"
echo "quickstart-net: namespace $NS with $BR at $ADDR is ready" >&2
