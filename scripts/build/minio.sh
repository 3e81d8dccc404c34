#!/usr/bin/env bash
# Builds MinIO (the S3-compatible server the registry's S3 backend is tested against) once per machine with
# the Go toolchain, from the Go module proxy, into a machine-wide versioned cache, and prints the binary's
# path on stdout. Idempotent: when the binary and its version stamp are there, nothing is built.
# Why built here: MinIO is in no Debian release we can reach and no other registry; `go install` is the only
# way (about 10 minutes cold on a 2-core machine, so CI runs it once and every later run reuses it).
# Exit status 3: it cannot be built here (no Go toolchain, or the cache directory is not writable); the S3
# tests skip then and say so.
set -euo pipefail

# Pinned: `@latest` resolved to this pseudo-version (MinIO publishes no tagged module versions).
MINIO_VERSION="${STRATA_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
CACHE="${STRATA_BIN_CACHE:-/var/cache/strata/bin}"
BIN="$CACHE/minio"
STAMP="$CACHE/minio.version"

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$MINIO_VERSION" ]; then
  echo "$BIN"
  exit 0
fi
# shellcheck source=scripts/build/lib.sh
. "$(dirname "$0")/lib.sh"
need_go
# One build per machine at a time: a second caller waits for the first and then finds the binary.
lock_cache "$CACHE" STRATA_BIN_CACHE
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$MINIO_VERSION" ]; then
  echo "$BIN"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-minio-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "minio.sh: building github.com/minio/minio@$MINIO_VERSION (about 10 minutes cold)" >&2
start=$(date +%s)
GOBIN="$work" GOFLAGS=-trimpath CGO_ENABLED=0 nice -n 19 go install "github.com/minio/minio@$MINIO_VERSION" >&2
# Install atomically: a reader never sees a half-written binary.
install -m 0755 "$work/minio" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
echo "$MINIO_VERSION" >"$STAMP.tmp.$$"
mv -f "$STAMP.tmp.$$" "$STAMP"
echo "minio.sh: built in $(($(date +%s) - start)) s -> $BIN" >&2
echo "$BIN"
