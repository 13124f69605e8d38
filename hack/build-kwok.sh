#!/usr/bin/env bash
# Build kwok (sigs.k8s.io/kwok: simulated nodes and pods) from its Go module into the
# same cache as the control plane. Used by the `local` e2e cluster and the demo.
set -euo pipefail

KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
CACHE_ROOT="${ENSEMBLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ensemble-operator}"
BIN="$CACHE_ROOT/k8s/$K8S_VERSION/bin"
WORK="$CACHE_ROOT/kwok/$KWOK_VERSION/src"
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

log() { printf '[build-kwok %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'build-kwok: error: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not installed (Go >= 1.26 needed to build kwok)"

if [ -x "$BIN/kwok" ]; then echo "$BIN/kwok"; exit 0; fi
mkdir -p "$BIN" "$WORK"
cd "$WORK"
if [ ! -f .ready ]; then
  rm -f go.mod go.sum
  log "wrapper module for sigs.k8s.io/kwok@$KWOK_VERSION"
  go mod init ensemble-operator.local/kwokbuild >/dev/null 2>&1
  go mod edit -require "sigs.k8s.io/kwok@$KWOK_VERSION"
  modfile="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  [ -f "$modfile" ] || die "could not download sigs.k8s.io/kwok@$KWOK_VERSION"
  { sed -n '/^replace (/,/^)/p' "$modfile" | grep '=>' || true; } | while read -r line; do
    go mod edit -replace "$(echo "$line" | sed 's/ => /=/; s/ \(v[^ ]*\)$/@\1/; s/ //g')"
  done
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' > tools.go
  go mod tidy -e >/dev/null || die "go mod tidy failed for kwok"
  touch .ready
fi
log "go build kwok"
go build -tags tools -trimpath -ldflags "-s -w" -o "$BIN/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok || die "go build of kwok failed"
mv "$BIN/kwok.tmp" "$BIN/kwok"
log "built $BIN/kwok"
echo "$BIN/kwok"
