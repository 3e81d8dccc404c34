#!/bin/sh
# Strata installer agent: runs in the installer initramfs (busybox ash), started by /init once a NIC has
# a DHCP lease. Protocol: src/install/PROTOCOL.md (types in src/install/protocol.ts).
#
# Steps: fetch config -> partition (BIOS: MBR + one ext4; UEFI: GPT with ESP + ext4) -> mkfs -> stream
# the OS tarball straight onto the root file system (no temporary copy; sha256 checked on the way) ->
# fstab, hostname, SSH keys, host keys (reported) -> pre-reboot script -> grub -> post-reboot unit ->
# report "rebooting" -> reboot.
#
# Tools: busybox for everything, plus host e2fsprogs mke2fs, util-linux sfdisk/blkid, dosfstools mkfs.fat,
# GNU tar (xattrs: file capabilities and SELinux labels survive) and zstd, copied into the initramfs with
# their shared libraries at build time. They are called by absolute path: Debian's busybox-static ash
# prefers its own applets (FEATURE_SH_STANDALONE), so a bare `tar` or `mke2fs` would be busybox's. Everything that needs the OS itself (ssh-keygen, grub-install,
# grub-mkconfig) runs chrooted in the freshly extracted target, so the initramfs never needs grub.
#
# Environment (from /init): STRATA_URL STRATA_NODE STRATA_TOKEN [STRATA_IFACE] [STRATA_DEBUG]
set -u
set -o pipefail
[ "${STRATA_DEBUG:-}" = 1 ] && set -x

BASE=${STRATA_URL%/}
NODE=$STRATA_NODE
TOKEN=${STRATA_TOKEN:-}
API="$BASE/install/$NODE"
TARGET=/target
STATE=/run/strata
mkdir -p "$STATE"
STEP=agent

log() { echo "strata-agent[$STEP]: $*"; }

json_str() {
	# JSON string literal of $1: newlines and tabs to spaces, escape backslash and quote, drop control characters.
	printf '"%s"' "$(printf '%s' "$1" | tr '\n\t' '  ' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')"
}

# post PATH CONTENT-TYPE BODY-FILE: best effort, never fatal; the tries span ~20 s so that a Strata restart
# (kill -9, power cut) is ridden out. Strata recognises a repeated event, so a retry is never recorded twice.
post() {
	for _try in 1 2 3 4 5 6 7 8 9 10; do
		if timeout 15 wget -q -O /dev/null --header "Authorization: Bearer $TOKEN" \
			--header "Content-Type: $2" --post-file "$3" "$API/$1" 2>"$STATE/post.err"; then
			return 0
		fi
		sleep 1
	done
	echo "strata-agent: POST $1 failed: $(cat "$STATE/post.err")"
	return 1
}

# event STEP MESSAGE [STATUS]: logs to the console and reports {step, message, status}.
event() {
	STEP=$1
	log "$2"
	printf '{"step":%s,"message":%s,"status":%s}' "$(json_str "$1")" "$(json_str "$2")" \
		"$(json_str "${3:-running}")" >"$STATE/event.json"
	post events application/json "$STATE/event.json" || true
}

die() {
	event "$STEP" "$1" failed
	exit 1
}

# fetch PATH OUT: GET with the install token. Returns 0 ok, 2 not found (404/204), 1 other error.
fetch() {
	for _try in 1 2 3 4 5 6 7 8 9 10; do
		if timeout 60 wget -q -O "$2" --header "Authorization: Bearer $TOKEN" "$API/$1" 2>"$STATE/fetch.err"; then
			return 0
		fi
		grep -qE ' (404|204)' "$STATE/fetch.err" && return 2
		sleep 2
	done
	log "GET $1 failed: $(cat "$STATE/fetch.err")"
	return 1
}

# ---------------------------------------------------------------------------------------------- config
event agent-start "installer agent started on $(uname -r), NIC ${STRATA_IFACE:-?} $(ip -4 -o addr show dev "${STRATA_IFACE:-lo}" 2>/dev/null | awk '{print $4}')"
STEP=config
fetch config "$STATE/config" || die "cannot fetch $API/config"

