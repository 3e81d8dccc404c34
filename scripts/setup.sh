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
  # BMC power control: the IPMI provider runs ipmitool (lanplus); the BMC tests build sushy-tools in a venv
  # (scripts/tools/bmc-emulators.sh), run OpenIPMI's ipmi_sim as the IPMI BMC, make certificates with openssl
  ipmitool openipmi python3-venv openssl
  # real VMs behind the BMC emulators: the tests run a private libvirtd (test/helpers/libvirt.ts) for
  # sushy-emulator's libvirt driver and virtualbmc, which import python3-libvirt. Not libvirt-daemon-system:
  # it would bring libvirt's `default` network (virbr0 and a dnsmasq DHCP server on the machine's own
  # network) and enable the system daemons; nothing here starts or enables any libvirt service.
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-libvirt
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
  # the peers bench/ measures Strata against, and its HTTP load generator (bench/*.ts run them only inside
  # namespaces they make; their own system services are stopped and disabled below)
  kea-dhcp4-server dnsmasq-base tftpd-hpa nginx-light wrk
)

# Packages whose Debian service would serve on the machine's own network: the benchmarks start their
# own copies inside namespaces, so the system's instances stay off.
PEER_SERVICES=(kea-dhcp4-server tftpd-hpa nginx)

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
  # No package may start its service while it installs: Kea, nginx, tftpd-hpa and libvirt would serve on
  # the machine's own network (a DHCP server there is never allowed). A policy-rc.d that denies every start
  # is in place for the install only, unless the machine already has one. scripts/services.sh starts
  # PostgreSQL itself, on loopback.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
  apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    { [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
  if [ -d /run/systemd/system ]; then
    # Only the services of packages this run installed: one the machine already ran is its owner's.
    for svc in "${PEER_SERVICES[@]}"; do
      pkg=$svc
      [ "$svc" = nginx ] && pkg=nginx-light
      if [[ " ${missing[*]} " == *" $pkg "* ]]; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
    done
  fi
fi

# libvirtd (even the tests' private one) refuses to start without the QEMU user its package was built for;
# libvirt-daemon-system would create it, with the services and the default network this setup avoids.
getent passwd libvirt-qemu >/dev/null ||
  useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu

# iPXE for boot media: Debian's current ipxe package (its EFI build runs a script from the stick)
bash "$(dirname "$0")/media-ipxe.sh"

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
# The web UI that `strata up` serves (ui/dist): built here, and by npm ci's prepare script; skipped when fresh.
bash scripts/build/ui.sh
echo "setup: done ($(node_modules/.bin/node --version))" >&2
