# shellcheck shell=bash
# Build of kube-apiserver and kube-controller-manager from Debian's `kubernetes` source package
# (recipe: shared/control-plane.md), plus Debian's etcd. Results are cached in
# $KB_BIN (default $KB_CACHE/bin) with a `.recipe` stamp: the hash of the recipe block below
# (comments and blank lines ignored), so changing the recipe forces a rebuild. Every step is
# skipped when its output exists. Requires log.sh. Sourced, never executed.

: "${KB_CACHE:=${HOME:-/root}/.cache/kube-bind-rs}"
: "${KB_BIN:=$KB_CACHE/bin}"
KB_BUILD_DIR="$KB_CACHE/build"
KB_GOPATH="$KB_BUILD_DIR/gopath"
KB_K8S_TREE="$KB_GOPATH/src/k8s.io/kubernetes"
KB_BUILD_LOGS="$KB_CACHE/logs"
_KB_BUILD_LIB="${BASH_SOURCE[0]}"

build_recipe_hash() {
  local block
  block=$(sed -n '/^# >>> recipe/,/^# <<< recipe/p' "$_KB_BUILD_LIB" | grep -vE '^[[:space:]]*(#|$)')
  printf '%s\n' "$block" | sha256sum | cut -c1-16
}

# True when the cached binaries exist and were built by the current recipe.
build_is_current() {
  [[ -x $KB_BIN/kube-apiserver && -x $KB_BIN/kube-controller-manager && -x $KB_BIN/etcd ]] || return 1
  [[ -f $KB_BIN/.recipe && $(cat "$KB_BIN/.recipe") == "$(build_recipe_hash)" ]]
}

# --- apt helpers: `apt-get update` runs at most once per run, and only when needed ---
_APT_UPDATED=false
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo "$@"
  else
    die "need root (or passwordless sudo) for: $*"
  fi
}
apt_update_once() {
  $_APT_UPDATED && return 0
  log "  apt-get update"
  as_root apt-get update >>"$BUILD_STEP_LOG" 2>&1
  _APT_UPDATED=true
}
pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ $status == "install ok installed" ]]
}
apt_install_missing() {
  local p
  local -a missing=()
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  apt_update_once
  log "  apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}" >>"$BUILD_STEP_LOG" 2>&1
}

# True when apt has a source index (deb-src enabled and fetched).
apt_has_source_index() {
  compgen -G '/var/lib/apt/lists/*_Sources*' >/dev/null
}

# Enable deb-src for every active deb822 *.sources file ("Types: deb" -> "Types: deb deb-src"),
# or for one-line sources.list entries; the next `apt-get update` fetches the indexes.
apt_enable_deb_src() {
  local f changed=false
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    if grep -qE '^Types:[[:space:]]*deb[[:space:]]*$' "$f"; then
      as_root sed -i -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' "$f"
      log "  enabled deb-src in $f"
      changed=true
    fi
  done
  if ! $changed && [[ -f /etc/apt/sources.list ]] && ! grep -qE '^deb-src ' /etc/apt/sources.list; then
    local lines
    lines=$(sed -n 's/^deb /deb-src /p' /etc/apt/sources.list)
    if [[ -n $lines ]]; then
      printf '%s\n' "$lines" | as_root tee /etc/apt/sources.list.d/kube-bind-rs-deb-src.list >/dev/null
      log "  enabled deb-src in /etc/apt/sources.list.d/kube-bind-rs-deb-src.list"
      changed=true
    fi
  fi
  if $changed || ! apt_has_source_index; then
    # The indexes must be (re)fetched; an update done earlier in this run did not have them.
    _APT_UPDATED=false
    apt_update_once
  fi
}

# >>> recipe (everything up to the end marker is hashed into the .recipe stamp)
KB_BUILD_PACKAGES=(golang-go etcd-server dpkg-dev golang-github-modern-go-reflect2-dev)
KB_REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

_go() {
  (cd "$KB_K8S_TREE" && env GOPATH="$KB_GOPATH" GOCACHE="$KB_CACHE/go-cache" GO111MODULE=off \
    CGO_ENABLED=0 GOFLAGS= GOPROXY=off go "$@")
}

