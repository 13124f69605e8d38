# Shared by every hack/build-*.sh: the cache root, messages, and fetching a source release.
# Source it after setting BUILD_NAME (the prefix of messages).

CACHE_ROOT="${ENSEMBLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ensemble-operator}"

log() { printf '[%s %s] %s\n' "$BUILD_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '%s: error: %s\n' "$BUILD_NAME" "$*" >&2; exit 1; }

# fetch_source VAR URL WORK [CHECK]: fill the empty directory WORK with the source that the
# variable named VAR points at (a tarball or a tree), else with URL's tarball, downloaded.
# CHECK, when given, is a function called with a tarball's path before it is unpacked.
fetch_source() {
  local var="$1" url="$2" work="$3" check="${4:-}" src="${!1:-}" tarball="$3.download.tar.gz"
  rm -rf "$work" && mkdir -p "$work"
  if [ -z "$src" ]; then
    command -v curl >/dev/null || die "curl is not installed: install it, or set $var to a source tarball or tree"
    log "download $url (set $var to build from a local copy)"
    curl -fsSL -o "$tarball" "$url" || die "could not download $url; set $var to a source tarball or tree of the pinned release"
    src="$tarball"
  fi
  if [ -d "$src" ]; then
    log "copy source tree $src"
    cp -a "$src/." "$work/"
  elif [ -f "$src" ]; then
    [ -z "$check" ] || "$check" "$src"
    log "unpack $src"
    tar -xzf "$src" -C "$work" --strip-components=1 || die "could not unpack $src"
  else
    die "$var=$src is neither a tarball nor a directory"
  fi
  rm -f "$tarball"
}