VERSION= IMAGE_URL= IMAGE_SHA256= HOSTNAME=$NODE DISK=auto FIRMWARE=auto ROOT_PASSWORD_HASH=
KERNEL_CMDLINE="console=tty0 console=ttyS0,115200n8" INSTALLED_TOKEN= REPORT_URL=$BASE REBOOT=reboot
ESP_SIZE_MIB=256 SELINUX=disabled
: >"$STATE/authorized_keys"
CR=$(printf '\r')
while IFS= read -r line || [ -n "$line" ]; do
	line=${line%"$CR"}
	case "$line" in '' | '#'*) continue ;; *=*) ;; *) continue ;; esac
	key=${line%%=*}
	val=${line#*=}
	case "$key" in
	VERSION) VERSION=$val ;;
	IMAGE_URL) IMAGE_URL=$val ;;
	IMAGE_SHA256) IMAGE_SHA256=$val ;;
	HOSTNAME) HOSTNAME=$val ;;
	DISK) DISK=$val ;;
	FIRMWARE) FIRMWARE=$val ;;
	SSH_AUTHORIZED_KEY) printf '%s\n' "$val" >>"$STATE/authorized_keys" ;;
	ROOT_PASSWORD_HASH) ROOT_PASSWORD_HASH=$val ;;
	KERNEL_CMDLINE) KERNEL_CMDLINE=$val ;;
	INSTALLED_TOKEN) INSTALLED_TOKEN=$val ;;
	REPORT_URL) REPORT_URL=${val%/} ;;
	REBOOT) REBOOT=$val ;;
	ESP_SIZE_MIB) ESP_SIZE_MIB=$val ;;
	SELINUX) SELINUX=$val ;;
	*) log "ignoring unknown config key $key" ;;
	esac
done <"$STATE/config"
[ "$VERSION" = 1 ] || die "config VERSION must be 1 (got '$VERSION')"
[ -n "$IMAGE_URL" ] || die "config has no IMAGE_URL"
case "$IMAGE_URL" in *://*) ;; /*) IMAGE_URL="$BASE$IMAGE_URL" ;; *) IMAGE_URL="$BASE/$IMAGE_URL" ;; esac
case "$HOSTNAME" in *[!A-Za-z0-9.-]* | '') die "invalid HOSTNAME '$HOSTNAME'" ;; esac
case "$ESP_SIZE_MIB" in *[!0-9]* | '') die "invalid ESP_SIZE_MIB" ;; esac

if [ "$FIRMWARE" = auto ]; then
	if [ -d /sys/firmware/efi ]; then FIRMWARE=uefi; else FIRMWARE=bios; fi
fi
case "$FIRMWARE" in bios | uefi) ;; *) die "invalid FIRMWARE '$FIRMWARE'" ;; esac

if [ "$DISK" = auto ]; then
	DISK=
	for d in vda sda nvme0n1 xvda hda; do
		if [ -e "/sys/block/$d" ] && [ "$(cat /sys/block/$d/size)" -gt 0 ] && [ "$(cat /sys/block/$d/ro)" = 0 ]; then
			DISK=/dev/$d
			break
		fi
	done
	[ -n "$DISK" ] || die "no disk found (looked for vda sda nvme0n1 xvda hda)"
fi
[ -b "$DISK" ] || die "$DISK is not a block device"
case "$DISK" in *[0-9]) P=p ;; *) P= ;; esac
event config "config v$VERSION: disk $DISK, firmware $FIRMWARE, hostname $HOSTNAME, image $IMAGE_URL"

# ------------------------------------------------------------------------------------------- partition
event partition "partitioning $DISK ($FIRMWARE: $([ $FIRMWARE = uefi ] && echo "GPT, ESP ${ESP_SIZE_MIB} MiB + ext4" || echo "MBR, one ext4"))"
if [ "$FIRMWARE" = uefi ]; then
	printf 'label: gpt\n,%sMiB,U\n,,L\n' "$ESP_SIZE_MIB" >"$STATE/layout"
	ESP=${DISK}${P}1
	ROOT=${DISK}${P}2
else
	printf 'label: dos\n,,L,*\n' >"$STATE/layout"
	ESP=
	ROOT=${DISK}${P}1
