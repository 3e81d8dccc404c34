#!/bin/sh
# /init of the Strata installer initramfs (busybox).
# Mounts the kernel file systems, loads the NIC/disk/file-system modules listed at build time (in
# dependency order: no modules.dep or modprobe needed), brings the first NIC that answers DHCP up, reads
# strata.* parameters from the kernel command line and runs the installer agent (/bin/strata-agent).
#
# Kernel command line:
#   strata.url=http://HOST:PORT/   base URL of the Strata API (trailing slash optional)
#   strata.node=NAME               node name
#   strata.token=TOKEN             install token (Bearer) for this node
#   strata.onfail=shell|poweroff|reboot   what to do when the agent fails (default shell)
#   strata.iface=NAME              NIC to use (default: every NIC in turn until one gets a lease)
#   strata.debug=1                 set -x in the agent
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run/strata /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/strata
[ -d /sys/firmware/efi ] && mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo "strata-init: starting ($(uname -r))"
echo 1 >/proc/sys/kernel/printk 2>/dev/null

while read -r mod; do
	[ -n "$mod" ] && insmod "$mod" 2>/dev/null
done </etc/strata/modules.list

STRATA_URL= STRATA_NODE= STRATA_TOKEN= STRATA_ONFAIL=shell STRATA_IFACE= STRATA_DEBUG=
for word in $(cat /proc/cmdline); do
	case "$word" in
	strata.url=*) STRATA_URL=${word#strata.url=} ;;
	strata.node=*) STRATA_NODE=${word#strata.node=} ;;
	strata.token=*) STRATA_TOKEN=${word#strata.token=} ;;
	strata.onfail=*) STRATA_ONFAIL=${word#strata.onfail=} ;;
	strata.iface=*) STRATA_IFACE=${word#strata.iface=} ;;
	strata.debug=*) STRATA_DEBUG=${word#strata.debug=} ;;
	esac
done
export STRATA_URL STRATA_NODE STRATA_TOKEN STRATA_DEBUG

ip link set lo up
# NICs show up asynchronously after insmod; wait up to 10 s for one
i=0
while [ $i -lt 50 ]; do
	nics=$(ls /sys/class/net | grep -v '^lo$')
	[ -n "$nics" ] && break
	usleep 200000
	i=$((i + 1))
done
[ -n "$STRATA_IFACE" ] && nics=$STRATA_IFACE
up=
for attempt in 1 2 3; do
	for nic in $nics; do
		ip link set "$nic" up
		if udhcpc -i "$nic" -s /usr/share/udhcpc/default.script -n -q -t 5 -T 2 -O hostname; then
			up=$nic
			break 2
		fi
	done
done
export STRATA_IFACE=$up

fail() {
	echo "strata-init: $1"
	case "$STRATA_ONFAIL" in
	poweroff) poweroff -f ;;
	reboot) reboot -f ;;
	*) echo "strata-init: dropping to a shell"; exec setsid cttyhack sh ;;
	esac
}
[ -n "$up" ] || fail "no NIC got a DHCP lease (tried: $nics)"
echo "strata-init: $up is $(ip -4 -o addr show dev "$up" | awk '{print $4}')"
[ -n "$STRATA_URL" ] && [ -n "$STRATA_NODE" ] || fail "strata.url and strata.node must be on the kernel command line"
/bin/strata-agent || fail "installer agent failed (exit $?)"
# the agent reboots itself on success; reaching here means it chose not to
fail "installer agent returned"
