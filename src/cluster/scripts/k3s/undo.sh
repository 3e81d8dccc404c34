#!/bin/sh
# Uninstalls k3s with the uninstall scripts its install.sh left (k3s-uninstall.sh on a server,
# k3s-agent-uninstall.sh on an agent), after the node was drained and its Node object deleted.
set -u
for s in /usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh; do
  if [ -x "$s" ]; then "$s" || true; fi
done
exit 0
