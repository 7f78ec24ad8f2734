#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager and kubectl for the
# Kubernetes version below, offline, from the Go module proxy.
#
# Order of preference:
#   1. $KUBEBUILDER_ASSETS, when it already holds all four binaries;
#   2. the cache (setup-envtest layout): $ENVTEST_CACHE/k8s/<version>-<os>-<arch>;
#   3. a build from source: a throw-away wrapper module that requires
#      k8s.io/kubernetes and pins every staging module to the matching v0.x tag,
#      and a second one for etcd. First build: ~6 minutes on 2 cores.
#
# Prints the directory holding the binaries on stdout (everything else goes to
# stderr), so callers can do: export KUBEBUILDER_ASSETS=$(hack/control-plane.sh)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
ENVTEST_CACHE="${ENVTEST_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}"
DEST="${ENVTEST_CACHE}/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl)

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
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
staging="0.${minor}.${K8S_VERSION##*.}"

build_kubernetes() {
  log "building Kubernetes v${K8S_VERSION} binaries from the Go module proxy (first time only, ~6 min)"
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
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  GOFLAGS=-mod=mod go mod tidy >&2
  local pkg="k8s.io/component-base/version"
  local ldflags="-s -w -X ${pkg}.gitVersion=v${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  local ldflags_client="${ldflags} -X k8s.io/client-go/pkg/version.gitVersion=v${K8S_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$DEST/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$DEST/kube-controller-manager.tmp" k8s.io/kubernetes/cmd/kube-controller-manager
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags_client" -o "$DEST/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
  for b in kube-apiserver kube-controller-manager kubectl; do mv "$DEST/$b.tmp" "$DEST/$b"; done
}

build_etcd() {
  log "building etcd v${ETCD_VERSION} from the Go module proxy"
  mkdir -p "$work/etcd" && cd "$work/etcd"
  cat >go.mod <<MOD
module local/etcd

go 1.26

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}
MOD
  cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  GOFLAGS=-mod=mod go mod tidy >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$DEST/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$DEST/etcd.tmp" "$DEST/etcd"
}

[ -x "$DEST/etcd" ] || (build_etcd)
{ [ -x "$DEST/kube-apiserver" ] && [ -x "$DEST/kube-controller-manager" ] && [ -x "$DEST/kubectl" ]; } || (build_kubernetes)
have_all "$DEST" || { log "build finished but binaries are missing in $DEST"; exit 1; }
log "binaries ready in $DEST"
echo "$DEST"
