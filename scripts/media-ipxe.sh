#!/usr/bin/env bash
# iPXE binaries for boot media (src/media/build.ts): Debian's current ipxe package, whose EFI build runs
# autoexec.ipxe from its own filesystem (bookworm's 2019 build cannot). Fetched with apt from Debian's
# archive using a private source list (the machine's apt sources are not touched), checked by apt against
# the signed index, unpacked with dpkg-deb into the machine-wide cache /var/cache/strata/ipxe-media/VERSION
# and pointed to by `current`. Locked with flock, skipped when present.
set -euo pipefail
SUITE=trixie
CACHE=${STRATA_MEDIA_IPXE_CACHE:-/var/cache/strata/ipxe-media}
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$CACHE/current/usr/lib/ipxe/ipxe.efi" ] && [ -f "$CACHE/current/usr/lib/ipxe/ipxe.lkrn" ]; then
  exit 0
fi
work=$(mktemp -d "$CACHE/.fetch-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb http://deb.debian.org/debian $SUITE main" >"$work/sources.list"
APT=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives" -o APT::Sandbox::User=root)
echo "media-ipxe: fetching ipxe from Debian $SUITE" >&2
apt-get "${APT[@]}" update -q >&2
version=$(apt-cache "${APT[@]}" show --no-all-versions ipxe | sed -n 's/^Version: //p' | head -1)
(cd "$work" && apt-get "${APT[@]}" download -q "ipxe=$version" >&2)
dir="$CACHE/${version//[:\/]/_}"
rm -rf "$dir.tmp" && dpkg-deb -x "$work"/ipxe_*.deb "$dir.tmp"
test -f "$dir.tmp/usr/lib/ipxe/ipxe.efi" && test -f "$dir.tmp/usr/lib/ipxe/ipxe.lkrn"
rm -rf "$dir" && mv "$dir.tmp" "$dir"
ln -sfn "$(basename "$dir")" "$CACHE/current"
echo "media-ipxe: ipxe $version in $dir" >&2
