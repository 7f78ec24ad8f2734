#!/usr/bin/env bash
# Builds config/base with the chosen components of config/components, the way
# config/default builds it with its defaults, without editing a file:
#
#   hack/kustomize-build.sh [component ...]     e.g. admission prometheus
#
# With no component: config/base alone. Writes the manifests to stdout.
# Environment: KUBECTL (default: kubectl on PATH); IMG, the manager image
# (default: the image of config/manager).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
KUBECTL="${KUBECTL:-kubectl}"
# kustomize takes no absolute paths: the work dir sits in config/ (ignored by Git).
tmp="$(mktemp -d "$root/config/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
config=..
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "- $config/base"
  echo "components:"
  for c in "$@"; do
    if [ ! -f "$root/config/components/$c/kustomization.yaml" ]; then
      echo "kustomize-build: no component $c; choose from: $(cd "$root/config/components" && echo *)" >&2
      exit 1
    fi
    echo "- $config/components/$c"
  done
} >"$tmp/kustomization.yaml"
if [ -n "${IMG:-}" ]; then
  "$KUBECTL" kustomize "$tmp" | sed "s|image: offering-operator:dev|image: $IMG|"
else
  "$KUBECTL" kustomize "$tmp"
fi
