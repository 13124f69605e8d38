#!/usr/bin/env bash
# What each make target needs, checked before it starts (the Makefile runs this first):
# prints nothing when everything is there, else ONE line naming what is missing and the
# command that installs it, and exits 1. A tool that a cached build makes unnecessary (Go
# once the control plane is built) is not asked for.
#
#   hack/prereqs.sh TARGET...        the make goals (unknown ones need nothing)
#   hack/prereqs.sh --e2e-cluster    the cluster `make e2e` uses without E2E_CLUSTER
#
# Reads PYTHON (python3), VENV (.venv), E2E_CLUSTER, KUBECONFIG, ENSEMBLE_CACHE,
# FLUX_CORE_SRC and FLUX_OPERATOR_SRC as make passes them.
set -uo pipefail

BUILD_NAME=prereqs
HACK="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=hack/gobuild.sh
source "$HACK/gobuild.sh"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$HACK/../.venv}"

problems=()
missing() { problems+=("$*"); }

sudo_prefix() { [ "$(id -u)" -eq 0 ] || printf 'sudo '; }
apt_install() {
  if command -v apt-get >/dev/null; then
    printf 'run: %sapt-get install -y %s' "$(sudo_prefix)" "$*"
  else
    printf 'install %s with your package manager' "$*"
  fi
}

# ---- single checks ------------------------------------------------------------------------------
need_tool() {  # need_tool TOOL WHY HOW
  command -v "$1" >/dev/null || missing "$1 is not installed ($2): $3"
}

need_python() {
  # A working virtualenv is all make uses; only creating it needs the system's python3.
  "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && return
  need_system_python "creates .venv" || return
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || missing "$PYTHON has no venv module (creates .venv): $(apt_install python3-venv)"
}

need_system_python() {  # need_system_python WHY: python3 >= 3.11 on PATH
  if ! command -v "$PYTHON" >/dev/null; then
    missing "$PYTHON is not installed (>= 3.11 $1): $(apt_install python3 python3-venv)"
    return 1
  fi
  local version
  version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    missing "$PYTHON is ${version:-unusable}, >= 3.11 is needed ($1): install Python 3.11 or newer (https://www.python.org/downloads/) or set PYTHON=python3.11"
    return 1
  fi
}

control_plane_built() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok; do
    [ -x "$BIN/$c" ] || return 1
  done
}

need_go() {  # need_go MIN WHAT
  local have
  have="$(go_version)"
  if [ -z "$have" ]; then
    missing "Go >= $1 is not installed ($2): install it from https://go.dev/dl/ (Debian's golang-go is too old)"
  elif ! version_at_least "$1" "$have"; then
    missing "Go is $have, >= $1 is needed ($2): install a newer one from https://go.dev/dl/"
  fi
}

need_control_plane() {  # Go, unless hack/build-k8s.sh and build-kwok.sh already built everything
  control_plane_built || need_go 1.26 "builds the local control plane into $BIN"
}

# The version a build script pins by default (its NAME_VERSION="${NAME_VERSION:-v...}" line).
pinned_version() { sed -n "s/^$1=\"\\\${$1:-\(v[^}]*\)}\".*/\1/p" "$HACK/$2"; }

go_tools_built() {  # helm and actionlint, for the tests of chart/ and .github/workflows/
  [ -x "$CACHE_ROOT/helm/${HELM_VERSION:-$(pinned_version HELM_VERSION build-helm.sh)}/bin/helm" ] \
    && [ -x "$CACHE_ROOT/actionlint/${ACTIONLINT_VERSION:-$(pinned_version ACTIONLINT_VERSION build-actionlint.sh)}/bin/actionlint" ]
}

