#!/usr/bin/env bash
# Builds the BMC emulators the hardware tests drive, sushy-tools (`sushy-emulator`, a Redfish service)
# and, when libvirt-python can be built here, virtualbmc (`vbmc`, IPMI in front of a libvirt domain), in a
# Python venv cached machine-wide under /var/cache/strata/bmc/<version>/venv with a lock (flock), so two
# concurrent builds do not corrupt it and a built venv is reused without touching the network. Prints the
# venv's bin directory on stdout. Exit status 3: PyPI could not be reached (tests skip then).
# Nothing here installs or starts libvirtd; see the README's "BMC emulators" section.
set -euo pipefail

VERSION="${SUSHY_TOOLS_VERSION:-2.2.0}"
ROOT="${STRATA_CACHE:-/var/cache/strata}/bmc/$VERSION"
VENV="$ROOT/venv"
mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock 9
if [ -x "$VENV/bin/sushy-emulator" ] && [ -f "$VENV/.complete" ]; then
  echo "$VENV/bin"
  exit 0
fi
PY="$(command -v python3 || true)"
[ -n "$PY" ] || { echo "bmc-emulators.sh: python3 is not installed" >&2; exit 2; }
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
if ! nice -n 19 "$VENV/bin/pip" install -q --disable-pip-version-check "sushy-tools==$VERSION" >&2; then
  rm -rf "$VENV"
  echo "bmc-emulators.sh: could not install sushy-tools $VERSION from PyPI" >&2
  exit 3
fi
# virtualbmc needs libvirt-python, which builds against libvirt-dev; optional.
nice -n 19 "$VENV/bin/pip" install -q --disable-pip-version-check virtualbmc >&2 ||
  echo "bmc-emulators.sh: virtualbmc not installed (needs libvirt-python); IPMI emulator tests skip" >&2
touch "$VENV/.complete"
echo "$VENV/bin"
