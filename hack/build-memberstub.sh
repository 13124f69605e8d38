#!/usr/bin/env bash
# Build the poller benchmark's member stub (bench/memberstub: a grpc-go server answering many
# simulated members' status calls) into the cache; prints the binary's path. Cached by the hash
# of its sources, so an edited stub builds again.
set -euo pipefail

BUILD_NAME=build-memberstub
# shellcheck source=hack/gobuild.sh
source "$(dirname "$0")/gobuild.sh"
SOURCE="$(cd "$(dirname "$0")/../bench/memberstub" && pwd)"

require_go 1.25
hash="$(cat "$SOURCE/main.go" "$SOURCE/go.mod" "$SOURCE/go.sum" | sha256sum | cut -c1-16)"
OUT="$CACHE_ROOT/memberstub/$hash/memberstub"
if [ ! -x "$OUT" ]; then
  mkdir -p "$(dirname "$OUT")"
  log "go build $SOURCE"
  (cd "$SOURCE" && go build -trimpath -o "$OUT.tmp" .) || die "go build failed in $SOURCE"
  mv "$OUT.tmp" "$OUT"
fi
echo "$OUT"
