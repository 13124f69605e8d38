#!/usr/bin/env bash
# Runs the commands.pre the operator gives a member (hack/member_pre.py: the text minicluster()
# builds) on a real Debian rootfs and checks what it installed. The local pod runtime stands
# in for apt-get and yum and upstream's images are on a registry this check may not reach, so
# this is where the bootstrap meets a real package manager, pip and PyPI.
#
# Not part of `make test` or CI: it needs root (debootstrap, chroot, mounts), network (the
# Debian mirror, PyPI, github.com for the branch case) and minutes.
#
#   hack/verify-bootstrap.sh [CASE...]   cases: default explicit latest branch (all by default)
#
# The rootfs: `debootstrap --variant=minbase` of DEBIAN_SUITE (bookworm) with python3 included
# (Debian's apt package, no pip: how an image built with apt-get alone, as upstream's example
# member image metric-lammps is, has it), apt sources as Docker's debian image has them. It is
# built once into CACHE_ROOT/debian-rootfs/ and kept pristine; each case runs in a fresh copy.
# The branch case clones from github.com. Where github.com does not resolve, git's message is
# reported (not verified here) and the case runs again as branch-stand-in: git's url.insteadOf,
# set in the environment only, serves that URL from a local repository whose branch BRANCH is
# PyPI's sdist of the default release, so the rest of the branch path is still checked.
# Reads ENSEMBLE_CACHE, DEBIAN_SUITE, DEBIAN_MIRROR, EXPLICIT_VERSION, BRANCH, PY, KEEP_CASES,
# HOST_CA_BUNDLE.
set -uo pipefail

BUILD_NAME=verify-bootstrap
HACK="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=hack/buildlib.sh
source "$HACK/buildlib.sh"
PY="${PY:-$HACK/../.venv/bin/python}"

problem="$(bash "$HACK/prereqs.sh" verify-bootstrap)"
if [ -n "$problem" ]; then echo "$problem" >&2; exit 2; fi

SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
EXPLICIT_VERSION="${EXPLICIT_VERSION:-0.0.15}"   # a release other than the default
BRANCH="${BRANCH:-main}"
BASE="$CACHE_ROOT/debian-rootfs/$SUITE-minbase-python3"
PRISTINE="$BASE/pristine"
CASES_DIR="$BASE/cases"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(default explicit latest branch)
# The host's CA bundle, for pip and git only (environment, not the rootfs): where HTTPS goes
# through a proxy with its own CA, as here, the image's own certificates cannot verify PyPI.
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
CA_IN_ROOT=/run/verify-bootstrap-host-ca.crt
CHROOT_ENV=(/usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            "PIP_CERT=$CA_IN_ROOT" "GIT_SSL_CAINFO=$CA_IN_ROOT")

