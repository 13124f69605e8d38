# build_go_command: one command of a published Go module, built into the cache through a
# wrapper module (the module's replace directives copied, as gobuild.sh's helpers do).
# Source it after gobuild.sh; used by build-helm.sh and build-actionlint.sh.

# build_go_command GO_MIN NAME MODULE VERSION PACKAGE [LDFLAGS]: build PACKAGE of MODULE@VERSION
# into $CACHE_ROOT/NAME/VERSION/bin/NAME unless it is there; prints the binary's path. Go
# (at least GO_MIN) is asked for only when something is built.
build_go_command() {
  local go_min="$1"; shift
  local name="$1" module="$2" version="$3" package="$4" ldflags="${5:-}"
  local out="$CACHE_ROOT/$name/$version/bin" work="$CACHE_ROOT/$name/$version/src" started
  if [ -x "$out/$name" ]; then echo "$out/$name"; return 0; fi
  require_go "$go_min"
  started=$(date +%s)
  mkdir -p "$out" "$work"
  (
    cd "$work"
    if [ ! -f .ready ]; then
      rm -f go.mod go.sum tools.go
      log "wrapper module for $module@$version"
      go mod init "ensemble-operator.local/${name}build" >/dev/null 2>&1
      go mod edit -require "$module@$version"
      copy_version_replaces "$(module_gomod "$module@$version")"
      printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" > tools.go
      go mod tidy -e >tidy.log 2>&1 || die "go mod tidy failed for $module@$version (module proxy reachable? see $work/tidy.log)"
      touch .ready
    fi
    log "go build $name $version"
    go build -tags tools -trimpath -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$package" \
      || die "go build of $package@$version failed (see above)"
    mv "$out/$name.tmp" "$out/$name"
  ) || exit 1
  log "built $out/$name in $(( $(date +%s) - started )) s"
  echo "$out/$name"
}
