# shellcheck shell=bash
# Shared by the build scripts (sourced): what every Go build into a machine-wide cache needs first.
# need_go_and_cache SCRIPT WHAT CACHE ENVVAR: the Go toolchain on PATH (the official tarball's place is
# added, for shells such as CI's whose PATH does not carry it) and a writable CACHE, or exit 3 saying why
# (the tests that need the build then skip and say how to build it).
need_go_and_cache() {
  PATH="$PATH:/usr/local/go/bin"
  if ! command -v go >/dev/null; then
    echo "$1: no Go toolchain (go) on PATH; install Go to build $2" >&2
    exit 3
  fi
  if ! mkdir -p "$3" 2>/dev/null || [ ! -w "$3" ]; then
    echo "$1: cannot write $3 (run as root, or set $4)" >&2
    exit 3
  fi
}
