#!/bin/sh
# Uninstalls what apply.sh installed (the node was drained and its Node object deleted before): stops and
# removes the units, the binaries, the PKI, the kubelet's and the datastore's state, the CNI configuration
# and the routes to other nodes' pods. containerd and the Debian packages stay (other users may need
# them); the containers Kubernetes ran in containerd's k8s.io namespace are removed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/cluster.env"
for s in strata-pod-routes kubelet kube-scheduler kube-controller-manager kube-apiserver strata-etcd strata-kine; do
  systemctl disable --now "$s" >/dev/null 2>&1 || true
  rm -f "/etc/systemd/system/$s.service"
done
systemctl daemon-reload
if command -v ctr >/dev/null 2>&1; then
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
  sleep 1
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io containers rm "$c" >/dev/null 2>&1 || true; done
fi
rm -f /usr/local/bin/kubelet /usr/local/bin/kubectl /usr/local/bin/kube-apiserver /usr/local/bin/kube-controller-manager \
  /usr/local/bin/kube-scheduler /usr/local/bin/kine
rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/strata-etcd /var/lib/strata-kine /etc/cni/net.d/10-strata-bridge.conflist
rm -f /etc/sysctl.d/90-strata-kubernetes.conf /usr/local/lib/strata/pod-routes
rm -rf "/etc/containerd/certs.d/${IMAGE_REGISTRY:-strata.registry}"
ip route show dev tunl0 2>/dev/null | while read -r net _; do ip route del "$net" dev tunl0 2>/dev/null || true; done
ip link delete cni0 2>/dev/null || true
exit 0
