#!/bin/sh
# Passes when this node runs what the plan asks: the kubelet of the plan's version has joined (TLS
# bootstrap done, so it holds its own kubeconfig; another version means an upgrade is due) and, on a
# control-plane node, the API server answers /readyz with the node's PKI.
# Whether the Node is Ready is measured by Strata through the API, not here.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/cluster.env"
systemctl is-active --quiet kubelet || exit 1
[ "$(/usr/local/bin/kubelet --version 2>/dev/null)" = "Kubernetes $VERSION" ] || exit 1
[ -f /etc/kubernetes/kubelet.conf ] || exit 1
cmp -s "$here/ca.crt" /etc/kubernetes/pki/ca.crt || exit 1
if [ "$ROLE" = control-plane ]; then
  kubectl --kubeconfig=/etc/kubernetes/admin.conf --request-timeout=5s get --raw /readyz >/dev/null 2>&1 || exit 1
fi
if [ "$CNI" = bridge ]; then
  [ -f /etc/cni/net.d/10-strata-bridge.conflist ] || exit 1
  systemctl is-active --quiet strata-pod-routes || exit 1
fi
