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
  curl -fsS --max-time 5 --cacert /etc/kubernetes/pki/ca.crt \
    --cert /etc/kubernetes/pki/apiserver-kubelet-client.crt --key /etc/kubernetes/pki/apiserver-kubelet-client.key \
    https://127.0.0.1:6443/readyz >/dev/null || exit 1
fi
