#!/usr/bin/env bash
# Builds the OCI Distribution Specification conformance suite (github.com/opencontainers/distribution-spec/
# conformance, a Go test binary) once per machine from the Go module proxy into a machine-wide versioned
# cache, and prints the binary's path on stdout. Idempotent: when the binary and its version stamp are
# there, nothing is built. test/integration/registry/oci-conformance.test.ts runs it against a test manager
# when it is there and skips, saying so, when not (it is not part of .ci/run).
# Exit status 3: it cannot be built here (no Go toolchain, or the cache directory is not writable).
set -euo pipefail

# Pinned: `@latest` resolved to this pseudo-version (the conformance module publishes no tags of its own).
CONFORMANCE_VERSION="${STRATA_OCI_CONFORMANCE_VERSION:-v0.0.0-20260831232431-97274622c111}"
CACHE="${STRATA_BIN_CACHE:-/var/cache/strata/bin}"
BIN="$CACHE/oci-conformance.test"
STAMP="$CACHE/oci-conformance.version"

have() { [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$CONFORMANCE_VERSION" ]; }
if have; then
  echo "$BIN"
  exit 0
fi
# shellcheck source=scripts/build/lib.sh
. "$(dirname "$0")/lib.sh"
need_go
lock_cache "$CACHE" STRATA_BIN_CACHE
if have; then
  echo "$BIN"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-oci-conformance.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
cd "$work"
go mod init strata.local/oci-conformance >/dev/null 2>&1
GOFLAGS=-mod=mod go get "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION" >&2
GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 19 go test -c -trimpath -o "$work/conformance.test" \
  github.com/opencontainers/distribution-spec/conformance >&2
install -m 0755 "$work/conformance.test" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
echo "$CONFORMANCE_VERSION" >"$STAMP.tmp.$$"
mv -f "$STAMP.tmp.$$" "$STAMP"
echo "oci-conformance.sh: built in $(($(date +%s) - start)) s -> $BIN" >&2
echo "$BIN"
