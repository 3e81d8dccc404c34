#!/bin/sh
# Is this node on the WireGuard overlay? Its interface runs with the key Strata made, carries the
# allocated address, and has exactly the peers Strata rendered.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
[ "$(wg show "$IFACE" public-key 2>/dev/null)" = "$PUBLIC_KEY" ] || { echo "$IFACE does not run with key $PUBLIC_KEY"; exit 1; }
ip -4 -o addr show dev "$IFACE" | grep -q "inet $ADDRESS/" || { echo "$IFACE does not carry $ADDRESS"; exit 1; }
want=$(grep '^PublicKey' "$here/wg.conf" | awk '{print $3}' | sort)
have=$(wg show "$IFACE" peers | sort)
[ "$want" = "$have" ] || { echo "$IFACE peers differ from the rendered ones"; exit 1; }
