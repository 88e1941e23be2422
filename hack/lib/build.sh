# shellcheck shell=bash
# The test world's binaries, built from published Go modules (SPEC §7): one small tools module
# per component under hack/tools/<component>/ (go.mod + go.sum committed, checksums verified),
# built with `GOTOOLCHAIN=local CGO_ENABLED=0` into $KB_BIN (default $KB_CACHE/bin).
#
# Each component is cached on its own: $KB_BIN/.stamp-<component> holds the hash of its
# go.mod, go.sum and build recipe, so bumping one module rebuilds that component only. The Go
# module and build caches live in $KB_CACHE/go/. Requires log.sh. Sourced, never executed.

: "${KB_CACHE:=${HOME:-/root}/.cache/kube-bind-rs}"
: "${KB_BIN:=$KB_CACHE/bin}"
KB_BUILD_LOGS="$KB_CACHE/logs"
_KB_TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools" && pwd)

# Every component, in build order.
# Upstream kube-bind (kubectl-bind, konnector, backend at b8be8018) would be one more, but the
# module proxy refuses github.com/kube-bind/kube-bind at that commit (403 "This module version
# is not available"; of its releases only v0.3.0 and v0.4.6, the v1alpha1 protocol, are served).
KB_COMPONENTS=(etcd kubernetes kcp kcp-cli)

# --- per-component recipes -------------------------------------------------------------------
# component_binaries C: "binary=package" lines. component_ldflags C: version -X flags.
# component_nosumdb C: modules whose checksums the proxy's sumdb mirror does not serve (404);
# their go.sum lines still pin them.

component_binaries() {
  case $1 in
    etcd) echo "etcd=go.etcd.io/etcd/server/v3" ;;
    kubernetes)
      echo "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
      echo "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
      echo "kubectl=k8s.io/kubernetes/cmd/kubectl"
      ;;
    kcp)
      echo "kcp=github.com/kcp-dev/kcp/cmd/kcp"
      echo "cache-server=github.com/kcp-dev/kcp/cmd/cache-server"
      echo "kcp-front-proxy=github.com/kcp-dev/kcp/cmd/kcp-front-proxy"
      ;;
    kcp-cli)
      echo "kubectl-ws=github.com/kcp-dev/cli/cmd/kubectl-ws"
      echo "kubectl-kcp=github.com/kcp-dev/cli/cmd/kubectl-kcp"
      echo "kubectl-create-workspace=github.com/kcp-dev/cli/cmd/kubectl-create-workspace"
      ;;
    *) die "unknown component '$1' (known: ${KB_COMPONENTS[*]})" ;;
  esac
}

# The version of MODULE required by component C's tools module.
module_version() {
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$_KB_TOOLS_DIR/$1/go.mod"
}

# kube_version_ldflags GIT_VERSION KUBE_VERSION: -X flags for the k8s.io/component-base and
# client-go version variables. Major and minor are KUBE_VERSION's (vX.Y.Z): kcp derives its
# emulated Kubernetes version from them, so they must be Kubernetes', never kcp's own.
kube_version_ldflags() {
  local v=$1 kube=$2 major minor p flags=""
  major=${kube#v}
  major=${major%%.*}
  minor=${kube#v*.}
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  printf '%s\n' "${flags# }"
}

component_ldflags() {
  local v
  case $1 in
    etcd)
      v=$(module_version etcd go.etcd.io/etcd/server/v3)
      echo "-X go.etcd.io/etcd/api/v3/version.GitSHA=module-$v"
      ;;
    kubernetes)
      v=$(module_version kubernetes k8s.io/kubernetes)
      kube_version_ldflags "$v" "$v"
      ;;
    kcp)
      # As kcp's Makefile: <Kubernetes version>+kcp-<kcp version>.
      v=$(module_version kcp k8s.io/kubernetes)
      kube_version_ldflags "$v+kcp-$(module_version kcp github.com/kcp-dev/kcp)" "$v"
      ;;
    kcp-cli)
      v=$(module_version kcp-cli k8s.io/client-go)
      kube_version_ldflags "${v/#v0./v1.}+kcp-$(module_version kcp-cli github.com/kcp-dev/cli)" "${v/#v0./v1.}"
      ;;
  esac
}

component_nosumdb() {
  case $1 in
    kcp) echo "github.com/kcp-dev/embeddedetcd" ;;
    kcp-cli) echo "github.com/kcp-dev/cli" ;;
  esac
}
# --- end of recipes ----------------------------------------------------------------------------

