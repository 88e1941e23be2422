#!/usr/bin/env bash
# Real kcp for development and tests, built from its Go module (hack/build.sh kcp), in a state
# dir: one shard (`kcp start` with embedded etcd, virtual workspaces on the same port under
# /services/), or N shards behind kcp's front-proxy with kcp's cache server. Every process is
# started, stopped, frozen and thawed on its own, on free ports, and only ever signalled by the
# pid recorded in the state dir.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: hack/kcp.sh COMMAND STATE_DIR [ARGS]

  up STATE_DIR [--shards N]     start kcp (default 1 shard; N >= 2: a root shard, N-1 more
                                shards, the cache server and the front-proxy); idempotent
  down STATE_DIR                stop everything recorded in STATE_DIR/pids
  stop-shard STATE_DIR SHARD    stop one shard (SIGTERM; data and ports kept)
  start-shard STATE_DIR SHARD   start it again and wait until it is ready
  freeze STATE_DIR SHARD        SIGSTOP the shard's process (it keeps its connections)
  thaw STATE_DIR SHARD          SIGCONT it
  status STATE_DIR              one line per process: up, frozen or down (exit 3 if not all up)
  env STATE_DIR                 print `export` lines: KCP_KUBECONFIG, KCP_BASE_URL, KCP_CA_FILE

Shards are named root, shard-1, shard-2, ...; each carries the label `shard=<name>` (and the
root shard `role=root`), so workspaces can be placed with spec.location.selector.

State dir: admin.kubeconfig (contexts `root`, the root workspace, and `base`, the front URL,
with a static admin token of group system:kcp:admin that survives restarts), base-url, ca.crt,
shards.json (name, url, labels, pid of every shard), pids, ports, logs/<name>.log,
<name>/ (each process's --root-directory).
Environment: KB_CACHE, KB_BIN (see hack/build.sh), KB_READY_TIMEOUT (s, default 180),
KB_STOP_GRACE (s before KILL, default 10), KCP_ARGS (extra flags for every shard).
USAGE
}

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KB_LOG_PREFIX=kcp
# shellcheck source=lib/log.sh
source "$HACK_DIR/lib/log.sh"
# shellcheck source=lib/wait.sh
source "$HACK_DIR/lib/wait.sh"
# shellcheck source=lib/proc.sh
source "$HACK_DIR/lib/proc.sh"
# shellcheck source=lib/ports.sh
source "$HACK_DIR/lib/ports.sh"
# shellcheck source=lib/build.sh
source "$HACK_DIR/lib/build.sh"
# shellcheck source=lib/kcp.sh
source "$HACK_DIR/lib/kcp.sh"

set_state() { state_dir_set "${1:-}" usage; }

# require_shard NAME: NAME must be a shard of the state dir.
require_shard() {
  local name=${1:-}
  [[ -n $name ]] || die "missing SHARD (one of: $(shard_names | tr '\n' ' '))"
  shard_names | grep -qx -- "$name" || die "no shard '$name' in $KB_STATE (shards: $(shard_names | tr '\n' ' '))"
}

cmd_up() {
  set_state "${1:-}"
  shift || true
  local shards=1
  while (($#)); do
    case $1 in
      --shards)
        shards=${2:-}
        shift 2 || die "--shards needs a number"
        ;;
      *) die "unknown argument '$1' (expected --shards N)" ;;
    esac
  done
  if ! [[ $shards =~ ^[1-9]$ ]]; then
    die "--shards must be 1..9, got '$shards'"
  fi
  build_components kcp
  kcp_up "$shards"
}

cmd_down() {
  set_state "${1:-}"
  kcp_down
}

cmd_stop_shard() {
  set_state "${1:-}"
  require_shard "${2:-}"
  kcp_stop_shard "$2"
}

cmd_start_shard() {
  set_state "${1:-}"
  require_shard "${2:-}"
  kcp_start_shard "$2"
}

cmd_signal() {
  local signal=$1 verb=$2
  set_state "${3:-}"
  require_shard "${4:-}"
  local pid
  pid=$(pids_get "$4")
  [[ -n $pid ]] && proc_owned "$pid" || die "shard $4 is not running"
  kill "-$signal" "$pid"
  log "shard $4 (pid $pid) $verb"
}

cmd_status() {
  set_state "${1:-}"
  kcp_status
}

cmd_env() {
  set_state "${1:-}"
  [[ -f $KB_STATE/base-url ]] || die "$KB_STATE has no running kcp (run up first)"
  printf 'export KCP_KUBECONFIG=%q\n' "$KB_STATE/admin.kubeconfig"
  printf 'export KCP_BASE_URL=%q\n' "$(cat "$KB_STATE/base-url")"
  printf 'export KCP_CA_FILE=%q\n' "$KB_STATE/ca.crt"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    stop-shard) cmd_stop_shard "$@" ;;
    start-shard) cmd_start_shard "$@" ;;
    freeze) cmd_signal STOP frozen "$@" ;;
    thaw) cmd_signal CONT thawed "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
