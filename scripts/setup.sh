#!/usr/bin/env bash
# Installs everything Strata and its tests need on a fresh Debian machine, idempotently, as root:
# the system packages (boot peers and clients, QEMU and firmware, PostgreSQL, NATS) and the npm
# dependencies, including the Node.js 26 runtime that npm scripts and bin/strata use; then it builds the
# web UI (ui/dist, with Vite) that `strata up` serves.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # network boot: iPXE binaries for TFTP, QEMU with NIC boot ROMs and UEFI firmware for the lab
  ipxe ipxe-qemu ovmf qemu-system-x86 qemu-utils grub-efi-amd64-bin grub-common
  # the lab segment and the installer environment Strata builds
  iproute2 nftables radvd busybox-static cpio debootstrap e2fsprogs dosfstools fdisk kmod zstd
  # the overlay (state 5): Nebula, WireGuard (wireguard-go where no kernel module), and the tools its
  # tests use to check the ZeroTier scripts (shellcheck, jq)
  nebula wireguard-tools wireguard-go shellcheck jq
  # real peers and clients the tests drive
  udhcpc isc-dhcp-client kea-admin tftp-hpa atftp bind9-dnsutils curl tcpdump
  openssh-client openssh-server dropbear-bin
  # container images (the registry's /v2/): umoci and gcc (static pause) build them from busybox-static
  # (scripts/build/images.sh); skopeo, containerd, runc and the CNI plugins are the clients the tests drive
  skopeo umoci containerd runc containernetworking-plugins gcc libc6-dev
  # backing services
  postgresql nats-server
  # the docs' diagrams (docs/*.dot → docs/*.svg, scripts/render-diagrams.sh)
  graphviz
  # the web UI's browser tests: Debian's Chromium, driven by playwright-core (which downloads no browser)
  chromium
  # boot media (src/media): ISO and USB images with iPXE; iPXE itself comes from scripts/media-ipxe.sh
  xorriso isolinux syslinux syslinux-common mtools
  # the cluster layer's host test (state 6): etcd under the control plane built by scripts/build/kubernetes.sh
  etcd-server etcd-client
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs system packages with apt-get)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# iPXE for boot media: Debian's current ipxe package (its EFI build runs a script from the stick)
bash "$(dirname "$0")/media-ipxe.sh"

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
# The web UI that `strata up` serves (ui/dist): built here, and by npm ci's prepare script; skipped when fresh.
bash scripts/build/ui.sh
echo "setup: done ($(node_modules/.bin/node --version))" >&2
