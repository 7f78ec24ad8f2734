#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kubectl for the Kubernetes version below, and kwok (simulated nodes: the
# local cluster's pods are scheduled and complete without a kubelet), offline,
# from the Go module proxy.
#
# Order of preference:
#   1. $KUBEBUILDER_ASSETS, when it already holds every binary;
#   2. the cache (setup-envtest layout): $ENVTEST_CACHE/k8s/<version>-<os>-<arch>;
#   3. a build from source of what the cache lacks, and only that (a cache from
#      before kube-scheduler and kwok gains them; nothing there is rebuilt): a
#      throw-away wrapper module that requires k8s.io/kubernetes and pins every
#      staging module to the matching v0.x tag, one for etcd and one for kwok.
#      First build: see docs/performance.md. Two callers never build at once:
#      the second waits for the first (a lock in the cache directory).
#
# Prints the directory holding the binaries on stdout (everything else goes to
# stderr), so callers can do: export KUBEBUILDER_ASSETS=$(hack/control-plane.sh)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
ENVTEST_CACHE="${ENVTEST_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}"
DEST="${ENVTEST_CACHE}/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
BINARIES=(etcd "${K8S_BINARIES[@]}" kwok)

log() { echo "control-plane: $*" >&2; }

have_all() {
  local dir="$1" b
  [ -n "$dir" ] || return 1
  for b in "${BINARIES[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if have_all "${KUBEBUILDER_ASSETS:-}"; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
if have_all "$DEST"; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$DEST"
exec 9>"$DEST/.build.lock"
flock 9
if have_all "$DEST"; then # built by the caller that held the lock
  echo "$DEST"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
staging="0.${minor}.${K8S_VERSION##*.}"

# missing BINARY...: the ones not yet in $DEST.
missing() {
  local b
  for b in "$@"; do [ -x "$DEST/$b" ] || echo "$b"; done
}

build_kubernetes() {
  local wanted=("$@") b
  log "building ${wanted[*]} v${K8S_VERSION} from the Go module proxy (first time only)"
  mkdir -p "$work/k8s" && cd "$work/k8s"
  cat >go.mod <<MOD
module local/control-plane

go 1.26
MOD
  # Every k8s.io staging module that k8s.io/kubernetes replaces with a local
  # path must be replaced with the published tag of the same release.
  local gomod
  gomod="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print "replace " $1 " => " $1 " v'"$staging"'"}'
  } >>go.mod
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  GOFLAGS=-mod=mod go mod tidy >&2
  local pkg="k8s.io/component-base/version"
  local ldflags="-s -w -X ${pkg}.gitVersion=v${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  local ldflags_client="${ldflags} -X k8s.io/client-go/pkg/version.gitVersion=v${K8S_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
  for b in "${wanted[@]}"; do
    local flags="$ldflags"
    [ "$b" = kubectl ] && flags="$ldflags_client"
    CGO_ENABLED=0 go build -trimpath -ldflags "$flags" -o "$DEST/$b.tmp" "k8s.io/kubernetes/cmd/$b"
  done
  for b in "${wanted[@]}"; do mv "$DEST/$b.tmp" "$DEST/$b"; done
}

# build_tool NAME MODULE VERSION PACKAGE: $DEST/NAME, built from PACKAGE of
# MODULE at VERSION in a wrapper module (the module's own go.mod decides its
# dependencies).
build_tool() {
  local name="$1" module="$2" version="$3" package="$4"
  log "building $name v${version} from the Go module proxy"
  mkdir -p "$work/$name" && cd "$work/$name"
  printf 'module local/%s\n\ngo 1.26\n\nrequire %s v%s\n' "$name" "$module" "$version" >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >tools.go
  GOFLAGS=-mod=mod go mod tidy >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$DEST/$name.tmp" "$package"
  mv "$DEST/$name.tmp" "$DEST/$name"
}

[ -x "$DEST/etcd" ] || (build_tool etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3)
mapfile -t wanted < <(missing "${K8S_BINARIES[@]}")
[ ${#wanted[@]} -eq 0 ] || (build_kubernetes "${wanted[@]}")
[ -x "$DEST/kwok" ] || (build_tool kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok)
have_all "$DEST" || { log "build finished but binaries are missing in $DEST"; exit 1; }
log "binaries ready in $DEST"
echo "$DEST"
