#!/usr/bin/env bash
# Builds the kubectl-offering release archives and writes the krew plugin
# manifest (offering.yaml) that points at them, with their sha256 sums.
#
# Usage: hack/krew.sh VERSION OUTDIR [OS/ARCH ...]
#   VERSION   the release tag, e.g. v0.1.0 (also what `kubectl offering version` prints)
#   OUTDIR    where the archives and offering.yaml are written
#   OS/ARCH   the platforms (default: linux, darwin and windows on amd64 and arm64)
# Environment:
#   RELEASE_URL  where the archives are published (default: the GitHub
#                release of VERSION); the manifest's uri is RELEASE_URL/ARCHIVE
#
# The archives are reproducible (sorted, fixed times and owners, gzip -n), so
# the same commit and Go version give the same sums.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -lt 2 ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
VERSION="$1"
OUT="$2"
shift 2
PLATFORMS=("$@")
if [ ${#PLATFORMS[@]} -eq 0 ]; then
  PLATFORMS=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64)
fi
REPO_URL="https://github.com/offering-operator/offering-operator"
RELEASE_URL="${RELEASE_URL:-$REPO_URL/releases/download/$VERSION}"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT

platforms_yaml=""
for platform in "${PLATFORMS[@]}"; do
  os="${platform%/*}"
  arch="${platform#*/}"
  bin="kubectl-offering"
  [ "$os" = windows ] && bin="kubectl-offering.exe"
  dir="$STAGE/${os}_${arch}"
  mkdir -p "$dir"
  (cd "$ROOT" && CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath \
    -ldflags "-s -w -X github.com/offering-operator/offering-operator/internal/plugin.version=$VERSION" \
    -o "$dir/$bin" ./cmd/kubectl-offering)
  files="    - from: $bin
      to: ."
  if [ "$os" != windows ]; then
    cp "$ROOT/cmd/kubectl-offering/kubectl_complete-offering" "$dir/"
    files="$files
    - from: kubectl_complete-offering
      to: ."
  fi
  cp "$ROOT/README.md" "$dir/"
  archive="kubectl-offering_${VERSION}_${os}_${arch}.tar.gz"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf - . | gzip -n >"$OUT/$archive"
  sum="$(sha256sum "$OUT/$archive" | cut -d' ' -f1)"
  platforms_yaml="$platforms_yaml
  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $RELEASE_URL/$archive
    sha256: $sum
    bin: $bin
    files:
$files"
done

cat >"$OUT/offering.yaml" <<MANIFEST
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: offering
spec:
  version: $VERSION
  homepage: $REPO_URL
  shortDescription: Request, approve and report on offering-operator services
  description: |
    kubectl offering covers the human steps of an offering-operator service
    relationship: see what your ServiceAgreements entitle you to, request an
    item (or write the request as a manifest for GitOps), approve or deny a
    request and complete a manual action (providers), accept or reject
    delivered goods, explain where a request is and why, report on an
    agreement's usage and service levels, and export the offerings to a
    Backstage catalog.
  caveats: |
    The cluster needs offering-operator's CRDs (kubectl offering version says
    whether it serves them). For shell completion (kubectl 1.26 or later),
    put kubectl_complete-offering from the plugin's directory on your PATH:
      ln -s "\${KREW_ROOT:-\$HOME/.krew}/store/offering/$VERSION/kubectl_complete-offering" "\${KREW_ROOT:-\$HOME/.krew}/bin/"
  platforms:${platforms_yaml}
MANIFEST
echo "$OUT/offering.yaml"
