#!/bin/sh
# Passes when k3s runs in the role the plan asks (k3s on a server, k3s-agent on an agent) at the plan's
# version (k3s reports v1.34.4+k3s1 for v1.34.4; another version means an upgrade is due). Whether the
# Node is Ready is measured by Strata through the API.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/cluster.env"
if [ "$ROLE" = control-plane ]; then systemctl is-active --quiet k3s; else systemctl is-active --quiet k3s-agent; fi
case "$(/usr/local/bin/k3s --version 2>/dev/null | head -n 1)" in
  *" $VERSION+"* | *" $VERSION "*) ;;
  *) exit 1 ;;
esac
