# Shared by the Go builds in hack/build-*.sh: the binary cache, the Go check, and wrapper modules.
# Source it after setting BUILD_NAME (the prefix of messages).

# shellcheck source=hack/buildlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/buildlib.sh"
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
BIN="$CACHE_ROOT/k8s/$K8S_VERSION/bin"
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0


# The installed Go's version (1.26.0), or nothing without Go.
go_version() { if command -v go >/dev/null; then go env GOVERSION 2>/dev/null | sed 's/^go//' || true; fi; }
version_at_least() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }

require_go() {
  local have
  have="$(go_version)"
  [ -n "$have" ] || die "Go is not installed. Install Go >= $1 (Debian's golang-go is too old; use the Go toolchain from go.dev) and re-run."
  version_at_least "$1" "$have" \
    || die "this build needs Go >= $1, found $have. Install a newer Go or pin an older release (see the script's variables)."
}

# go.mod of a published module version, from the module proxy (or die naming it).
module_gomod() {
  local modfile
  modfile="$(go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  [ -f "$modfile" ] || die "could not download $1 from the Go module proxy"
  echo "$modfile"
}

# Copy a dependency's replace directives that point at published versions (not local
# paths) into the current wrapper module: replace directives only apply to the main module.
copy_version_replaces() {
  { sed -n '/^replace (/,/^)/p' "$1" | grep '=>' | grep -v '=> \./' || true; } | while read -r line; do
    go mod edit -replace "$(echo "$line" | sed 's/ => /=/; s/ \(v[^ ]*\)$/@\1/; s/ //g')"
  done
}