fi
/usr/sbin/sfdisk -q --wipe always --wipe-partitions always "$DISK" <"$STATE/layout" >"$STATE/sfdisk.log" 2>&1 ||
	die "sfdisk failed: $(tail -3 "$STATE/sfdisk.log")"
i=0
while [ ! -b "$ROOT" ] && [ $i -lt 50 ]; do
	[ $i = 10 ] && blockdev --rereadpt "$DISK" 2>/dev/null
	usleep 200000
	i=$((i + 1))
done
[ -b "$ROOT" ] || die "$ROOT did not appear after partitioning"

# ----------------------------------------------------------------------------------------------- mkfs
ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
event mkfs "mkfs.ext4 $ROOT${ESP:+, mkfs.fat $ESP}"
/usr/sbin/mke2fs -q -F -t ext4 -L strata-root -U "$ROOT_UUID" "$ROOT" >"$STATE/mkfs.log" 2>&1 ||
	die "mkfs.ext4 failed: $(tail -3 "$STATE/mkfs.log")"
if [ -n "$ESP" ]; then
	ESP_ID=$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n' | tr a-f A-F)
	ESP_UUID=$(echo "$ESP_ID" | sed 's/^\(....\)/\1-/')
	/usr/sbin/mkfs.fat -F 32 -n STRATA-ESP -i "$ESP_ID" "$ESP" >"$STATE/mkfs.log" 2>&1 ||
		die "mkfs.fat failed: $(tail -3 "$STATE/mkfs.log")"
fi
mkdir -p "$TARGET"
mount -t ext4 "$ROOT" "$TARGET" || die "cannot mount $ROOT"

# ------------------------------------------------------------------------------------ download+extract
case "$IMAGE_URL" in
*.tar.zst | *.tzst) DECOMP="/usr/bin/zstd -dc" ;;
*.tar.gz | *.tgz) DECOMP="gzip -dc" ;;
*.tar.xz) DECOMP="xz -dc" ;;
*) DECOMP=cat ;;
esac
event download "streaming $IMAGE_URL onto $ROOT"
rm -f "$STATE/img.fifo"
mkfifo "$STATE/img.fifo"
sha256sum <"$STATE/img.fifo" >"$STATE/img.sha256" &
HASHPID=$!
# The image is served openly, and IMAGE_URL may be another host: the install token goes only to $API.
if ! wget -q -O - "$IMAGE_URL" 2>"$STATE/img.err" | tee "$STATE/img.fifo" |
	$DECOMP | /usr/bin/tar --numeric-owner --xattrs --xattrs-include='*' -xpf - -C "$TARGET" 2>"$STATE/tar.err"; then
	wait $HASHPID
	die "download/extract failed: $(cat "$STATE/img.err" "$STATE/tar.err" | tail -3)"
fi
wait $HASHPID
GOT=$(cut -d' ' -f1 "$STATE/img.sha256")
if [ -n "$IMAGE_SHA256" ] && [ "$GOT" != "$IMAGE_SHA256" ]; then
	die "image sha256 mismatch: got $GOT, want $IMAGE_SHA256"
fi
event extract "image extracted ($(du -sm "$TARGET" | cut -f1) MiB, sha256 $GOT)"

# ------------------------------------------------------------------------------------------ configure
event configure "fstab, hostname, SSH keys"
if [ -n "$ESP" ]; then
	mkdir -p "$TARGET/boot/efi"
	mount -t vfat "$ESP" "$TARGET/boot/efi" || die "cannot mount ESP $ESP"
fi
{
	echo "# written by the Strata installer"
	echo "UUID=$ROOT_UUID / ext4 errors=remount-ro 0 1"
	[ -n "$ESP" ] && echo "UUID=$ESP_UUID /boot/efi vfat umask=0077 0 1"
} >"$TARGET/etc/fstab"
echo "$HOSTNAME" >"$TARGET/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$HOSTNAME" >"$TARGET/etc/hosts"
mkdir -p "$TARGET/root/.ssh"
chmod 700 "$TARGET/root/.ssh"
cp "$STATE/authorized_keys" "$TARGET/root/.ssh/authorized_keys"
chmod 600 "$TARGET/root/.ssh/authorized_keys"
: >"$TARGET/etc/machine-id"

