#!/bin/sh
# Takes this node off the Nebula overlay: stops nebula@OVERLAY and removes its config (and key).
set -eu
here=$(dirname "$0")
# shellcheck source=/dev/null
. "$here/overlay.env"
systemctl disable --now "nebula@$OVERLAY" >/dev/null 2>&1 || true
rm -f "/etc/nebula/$OVERLAY.yml"
