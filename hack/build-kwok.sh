#!/usr/bin/env bash
# Build kwok (sigs.k8s.io/kwok: simulated nodes and pods) from its Go module into the
# same cache as the control plane. Used by the `local` e2e cluster and the demo.
set -euo pipefail

BUILD_NAME=build-kwok
# shellcheck source=hack/gobuild.sh
source "$(dirname "$0")/gobuild.sh"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
WORK="$CACHE_ROOT/kwok/$KWOK_VERSION/src"

if [ -x "$BIN/kwok" ]; then echo "$BIN/kwok"; exit 0; fi
require_go 1.26  # only to build: once built, Go is not needed
step_start "kwok $KWOK_VERSION" "$ESTIMATE_KWOK"
mkdir -p "$BIN" "$WORK"
cd "$WORK"
if [ ! -f .ready ]; then
  rm -f go.mod go.sum
  log "wrapper module for sigs.k8s.io/kwok@$KWOK_VERSION"
  go mod init ensemble-operator.local/kwokbuild >/dev/null 2>&1
  go mod edit -require "sigs.k8s.io/kwok@$KWOK_VERSION"
  copy_version_replaces "$(module_gomod "sigs.k8s.io/kwok@$KWOK_VERSION")"
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' > tools.go
  go mod tidy -e >tidy.log 2>&1 || die "go mod tidy failed for kwok (module proxy reachable? see $WORK/tidy.log)"
  touch .ready
fi
log "go build kwok"
go build -tags tools -trimpath -ldflags "-s -w" -o "$BIN/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok || die "go build of kwok failed"
mv "$BIN/kwok.tmp" "$BIN/kwok"
log "built $BIN/kwok"
step_done "kwok $KWOK_VERSION"
echo "$BIN/kwok"
