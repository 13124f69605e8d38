#!/usr/bin/env bash
# Build the Flux Operator's manager (github.com/flux-framework/flux-operator, the commit whose
# MiniCluster CRD hack/crds/ vendors) into the cache, so the local system runs the real
# MiniCluster controller (hack/fluxoperator.py). Its Go module is not served by the module
# proxy, so it is built from a source tree with `go build .`; its dependencies are.
#
# Source: FLUX_OPERATOR_SRC (a source tarball or an extracted tree), else the official
# source download of the pinned commit. A no-op once built (then Go is not needed).
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail

BUILD_NAME=build-flux-operator
# shellcheck source=hack/gobuild.sh
source "$(dirname "$0")/gobuild.sh"
PREFIX="$CACHE_ROOT/flux-operator/${FLUX_OPERATOR_COMMIT:0:8}"
OUT="$PREFIX/bin/manager"
WORK="$PREFIX/src"
MODULE=github.com/flux-framework/flux-operator

if [ -x "$OUT" ]; then echo "$OUT"; exit 0; fi
require_go 1.24  # the go directive of its go.mod
command -v tar >/dev/null || die "tar is not installed; install it and re-run"

# A GitHub archive records its commit: refuse another one.
PINNED_COMMIT="$FLUX_OPERATOR_COMMIT" PINNED_NAME=flux-operator PINNED_SRC_VAR=FLUX_OPERATOR_SRC

unpack_source() {
  fetch_source FLUX_OPERATOR_SRC "https://github.com/flux-framework/flux-operator/archive/$FLUX_OPERATOR_COMMIT.tar.gz" \
    "$WORK" refuse_other_commit
  [ -f "$WORK/main.go" ] && grep -qx "module $MODULE" "$WORK/go.mod" 2>/dev/null \
    || die "${FLUX_OPERATOR_SRC:-the download} holds no Flux Operator source (no main.go, or go.mod is not module $MODULE)"
}

step_start "the Flux Operator's manager ($MODULE@${FLUX_OPERATOR_COMMIT:0:8})" "$ESTIMATE_FLUX_OPERATOR"
unpack_source
mkdir -p "$PREFIX/bin"
cd "$WORK"
BUILD_LOG="$PREFIX/go-build.log"
log "go build $MODULE@${FLUX_OPERATOR_COMMIT:0:8} (its modules come from the Go module proxy; output in $BUILD_LOG)"
if ! go build -trimpath -ldflags "-s -w" -o "$OUT.tmp" . >"$BUILD_LOG" 2>&1; then
  tail -n 20 "$BUILD_LOG" >&2
  die "go build of the Flux Operator failed (the end of $BUILD_LOG, above, names the cause)"
fi
mv "$OUT.tmp" "$OUT"
cd / && rm -rf "$WORK"
log "built $OUT"
step_done "the Flux Operator's manager"
echo "$OUT"
