# shellcheck shell=bash
# Tools started next to the test world: redis-server and haproxy (Debian packages; the
# quickstart's --replicas 2 uses both too), chromium and chromium-driver (Debian; the browser
# tests drive chromium through chromedriver) and, for the e2e tests only, an external OpenID
# provider (npm oidc-provider, hack/tools/oidc-provider: package.json and
# package-lock.json committed, installed with `npm ci` into $KB_CACHE/oidc-provider/<lock hash>).
# Requires log.sh. Sourced, never executed.

: "${KB_CACHE:=${HOME:-/root}/.cache/kube-bind-rs}"
_KB_OIDC_PROVIDER_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools/oidc-provider" && pwd)

_KB_APT_UPDATED=
# apt_install PACKAGE...: `apt-get update` (at most once per script run), then install without
# recommends. No service is started: a policy-rc.d that denies every start is in place while
# apt runs (Docker images ship one; otherwise ours, removed afterwards).
apt_install() {
  local -a sudo=()
  local policy=/usr/sbin/policy-rc.d ours=
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "installing $* needs root (or sudo)"
    sudo=(sudo)
  fi
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# hack/lib/tools.sh: no service starts while it installs packages\nexit 101\n' |
      "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    ours=1
  fi
  local rc=0
  {
    if [[ -z $_KB_APT_UPDATED ]]; then
      log "apt-get update"
      "${sudo[@]}" apt-get update -qq && _KB_APT_UPDATED=1
    fi &&
      log "apt-get install $*" &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  } || rc=$?
  [[ -z $ours ]] || "${sudo[@]}" rm -f "$policy"
  ((rc == 0)) || die "apt-get install $* failed (exit $rc)"
}

# redis_install: redis-server from Debian, unless one is on PATH.
redis_install() {
  if command -v redis-server >/dev/null; then
    log "redis-server: $(redis-server --version | cut -d' ' -f1-3)"
    return 0
  fi
  local t
  t=$(kb_now)
  apt_install redis-server
  log "redis-server installed in $(kb_elapsed "$t") s: $(redis-server --version | cut -d' ' -f1-3)"
}

# chromium_install: chromium and its WebDriver server from Debian, unless both are present.
# chromium-driver is built from the same source package, so apt keeps the two at one version
# (chromedriver refuses a browser of another major).
chromium_install() {
  local -a missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  if ((${#missing[@]} > 0)); then
    local t
    t=$(kb_now)
    apt_install "${missing[@]}"
    log "${missing[*]} installed in $(kb_elapsed "$t") s"
  fi
  log "$(chromium --version 2>/dev/null | head -1); $(chromedriver --version | cut -d' ' -f1-2)"
}

# ensure_haproxy: haproxy from Debian, unless one is on PATH (the front of two backend replicas).
ensure_haproxy() {
  if command -v haproxy >/dev/null; then
    log "haproxy: $(haproxy -v | head -n 1 | cut -d' ' -f1-3)"
    return 0
  fi
  local t
  t=$(kb_now)
  apt_install haproxy
  log "haproxy installed in $(kb_elapsed "$t") s: $(haproxy -v | head -n 1 | cut -d' ' -f1-3)"
}

# node_install: node and npm (Debian's, when missing). oidc-provider 8 needs node >= 18.
node_install() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 18)) || die "node $(node --version) is too old for oidc-provider 8; install node >= 18"
}

# oidc_provider_dir: where oidc_provider_install puts this lock file's node_modules (the e2e
# harness computes the same path: harness/idp.rs).
oidc_provider_dir() {
  printf '%s/oidc-provider/%s\n' "$KB_CACHE" "$(sha256sum <"$_KB_OIDC_PROVIDER_SRC/package-lock.json" | cut -c1-16)"
}

_npm_ci_in() (
  cd "$1" && npm ci --omit=dev --no-audit --no-fund >npm-ci.log 2>&1
)

# oidc_provider_install: `npm ci --omit=dev` of hack/tools/oidc-provider into
# oidc_provider_dir, once per lock file (a temp dir renamed into place, so a half install is
# never used; concurrent callers wait on a lock). Prints nothing; logs progress.
oidc_provider_install() {
  local dir tmp t lock_fd
  dir=$(oidc_provider_dir)
  [[ -f $dir/.installed ]] && return 0
  node_install
  mkdir -p "${dir%/*}"
  exec {lock_fd}>"${dir%/*}/.install.lock"
  flock -w 600 "$lock_fd" || die "timed out waiting for ${dir%/*}/.install.lock"
  if [[ ! -f $dir/.installed ]]; then
    t=$(kb_now)
    log "oidc-provider: npm ci --omit=dev into $dir (node $(node --version))"
    tmp="$dir.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    cp "$_KB_OIDC_PROVIDER_SRC/package.json" "$_KB_OIDC_PROVIDER_SRC/package-lock.json" "$tmp/"
    if ! run_with_heartbeat "npm ci" "" _npm_ci_in "$tmp"; then
      log_tail "$tmp/npm-ci.log" 20
      die "npm ci in $tmp failed; log: $tmp/npm-ci.log"
    fi
    touch "$tmp/.installed"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    log "oidc-provider installed in $(kb_elapsed "$t") s"
  fi
  exec {lock_fd}>&-
}

# test_tools_install: everything the e2e tests start besides the test world.
test_tools_install() {
  redis_install
  chromium_install
  ensure_haproxy
  oidc_provider_install
  log "oidc-provider: $(oidc_provider_dir)"
}
