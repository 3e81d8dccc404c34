#!/bin/sh
# udhcpc event script for the Strata installer initramfs (busybox ships none; without one udhcpc
# gets a lease but never configures the interface). Sets the address, default route and resolv.conf,
# and records the lease in /run/strata/lease.$interface for the agent's reports.
[ -n "$1" ] || exit 1
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface" 2>/dev/null
	ip link set "$interface" up
	;;
bound | renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast $broadcast} dev "$interface"
	ip link set "$interface" up
	if [ -n "$router" ]; then
		while ip route del default dev "$interface" 2>/dev/null; do :; done
		for r in $router; do
			ip route add default via "$r" dev "$interface" && break
		done
	fi
	: >/etc/resolv.conf
	[ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	mkdir -p /run/strata
	{
		echo "interface=$interface"
		echo "ip=$ip"
		echo "mask=$mask"
		echo "router=$router"
		echo "dns=$dns"
		echo "hostname=$hostname"
	} >"/run/strata/lease.$interface"
	;;
esac
exit 0
