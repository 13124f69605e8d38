#!/usr/bin/env bash
# Build flux-core (broker, `flux` CLI, Python bindings) from its source release into
# $ENSEMBLE_CACHE/flux/<version>/, and beside it the member virtualenv: PyPI's
# ensemble-python (the version the operator pins) with the Flux bindings on its path.
# The local system's real members run both (hack/sim/fluxmembers.py). A no-op once built.
#
# Source: FLUX_CORE_SRC (a release tarball or an extracted tree), else the official
# release download. Debian build dependencies are installed when run as root, else named.
# Prints the install prefix on stdout; progress goes to stderr.
set -euo pipefail

BUILD_NAME=build-flux
HACK="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=hack/buildlib.sh
source "$HACK/buildlib.sh"
# The ensemble-python our MiniClusters install by default (api/v1alpha1/types.py).
ENSEMBLE_PYTHON_VERSION="${ENSEMBLE_PYTHON_VERSION:-$(sed -n 's/^DEFAULT_ENSEMBLE_PYTHON = "\([^"]*\)".*/\1/p' "$HACK/../api/v1alpha1/types.py")}"
PREFIX="$CACHE_ROOT/flux/$FLUX_CORE_VERSION"
VENV="$PREFIX/ensemble-python-$ENSEMBLE_PYTHON_VERSION"
WORK="$CACHE_ROOT/flux/src-$FLUX_CORE_VERSION"
# Flux's bindings are built for this interpreter; the member virtualenv must use the same,
# with the modules they import (cffi, ply, pyyaml).
FLUX_PYTHON="${FLUX_PYTHON:-/usr/bin/python3}"

started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started ))s"; }

[ -n "$ENSEMBLE_PYTHON_VERSION" ] || die "could not read DEFAULT_ENSEMBLE_PYTHON from api/v1alpha1/types.py"

install_debian_deps() {
  local missing
  read -r -a missing <<< "$(missing_debian_packages "${FLUX_DEBIAN_DEPS[@]}")"
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing build dependencies (${missing[*]}) and no apt-get: install their equivalents and re-run"
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  local apt_log="$CACHE_ROOT/flux/apt-get.log"
  mkdir -p "$CACHE_ROOT/flux"
  log "apt-get install ${missing[*]} (output in $apt_log)"
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    >"$apt_log" 2>&1 || die "apt-get install ${missing[*]} failed; see $apt_log (last lines: $(tail -n 5 "$apt_log" | tr '\n' ' '))"
}

unpack_source() {
  fetch_source FLUX_CORE_SRC \
    "https://github.com/flux-framework/flux-core/releases/download/v$FLUX_CORE_VERSION/flux-core-$FLUX_CORE_VERSION.tar.gz" "$WORK"
  [ -f "$WORK/configure.ac" ] || die "${FLUX_CORE_SRC:-the download} holds no flux-core source (no configure.ac)"
}

build_flux() {
  install_debian_deps
  unpack_source
  cd "$WORK"
  export FLUX_VERSION="$FLUX_CORE_VERSION"  # configure.ac asks git describe otherwise
  log "autogen + configure --prefix=$PREFIX (20 s when measured)"
  { ./autogen.sh && ./configure --prefix="$PREFIX" --disable-docs PYTHON="$FLUX_PYTHON"; } >"$WORK.configure.log" 2>&1 \
    || die "configure failed; see $WORK.configure.log"
  log "make -j$(nproc) (93 s when measured on 2 idle cores)"
  make -j"$(nproc)" >"$WORK.make.log" 2>&1 || die "make failed; see $WORK.make.log (last lines: $(tail -n 5 "$WORK.make.log" | tr '\n' ' '))"
  log "make install"
  rm -rf "$PREFIX"
  make install >"$WORK.install.log" 2>&1 || die "make install failed; see $WORK.install.log"
  cd / && rm -rf "$WORK"
  log "flux-core $FLUX_CORE_VERSION installed in $PREFIX after $(elapsed)"
}

build_member_venv() {
  local site purelib
  site="$(echo "$PREFIX"/lib/python3*/site-packages)"
  [ -d "$site/flux" ] || die "no Flux Python bindings under $PREFIX/lib (flux-core built without Python?)"
  log "member virtualenv: ensemble-python==$ENSEMBLE_PYTHON_VERSION from PyPI"
  # A virtualenv records its own path in its scripts, so it is built where it stays; a
  # failed build is removed, and the check below makes the next run build it again.
  rm -rf "$VENV"
  trap 'rm -rf "$VENV"' ERR
  "$FLUX_PYTHON" -m venv "$VENV" || die "$FLUX_PYTHON -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "ensemble-python==$ENSEMBLE_PYTHON_VERSION" cffi ply pyyaml >&2 \
    || { rm -rf "$VENV"; die "pip install ensemble-python==$ENSEMBLE_PYTHON_VERSION failed (is PyPI reachable?)"; }
  # `flux start` does not pass the bindings' path to its children: a .pth file does.
  purelib="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$site" > "$purelib/flux-core.pth"
  "$VENV/bin/python" -c 'import flux, flux.job, ensemble' \
    || { rm -rf "$VENV"; die "the member virtualenv cannot import flux and ensemble"; }
  trap - ERR
  log "member virtualenv ready in $VENV after $(elapsed)"
}

if [ ! -x "$PREFIX/bin/flux" ]; then
  step_start "flux-core $FLUX_CORE_VERSION and the member virtualenv" "$ESTIMATE_FLUX"
  build_flux
fi
if ! { [ -x "$VENV/bin/ensemble" ] && "$VENV/bin/python" -c 'import flux, ensemble' 2>/dev/null; }; then
  [ -n "${STEP_STARTED:-}" ] || step_start "the member virtualenv" "$ESTIMATE_FLUX_MEMBER_VENV"
  build_member_venv
fi
[ -z "${STEP_STARTED:-}" ] || step_done "flux-core $FLUX_CORE_VERSION and the member virtualenv"
echo "$PREFIX"
