#!/usr/bin/env bash
# Build actionlint (github.com/rhysd/actionlint) from its Go module into the cache: the
# workflow files in .github/workflows cannot run here, so a test lints them with it.
#
#   hack/build-actionlint.sh           # build if missing, print the binary's path
set -euo pipefail

BUILD_NAME=build-actionlint
# shellcheck source=hack/gobuild.sh
source "$(dirname "$0")/gobuild.sh"
# shellcheck source=hack/gotool.sh
source "$(dirname "$0")/gotool.sh"
ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"   # hack/gotools.py names the same default

build_go_command 1.25 actionlint github.com/rhysd/actionlint "$ACTIONLINT_VERSION" \
  github.com/rhysd/actionlint/cmd/actionlint "-X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION"
