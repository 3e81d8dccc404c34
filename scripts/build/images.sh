#!/usr/bin/env bash
# Builds Strata's container images from Debian packages, with no registry behind them (no Docker Hub here),
# as OCI image layouts in a machine-wide versioned cache, and prints the cache directory on stdout:
#
#   <cache>/pause   tag 1.0      the pod sandbox: a static pause program (scripts/build/images/pause.c)
#   <cache>/web     tag 1.35.0   busybox-static (sh, httpd, wget...) with a page in /www; runs
#                                `httpd -f -p 8080 -h /www` by default, or any busybox applet
#
# umoci (Debian) writes the layouts; push them with `strata registry push-image` (or `skopeo copy
# oci:<cache>/web:1.35.0 docker://HOST/web:1.35.0`). Idempotent: when the cache holds this version,
# nothing is built; two builds at once take turns on a lock.
# Exit status 3: it cannot be built here (no umoci, gcc or busybox-static, or the cache is not writable);
# the image tests skip then and say so.
set -euo pipefail
cd "$(dirname "$0")"

# Bump when what is built changes: a new version is a new directory, so an old build is never reused.
IMAGES_VERSION=1
ROOT="${STRATA_IMAGES_CACHE:-/var/cache/strata/images}"
OUT="$ROOT/$IMAGES_VERSION"
ARCH=amd64

done_already() { [ -f "$OUT/.complete" ]; }
if done_already; then
  echo "$OUT"
  exit 0
fi
for tool in umoci gcc; do
  if ! command -v "$tool" >/dev/null; then
    echo "images.sh: $tool is missing (bash scripts/setup.sh installs it)" >&2
    exit 3
  fi
done
if [ ! -x /bin/busybox ] || ! /bin/busybox --list >/dev/null 2>&1; then
  echo "images.sh: /bin/busybox (busybox-static) is missing (bash scripts/setup.sh installs it)" >&2
  exit 3
fi
# shellcheck source=scripts/build/lib.sh
. ./lib.sh
lock_cache "$ROOT" STRATA_IMAGES_CACHE
if done_already; then
  echo "$OUT"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
# Fixed timestamps: the same inputs give the same layers and digests on every machine.
created="2026-01-01T00:00:00Z"
busybox_version="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null | sed -E 's/^[0-9]+://; s/-.*//')"
busybox_version="${busybox_version:-unknown}"

# image NAME TAG ROOTFS [umoci config flags...]: one OCI layout at $work/NAME, one layer made of ROOTFS.
image() {
  local name="$1" tag="$2" rootfs="$3"
  shift 3
  local layout="$work/out/$name"
  find "$rootfs" -exec touch -h -d "$created" {} +
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci insert --image "$layout:$tag" --history.created "$created" --history.created_by "strata images.sh" \
    "$rootfs" /
  umoci config --image "$layout:$tag" --os linux --architecture "$ARCH" --created "$created" \
    --history.created "$created" --history.created_by "strata images.sh" \
    --config.label "org.opencontainers.image.title=$name" "$@"
  umoci gc --layout "$layout"
}

# pause: one static binary.
mkdir -p "$work/pause/bin"
gcc -static -Os -s -o "$work/pause/bin/pause" images/pause.c
chmod 0755 "$work/pause/bin/pause"
image pause 1.0 "$work/pause" --config.entrypoint /bin/pause --config.user 65535:65535

# web: busybox-static with every applet linked in /bin, a passwd for httpd, and a page to serve.
r="$work/web"
mkdir -p "$r/bin" "$r/etc" "$r/www" "$r/tmp" "$r/proc" "$r/sys" "$r/dev"
chmod 1777 "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$r/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
printf '<!doctype html><title>strata web</title><p>served by busybox httpd from a Strata image</p>\n' \
  >"$r/www/index.html"
image web "$busybox_version" "$r" --config.cmd /bin/httpd --config.cmd -f --config.cmd -p \
  --config.cmd 8080 --config.cmd -h --config.cmd /www --config.env PATH=/bin --config.exposedports 8080/tcp

# Images list for the CLI and tests: name, tag, layout directory.
printf '{"images":[{"name":"pause","tag":"1.0","layout":"pause"},{"name":"web","tag":"%s","layout":"web"}]}\n' \
  "$busybox_version" >"$work/out/images.json"
chmod -R a+rX "$work/out"
touch "$work/out/.complete"
rm -rf "$OUT"
mv "$work/out" "$OUT"
echo "images.sh: built in $(($(date +%s) - start)) s -> $OUT" >&2
echo "$OUT"
