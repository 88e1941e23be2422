#!/usr/bin/env bash
# The README's main command: build, start a local control plane (or with --kcp real kcp and its
# workspaces), install kube-bind and the example APIs, run the backend, and write .local/env once
# everything answers. This script owns the processes (start, pids, stop); the
# API work and the waiting are e2e/src/bin/kb-quickstart.rs.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: hack/quickstart.sh [--kcp [--shards N]] [--detach]
       hack/quickstart.sh down

  (default)  a provider cluster and a consumer cluster (local kube-apiservers); the backend
             serves the provider as cluster id "default"
  --kcp      real kcp (one shard) with the workspaces root:kube-bind (kcp-config),
             root:provider-a and root:provider-b (bound to kube-bind.io, with the example APIs)
             and root:consumer; the backend runs from root:kube-bind as its own ServiceAccount
  --shards N with --kcp: N shards behind kcp's front-proxy (N >= 2 puts root:provider-b on
             shard-1 and the other workspaces on the root shard)
  --detach   return once everything answers and leave it running; without it the command
             stays in the foreground and Ctrl-C stops everything
  down       stop everything a quickstart started and remove .local/env

Once everything answers it writes .local/env (source it): BACKEND_URL, BACKEND_KUBECONFIG,
PROVIDER_KUBECONFIGS, PROVIDER_CLUSTER_IDS, CONSUMER_KUBECONFIG and, with --kcp, KCP_BASE_URL.
.local/setup.json describes the setup (with --kcp: each workspace's logical cluster and shard,
each shard's URL and labels, and the pid of every kcp process). Running it again while it is up
reuses what runs and prints the env again. Logs: .local/logs/, .local/kcp/logs/.
Environment: QUICKSTART_DIR (instead of .local), QUICKSTART_PROFILE (release, or dev to reuse a
test build), CARGO_TARGET_DIR, and the KB_* variables of hack/control-plane.sh and hack/kcp.sh.
USAGE
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KB_LOG_PREFIX=quickstart
# shellcheck source=lib/log.sh
source "$ROOT/hack/lib/log.sh"
# shellcheck source=lib/proc.sh
source "$ROOT/hack/lib/proc.sh"
# shellcheck source=lib/wait.sh
source "$ROOT/hack/lib/wait.sh"

LOCAL=$(realpath -m "${QUICKSTART_DIR:-$ROOT/.local}")
[[ $LOCAL != / ]] || die "refusing / as QUICKSTART_DIR"
# proc.sh records the backend's pid in $KB_STATE/pids and only ever signals a pid whose command
# line still mentions "$KB_STATE/". The control plane and kcp keep their own pids in their dirs.
KB_STATE=$LOCAL
ENV_FILE=$LOCAL/env
MODE_FILE=$LOCAL/mode
SETUP_FILE=$LOCAL/setup.json
PORT_FILE=$LOCAL/backend-port
LOG_DIR=$LOCAL/logs
PLAIN_CP=$LOCAL/control-plane
KCP_DIR=$LOCAL/kcp
SHARDS_FILE=$LOCAL/shards
# The cargo profile of the binaries: release (the default), or dev to reuse a test build.
PROFILE=${QUICKSTART_PROFILE:-release}
case $PROFILE in
  release) BIN=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/release ;;
  dev) BIN=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/debug ;;
  *) die "QUICKSTART_PROFILE must be release or dev, not '$PROFILE'" ;;
esac

# --- bookkeeping ---

# Serializes quickstart commands on one dir (fd 9; children that outlive us never get it).
LOCKED=false
lock() {
  $LOCKED && return 0
  mkdir -p "$LOCAL"
  exec 9>"$LOCAL/.lock"
  if ! flock -n 9; then
    log "another hack/quickstart.sh is working on $LOCAL; waiting"
    flock -w 900 9 || die "timed out waiting for $LOCAL/.lock"
  fi
  LOCKED=true
}
unlock() {
  $LOCKED || return 0
  exec 9>&-
  LOCKED=false
}

# recorded_alive PIDS_FILE DIR: true when a pid listed there runs and is DIR's.
recorded_alive() {
  local file=$1 dir=$2 _name pid
  [[ -f $file ]] || return 1
  while read -r _name pid; do
    if proc_owned "$pid" "$dir"; then return 0; fi
  done <"$file"
  return 1
}

recorded_mode() { cat "$MODE_FILE" 2>/dev/null || true; }

