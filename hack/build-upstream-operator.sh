#!/usr/bin/env bash
# Build upstream's Go ensemble-operator manager (github.com/converged-computing/ensemble-operator,
# the commit pinned below) into the cache: bench/bench_scale.py --upstream measures it beside
# ours on the same API server. Benchmark infrastructure only; nothing we ship runs it. Its Go
# module is not served by the module proxy here, so it is built from a source tree with
# `go build ./cmd/manager`; its dependencies come from the proxy.
#
# Source: UPSTREAM_OPERATOR_SRC (a source tarball or an extracted tree), else the official
# source download of the pinned commit. A no-op once built (then Go is not needed).
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail

BUILD_NAME=build-upstream-operator
# shellcheck source=hack/gobuild.sh
source "$(dirname "$0")/gobuild.sh"
UPSTREAM_OPERATOR_COMMIT="${UPSTREAM_OPERATOR_COMMIT:-31bf039bff6aab8b85c0c59d763943ed5614dc7c}"
PREFIX="$CACHE_ROOT/upstream-operator/${UPSTREAM_OPERATOR_COMMIT:0:8}"
OUT="$PREFIX/bin/manager"
WORK="$PREFIX/src"
MODULE=github.com/converged-computing/ensemble-operator

if [ -x "$OUT" ]; then echo "$OUT"; exit 0; fi
require_go 1.21  # the go directive of its go.mod
command -v tar >/dev/null || die "tar is not installed; install it and re-run"

PINNED_COMMIT="$UPSTREAM_OPERATOR_COMMIT" PINNED_NAME=ensemble-operator PINNED_SRC_VAR=UPSTREAM_OPERATOR_SRC

fetch_source UPSTREAM_OPERATOR_SRC "https://github.com/converged-computing/ensemble-operator/archive/$UPSTREAM_OPERATOR_COMMIT.tar.gz" \
  "$WORK" refuse_other_commit
[ -d "$WORK/cmd/manager" ] && grep -qx "module $MODULE" "$WORK/go.mod" 2>/dev/null \
  || die "${UPSTREAM_OPERATOR_SRC:-the download} holds no ensemble-operator source (no cmd/manager, or go.mod is not module $MODULE)"

mkdir -p "$PREFIX/bin"
cd "$WORK"
BUILD_LOG="$PREFIX/go-build.log"
log "go build $MODULE/cmd/manager@${UPSTREAM_OPERATOR_COMMIT:0:8} (its modules come from the Go module proxy; output in $BUILD_LOG)"
if ! go build -trimpath -ldflags "-s -w" -o "$OUT.tmp" ./cmd/manager >"$BUILD_LOG" 2>&1; then
  tail -n 20 "$BUILD_LOG" >&2
  die "go build of upstream's operator failed (the end of $BUILD_LOG, above, names the cause)"
fi
mv "$OUT.tmp" "$OUT"
cd / && rm -rf "$WORK"
log "built $OUT"
echo "$OUT"