for fs in dev dev/pts proc sys run; do mkdir -p "$TARGET/$fs"; done
mount --bind /dev "$TARGET/dev"
mount --bind /dev/pts "$TARGET/dev/pts"
mount -t proc proc "$TARGET/proc"
mount -t sysfs sysfs "$TARGET/sys"
mount -t tmpfs tmpfs "$TARGET/run"
[ -d /sys/firmware/efi/efivars ] && mount -t efivarfs efivarfs "$TARGET/sys/firmware/efi/efivars" 2>/dev/null
in_target() { chroot "$TARGET" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

if [ -n "$ROOT_PASSWORD_HASH" ]; then
	in_target usermod -p "$ROOT_PASSWORD_HASH" root || die "cannot set the root password"
fi
case "$SELINUX" in
permissive | enforcing)
	KERNEL_CMDLINE="$KERNEL_CMDLINE security=selinux selinux=1"
	[ -f "$TARGET/etc/selinux/config" ] && sed -i "s/^SELINUX=.*/SELINUX=$SELINUX/" "$TARGET/etc/selinux/config"
	touch "$TARGET/.autorelabel"
	;;
esac

# ------------------------------------------------------------------------------------------- host keys
STEP=hostkey
rm -f "$TARGET"/etc/ssh/ssh_host_*
in_target ssh-keygen -A >"$STATE/keygen.log" 2>&1 || die "ssh-keygen -A failed: $(tail -3 "$STATE/keygen.log")"
cat "$TARGET"/etc/ssh/ssh_host_*_key.pub >"$STATE/hostkeys.pub"
post hostkey text/plain "$STATE/hostkeys.pub" || die "cannot report the host keys"
event hostkey "host keys generated and reported: $(awk '{print $1}' "$STATE/hostkeys.pub" | tr '\n' ' ')"

# ---------------------------------------------------------------------------------- pre-reboot script
STEP=pre-reboot
fetch scripts/pre-reboot "$STATE/pre-reboot"
rc=$?
if [ $rc = 0 ] && [ -s "$STATE/pre-reboot" ]; then
	event pre-reboot "running the pre-reboot script"
	chmod +x "$STATE/pre-reboot"
	if head -c 2 "$STATE/pre-reboot" | grep -q '#!'; then runner=; else runner=sh; fi
	(cd / && TARGET=$TARGET STRATA_URL=$BASE STRATA_NODE=$NODE DISK=$DISK FIRMWARE=$FIRMWARE \
		$runner "$STATE/pre-reboot") >"$STATE/pre-reboot.log" 2>&1
	prc=$?
	cat "$STATE/pre-reboot.log"
	[ $prc = 0 ] || die "pre-reboot script exited $prc: $(tail -3 "$STATE/pre-reboot.log")"
elif [ $rc = 1 ]; then
	die "cannot fetch the pre-reboot script"
else
	event pre-reboot "no pre-reboot script"
fi

# ---------------------------------------------------------------------------------------- bootloader
event bootloader "installing grub ($FIRMWARE)"
cat >"$TARGET/etc/default/grub" <<EOF
# written by the Strata installer
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$KERNEL_CMDLINE"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
if [ "$FIRMWARE" = uefi ]; then
	in_target grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram \
		>"$STATE/grub.log" 2>&1 || die "grub-install failed: $(tail -3 "$STATE/grub.log")"
else
	in_target grub-install --target=i386-pc "$DISK" >"$STATE/grub.log" 2>&1 ||
		die "grub-install failed: $(tail -3 "$STATE/grub.log")"
fi
in_target grub-mkconfig -o /boot/grub/grub.cfg >"$STATE/grub.log" 2>&1 ||
	die "grub-mkconfig failed: $(tail -3 "$STATE/grub.log")"

# ------------------------------------------------------------------------------- post-reboot unit
STEP=post-reboot
mkdir -p "$TARGET/usr/local/lib/strata" "$TARGET/etc/strata" "$TARGET/var/lib/strata"
fetch scripts/post-reboot "$TARGET/usr/local/lib/strata/post-reboot"
rc=$?
if [ $rc = 1 ]; then die "cannot fetch the post-reboot script"; fi
if [ $rc = 0 ] && [ -s "$TARGET/usr/local/lib/strata/post-reboot" ]; then
	chmod 700 "$TARGET/usr/local/lib/strata/post-reboot"
	has_post="yes"
