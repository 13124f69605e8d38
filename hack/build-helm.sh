#!/usr/bin/env bash
# Build helm (helm.sh/helm/v4) from its Go module into the cache beside the control plane,
# for the chart's tests (helm lint, template, install/upgrade/uninstall on the local cluster).
#
#   hack/build-helm.sh                 # build if missing, print the binary's path
#   HELM_VERSION=v4.3.2 hack/build-helm.sh
set -euo pipefail

BUILD_NAME=build-helm
# shellcheck source=hack/gobuild.sh
source "$(dirname "$0")/gobuild.sh"
# shellcheck source=hack/gotool.sh
source "$(dirname "$0")/gotool.sh"
HELM_VERSION="${HELM_VERSION:-v4.3.2}"   # hack/gotools.py names the same default

build_go_command 1.26 helm helm.sh/helm/v4 "$HELM_VERSION" helm.sh/helm/v4/cmd/helm \
  "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