# True when anything of MODE runs.
mode_running() {
  local mode=$1 dir=$PLAIN_CP
  [[ $mode == kcp ]] && dir=$KCP_DIR
  recorded_alive "$dir/pids" "$dir" && return 0
  [[ $(recorded_mode) == "$mode" ]] && recorded_alive "$(pids_file)" "$LOCAL"
}

# --- steps ---

build() {
  local t
  t=$(kb_now)
  log "building kube-bind-backend and kb-quickstart ($PROFILE; a first release build takes 5-7 minutes on 2 cores)"
  cargo build --profile "$PROFILE" --manifest-path "$ROOT/Cargo.toml" -p kube-bind-backend -p kube-bind-e2e --bins 9>&-
  log "build ready in $(kb_elapsed "$t") s"
}

start_plain() {
  "$ROOT/hack/control-plane.sh" up "$PLAIN_CP" 2 9>&-
}

# kcp from its Go module (hack/kcp.sh); its workspaces are made by kb-quickstart setup-kcp.
start_kcp() {
  local shards=$1
  if [[ -f $SHARDS_FILE && $(cat "$SHARDS_FILE") != "$shards" ]] && recorded_alive "$KCP_DIR/pids" "$KCP_DIR"; then
    die "kcp runs here with $(cat "$SHARDS_FILE") shard(s), not $shards; stop it first: hack/quickstart.sh down"
  fi
  "$ROOT/hack/kcp.sh" up "$KCP_DIR" --shards "$shards" 9>&-
  printf '%s\n' "$shards" >"$SHARDS_FILE"
}

setup() {
  local mode=$1
  if [[ $mode == plain ]]; then
    "$BIN/kb-quickstart" setup-plain --provider-kubeconfig "$PLAIN_CP/lc1/kubeconfig" \
      --consumer-kubeconfig "$PLAIN_CP/lc2/kubeconfig" --examples "$ROOT/hack/examples" --out "$SETUP_FILE"
  else
    "$BIN/kb-quickstart" setup-kcp --kcp-state "$KCP_DIR" --backend-kubeconfig "$KCP_DIR/backend.kubeconfig" \
      --work-dir "$KCP_DIR/harness" --examples "$ROOT/hack/examples" --out "$SETUP_FILE"
  fi
}

backend_args() {
  local mode=$1 port=$2
  if [[ $mode == plain ]]; then
    BACKEND_ARGS=(--kubeconfig "$PLAIN_CP/lc1/kubeconfig")
  else
    # Consumer kubeconfigs point at kcp's front (the front-proxy when sharded), never at the
    # virtual workspace's host, which on a sharded kcp is one shard.
    local front
    front=$(kubectl --kubeconfig "$KCP_DIR/admin.kubeconfig" config view \
      -o jsonpath='{.clusters[?(@.name=="base")].cluster.server}')
    [[ -n $front ]] || die "no kcp front URL in $KCP_DIR/admin.kubeconfig"
    BACKEND_ARGS=(--kubeconfig "$KCP_DIR/backend.kubeconfig" --multicluster-runtime-provider kcp
      --apiexport-endpointslice-name kube-bind.io --schema-source apiresourceschemas
      --namespace-prefix kube-bind- --external-address "$front" --external-ca-file "$KCP_DIR/ca.crt")
  fi
  # --leader-elect as a replicated deployment runs it (a Lease in the backend's own workspace).
  BACKEND_ARGS+=(--oidc-type embedded --consumer-scope namespaced --listen-address "127.0.0.1:$port"
    --pretty-name "kube-bind quickstart" --leader-elect)
}

# Reuses a running backend unless its binary was rebuilt since; else starts one on the port it
# had before (if free) so BACKEND_URL stays the same. Sets BACKEND_PID and BACKEND_PORT.
start_backend() {
  local mode=$1 pid port prefer
  pid=$(pids_get backend)
  if [[ -n $pid ]] && proc_owned "$pid"; then
    if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) != *" (deleted)" && -f $PORT_FILE ]]; then
      BACKEND_PID=$pid
      BACKEND_PORT=$(cat "$PORT_FILE")
      log "backend already running (pid $pid, port $BACKEND_PORT)"
      return 0
    fi
    log "the backend binary was rebuilt; restarting the backend"
    proc_stop backend
  fi
  prefer=$(cat "$PORT_FILE" 2>/dev/null || true)
  port=$("$BIN/kb-quickstart" free-port ${prefer:+--prefer "$prefer"})
  printf '%s\n' "$port" >"$PORT_FILE"
  backend_args "$mode" "$port"
  proc_start backend "$LOG_DIR/backend.log" "$BIN/kube-bind-backend" "${BACKEND_ARGS[@]}"
  BACKEND_PID=$START_PID
  BACKEND_PORT=$port
  log "backend: started (pid $BACKEND_PID) on 127.0.0.1:$port; log: $LOG_DIR/backend.log"
}