# ---- the rootfs ---------------------------------------------------------------------------------
build_pristine() {
  [ -f "$PRISTINE/.verify-bootstrap-complete" ] && { log "rootfs: cached $PRISTINE"; return; }
  local building="$BASE/building" started
  assert_unmounted "$building"
  rm -rf "$building" && mkdir -p "$BASE"
  started=$(date +%s)
  log "rootfs: debootstrap --variant=minbase --include=python3 $SUITE from $MIRROR"
  debootstrap --variant=minbase --include=python3 "$SUITE" "$building" "$MIRROR" >"$BASE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$BASE/debootstrap.log" >&2; die "debootstrap failed (above; the whole log: $BASE/debootstrap.log)"; }
  # Docker's debian:$SUITE image: the suite, its updates and security, in deb822 form.
  rm -f "$building/etc/apt/sources.list"
  cat >"$building/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$building"/var/lib/apt/lists/*   # as in the image: `apt-get update` comes first
  touch "$building/.verify-bootstrap-complete"
  mv "$building" "$PRISTINE"
  log "rootfs: built in $(human_seconds $(( $(date +%s) - started ))), $(du -sh "$PRISTINE" | cut -f1)"
}

# A directory with something mounted below it must never be removed: rm -rf would follow into
# the bind-mounted /dev.
assert_unmounted() {
  [ -e "$1" ] || return 0
  if findmnt -rn -o TARGET | grep -q "^$(realpath "$1")/"; then
    die "$1 still has mounts below it (findmnt); unmount them first"
  fi
}

MOUNTED=()
mount_into() {  # mount_into ROOT: /proc, /dev and the host's resolv.conf, as a container has them
  local root="$1" resolv
  mount -t proc proc "$root/proc" && MOUNTED+=("$root/proc")
  mount --bind /dev "$root/dev" && MOUNTED+=("$root/dev")
  resolv="$(realpath /etc/resolv.conf)"
  rm -f "$root/etc/resolv.conf" && touch "$root/etc/resolv.conf"
  mount --bind "$resolv" "$root/etc/resolv.conf" && MOUNTED+=("$root/etc/resolv.conf")
  touch "$root$CA_IN_ROOT" && mount --bind "$HOST_CA_BUNDLE" "$root$CA_IN_ROOT" && MOUNTED+=("$root$CA_IN_ROOT")
}
unmount_all() {
  local i
  for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do
    umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}"
  done
  MOUNTED=()
}
trap unmount_all EXIT
trap 'unmount_all; exit 130' INT TERM

in_root() { chroot "$ROOT" "${CHROOT_ENV[@]}" "$@"; }

# ---- the cases ----------------------------------------------------------------------------------
latest_release() {  # what `pip install ensemble-python` picks: PyPI's current release
  curl -fsS https://pypi.org/pypi/ensemble-python/json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["info"]["version"])'
}

FAILURES=()
fail() { FAILURES+=("$CASE: $*"); echo "  FAIL $*"; }
pass() { echo "  ok   $*"; }

check_common() {  # python3-cffi from apt-get; the ensemble CLI of version $1 runs
  local want="$1" status have
  status="$(in_root dpkg-query -W -f='${Status} ${Version}' python3-cffi 2>/dev/null)"
  case "$status" in
    "install ok installed "*) pass "python3-cffi installed by apt-get (${status##* })" ;;
    *) fail "python3-cffi not installed (dpkg: ${status:-unknown})" ;;
  esac
  in_root python3 -c 'import cffi' 2>/dev/null && pass "python3 imports cffi" || fail "python3 cannot import cffi"
  have="$(in_root python3 -c 'import importlib.metadata as m; print(m.version("ensemble-python"))' 2>/dev/null)"
  if [ -z "$have" ]; then
    fail "ensemble-python is not installed for python3 (log: $LOG)"
  elif [ "$have" = "$want" ]; then
    pass "ensemble-python $have installed for python3"
  else
    fail "ensemble-python $have installed, $want wanted"
  fi
  if in_root ensemble --help >/dev/null 2>&1; then
    pass "ensemble --help runs ($(in_root sh -c 'command -v ensemble'); ensemble version: $(in_root ensemble version 2>&1 | tail -n 1))"
  else
    fail "ensemble --help does not run: $(in_root ensemble --help 2>&1 | tail -n 1)"
  fi
}

check_branch() {  # git installed, the branch cloned and installed from the clone
  local status head url
  status="$(in_root dpkg-query -W -f='${Status} ${Version}' git 2>/dev/null)"
  case "$status" in
    "install ok installed "*) pass "git installed by apt-get (${status##* })" ;;
    *) fail "git not installed (dpkg: ${status:-unknown})" ;;
  esac
  head="$(in_root git -C /tmp/ensemble-python rev-parse --abbrev-ref HEAD 2>/dev/null)"
  if [ "$head" = "$BRANCH" ]; then
    pass "/tmp/ensemble-python is a clone of branch $BRANCH ($(in_root git -C /tmp/ensemble-python rev-parse --short HEAD) of $(in_root git -C /tmp/ensemble-python remote get-url origin))"
  else
    fail "no clone of branch $BRANCH in /tmp/ensemble-python; git said: $(grep -E '^(fatal|error):' "$LOG" | head -n 3 | tr '\n' ' ')"
  fi
  url="$(in_root python3 -c 'import importlib.metadata as m; print(m.distribution("ensemble-python").read_text("direct_url.json") or "")' 2>/dev/null)"
  case "$url" in
    *'"file:///tmp/ensemble-python"'*) pass "ensemble-python installed from the clone (direct_url.json: file:///tmp/ensemble-python)" ;;
    *) fail "ensemble-python not installed from /tmp/ensemble-python (direct_url.json: ${url:-none})" ;;
  esac
}

from_repo() { "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); exec(sys.argv[2])' "$HACK/.." "$1"; }
DEFAULT_VERSION="$(from_repo 'from api.v1alpha1.types import DEFAULT_ENSEMBLE_PYTHON as v; print(v)')"
UPSTREAM_REPO="$(from_repo 'from controller.reconcilers.desired.member import ENSEMBLE_PYTHON_REPO as r; print(r)').git"
STAND_IN="$BASE/ensemble-python-stand-in.git"

make_stand_in() {  # a bare repository whose branch $BRANCH is PyPI's sdist of the default release
  local work="$BASE/stand-in-work" tree
  rm -rf "$work" "$STAND_IN" && mkdir -p "$work"
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$work" "ensemble-python==$DEFAULT_VERSION" >&2 || return 1
  tar --no-same-owner -xzf "$work"/*.tar.gz -C "$work" || return 1
  tree="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  git -C "$tree" init -q -b "$BRANCH" && git -C "$tree" add -A \
    && git -C "$tree" -c user.name=verify-bootstrap -c user.email=verify-bootstrap@localhost \
         commit -q -m "ensemble-python $DEFAULT_VERSION from PyPI's sdist" \
    && git clone -q --bare "$tree" "$STAND_IN" && rm -rf "$work"
}

# A case: a fresh copy of the rootfs, the generated commands.pre run in it, its results checked.
# branch-stand-in is the branch case with github.com's URL served from the stand-in repository.
run_case() {
  CASE="$1"
  local args=() want="" started env=("${CHROOT_ENV[@]}")
  case "$CASE" in
    default) want="$DEFAULT_VERSION" ;;
    explicit) args=(--ensemble-python "$EXPLICIT_VERSION"); want="$EXPLICIT_VERSION" ;;
    latest) args=(--ensemble-python latest)
      want="$(latest_release)" || { fail "PyPI's latest release unknown (https://pypi.org/pypi/ensemble-python/json)"; return; } ;;
    branch|branch-stand-in) args=(--branch "$BRANCH") ;;
    *) die "unknown case $CASE: choose from default explicit latest branch" ;;
  esac
  echo "== case $CASE${args[*]:+ (${args[*]})}"
  ROOT="$CASES_DIR/$CASE"
  LOG="$CASES_DIR/$CASE.log"
  assert_unmounted "$ROOT"
  rm -rf "$ROOT" && mkdir -p "$CASES_DIR" && cp -a "$PRISTINE" "$ROOT"
  "$PY" "$HACK/member_pre.py" "${args[@]}" >"$ROOT/tmp/commands-pre.sh" || { fail "hack/member_pre.py failed"; return; }
  sed 's/^/  | /' "$ROOT/tmp/commands-pre.sh"
  if [ "$CASE" = branch-stand-in ]; then
    mkdir -p "$ROOT/srv" && cp -a "$STAND_IN" "$ROOT/srv/ensemble-python.git"
    env+=(GIT_CONFIG_COUNT=1 "GIT_CONFIG_KEY_0=url.file:///srv/ensemble-python.git.insteadOf" "GIT_CONFIG_VALUE_0=$UPSTREAM_REPO")
    echo "  git: $UPSTREAM_REPO -> file:///srv/ensemble-python.git (url.insteadOf, in the environment only)"
  fi
  mount_into "$ROOT"
  # As the Flux Operator's wait.sh runs it: bash, no `set -e`, before the broker starts.
  started=$(date +%s)
  chroot "$ROOT" "${env[@]}" /bin/bash /tmp/commands-pre.sh </dev/null >"$LOG" 2>&1
  TOOK=$(( $(date +%s) - started ))
  echo "  bootstrap ran in $(human_seconds "$TOOK") (log: $LOG); its last line: $(tail -n 1 "$LOG")"
  if [ "$CASE" = branch ] && grep -q "^fatal: unable to access '$UPSTREAM_REPO/': Could not resolve host" "$LOG"; then
    UNVERIFIED+=("branch: the clone from github.com fails here: $(grep -m1 '^fatal:' "$LOG")")
    echo "  NOT VERIFIED here: $(grep -m1 '^fatal:' "$LOG")"
    finish_case
    make_stand_in || { fail "could not make the stand-in repository from PyPI's sdist"; return; }
    echo "  stand-in: $STAND_IN, branch $BRANCH = PyPI's sdist of ensemble-python $DEFAULT_VERSION"
    run_case branch-stand-in
    return
  fi
  case "$CASE" in
    branch) check_branch; want="$(in_root python3 -c 'import importlib.metadata as m; print(m.version("ensemble-python"))' 2>/dev/null)" ;;
    branch-stand-in) check_branch; want="$DEFAULT_VERSION" ;;
  esac
  check_common "${want:-a version}"
  finish_case
}

finish_case() {
  TIMINGS+=("$CASE ${TOOK}s")
  unmount_all
  [ -n "${KEEP_CASES:-}" ] || { assert_unmounted "$ROOT" && rm -rf "$ROOT"; }
}

TIMINGS=()
UNVERIFIED=()
build_pristine
for c in "${CASES[@]}"; do run_case "$c"; done
echo "== bootstrap times: ${TIMINGS[*]} (load: $(cut -d' ' -f1-3 /proc/loadavg))"
[ ${#UNVERIFIED[@]} -eq 0 ] || printf 'not verified here: %s\n' "${UNVERIFIED[@]}"
if [ ${#FAILURES[@]} -gt 0 ]; then
  printf 'verify-bootstrap: %d check(s) failed:\n' "${#FAILURES[@]}"; printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
echo "verify-bootstrap: every check passed"
