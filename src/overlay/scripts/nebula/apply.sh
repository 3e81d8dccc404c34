#!/bin/sh
# Joins this node to a Nebula overlay: installs the config Strata rendered (it holds this host's key,
# so it is written 0600) and starts nebula@OVERLAY, or reloads it (SIGHUP) when it already runs, so a
# changed blocklist or a renewed certificate takes effect without dropping the other tunnels.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
command -v nebula >/dev/null 2>&1 || { echo "nebula is not installed: install the Debian package nebula" >&2; exit 1; }
install -d -m 0700 /etc/nebula
if cmp -s "$here/config.yml" "/etc/nebula/$OVERLAY.yml"; then changed=no; else changed=yes; fi
install -m 0600 "$here/config.yml" "/etc/nebula/$OVERLAY.yml"
systemctl enable "nebula@$OVERLAY" >/dev/null 2>&1
if ! systemctl is-active --quiet "nebula@$OVERLAY"; then
  systemctl start "nebula@$OVERLAY"
elif [ "$changed" = yes ]; then
  systemctl reload "nebula@$OVERLAY"
fi