# Stops the backend, kcp and the control plane (whatever of them runs) and removes the env.
stop_all() {
  local t pid stopped=false
  lock
  t=$(kb_now)
  rm -f "$ENV_FILE"
  pid=$(pids_get backend)
  if [[ -n $pid ]] && proc_owned "$pid"; then
    log "stopping the backend (pid $pid)"
    stopped=true
  fi
  proc_stop backend
  if [[ -f $KCP_DIR/pids ]]; then
    "$ROOT/hack/kcp.sh" down "$KCP_DIR" 9>&-
    stopped=true
  fi
  if [[ -f $PLAIN_CP/pids ]]; then
    "$ROOT/hack/control-plane.sh" down "$PLAIN_CP" 9>&-
    stopped=true
  fi
  rm -f "$MODE_FILE"
  if $stopped; then
    log "everything stopped ($(kb_elapsed "$t") s); data kept in $LOCAL (rm -rf it for a fresh start)"
  else
    log "nothing was running in $LOCAL"
  fi
}

# --- exit and signals ---

PHASE=idle # starting: a failure or Ctrl-C stops everything; serving: leaving stops everything
on_exit() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM HUP # a second Ctrl-C must not cut the cleanup short
  case $PHASE in
    starting)
      if ((rc != 0)); then
        log "the quickstart did not come up; stopping everything it runs"
        stop_all || true
      fi
      ;;
    serving) stop_all || true ;;
  esac
  exit "$rc"
}

cmd_up() {
  local mode=$1 detach=$2 shards=$3 other=plain t rc=0
  [[ $mode == plain ]] && other=kcp
  t=$(kb_now)
  lock
  if mode_running "$other"; then
    die "a $other quickstart runs in $LOCAL; stop it first: hack/quickstart.sh down"
  fi
  if ! mode_running "$mode"; then
    rm -f "$ENV_FILE" # describes a setup that no longer runs
  fi
  printf '%s\n' "$mode" >"$MODE_FILE"
  mkdir -p "$LOG_DIR"

  build
  rm -f "$ENV_FILE" # written again, last, once everything answers
  PHASE=starting
  "start_$mode" "$shards"
  setup "$mode"
  start_backend "$mode"
  "$BIN/kb-quickstart" ready --setup "$SETUP_FILE" --backend-url "http://127.0.0.1:$BACKEND_PORT" \
    --backend-pid "$BACKEND_PID" --backend-log "$LOG_DIR/backend.log" --env "$ENV_FILE"
  log "up in $(kb_elapsed "$t") s"
  unlock

  if $detach; then
    PHASE=idle
    log "running in the background; stop everything with: hack/quickstart.sh down"
    return 0
  fi
  PHASE=serving
  STOP_REQUESTED=false
  trap 'STOP_REQUESTED=true' INT TERM HUP
  log "running in the foreground; Ctrl-C stops everything"
  while ! $STOP_REQUESTED && proc_owned "$BACKEND_PID"; do
    sleep 1 &
    wait $! || true
  done
  if $STOP_REQUESTED; then
    log "stopping"
  elif [[ -z $(pids_get backend) ]]; then
    log "stopped from elsewhere (hack/quickstart.sh down)"
  else
    log "the backend exited; see $LOG_DIR/backend.log"
    log_tail "$LOG_DIR/backend.log" 20
    rc=1
  fi
  return "$rc"
}

main() {
  local mode=plain detach=false shards=1
  if [[ ${1:-} == down ]]; then
    (($# == 1)) || {
      usage >&2
      exit 2
    }
    lock
    stop_all
    return 0
  fi
  while (($#)); do
    case $1 in
      --kcp) mode=kcp ;;
      --detach) detach=true ;;
      --shards)
        shards=${2:-}
        if ! [[ $shards =~ ^[1-9]$ ]]; then
          usage >&2
          log "error: --shards needs a number of shards 1..9, got '$shards'"
          exit 2
        fi
        shift
        ;;
      -h | --help | help) usage; return 0 ;;
      *)
        usage >&2
        log "error: unknown argument '$1'"
        exit 2
        ;;
    esac
    shift
  done
  trap on_exit EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ $mode == plain && $shards != 1 ]]; then
    usage >&2
    log "error: --shards needs --kcp (a plain quickstart has no shards)"
    exit 2
  fi
  cmd_up "$mode" "$detach" "$shards"
}

main "$@"
