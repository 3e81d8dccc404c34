#!/usr/bin/env bash
# Puts the Debian packages nodes need into Strata's global registry, from this machine's own Debian
# mirror, so nodes never reach the internet: they fetch each .deb from their site's local registry by
# digest (src/registry/fetch.sh) and install it with dpkg.
#
#   scripts/registry/debian-packages.sh [PACKAGE...]      default: nebula wireguard-tools nats-server
#
# Each package and the dependencies a minimal Debian system lacks (its closure minus that of the
# Priority: required packages, which debootstrap's minbase always has) is fetched with `apt-get download` into a cache directory
# (STRATA_DEB_CACHE, default /var/cache/strata/debs; kept, so a second run downloads nothing), then pushed
# with `strata registry push` as debian/<codename>/<arch>/<package>:<version>, e.g.
# debian/bookworm/amd64/nebula:1.6.1+dfsg-3+b4. The Strata API comes from STRATA_SERVER/STRATA_TOKEN (or
# the local admin token), as for every strata command; STRATA_CLI overrides the strata command itself.
# The packages match this machine's release and architecture: run it on a machine like the nodes'.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STRATA_CLI="${STRATA_CLI:-$ROOT/bin/strata}"
CACHE="${STRATA_DEB_CACHE:-/var/cache/strata/debs}"
if [ "$#" -gt 0 ]; then PACKAGES=("$@"); else PACKAGES=(nebula wireguard-tools nats-server); fi

command -v apt-get >/dev/null || { echo "debian-packages: needs apt-get (a Debian machine)" >&2; exit 1; }
# shellcheck disable=SC1091
CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")"
mkdir -p "$CACHE"

# A package's dependency closure (first alternative of each "a | b", as apt would pick).
closure() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
    --no-enhances -o APT::Cache::ShowOnlyFirstOr=true "$@" | grep -v '^[ <]' | sort -u
}
if ! apt-cache show "${PACKAGES[@]}" >/dev/null 2>&1; then
  echo "debian-packages: refreshing the package lists (apt-get update)" >&2
  apt-get -o DPkg::Lock::Timeout=900 update -q >&2
fi
# What every Debian system has: the Priority: required packages (debootstrap's minbase) and their closure.
mapfile -t required < <(apt-cache dumpavail | awk '/^Package: /{p=$2} /^Priority: required/{print p}' | sort -u)
mapfile -t wanted < <(comm -23 <(closure "${PACKAGES[@]}") <(closure "${required[@]}"))
echo "debian-packages: ${#wanted[@]} package(s): ${wanted[*]}" >&2

# apt-get download writes into the current directory; files already there are not fetched again.
(
  cd "$CACHE"
  missing=()
  for pkg in "${wanted[@]}"; do
    ver="$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')"
    compgen -G "${pkg}_${ver/:/%3a}_*.deb" >/dev/null || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    # _apt cannot write into a root-only cache directory; downloading as root is fine here.
    if ! apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >&2; then
      # Stale package lists name versions the mirror no longer has: refresh once and retry.
      apt-get -o DPkg::Lock::Timeout=900 update -q >&2
      apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >&2
    fi
  fi
)

for pkg in "${wanted[@]}"; do
  ver="$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')"
  deb="$(compgen -G "$CACHE/${pkg}_${ver/:/%3a}_*.deb" | head -n1)"
  [ -n "$deb" ] || { echo "debian-packages: $pkg $ver was not downloaded" >&2; exit 1; }
  name="$(dpkg-deb -f "$deb" Package)"
  version="$(dpkg-deb -f "$deb" Version)"
  arch="$(dpkg-deb -f "$deb" Architecture)"
  "$STRATA_CLI" registry push "$deb" --name "debian/$CODENAME/$arch/$name" --version "$version"
done