else
	rm -f "$TARGET/usr/local/lib/strata/post-reboot"
	has_post="none"
fi
umask 077
{
	echo "STRATA_URL='$REPORT_URL'"
	echo "STRATA_NODE='$NODE'"
	echo "INSTALLED_TOKEN='$INSTALLED_TOKEN'"
} >"$TARGET/etc/strata/installed.env"
umask 022
cat >"$TARGET/usr/local/lib/strata/report-installed" <<'EOF'
#!/bin/sh
# Strata post-reboot: runs the node's post-reboot script (if any) once, then reports the node installed
# (POST $STRATA_URL/install/$STRATA_NODE/installed with the node's installed token). Written by the installer.
set -u
. /etc/strata/installed.env
rc=0
if [ -x /usr/local/lib/strata/post-reboot ] && [ ! -e /var/lib/strata/post-reboot.done ]; then
	echo "strata: running the post-reboot script"
	if head -c 2 /usr/local/lib/strata/post-reboot | grep -q '#!'; then
		/usr/local/lib/strata/post-reboot; rc=$?
	else
		sh /usr/local/lib/strata/post-reboot; rc=$?
	fi
	echo "$rc" >/var/lib/strata/post-reboot.done
	# On disk before Strata hears "installed": a power cycle right after would otherwise find the script's
	# files empty (ext4 allocates new files' data late) and the script not marked done.
	sync
fi
[ -e /var/lib/strata/post-reboot.done ] && rc=$(cat /var/lib/strata/post-reboot.done)
addrs=$(ip -o addr show scope global 2>/dev/null | awk '{print "\"" $4 "\""}' | paste -sd, -)
body=$(printf '{"hostname":"%s","kernel":"%s","bootId":"%s","machineId":"%s","postRebootExit":%d,"addresses":[%s]}' \
	"$(hostname)" "$(uname -r)" "$(cat /proc/sys/kernel/random/boot_id)" "$(cat /etc/machine-id)" "$rc" "$addrs")
i=0
while [ $i -lt 60 ]; do
	if curl -fsS --max-time 10 -H "Authorization: Bearer $INSTALLED_TOKEN" -H 'Content-Type: application/json' \
		--data "$body" "$STRATA_URL/install/$STRATA_NODE/installed" >/dev/null; then
		touch /var/lib/strata/installed
		sync
		echo "strata: reported installed to $STRATA_URL"
		exit 0
	fi
	i=$((i + 1))
	sleep 5
done
echo "strata: could not report installed"
exit 1
EOF
chmod 755 "$TARGET/usr/local/lib/strata/report-installed"
cat >"$TARGET/etc/systemd/system/strata-post-reboot.service" <<'EOF'
[Unit]
Description=Strata post-reboot script and install report
Wants=network-online.target
After=network-online.target ssh.service
ConditionPathExists=!/var/lib/strata/installed

[Service]
Type=oneshot
ExecStart=/usr/local/lib/strata/report-installed
RemainAfterExit=yes
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$TARGET/etc/systemd/system/multi-user.target.wants"
ln -sf ../strata-post-reboot.service "$TARGET/etc/systemd/system/multi-user.target.wants/strata-post-reboot.service"
event post-reboot "post-reboot unit installed (post-reboot script: $has_post)"

# ------------------------------------------------------------------------------------------- reboot
sync
for fs in sys/firmware/efi/efivars run sys proc dev/pts dev boot/efi; do
	grep -q " $TARGET/$fs " /proc/mounts && umount "$TARGET/$fs"
done
umount "$TARGET" || { sync; umount -l "$TARGET"; }
sync
case "$REBOOT" in
poweroff)
	event rebooting "installed; powering off" done
	poweroff -f
	;;
none)
	event rebooting "installed; staying in the installer" done
	exit 0
	;;
*)
	event rebooting "installed; rebooting into the new system" done
	reboot -f
	;;
esac