orig_tarball() {
  local f
  for f in "$KB_CACHE"/downloads/kubernetes_*.orig.tar.gz; do
    if [[ -f $f ]]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
}

step_packages() {
  if [[ -z $(orig_tarball) ]]; then
    apt_enable_deb_src
  fi
  apt_install_missing "${KB_BUILD_PACKAGES[@]}"
  [[ -x /usr/bin/etcd ]] || die "etcd-server is installed but /usr/bin/etcd is missing"
  [[ -f $KB_REFLECT2_SRC/go_above_118.go ]] ||
    die "$KB_REFLECT2_SRC lacks go_above_118.go (need reflect2 >= 1.0.2 for go >= 1.18)"
}

step_source() {
  [[ -n $(orig_tarball) ]] && return 0
  mkdir -p "$KB_CACHE/downloads"
  if ! (cd "$KB_CACHE/downloads" && apt-get source --download-only kubernetes) >>"$BUILD_STEP_LOG" 2>&1; then
    # The source index may be stale: refresh once and retry.
    $_APT_UPDATED && return 1
    apt_update_once
    (cd "$KB_CACHE/downloads" && apt-get source --download-only kubernetes) >>"$BUILD_STEP_LOG" 2>&1
  fi
  [[ -n $(orig_tarball) ]] || die "apt-get source did not produce kubernetes_*.orig.tar.gz"
}

step_unpack() {
  [[ -f $KB_K8S_TREE/.unpacked ]] && return 0
  local tmp top
  rm -rf "$KB_K8S_TREE" "$KB_BUILD_DIR/unpack"
  tmp="$KB_BUILD_DIR/unpack"
  mkdir -p "$tmp" "$(dirname "$KB_K8S_TREE")"
  tar -xzf "$(orig_tarball)" -C "$tmp"
  top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d)
  [[ -n $top && -d $top/vendor && -d $top/cmd/kube-apiserver ]] || die "unexpected layout in $(orig_tarball)"
  mv "$top" "$KB_K8S_TREE"
  rmdir "$tmp"
  touch "$KB_K8S_TREE/.unpacked"
}

