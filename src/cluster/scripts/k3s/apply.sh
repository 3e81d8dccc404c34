#!/bin/sh
# Installs k3s on this node by k3s's documented air-gap install (never run on this project's machines: no
# registry we reach serves k3s, so this path is written to the docs and checked by shellcheck only):
# the k3s binary to /usr/local/bin, the images tarball to /var/lib/rancher/k3s/agent/images/, then the
# official install.sh with INSTALL_K3S_SKIP_DOWNLOAD=true, all three from Strata's registry. The first
# control-plane node starts the server with Strata's CA (k3s's documented custom-CA location, so Strata's
# admin kubeconfig works against it) and the cluster's join token as K3S_TOKEN; agents join with K3S_URL
# and the same token. Datastore kine is k3s's default (SQLite); etcd is embedded etcd (--cluster-init).
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
token=$(cat "$here/join-token")
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
  flags="$flags --cluster-cidr=$POD_CIDR --service-cidr=$SERVICE_CIDR --tls-san=$ADDRESS --write-kubeconfig-mode=0600"
  if [ "$DATASTORE" = etcd ]; then
    if [ "$FIRST_SERVER" = yes ]; then flags="$flags --cluster-init"; else flags="$flags --server=$ENDPOINT"; fi
  fi
  if [ "$CNI" = kube-router ]; then flags="$flags --flannel-backend=none"; fi
  INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC="server $flags" K3S_TOKEN="$token" sh "$art/install.sh"
else
  INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC="agent $flags" K3S_URL="$ENDPOINT" K3S_TOKEN="$token" \
    sh "$art/install.sh"
fi
