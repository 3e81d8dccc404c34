#!/bin/sh
# strata-fetch: downloads one artifact by its digest from a Strata registry and refuses it unless its
# SHA-256 matches. Copied to nodes by distributables; the node checks the digest itself, before use, so
# neither the network nor a registry has to be trusted. POSIX sh with curl, or busybox wget, plus sha256sum:
# the installed system has curl, an installer environment has only busybox.
#
#   strata-fetch REGISTRY_URL DIGEST OUTPUT
#     REGISTRY_URL  the site's local registry, e.g. http://10.0.0.1:8080/registry
#     DIGEST        sha256:<64 hex>
#     OUTPUT        where the verified file goes (replaced atomically; nothing is left on failure)
#
# Exit status: 0 the file is at OUTPUT and matches; 2 bad arguments; 3 the download failed;
# 4 the bytes did not match the digest (refused and removed).
set -u

usage() {
  echo "usage: strata-fetch REGISTRY_URL DIGEST OUTPUT  (DIGEST is sha256:<64 hex>)" >&2
  exit 2
}

[ "$#" -eq 3 ] || usage
url=${1%/}
digest=$2
out=$3

hex=${digest#sha256:}
case $digest in sha256:*) ;; *) echo "strata-fetch: digest \"$digest\" must start with sha256:" >&2; exit 2 ;; esac
if [ "${#hex}" -ne 64 ] || [ -n "$(printf '%s' "$hex" | tr -d '0123456789abcdef')" ]; then
  echo "strata-fetch: digest \"$digest\" must be sha256: and 64 lower-case hex digits" >&2
  exit 2
fi
[ -n "$out" ] || usage

sum_of() {
  sha256sum "$1" | cut -d ' ' -f 1
}

# Already there and intact: nothing to do (a distributable runs this on every apply).
if [ -f "$out" ] && [ "$(sum_of "$out")" = "$hex" ]; then
  exit 0
fi

dir=$(dirname "$out")
tmp="$dir/.strata-fetch.$$.part"
trap 'rm -f "$tmp"' EXIT
trap 'rm -f "$tmp"; exit 130' INT
trap 'rm -f "$tmp"; exit 143' TERM

src="$url/blobs/$digest"
if command -v curl >/dev/null 2>&1; then
  curl -fsS --retry 3 --retry-delay 1 --connect-timeout 10 -o "$tmp" "$src"
else
  # No -T: busybox 1.35's wget (Debian bookworm) crashes with a timeout option.
  wget -q -O "$tmp" "$src"
fi
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "strata-fetch: could not download $src (exit $rc)" >&2
  exit 3
fi

got=$(sum_of "$tmp")
if [ "$got" != "$hex" ]; then
  echo "strata-fetch: REFUSED $src: its bytes have digest sha256:$got, not $digest" >&2
  exit 4
fi
mv -f "$tmp" "$out" || exit 3
trap - EXIT INT TERM
echo "strata-fetch: $out verified ($digest)" >&2
