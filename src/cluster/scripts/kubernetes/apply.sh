#!/bin/sh
# Installs upstream Kubernetes on this node as the cluster layer planned it (cluster.env): containerd, runc
# and the CNI plugins from the bundle's verified Debian packages, the Kubernetes binaries from Strata's
# registry, systemd units, and on a control-plane node etcd (or kine), kube-apiserver, controller-manager
# and scheduler with the PKI Strata generated. Every node runs a kubelet that joins by TLS bootstrap with
# the cluster's join token: it asks for its client certificate with a CSR, which the controller-manager
# approves and signs. Idempotent: a second run rewrites the same files and restarts only what changed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/cluster.env"
art="${STRATA_ARTIFACTS:-$here/artifacts}"
changed=""

need() { [ -f "$art/$1" ] || { echo "the bundle carries no $1: push it into Strata's registry (strata registry push /var/cache/strata/kubernetes/$VERSION --name kubernetes --version $VERSION)" >&2; exit 1; }; }
# put SRC DEST MODE: installs a file, noting the unit to restart when it changed.
put() {
  if ! cmp -s "$1" "$2"; then
    install -D -m "$3" "$1" "$2"
    changed="$changed $2"
  fi
}

# --- packages and kernel settings ---------------------------------------------------------------------
debs=""
for d in "$art"/*.deb; do [ -f "$d" ] && debs="$debs $d"; done
if [ -n "$debs" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive dpkg -i --skip-same-version $debs >/dev/null
fi
command -v containerd >/dev/null 2>&1 || { echo "containerd is not installed and the bundle carries no containerd.deb: push the Debian packages containerd, runc and containernetworking-plugins into Strata's registry (scripts/registry/debian-packages.sh)" >&2; exit 1; }
modprobe overlay 2>/dev/null || true
modprobe br_netfilter 2>/dev/null || true
printf 'net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n' >"$here/sysctl.conf"
put "$here/sysctl.conf" /etc/sysctl.d/90-strata-kubernetes.conf 0644
sysctl -q -p /etc/sysctl.d/90-strata-kubernetes.conf || true
swapoff -a

# --- binaries -------------------------------------------------------------------------------------------
bins="kubelet kubectl"
if [ "$ROLE" = control-plane ]; then bins="$bins kube-apiserver kube-controller-manager kube-scheduler"; fi
for b in $bins; do
  need "$b"
  put "$art/$b" "/usr/local/bin/$b" 0755
done

# --- containerd: the CRI, systemd cgroups, the sandbox image and every image from Strata's registry ----------
# Debian's CNI plugins live in /usr/lib/cni. Images named $IMAGE_REGISTRY/... are pulled through the
# site's local registry (containerd-hosts.toml, a hosts.toml mirror entry).
cat >"$here/containerd.toml" <<TOML
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "/etc/cni/net.d"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
TOML
put "$here/containerd.toml" /etc/containerd/config.toml 0644
if [ -f "$here/containerd-hosts.toml" ]; then
  put "$here/containerd-hosts.toml" "/etc/containerd/certs.d/$IMAGE_REGISTRY/hosts.toml" 0644
fi
systemctl enable containerd >/dev/null 2>&1
case "$changed" in *config.toml*) systemctl restart containerd ;; *) systemctl start containerd ;; esac

# --- PKI and kubeconfigs ----------------------------------------------------------------------------------
install -d -m 0755 /etc/kubernetes /etc/kubernetes/pki
put "$here/ca.crt" /etc/kubernetes/pki/ca.crt 0644
put "$here/bootstrap-kubelet.conf" /etc/kubernetes/bootstrap-kubelet.conf 0600
if [ "$ROLE" = control-plane ]; then
  for f in ca.key apiserver.crt apiserver.key apiserver-kubelet-client.crt apiserver-kubelet-client.key \
    front-proxy-ca.crt front-proxy-client.crt front-proxy-client.key sa.key sa.pub; do
    case "$f" in *.key) mode=0600 ;; *) mode=0644 ;; esac
    put "$here/$f" "/etc/kubernetes/pki/$f" "$mode"
  done
  for f in controller-manager.conf scheduler.conf admin.conf; do put "$here/$f" "/etc/kubernetes/$f" 0600; done
fi

# --- units --------------------------------------------------------------------------------------------------
unit() { # NAME DESCRIPTION EXEC...
  name=$1 desc=$2
  shift 2
  {
    echo "[Unit]"
    echo "Description=$desc (installed by Strata for cluster $CLUSTER)"
    echo "After=network-online.target containerd.service"
    echo "[Service]"
    echo "ExecStart=$*"
    echo "Restart=always"
    echo "RestartSec=5"
    echo "[Install]"
    echo "WantedBy=multi-user.target"
  } >"$here/$name.service"
  put "$here/$name.service" "/etc/systemd/system/$name.service" 0644
}

if [ "$ROLE" = control-plane ]; then
  if [ "$DATASTORE" = kine ]; then
    need kine
    put "$art/kine" /usr/local/bin/kine 0755
    unit strata-kine "kine (etcd API on SQLite)" /usr/local/bin/kine --endpoint sqlite:///var/lib/strata-kine/state.db --listen-address 127.0.0.1:2379
    install -d -m 0700 /var/lib/strata-kine
  else
    command -v etcd >/dev/null 2>&1 || { echo "etcd is not installed and the bundle carries no etcd-server.deb: push etcd-server into Strata's registry" >&2; exit 1; }
    # Debian's own etcd unit would listen with its defaults: ours keeps etcd on loopback.
    systemctl disable --now etcd >/dev/null 2>&1 || true
    unit strata-etcd "etcd for Kubernetes" /usr/bin/etcd --name "$NODE_NAME" --data-dir /var/lib/strata-etcd \
      --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
      --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
      --initial-cluster "$NODE_NAME=http://127.0.0.1:2380"
  fi
  unit kube-apiserver "Kubernetes API server" /usr/local/bin/kube-apiserver \
    --advertise-address="$ADDRESS" --bind-address=0.0.0.0 --secure-port=6443 \
    --etcd-servers=http://127.0.0.1:2379 --allow-privileged=true \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --enable-bootstrap-token-auth=true \
    --client-ca-file=/etc/kubernetes/pki/ca.crt \
    --tls-cert-file=/etc/kubernetes/pki/apiserver.crt --tls-private-key-file=/etc/kubernetes/pki/apiserver.key \
    --kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt \
    --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key \
    --kubelet-preferred-address-types=InternalIP \
    --proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt \
    --proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key \
    --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt \
    --requestheader-allowed-names=front-proxy-client --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --requestheader-group-headers=X-Remote-Group --requestheader-username-headers=X-Remote-User \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file=/etc/kubernetes/pki/sa.pub \
    --service-account-signing-key-file=/etc/kubernetes/pki/sa.key \
    --service-cluster-ip-range="$SERVICE_CIDR"
  # Leader election with room to spare: with the defaults (renew within 10 s) a controller-manager on a
  # slow machine (no KVM) loses its lease, exits and starts over every minute or two, and CSRs it approved
  # are never signed.
  leader="--leader-elect-lease-duration=60s --leader-elect-renew-deadline=45s --leader-elect-retry-period=10s"
  unit kube-controller-manager "Kubernetes controller manager" /usr/local/bin/kube-controller-manager \
    --kubeconfig=/etc/kubernetes/controller-manager.conf --authentication-kubeconfig=/etc/kubernetes/controller-manager.conf \
    --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf --bind-address=127.0.0.1 \
    --leader-elect=true "$leader" --use-service-account-credentials=true \
    --controllers='*,bootstrapsigner,tokencleaner,-cloud-node-lifecycle' \
    --allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=24 --service-cluster-ip-range="$SERVICE_CIDR" \
    --cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt --cluster-signing-key-file=/etc/kubernetes/pki/ca.key \
    --root-ca-file=/etc/kubernetes/pki/ca.crt --service-account-private-key-file=/etc/kubernetes/pki/sa.key
  unit kube-scheduler "Kubernetes scheduler" /usr/local/bin/kube-scheduler \
    --kubeconfig=/etc/kubernetes/scheduler.conf --authentication-kubeconfig=/etc/kubernetes/scheduler.conf \
    --authorization-kubeconfig=/etc/kubernetes/scheduler.conf --bind-address=127.0.0.1 --leader-elect=true "$leader"
fi

cat >"$here/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: systemd
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
rotateCertificates: true
failSwapOn: false
YAML
put "$here/kubelet-config.yaml" /var/lib/kubelet/config.yaml 0644
unit kubelet "Kubernetes node agent" /usr/local/bin/kubelet --config=/var/lib/kubelet/config.yaml \
  --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf \
  --cert-dir=/var/lib/kubelet/pki --hostname-override="$NODE_NAME" --node-ip="$ADDRESS"

systemctl daemon-reload
# start NAME...: enables and (re)starts units, restarting those whose files changed.
start() {
  for s in "$@"; do
    systemctl enable "$s" >/dev/null 2>&1
    case "$changed" in
      *"$s"* | */usr/local/bin/*) systemctl restart "$s" ;;
      *) systemctl start "$s" ;;
    esac
  done
}
if [ "$ROLE" = control-plane ]; then
  if [ "$DATASTORE" = kine ]; then start strata-kine; else start strata-etcd; fi
  start kube-apiserver
  # The API server first, alone, until it is ready: its start-up (RBAC bootstrap roles, priority levels)
  # must finish within its own deadline, and under emulation every client's TLS handshake competes for the
  # same CPU. Then the controllers and the kubelet.
  i=0
  until kubectl --kubeconfig=/etc/kubernetes/admin.conf --request-timeout=20s get --raw /readyz >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "kube-apiserver not ready in 10 min: journalctl -u kube-apiserver" >&2; exit 1; }
    sleep 10
  done
  echo "kube-apiserver ready"
  start kube-controller-manager kube-scheduler
fi
start kubelet

# --- the pod network: the CNI bridge on this node's pod subnet (allocated by the controller-manager) ---------
if [ "$CNI" = bridge ]; then
  # The kubelet's client certificate comes from the CSR the controller-manager signs, then the Node gets
  # its pod subnet: under emulation (no KVM) a fresh control plane takes minutes to get there.
  i=0
  cidr=""
  while [ "$i" -lt 60 ]; do
    if [ -f /etc/kubernetes/kubelet.conf ]; then
      cidr=$(kubectl --kubeconfig=/etc/kubernetes/kubelet.conf --request-timeout=20s get node "$NODE_NAME" -o 'jsonpath={.spec.podCIDR}' 2>/dev/null || true)
      [ -n "$cidr" ] && break
    fi
    sleep 8
    i=$((i + 1))
  done
  [ -f /etc/kubernetes/kubelet.conf ] || { echo "the kubelet did not join in 8 min (no client certificate): see journalctl -u kubelet; on a control plane, the API server and controller-manager (journalctl -u kube-apiserver -u kube-controller-manager)" >&2; exit 1; }
  [ -n "$cidr" ] || { echo "Node $NODE_NAME got no pod subnet in 8 min: is the controller-manager running (--allocate-node-cidrs)?" >&2; exit 1; }
  # The bridge's gateway address (the subnet's first address) is made here, before any pod, so the routes
  # to other nodes' pods can use it as their source: replies then come back through the tunnel too.
  gw=$(echo "$cidr" | awk -F'[./]' '{printf "%s.%s.%s.%s", $1, $2, $3, $4 + 1}')
  plen=${cidr#*/}
  ip link show cni0 >/dev/null 2>&1 || ip link add cni0 type bridge
  ip addr replace "$gw/$plen" dev cni0
  ip link set cni0 up
  cat >"$here/10-strata-bridge.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "strata", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "mtu": 1260,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr", "gateway": "$gw"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  put "$here/10-strata-bridge.conflist" /etc/cni/net.d/10-strata-bridge.conflist 0644
  # Other nodes' pod subnets are reached through an IPIP tunnel whose outer packets go between the nodes'
  # overlay addresses (their InternalIP), so pod traffic crosses the overlay as any node traffic does; a
  # small service keeps the routes current as nodes join and leave (what kube-router would announce).
  cat >"$here/strata-pod-routes" <<SH
#!/bin/sh
# Routes to the other nodes' pod subnets through tunl0 over their overlay addresses (installed by Strata).
modprobe ipip
ip link set tunl0 mtu 1280 up
while :; do
  kubectl --kubeconfig=/etc/kubernetes/kubelet.conf get nodes \
    -o 'jsonpath={range .items[*]}{.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' 2>/dev/null |
    while read -r net via; do
      if [ -n "\$net" ] && [ -n "\$via" ] && [ "\$net" != "$cidr" ]; then
        ip route replace "\$net" via "\$via" dev tunl0 onlink src "$gw"
      fi
    done
  sleep 10
done
SH
  put "$here/strata-pod-routes" /usr/local/lib/strata/pod-routes 0755
  unit strata-pod-routes "routes to other nodes' pod subnets" /usr/local/lib/strata/pod-routes
  systemctl daemon-reload
  systemctl enable strata-pod-routes >/dev/null 2>&1
  case "$changed" in *pod-routes*) systemctl restart strata-pod-routes ;; *) systemctl start strata-pod-routes ;; esac
else
  echo "cni $CNI: kube-router runs as a DaemonSet from the image Strata's registry serves; its manifest is applied by the cluster manager" >&2
fi
