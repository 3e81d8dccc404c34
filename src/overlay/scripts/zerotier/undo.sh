#!/bin/sh
# Takes this node off the ZeroTier network (zerotier-cli leave); Strata then deauthorises the member at the
# controller (src/overlay/zerotier.ts). Not run against a real ZeroTier.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
if command -v zerotier-cli >/dev/null 2>&1; then
  zerotier-cli leave "$NETWORK_ID" >/dev/null 2>&1 || true
fi
