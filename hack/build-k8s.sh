#!/usr/bin/env bash
# Build the Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) and etcd from their Go modules, into a cache outside
# the repository. Builds only what is missing. Go is test infrastructure here.
#
#   hack/build-k8s.sh            # build whatever is missing, print the bin dir
#   K8S_VERSION=v1.37.2 ETCD_VERSION=v3.7.0 hack/build-k8s.sh
set -euo pipefail

BUILD_NAME=build-k8s
# shellcheck source=hack/gobuild.sh
source "$(dirname "$0")/gobuild.sh"
ETCD_VERSION="${ETCD_VERSION:-v3.7.0}"
WORK="$CACHE_ROOT/k8s/$K8S_VERSION/src"

components=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing=()
for c in "${components[@]}" etcd; do
  [ -x "$BIN/$c" ] || missing+=("$c")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$BIN"; exit 0
fi
require_go 1.26  # only to build: once built, Go is not needed
log "missing: ${missing[*]} -> building into $BIN"
step_start "etcd and the Kubernetes control plane" "$ESTIMATE_K8S"
mkdir -p "$BIN" "$WORK/k8s" "$WORK/etcd"

build_k8s() {
  cd "$WORK/k8s"
  if [ ! -f .ready ]; then
    rm -f go.mod go.sum tools.go
    log "step 1/3: wrapper module for k8s.io/kubernetes@$K8S_VERSION"
    go mod init ensemble-operator.local/k8sbuild >/dev/null 2>&1
    modfile="$(module_gomod "k8s.io/kubernetes@$K8S_VERSION")"
    # The module zip omits staging/: point each staging module at its published v0.x.y.
    staging_version="v0.${K8S_VERSION#v1.}"
    go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
    for m in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$modfile"); do
      go mod edit -replace "$m=$m@$staging_version"
    done
    # Keep the rest of the dependency graph as Kubernetes pins it.
    copy_version_replaces "$modfile"
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    log "step 2/3: downloading and resolving modules (go mod tidy; output in $WORK/k8s/tidy.log)"
    go mod tidy -e >tidy.log 2>&1 || die "go mod tidy failed for k8s.io/kubernetes@$K8S_VERSION (module proxy reachable? see $WORK/k8s/tidy.log)"
    touch .ready
  fi
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for c in "${components[@]}"; do
    [ -x "$BIN/$c" ] && continue
    log "step 3/3: go build $c (this is the slow part)"
    go build -tags tools -trimpath -ldflags "$ldflags" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c" \
      || die "go build of $c failed (see above). Check the Go version and the module proxy."
    mv "$BIN/$c.tmp" "$BIN/$c"
    log "built $BIN/$c"
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return
  cd "$WORK/etcd"
  if [ ! -f .ready ]; then
    rm -f go.mod go.sum main.go
    log "etcd: wrapper module for go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod init ensemble-operator.local/etcdbuild >/dev/null 2>&1
    cat > main.go <<'GO'
// Command etcd runs the etcd server from go.etcd.io/etcd/server/v3 (test infrastructure only).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod tidy -e >tidy.log 2>&1 || die "go mod tidy failed for etcd $ETCD_VERSION (module proxy reachable? see $WORK/etcd/tidy.log)"
    touch .ready
  fi
  log "go build etcd"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" . || die "go build of etcd failed (see above)"
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  log "built $BIN/etcd"
}

build_etcd
build_k8s
step_done "etcd and the Kubernetes control plane"
echo "$BIN"
