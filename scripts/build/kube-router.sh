#!/usr/bin/env bash
# Builds kube-router (the pod network a Cluster gets with `cni: kube-router`: routes between the nodes' pod
# subnets by BGP, NetworkPolicy, and the service proxy) once per machine with the Go toolchain, from the Go
# module proxy (github.com/cloudnativelabs/kube-router/v2), into a machine-wide versioned cache, and prints
# the binary's path on stdout. Idempotent: when the binary is there, nothing is built; two builds at once
# take turns on a lock. About 5 minutes cold on a 2-core machine.
# The binary alone is not the DaemonSet's image: that also needs iptables, ipset and iproute2 in its root
# file system (see the README's cluster section for what is not built yet).
# Exit status 3: it cannot be built here (no Go toolchain, or the cache directory is not writable).
set -euo pipefail

# v2.1.0 is the newest version the module proxy serves (the repository's later tags are not on it).
KUBE_ROUTER_VERSION="${STRATA_KUBE_ROUTER_VERSION:-v2.1.0}"
CACHE="${STRATA_KUBE_ROUTER_CACHE:-/var/cache/strata/kube-router/$KUBE_ROUTER_VERSION}"
BIN="$CACHE/kube-router"

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
# shellcheck source=scripts/build/lib.sh
. "$(dirname "$0")/lib.sh"
need_go
# One build per machine at a time: a second caller waits for the first and then finds the binary.
lock_cache "$CACHE" STRATA_KUBE_ROUTER_CACHE
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-kube-router-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "kube-router.sh: building github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION (about 5 minutes cold)" >&2
start=$(date +%s)
GOBIN="$work" GOFLAGS=-trimpath CGO_ENABLED=0 nice -n 19 go install \
  -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
  "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" >&2
# Install atomically: a reader never sees a half-written binary.
install -m 0755 "$work/kube-router" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
echo "kube-router.sh: built in $(($(date +%s) - start)) s -> $BIN" >&2
echo "$BIN"
