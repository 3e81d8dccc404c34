#!/usr/bin/env bash
# Builds the Kubernetes components the cluster layer (state 6) runs and tests against, once per machine, from
# the Go module proxy into a machine-wide versioned cache, and prints the cache directory on stdout:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (the host suite's control plane)
#   kwok + its stage configs                                          (fake kubelets for the host suite)
#   kubelet                                                           (lab VMs only; built last, optional)
# Idempotent: every binary already in the cache is skipped; each lands by an atomic rename, so a reader never
# sees a half-written one and an interrupted build resumes where it stopped.
# Why built here: no registry reachable from this machine ships Kubernetes binaries. `go install` refuses
# k8s.io/kubernetes (its go.mod replaces the k8s.io/* staging modules by local paths), so a small wrapper
# module requires k8s.io/kubernetes and maps each staging replace to the published k8s.io/X v0.<minor>.<patch>.
# Cold cost on a 2-core machine: ~30 min (kube-apiserver alone ~16 min, 1.8 GB peak), run at nice 19.
# Usage: kubernetes.sh [--host-only]   (--host-only skips kubelet)
# Exit status 3: it cannot be built here (no Go toolchain, or the cache is not writable); the cluster tests
# skip then and say how to build it.
set -euo pipefail

K8S_VERSION="${STRATA_K8S_VERSION:-v1.34.4}"
KWOK_VERSION="${STRATA_KWOK_VERSION:-v0.8.0}"
CACHE="${STRATA_K8S_CACHE:-/var/cache/strata/kubernetes/$K8S_VERSION}"
HOST_ONLY=0
[ "${1:-}" = "--host-only" ] && HOST_ONLY=1

COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
[ "$HOST_ONLY" = 1 ] || COMPONENTS+=(kubelet)

complete() {
  local c
  for c in "${COMPONENTS[@]}" kwok; do [ -x "$CACHE/$c" ] || return 1; done
  [ -f "$CACHE/kwok-stages.yaml" ]
}
if complete; then
  echo "$CACHE"
  exit 0
fi

# shellcheck source=scripts/build/lib.sh
. "$(dirname "$0")/lib.sh"
need_go
# One build per machine at a time: a second caller waits for the first and then finds the binaries.
lock_cache "$CACHE" STRATA_K8S_CACHE
if complete; then
  echo "$CACHE"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-k8s-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
total_start=$(date +%s)
say() { echo "kubernetes.sh: $*" >&2; }

# Installs $1 (a file in $work) as $CACHE/$2 atomically.
place() {
  install -m 0755 "$1" "$CACHE/$2.tmp.$$"
  mv -f "$CACHE/$2.tmp.$$" "$CACHE/$2"
}

# --- the wrapper module --------------------------------------------------------------------------------
minor="${K8S_VERSION#v1.}"       # 34.4
staging_version="v0.$minor"      # v0.34.4
mod="$work/mod"
mkdir -p "$mod"
say "resolving k8s.io/kubernetes@$K8S_VERSION (wrapper module, staging modules at $staging_version)"
upstream_gomod="$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
if [ ! -f "$upstream_gomod" ]; then
  say "could not download k8s.io/kubernetes@$K8S_VERSION's go.mod from the module proxy"
  exit 1
fi
{
  echo "module strata.local/kubebuild"
  echo
  echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_gomod")"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  # k8s.io/X => ./staging/src/k8s.io/X  becomes  k8s.io/X => k8s.io/X v0.<minor>.<patch>
  sed -n 's|^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^ ]*\) => \./staging/src/.*$|replace \2 => \2 '"$staging_version"'|p' \
    "$upstream_gomod"
} >"$mod/go.mod"
if ! grep -q '^replace k8s.io/api ' "$mod/go.mod"; then
  say "found no staging replaces in k8s.io/kubernetes@$K8S_VERSION's go.mod; the wrapper recipe no longer fits"
  exit 1
fi
{
  echo "//go:build tools"
  echo
  echo "package tools"
  echo
  echo "import ("
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
    echo "	_ \"k8s.io/kubernetes/cmd/$c\""
  done
  echo ")"
} >"$mod/tools.go"
(cd "$mod" && nice -n 19 go mod tidy >&2)

commit_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$commit_date"
done

build_component() {
  local c="$1" start
  if [ -x "$CACHE/$c" ]; then
    say "$c: present, skipped"
    return
  fi
  say "$c: building ($K8S_VERSION)…"
  start=$(date +%s)
  (cd "$mod" && CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$work/$c" \
    "k8s.io/kubernetes/cmd/$c" >&2)
  place "$work/$c" "$c"
  say "$c: built in $(($(date +%s) - start)) s"
}

build_kwok() {
  local start modcache src
  if [ -x "$CACHE/kwok" ] && [ -f "$CACHE/kwok-stages.yaml" ]; then
    say "kwok: present, skipped"
    return
  fi
  say "kwok: building ($KWOK_VERSION)…"
  start=$(date +%s)
  GOBIN="$work" GOFLAGS=-trimpath CGO_ENABLED=0 nice -n 19 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  # kwok exits "no stages found" without Stage objects: ship the module's own fast node/pod lifecycles.
  modcache="$(go env GOMODCACHE)"
  src="$modcache/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  mkdir -p "$work/kwok-stages"
  : >"$work/kwok-stages.yaml"
  for d in node/fast node/heartbeat pod/fast; do
    if [ ! -d "$src/$d" ]; then
      say "kwok: $src/$d is missing from the module; cannot ship its stages"
      exit 1
    fi
    mkdir -p "$work/kwok-stages/$d"
    for f in "$src/$d"/*.yaml; do
      [ "$(basename "$f")" = kustomization.yaml ] && continue
      cp "$f" "$work/kwok-stages/$d/"
      { echo "---"; cat "$f"; } >>"$work/kwok-stages.yaml"
    done
  done
  rm -rf "$CACHE/kwok-stages.tmp.$$"
  cp -r "$work/kwok-stages" "$CACHE/kwok-stages.tmp.$$"
  rm -rf "$CACHE/kwok-stages"
  mv "$CACHE/kwok-stages.tmp.$$" "$CACHE/kwok-stages"
  install -m 0644 "$work/kwok-stages.yaml" "$CACHE/kwok-stages.yaml.tmp.$$"
  mv -f "$CACHE/kwok-stages.yaml.tmp.$$" "$CACHE/kwok-stages.yaml"
  place "$work/kwok" kwok
  say "kwok: built in $(($(date +%s) - start)) s"
}

build_component kube-apiserver
build_component kube-controller-manager
build_component kube-scheduler
build_component kubectl
build_kwok
[ "$HOST_ONLY" = 1 ] || build_component kubelet
echo "$K8S_VERSION" >"$CACHE/VERSION.tmp.$$"
mv -f "$CACHE/VERSION.tmp.$$" "$CACHE/VERSION"
say "done in $(($(date +%s) - total_start)) s -> $CACHE"
echo "$CACHE"
