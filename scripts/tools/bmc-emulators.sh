#!/usr/bin/env bash
# Builds the BMC emulators the hardware tests drive, sushy-tools (`sushy-emulator`, a Redfish service) and
# virtualbmc (`vbmc`/`vbmcd`, IPMI in front of a libvirt domain), in a Python venv cached machine-wide
# under /var/cache/strata/bmc/<version>/venv-libvirt with a lock (flock), so two concurrent builds do not
# corrupt it and a built venv is reused without touching the network. The venv sees the system's site
# packages: sushy's libvirt driver and virtualbmc import Debian's python3-libvirt (built against the
# installed libvirt, so nothing is compiled here). Prints the venv's bin directory on stdout.
# Exit status 3: PyPI could not be reached (tests skip then).
# Nothing here installs or starts libvirtd; the tests run a private one (test/helpers/libvirt.ts).
set -euo pipefail

VERSION="${SUSHY_TOOLS_VERSION:-2.2.0}"
VBMC_VERSION="${VIRTUALBMC_VERSION:-3.3.0}"
ROOT="${STRATA_CACHE:-/var/cache/strata}/bmc/$VERSION"
VENV="$ROOT/venv-libvirt"
mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock 9
# Debian's interpreter first: python3-libvirt is built for it (a pyenv or other python3 on PATH lacks it).
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3 || true)"
[ -n "$PY" ] && [ -x "$PY" ] || { echo "bmc-emulators.sh: python3 is not installed" >&2; exit 2; }
has_libvirt() { "$PY" -c 'import libvirt' 2>/dev/null; }
if [ -x "$VENV/bin/sushy-emulator" ] && [ -f "$VENV/.complete" ]; then
  # A venv built before python3-libvirt was installed lacks vbmc: build it again once libvirt is here.
  if [ -x "$VENV/bin/vbmc" ] || ! has_libvirt; then
    echo "$VENV/bin"
    exit 0
  fi
fi
rm -rf "$VENV"
"$PY" -m venv --system-site-packages "$VENV" >&2
if ! nice -n 19 "$VENV/bin/pip" install -q --disable-pip-version-check "sushy-tools==$VERSION" >&2; then
  rm -rf "$VENV"
  echo "bmc-emulators.sh: could not install sushy-tools $VERSION from PyPI" >&2
  exit 3
fi
if has_libvirt; then
  # Debian's python3-libvirt satisfies virtualbmc's libvirt-python requirement (its egg-info is visible).
  if ! nice -n 19 "$VENV/bin/pip" install -q --disable-pip-version-check "virtualbmc==$VBMC_VERSION" >&2; then
    rm -rf "$VENV"
    echo "bmc-emulators.sh: could not install virtualbmc $VBMC_VERSION from PyPI" >&2
    exit 3
  fi
else
  echo "bmc-emulators.sh: python3-libvirt is not installed (scripts/setup.sh installs it): no vbmc" >&2
fi
touch "$VENV/.complete"
echo "$VENV/bin"
