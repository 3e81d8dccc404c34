#!/bin/sh
# Joins this node to a Nebula overlay: installs nebula from the bundle's verified .deb when it is missing,
# installs the config Strata rendered (it holds this host's key, so it is written 0600) and starts
# nebula@OVERLAY, or reloads it (SIGHUP) when it already runs, so a changed blocklist or a renewed
# certificate takes effect without dropping the other tunnels. Without systemd (a container, a minimal
# system) nebula runs as a daemon with a pid file under /run instead.
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
if ! command -v nebula >/dev/null 2>&1; then
  deb="${STRATA_ARTIFACTS:-$here/artifacts}/nebula.deb"
  [ -f "$deb" ] || { echo "nebula is not installed and the bundle carries no nebula.deb: push the Debian package nebula into Strata's registry (scripts/registry/debian-packages.sh)" >&2; exit 1; }
  dpkg -i "$deb"
fi
install -d -m 0700 /etc/nebula
if cmp -s "$here/config.yml" "/etc/nebula/$OVERLAY.yml"; then changed=no; else changed=yes; fi
install -m 0600 "$here/config.yml" "/etc/nebula/$OVERLAY.yml"
if [ -d /run/systemd/system ]; then
  systemctl enable "nebula@$OVERLAY" >/dev/null 2>&1
  if ! systemctl is-active --quiet "nebula@$OVERLAY"; then
    systemctl start "nebula@$OVERLAY"
  elif [ "$changed" = yes ]; then
    systemctl reload "nebula@$OVERLAY"
  fi
else
  pidf="/run/nebula-$OVERLAY.pid"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    if [ "$changed" = yes ]; then kill -HUP "$(cat "$pidf")"; fi
  else
    setsid nebula -config "/etc/nebula/$OVERLAY.yml" >"/run/nebula-$OVERLAY.log" 2>&1 </dev/null &
    echo $! >"$pidf"
  fi
fi
# Give the tunnel a moment to come up before check.sh looks.
i=0
while [ "$i" -lt 20 ] && ! ip -4 -o addr show dev "$TUN" 2>/dev/null | grep -q "inet $ADDRESS/"; do
  sleep 0.5
  i=$((i + 1))
done