need_test_builds() {  # Go for whatever of the control plane, helm and actionlint is not built yet
  local what=()
  control_plane_built || what+=("the local control plane into $BIN")
  go_tools_built || what+=("helm and actionlint (hack/build-helm.sh, build-actionlint.sh)")
  [ ${#what[@]} -eq 0 ] || need_go 1.26 "builds $(printf '%s; ' "${what[@]}" | sed 's/; $//')"
}

need_openssl() { need_tool openssl "makes the local cluster's certificates" "$(apt_install openssl)"; }
need_setpriv() { need_tool setpriv "the tests' servers die with their test run" "$(apt_install util-linux)"; }
need_root() {  # need_root WHY
  [ "$(id -u)" -eq 0 ] || missing "root is needed ($1): run it with sudo"
}
need_gcc() { need_tool "${CC:-gcc}" "builds the local pods' address library, hack/build-podaddress.sh" "$(apt_install gcc)"; }

need_flux_build() {  # the real Flux Operator and Flux, unless built: Go, the sources, Flux's build packages
  local operator="$CACHE_ROOT/flux-operator/${FLUX_OPERATOR_COMMIT:0:8}/bin/manager"
  local flux="$CACHE_ROOT/flux/$FLUX_CORE_VERSION/bin/flux"
  if [ ! -x "$operator" ]; then
    need_go 1.24 "builds the Flux Operator into ${operator%/bin/manager}"
    [ -n "${FLUX_OPERATOR_SRC:-}" ] || need_tool curl "downloads the Flux Operator's source" "$(apt_install curl)"
  fi
  if [ ! -x "$flux" ]; then
    [ -n "${FLUX_CORE_SRC:-}" ] || need_tool curl "downloads flux-core's source" "$(apt_install curl)"
    if [ "$(id -u)" -ne 0 ]; then  # as root build-flux.sh installs them itself
      if command -v dpkg-query >/dev/null; then
        local packages
        packages="$(missing_debian_packages "${FLUX_DEBIAN_DEPS[@]}")"
        [ -z "$packages" ] || missing "flux-core's build packages ${packages% }: $(apt_install "${packages% }")"
      else
        missing "flux-core's build packages cannot be checked without dpkg: install the equivalents of ${FLUX_DEBIAN_DEPS[*]}"
      fi
    fi
  fi
}

docker_problem() {  # why Docker cannot be used here, or nothing
  if ! command -v docker >/dev/null; then
    echo "Docker is not installed: install it (https://docs.docker.com/engine/install/)"
  elif ! timeout 20 docker info >/dev/null 2>&1; then
    echo "Docker is installed but not running (docker info failed): start it ($(sudo_prefix)systemctl start docker) or check DOCKER_HOST"
  fi
}

need_docker() {
  local problem
  problem="$(docker_problem)"
  [ -z "$problem" ] || missing "$problem"
}

need_kubectl() {
  command -v kubectl >/dev/null || [ -x "$BIN/kubectl" ] \
    || missing "kubectl is not installed (drives the cluster): install it (https://kubernetes.io/docs/tasks/tools/) or build one with make cluster-build"
}

need_kubeconfig() {
  local config="${KUBECONFIG:-$HOME/.kube/config}"
  config="${config%%:*}"
  [ -f "$config" ] || missing "no kubeconfig at $config (the existing cluster to test): set KUBECONFIG to your cluster's"
}

default_e2e_cluster() {  # as tests/e2e/providers.default_provider decides
  if command -v kind >/dev/null && [ -z "$(docker_problem)" ]; then echo kind; else echo local; fi
}

# ---- targets ------------------------------------------------------------------------------------
check_e2e() {
  need_python
  case "${E2E_CLUSTER:-$(default_e2e_cluster)}" in
    local) need_openssl; need_setpriv; need_gcc; need_control_plane ;;
    kind) need_docker; need_tool kind "creates the kind cluster" \
            "install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"; need_kubectl ;;
    k3s) need_docker; need_kubectl ;;
    existing) need_kubectl; need_kubeconfig ;;
    *) missing "E2E_CLUSTER=$E2E_CLUSTER is not a cluster kind: choose local, kind, k3s or existing" ;;
  esac
}

check_target() {
  case "$1" in
    run|bench) need_python; need_openssl; need_gcc; need_control_plane ;;
    cluster-up) need_python; need_openssl; need_control_plane ;;
    test|integration) need_python; need_openssl; need_setpriv; need_gcc; need_test_builds ;;
    tools-build) go_tools_built || need_go 1.26 "builds helm and actionlint (hack/build-helm.sh, build-actionlint.sh)" ;;
    unit) need_python; need_setpriv ;;
    e2e) check_e2e ;;
    lint|manifests|protos) need_python ;;
    cluster-build) need_control_plane ;;
    flux-build) need_flux_build ;;
    cluster-down) need_system_python "stops the local cluster" ;;
    verify-bootstrap) need_python; need_root "debootstrap, chroot and mounts"
      need_tool debootstrap "builds the Debian rootfs the member bootstrap runs in" "$(apt_install debootstrap)"
      need_tool curl "asks PyPI for ensemble-python's latest release" "$(apt_install curl)"
      need_tool findmnt "checks nothing is mounted below a rootfs before it is removed" "$(apt_install util-linux)" ;;
  esac
}

if [ "${1:-}" = --e2e-cluster ]; then
  default_e2e_cluster
  exit 0
fi
for target in "$@"; do
  problems=()
  check_target "$target"
  if [ ${#problems[@]} -gt 0 ]; then
    what="make $target"
    [ "$target" != e2e ] || what+=" (E2E_CLUSTER=${E2E_CLUSTER:-$(default_e2e_cluster)})"
    joined="$(printf '%s; ' "${problems[@]}")"
    echo "$what: ${joined%; }"
    exit 1
  fi
done
