#!/bin/sh
# Passes when k3s runs in the role the plan asks (k3s on a server, k3s-agent on an agent). Whether the
# Node is Ready is measured by Strata through the API.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/cluster.env"
if [ "$ROLE" = control-plane ]; then systemctl is-active --quiet k3s; else systemctl is-active --quiet k3s-agent; fi