# The hash that decides whether component C must be rebuilt.
component_stamp() {
  local c=$1
  {
    cat "$_KB_TOOLS_DIR/$c/go.mod" "$_KB_TOOLS_DIR/$c/go.sum"
    component_binaries "$c"
    component_ldflags "$c"
    component_nosumdb "$c"
    go version
  } | sha256sum | cut -c1-16
}

component_is_current() {
  local c=$1 line
  [[ -f $KB_BIN/.stamp-$c && $(cat "$KB_BIN/.stamp-$c") == "$(component_stamp "$c")" ]] || return 1
  while IFS= read -r line; do
    [[ -x $KB_BIN/${line%%=*} ]] || return 1
  done < <(component_binaries "$c")
}

_component_go() {
  local c=$1
  shift
  (cd "$_KB_TOOLS_DIR/$c" && env GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath" \
    GOCACHE="$KB_CACHE/go/build" GOMODCACHE="$KB_CACHE/go/mod" GONOSUMDB="$(component_nosumdb "$c")" \
    go "$@")
}

# _go_to FILE C ARGS...: go ARGS in component C's module, its stderr to FILE.
_go_to() {
  local file=$1
  shift
  _component_go "$@" 2>"$file"
}

# build_binary C NAME PACKAGE: `go build -v` (its package lines are the heartbeat's progress)
# into a temp file, then an atomic rename, so running processes keep their binary.
build_binary() {
  local c=$1 name=$2 pkg=$3 progress log
  progress="$KB_BUILD_LOGS/build-$name.packages"
  log="$KB_BUILD_LOGS/build-$name.log"
  : >"$progress"
  printf '===== %s\n' "$(date -Is)" >>"$log"
  if ! run_with_heartbeat "compiling $name" "$progress" _go_to "$progress" "$c" \
    build -v -ldflags "-s -w $(component_ldflags "$c")" -o "$KB_BIN/.$name.tmp.$$" "$pkg"; then
    cat "$progress" >>"$log"
    log_tail "$progress" 20
    rm -f "$KB_BIN/.$name.tmp.$$"
    die "building $name ($pkg) failed; log: $log"
  fi
  mv -f "$KB_BIN/.$name.tmp.$$" "$KB_BIN/$name"
}

# build_component C: download its modules (checksums verified against go.sum), build each
# binary, then write the stamp.
build_component() {
  local c=$1 t line n i=0
  component_is_current "$c" && return 0
  t=$(kb_now)
  n=$(component_binaries "$c" | wc -l)
  log "build $c: downloading modules (hack/tools/$c, checksums verified)"
  if ! _component_go "$c" mod download >>"$KB_BUILD_LOGS/build-$c.log" 2>&1; then
    log_tail "$KB_BUILD_LOGS/build-$c.log" 20
    die "downloading the modules of hack/tools/$c failed; log: $KB_BUILD_LOGS/build-$c.log"
  fi
  while IFS= read -r line; do
    i=$((i + 1))
    log "build $c [$i/$n]: ${line%%=*}"
    build_binary "$c" "${line%%=*}" "${line#*=}"
  done < <(component_binaries "$c")
  component_stamp "$c" >"$KB_BIN/.stamp-$c"
  log "build $c: done in $(kb_elapsed "$t") s"
}

_BUILD_LOCK_FD=
# build_components [C...]: build (or confirm) the given components (default: all); safe to run
# from several processes at once (one builds, the others wait for its lock).
build_components() {
  local -a want=("$@") stale=()
  local c t
  ((${#want[@]})) || want=("${KB_COMPONENTS[@]}")
  for c in "${want[@]}"; do
    component_is_current "$c" || stale+=("$c")
  done
  if ((${#stale[@]} == 0)); then
    log "binaries up to date in $KB_BIN (${want[*]})"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH; install Go >= 1.26 (the machine image ships it)"
  mkdir -p "$KB_BIN" "$KB_BUILD_LOGS" "$KB_CACHE/go"
  exec {_BUILD_LOCK_FD}>"$KB_CACHE/.build.lock"
  if ! flock -n "$_BUILD_LOCK_FD"; then
    log "another build is running in $KB_CACHE; waiting for it"
    flock -w 5400 "$_BUILD_LOCK_FD" || die "timed out waiting for the build lock $KB_CACHE/.build.lock"
  fi
  t=$(kb_now)
  log "building ${stale[*]} from Go modules into $KB_BIN (a cold build of everything takes ~25 min on 2 cores)"
  for c in "${stale[@]}"; do
    build_component "$c"
  done
  log "build finished in $(kb_elapsed "$t") s"
  exec {_BUILD_LOCK_FD}>&-
}
