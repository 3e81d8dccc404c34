# shellcheck shell=bash
# Shared by the scripts in scripts/build (sourced, not run): the checks and the lock every machine-wide
# cached build takes. Each exits 3 ("cannot be built here") with the calling script's name in the message.

# need_go: the Go toolchain on PATH (the official tarball's place added, for shells whose PATH lacks it).
need_go() {
  PATH="$PATH:/usr/local/go/bin"
  if ! command -v go >/dev/null; then
    echo "$(basename "$0"): no Go toolchain (go) on PATH; install Go to build it" >&2
    exit 3
  fi
}

# lock_cache DIR ENVVAR: makes DIR (or says to set ENVVAR) and takes its build lock on fd 9, so a second
# build waits for the first and then finds its result.
lock_cache() {
  if ! mkdir -p "$1" 2>/dev/null || [ ! -w "$1" ]; then
    echo "$(basename "$0"): cannot write $1 (run as root, or set $2)" >&2
    exit 3
  fi
  exec 9>"$1/.$(basename "$0" .sh).lock"
  flock 9
}
