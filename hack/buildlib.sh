# Shared by every hack/build-*.sh: the cache root, messages, and fetching a source release.
# Source it after setting BUILD_NAME (the prefix of messages).

CACHE_ROOT="${ENSEMBLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ensemble-operator}"

log() { printf '[%s %s] %s\n' "$BUILD_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '%s: error: %s\n' "$BUILD_NAME" "$*" >&2; exit 1; }

# Pinned releases (hack/fluxoperator.py and hack/sim/fluxmembers.py read the same defaults).
FLUX_CORE_VERSION="${FLUX_CORE_VERSION:-0.88.0}"
FLUX_OPERATOR_COMMIT="${FLUX_OPERATOR_COMMIT:-0d75cef855dee5351d68e32ec139a70e892b5268}"
# Debian packages flux-core builds with: build-flux.sh installs them as root; hack/prereqs.sh
# names the missing ones otherwise.
FLUX_DEBIAN_DEPS=(autoconf automake libtool make gcc g++ pkg-config libzmq3-dev libjansson-dev liblz4-dev
                  libarchive-dev libhwloc-dev lua5.1 liblua5.1-dev lua-posix python3-cffi python3-ply
                  python3-dev python3-setuptools python3-yaml python3-venv uuid-dev libsqlite3-dev curl)

# missing_debian_packages PKG...: those of PKG that dpkg does not list as installed.
missing_debian_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || printf '%s ' "$pkg"
  done
}

# Seconds each first build took on a fresh clone with empty caches (ENSEMBLE_CACHE, GOMODCACHE,
# GOCACHE and PIP_CACHE_DIR all new and empty, so every Go module and wheel was downloaded),
# 2 cores, otherwise idle, 2026-12-07; flux-core's Debian build packages were already installed
# but one. `make run` took 13 min 0 s in all. These are the estimates the builds print and the
# README's timings; kube-apiserver alone took 278 s of ESTIMATE_K8S.
ESTIMATE_VENV=38
ESTIMATE_K8S=445
ESTIMATE_KWOK=65
ESTIMATE_FLUX_OPERATOR=47
ESTIMATE_FLUX=150
ESTIMATE_FLUX_MEMBER_VENV=24  # of ESTIMATE_FLUX: the member virtualenv alone

# step_start WHAT ESTIMATE_SECONDS / step_done WHAT: a build step, said at start with the
# measured estimate, and at its end with the time it took.
step_start() {
  STEP_STARTED=$(date +%s)
  log "$1: building (measured on 2 cores with an empty cache: $(human_seconds "$2"), downloads included)"
}
step_done() { log "$1: done in $(human_seconds $(( $(date +%s) - STEP_STARTED )))"; }
human_seconds() { if [ "$1" -ge 120 ]; then printf '%d min %d s' $(( $1 / 60 )) $(( $1 % 60 )); else printf '%d s' "$1"; fi; }

# archive_commit TARBALL: the commit a GitHub archive records (git get-tar-commit-id), or nothing.
# (git reads the first block only, so gzip's SIGPIPE fails the pipe: hence || true.)
archive_commit() { { command -v git >/dev/null && { gzip -dc "$1" 2>/dev/null | git get-tar-commit-id 2>/dev/null; }; } || true; }

# refuse_other_commit TARBALL (a fetch_source CHECK): die when the archive records a commit other
# than PINNED_COMMIT. The build script sets PINNED_COMMIT, PINNED_NAME (the project, as the message
# names it) and PINNED_SRC_VAR (the variable that points at a source).
refuse_other_commit() {
  local commit
  commit="$(archive_commit "$1")"
  if [ -n "$commit" ] && [ "$commit" != "$PINNED_COMMIT" ]; then
    die "$1 is $PINNED_NAME commit $commit, not the pinned $PINNED_COMMIT: point $PINNED_SRC_VAR at the pinned commit's source"
  fi
}

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