# The vendored reflect2 1.0.1 breaks map iteration under go >= 1.18 (SIGSEGV in aeshashbody at
# the first custom-object write); Debian's 1.0.2 fixes it.
step_reflect2() {
  [[ -f $KB_K8S_TREE/.reflect2 ]] && return 0
  local dst="$KB_K8S_TREE/vendor/github.com/modern-go/reflect2" f
  rm -rf "$dst"
  mkdir -p "$dst"
  for f in "$KB_REFLECT2_SRC"/*.go "$KB_REFLECT2_SRC"/*.s; do
    [[ -f $f && $f != *_test.go ]] && cp "$f" "$dst/"
  done
  [[ -f $dst/go_above_118.go ]] || die "reflect2 replacement failed"
  touch "$KB_K8S_TREE/.reflect2"
}

step_openapi_gen() {
  [[ -x $KB_BUILD_DIR/tools/openapi-gen ]] && return 0
  mkdir -p "$KB_BUILD_DIR/tools"
  _go build -o "$KB_BUILD_DIR/tools/openapi-gen.tmp" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen >>"$BUILD_STEP_LOG" 2>&1
  mv "$KB_BUILD_DIR/tools/openapi-gen.tmp" "$KB_BUILD_DIR/tools/openapi-gen"
}

# Import paths of the package dirs under $@ (tree-relative) tagged `// +k8s:openapi-gen=`.
# `grep -R` (not -r): vendor/k8s.io/* are symlinks into staging/.
openapi_tagged_packages() {
  local files
  files=$(cd "$KB_K8S_TREE" && grep -RlE '^// \+k8s:openapi-gen=' --include='*.go' "$@") || true
  printf '%s\n' "$files" | grep -vE '^vendor/k8s\.io/(code-generator|sample-apiserver)/' |
    grep -v '^$' | xargs -r -n1 dirname | sort -u |
    sed -E 's#^vendor/##; t; s#^#k8s.io/kubernetes/#'
}

# openapi_generate OUTPUT_PACKAGE INPUT_IMPORT_PATH...
openapi_generate() {
  local out=$1 inputs
  shift
  inputs=$(printf '%s,' "$@")
  inputs=${inputs%,}
  (cd "$KB_K8S_TREE" && env GOPATH="$KB_GOPATH" GO111MODULE=off \
    "$KB_BUILD_DIR/tools/openapi-gen" -i "$inputs" -p "$out" -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -o "$KB_GOPATH/src" \
    -r "$KB_BUILD_DIR/openapi-violations-$(basename "$(dirname "$(dirname "$out")")").report") >>"$BUILD_STEP_LOG" 2>&1
}

step_openapi() {
  local main="$KB_K8S_TREE/pkg/generated/openapi/zz_generated.openapi.go"
  if [[ ! -f $KB_K8S_TREE/.openapi ]]; then
    local -a pkgs
    mapfile -t pkgs < <(openapi_tagged_packages pkg cmd plugin vendor/k8s.io)
    log "  openapi-gen: ${#pkgs[@]} input packages"
    ((${#pkgs[@]} >= 50)) || die "only ${#pkgs[@]} openapi input packages found (expected ~80)"
    rm -f "$main"
    openapi_generate k8s.io/kubernetes/pkg/generated/openapi "${pkgs[@]}"
    local lines
    lines=$(wc -l <"$main")
    ((lines > 10000)) || die "$main has only $lines lines (expected ~51000)"
    log "  openapi-gen: $main ($lines lines)"
    touch "$KB_K8S_TREE/.openapi"
  fi
  # These ship in the tarball; generated only if missing.
  local base meta="k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version"
  for base in kube-aggregator apiextensions-apiserver; do
    if [[ ! -f $KB_K8S_TREE/vendor/k8s.io/$base/pkg/generated/openapi/zz_generated.openapi.go ]]; then
      local -a extra=()
      # As shipped: the aggregator's own tagged API packages; apiextensions' only autoscaling/v1.
      if [[ $base == kube-aggregator ]]; then
        mapfile -t extra < <(openapi_tagged_packages "vendor/k8s.io/$base/pkg/apis")
      else
        extra=(k8s.io/api/autoscaling/v1)
      fi
      log "  openapi-gen: generating the missing $base openapi"
      # shellcheck disable=SC2086 # $meta is a list of import paths
      openapi_generate "k8s.io/kubernetes/vendor/k8s.io/$base/pkg/generated/openapi" $meta "${extra[@]}"
    fi
  done
}

# "1.20.5+really1.20.2" -> "1.20.2"
kube_version() {
  local v
  v=$(basename "$(orig_tarball)")
  v=${v#kubernetes_}
  v=${v%.orig.tar.gz}
  [[ $v == *really* ]] && v=${v##*really}
  v=${v%%[+~-]*}
  [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot derive the Kubernetes version from $(orig_tarball)"
  printf '%s\n' "$v"
}

# -X flags must name the vars by their GOPATH vendor path, else the binaries say v0.0.0-master.
version_ldflags() {
  local v major minor date p flags=""
  v=$(kube_version)
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  date=$(date -u -r "$(orig_tarball)" +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=v$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    flags+=" -X $p.gitTreeState=archive -X $p.buildDate=$date"
  done
  printf '%s\n' "${flags# }"
}

_go_build_cmd() {
  _go build -v -ldflags "$(version_ldflags)" -o "$KB_BUILD_DIR/out/$1.tmp" "./cmd/$1" >>"$BUILD_STEP_LOG" 2>>"$2"
}

# build_binary NAME: go build ./cmd/NAME into $KB_BUILD_DIR/out (with a heartbeat), then
# install it into $KB_BIN.
build_binary() {
  local name=$1 progress
  if [[ ! -x $KB_BUILD_DIR/out/$name ]]; then
    mkdir -p "$KB_BUILD_DIR/out"
    progress="$KB_BUILD_LOGS/build-$name.packages"
    : >"$progress"
    # `go build -v` names each package it compiles on stderr: the heartbeat counts them.
    if ! run_with_heartbeat "compiling $name" "$progress" _go_build_cmd "$name" "$progress"; then
      cat "$progress" >>"$BUILD_STEP_LOG"
      return 1
    fi
    mv -f "$KB_BUILD_DIR/out/$name.tmp" "$KB_BUILD_DIR/out/$name"
  fi
  install_binary "$KB_BUILD_DIR/out/$name" "$KB_BIN/$name"
}
step_kube_apiserver() { build_binary kube-apiserver; }
step_kube_controller_manager() { build_binary kube-controller-manager; }

step_etcd_link() {
  ln -sfn /usr/bin/etcd "$KB_BIN/etcd"
}
# <<< recipe

# install_binary SRC DST: replace DST atomically (hard link, else copy, then rename), so the
# binaries in $KB_BIN stay usable while a rebuild runs and running processes keep theirs.
install_binary() {
  local src=$1 dst=$2 tmp
  mkdir -p "$(dirname "$dst")"
  tmp="$(dirname "$dst")/.$(basename "$dst").tmp.$$"
  ln -f "$src" "$tmp" 2>/dev/null || cp -f "$src" "$tmp"
  mv -f "$tmp" "$dst"
}

BUILD_STEP=""
BUILD_STEP_LOG=/dev/null
_build_on_exit() {
  if ((KB_EXIT_RC != 0)) && [[ -n $BUILD_STEP ]]; then
    log_tail "$BUILD_STEP_LOG" 20
    printf '%s [%s] error: build step "%s" failed (exit %s); full log: %s\n' "$(date +%H:%M:%S)" \
      "$KB_LOG_PREFIX" "$BUILD_STEP" "$KB_EXIT_RC" "$BUILD_STEP_LOG" >&2
  fi
}

_BUILD_STEPS=(packages source unpack reflect2 openapi_gen openapi kube_apiserver kube_controller_manager etcd_link)
build_run_step() {
  local i=$1 name=$2 t
  BUILD_STEP=${name//_/-}
  BUILD_STEP_LOG="$KB_BUILD_LOGS/build-$BUILD_STEP.log"
  t=$(kb_now)
  log "build [$i/${#_BUILD_STEPS[@]}] $BUILD_STEP"
  printf '===== %s\n' "$(date -Is)" >>"$BUILD_STEP_LOG"
  "step_$name"
  log "build [$i/${#_BUILD_STEPS[@]}] $BUILD_STEP: done in $(kb_elapsed "$t") s"
  BUILD_STEP=""
}

_BUILD_LOCK_FD=
# Build (or confirm) the binaries; safe to run from several processes at once.
build_all() {
  local hash t i
  if build_is_current; then
    log "binaries up to date in $KB_BIN (recipe $(build_recipe_hash))"
    return 0
  fi
  mkdir -p "$KB_CACHE" "$KB_BUILD_LOGS"
  exec {_BUILD_LOCK_FD}>"$KB_CACHE/.build.lock"
  if ! flock -n "$_BUILD_LOCK_FD"; then
    log "another build is running in $KB_CACHE; waiting for it"
    flock -w 3600 "$_BUILD_LOCK_FD" || die "timed out waiting for the build lock $KB_CACHE/.build.lock"
    if build_is_current; then
      log "binaries up to date in $KB_BIN"
      return 0
    fi
  fi
  kb_on_exit _build_on_exit
  hash=$(build_recipe_hash)
  t=$(kb_now)
  log "building kube-apiserver and kube-controller-manager (recipe $hash, cache $KB_CACHE); a cold build takes ~4-5 min"
  # Outputs of an older recipe are discarded; downloads and the Go cache are kept, and the old
  # binaries stay in $KB_BIN until the new ones replace them.
  if [[ ! -f $KB_BUILD_DIR/.recipe || $(cat "$KB_BUILD_DIR/.recipe") != "$hash" ]]; then
    [[ -d $KB_BUILD_DIR ]] && log "recipe changed: discarding $KB_BUILD_DIR"
    rm -rf "$KB_BUILD_DIR"
    mkdir -p "$KB_BUILD_DIR"
    printf '%s\n' "$hash" >"$KB_BUILD_DIR/.recipe"
  fi
  rm -f "$KB_BIN/.recipe"
  for i in "${!_BUILD_STEPS[@]}"; do
    build_run_step "$((i + 1))" "${_BUILD_STEPS[i]}"
  done
  printf '%s\n' "$hash" >"$KB_BIN/.recipe"
  log "build finished in $(kb_elapsed "$t") s: $("$KB_BIN/kube-apiserver" --version 2>&1), binaries in $KB_BIN"
  exec {_BUILD_LOCK_FD}>&-
}
