#!/usr/bin/env bash
# Installs everything Strata and its tests need on a fresh Debian machine, idempotently, as root:
# the system packages (boot peers and clients, QEMU and firmware, PostgreSQL, NATS) and the npm
# dependencies, including the Node.js 26 runtime that npm scripts and bin/strata use.
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
  # backing services
  postgresql nats-server
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

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
echo "setup: done ($(node_modules/.bin/node --version))" >&2
