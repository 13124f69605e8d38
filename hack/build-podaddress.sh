#!/usr/bin/env bash
# Build the simulated container runtime's pod-address library (hack/sim/podaddress.c): loaded
# into each local pod's processes, it makes their TCP connections come from the pod's own IP.
# Cached by the source's hash, so an edited source builds again; prints the library's path.
set -euo pipefail

BUILD_NAME=build-podaddress
HACK="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=hack/buildlib.sh
source "$HACK/buildlib.sh"
SOURCE="$HACK/sim/podaddress.c"
CC="${CC:-gcc}"

command -v "$CC" >/dev/null || die "$CC is not installed: install gcc (Debian: apt-get install gcc)"
hash="$(sha256sum "$SOURCE" | cut -c1-16)"
OUT="$CACHE_ROOT/podaddress/$hash/libpodaddress.so"
if [ ! -f "$OUT" ]; then
  mkdir -p "$(dirname "$OUT")"
  log "gcc $SOURCE"
  "$CC" -O2 -Wall -Wextra -Werror -shared -fPIC -o "$OUT.tmp" "$SOURCE" -ldl || die "gcc failed on $SOURCE"
  mv "$OUT.tmp" "$OUT"
fi
echo "$OUT"
