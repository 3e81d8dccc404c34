#!/bin/sh
# Installs k3s on this node by k3s's documented air-gap install (never run on this project's machines: no
# registry we reach serves k3s, so this path is written to the docs and checked by shellcheck only):
# the k3s binary to /usr/local/bin, the images tarball to /var/lib/rancher/k3s/agent/images/, then the
# official install.sh with INSTALL_K3S_SKIP_DOWNLOAD=true, all three from Strata's registry. The first
# control-plane node starts the server with Strata's CA (k3s's documented custom-CA location, so Strata's
# admin kubeconfig works against it) and the server token Strata derived for the cluster as K3S_TOKEN
# (k3s refuses a bootstrap token there); agents join with K3S_URL and the cluster's join token in k3s's
# secure format (K10<CA hash>::<bootstrap token>). Datastore kine is k3s's default (SQLite); etcd is
# embedded etcd (--cluster-init on the first server, --server on the others). Run again with a newer
# k3s binary and images (an upgrade), install.sh restarts k3s on them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/cluster.env"
art="${STRATA_ARTIFACTS:-$here/artifacts}"
for f in k3s install.sh k3s-airgap-images-amd64.tar.zst; do
  [ -f "$art/$f" ] || { echo "the bundle carries no $f: push k3s's air-gap files into Strata's registry as k3s/$f:$VERSION" >&2; exit 1; }
done
install -m 0755 "$art/k3s" /usr/local/bin/k3s
install -d -m 0755 /var/lib/rancher/k3s/agent/images
install -m 0644 "$art/k3s-airgap-images-amd64.tar.zst" /var/lib/rancher/k3s/agent/images/
flags="--node-name=$NODE_NAME --node-ip=$ADDRESS"
if [ "$ROLE" = control-plane ]; then
  tls=/var/lib/rancher/k3s/server/tls
  if [ ! -f "$tls/server-ca.crt" ]; then
    install -d -m 0700 "$tls"
    install -m 0644 "$here/ca.crt" "$tls/server-ca.crt"
    install -m 0600 "$here/ca.key" "$tls/server-ca.key"
    install -m 0644 "$here/ca.crt" "$tls/client-ca.crt"
    install -m 0600 "$here/ca.key" "$tls/client-ca.key"
    install -m 0644 "$here/front-proxy-ca.crt" "$tls/request-header-ca.crt"
    install -m 0600 "$here/front-proxy-ca.key" "$tls/request-header-ca.key"
    install -m 0600 "$here/sa.key" "$tls/service.key"
  fi
  # The serving certificate names the node and the Cluster's endpoint (a load balancer's, when set).
  api_host=${ENDPOINT#https://}
  api_host=${api_host%:*}
  flags="$flags --cluster-cidr=$POD_CIDR --service-cidr=$SERVICE_CIDR --tls-san=$ADDRESS --tls-san=$api_host --write-kubeconfig-mode=0600"
  if [ "$DATASTORE" = etcd ]; then
    if [ "$FIRST_SERVER" = yes ]; then flags="$flags --cluster-init"; else flags="$flags --server=$ENDPOINT"; fi
  fi
  # Strata applies kube-router (routes, network policy, service proxy): k3s's flannel, its embedded
  # network-policy controller and its kube-proxy step aside.
  if [ "$CNI" = kube-router ]; then
    flags="$flags --flannel-backend=none --disable-network-policy --disable-kube-proxy"
  fi
  INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC="server $flags" K3S_TOKEN="$(cat "$here/server-token")" \
    sh "$art/install.sh"
else
  INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC="agent $flags" K3S_URL="$ENDPOINT" \
    K3S_TOKEN="$(cat "$here/join-token")" sh "$art/install.sh"
fi
