#!/usr/bin/env bash
# The README's main command: build, start a local control plane (or with --kcp real kcp and its
# workspaces), install kube-bind and the example APIs, run the backend, and write .local/env once
# everything answers. This script owns the processes (start, pids, stop); the
# API work and the waiting are e2e/src/bin/kb-quickstart.rs.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: hack/quickstart.sh [--kcp [--shards N]] [--replicas N] [--session-store STORE] [--detach]
       hack/quickstart.sh down

  (default)  a provider cluster and a consumer cluster (local kube-apiservers); the backend
             serves the provider as cluster id "default"
  --kcp      real kcp (one shard) with the workspaces root:kube-bind (kcp-config),
             root:provider-a and root:provider-b (bound to kube-bind.io, with the example APIs)
             and root:consumer; the backend runs from root:kube-bind as its own ServiceAccount
  --shards N with --kcp: N shards behind kcp's front-proxy (N >= 2 puts root:provider-b on
             shard-1 and the other workspaces on the root shard)
  --replicas N
             1 (default): one backend; 2: two backends, both --leader-elect, behind haproxy
             (round-robin, no affinity) on one URL, sharing the bearer-token key, the cookie keys
             (generated once into .local/, mode 0600) and the session store
  --session-store STORE
             memory (the default with one replica), cookie (the default with two) or redis (a
             redis-server started next to the backends). memory cannot serve two replicas: its
             logins live in one process
  --detach   return once everything answers and leave it running; without it the command
             stays in the foreground and Ctrl-C stops everything
  down       stop everything a quickstart started and remove .local/env

Once everything answers it writes .local/env (source it): BACKEND_URL (with --replicas 2 the
front), BACKEND_KUBECONFIG, PROVIDER_KUBECONFIGS, PROVIDER_CLUSTER_IDS, CONSUMER_KUBECONFIG and,
with --kcp, KCP_BASE_URL.
.local/setup.json describes the setup (with --kcp: each workspace's logical cluster and shard,
each shard's URL and labels, and the pid of every kcp process). Running it again while it is up
reuses what runs and prints the env again. Logs: .local/logs/ (backend.log, or backend-1.log,
backend-2.log, haproxy.log and redis.log), .local/kcp/logs/.
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
# shellcheck source=lib/tools.sh
source "$ROOT/hack/lib/tools.sh"

LOCAL=$(realpath -m "${QUICKSTART_DIR:-$ROOT/.local}")
[[ $LOCAL != / ]] || die "refusing / as QUICKSTART_DIR"
# proc.sh records the backend's pid in $KB_STATE/pids and only ever signals a pid whose command
# line still mentions "$KB_STATE/". The control plane and kcp keep their own pids in their dirs.
KB_STATE=$LOCAL
ENV_FILE=$LOCAL/env
MODE_FILE=$LOCAL/mode
SETUP_FILE=$LOCAL/setup.json
PORT_FILE=$LOCAL/backend-port # the backend's, or with two replicas the front's
# "REPLICAS STORE" the running backends were started with; another choice restarts them.
TOPOLOGY_FILE=$LOCAL/backends
JWT_KEY_FILE=$LOCAL/jwt-signing-key.pem
COOKIE_SIGNING_KEY_FILE=$LOCAL/cookie-signing-key
COOKIE_ENCRYPTION_KEY_FILE=$LOCAL/cookie-encryption-key
HAPROXY_CONFIG=$LOCAL/haproxy.cfg
REDIS_DIR=$LOCAL/redis
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

# backend_args MODE PORT STORE [FRONT_URL]: BACKEND_ARGS for a backend on PORT keeping sessions
# in STORE; with FRONT_URL it is one of two replicas behind that front.
backend_args() {
  local mode=$1 port=$2 store=$3 front=${4:-}
  if [[ $mode == plain ]]; then
    BACKEND_ARGS=(--kubeconfig "$PLAIN_CP/lc1/kubeconfig")
  else
    # Consumer kubeconfigs point at kcp's front (the front-proxy when sharded), never at the
    # virtual workspace's host, which on a sharded kcp is one shard.
    local kcp_front
    kcp_front=$(kubectl --kubeconfig "$KCP_DIR/admin.kubeconfig" config view \
      -o jsonpath='{.clusters[?(@.name=="base")].cluster.server}')
    [[ -n $kcp_front ]] || die "no kcp front URL in $KCP_DIR/admin.kubeconfig"
    BACKEND_ARGS=(--kubeconfig "$KCP_DIR/backend.kubeconfig" --multicluster-runtime-provider kcp
      --apiexport-endpointslice-name kube-bind.io --schema-source apiresourceschemas
      --namespace-prefix kube-bind- --external-address "$kcp_front" --external-ca-file "$KCP_DIR/ca.crt")
  fi
  # --leader-elect as a replicated deployment runs it (a Lease in the backend's own workspace).
  BACKEND_ARGS+=(--oidc-type embedded --consumer-scope namespaced --listen-address "127.0.0.1:$port"
    --pretty-name "kube-bind quickstart" --leader-elect --session-store "$store")
  if [[ $store == redis ]]; then
    BACKEND_ARGS+=(--redis-url "redis://127.0.0.1:$(cat "$REDIS_DIR/port")/0")
  fi
  if [[ -n $front ]]; then
    # Both replicas advertise the front's issuer and callback, sign and accept the same tokens,
    # and see haproxy (on loopback) as the peer of every request.
    BACKEND_ARGS+=(--oidc-issuer-url "$front/oidc" --oidc-callback-url "$front/api/callback"
      --jwt-signing-key-file "$JWT_KEY_FILE" --trusted-proxies 127.0.0.1)
  fi
}

# Key material the replicas share, made once (mode 0600) and kept across runs.
ensure_keys() {
  (
    umask 077
    if [[ ! -s $JWT_KEY_FILE ]]; then
      openssl genrsa -out "$JWT_KEY_FILE.tmp" 2048 2>/dev/null || die "openssl genrsa failed; install openssl and run again"
      mv -f "$JWT_KEY_FILE.tmp" "$JWT_KEY_FILE"
      log "generated $JWT_KEY_FILE (the replicas' bearer-token key)"
    fi
    if [[ ! -s $COOKIE_SIGNING_KEY_FILE || ! -s $COOKIE_ENCRYPTION_KEY_FILE ]]; then
      head -c 64 /dev/urandom | base64 -w0 >"$COOKIE_SIGNING_KEY_FILE"
      head -c 32 /dev/urandom | base64 -w0 >"$COOKIE_ENCRYPTION_KEY_FILE"
      log "generated the cookie keys in $LOCAL (cookie-signing-key, cookie-encryption-key)"
    fi
  )
}

# reusable NAME: true when NAME runs, is ours, and its binary was not replaced since it started.
reusable() {
  local pid
  pid=$(pids_get "$1")
  [[ -n $pid ]] && proc_owned "$pid" && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) != *" (deleted)" ]]
}

# pick_port PORT_FILE: a free port, the one PORT_FILE names if that is free; recorded there.
pick_port() {
  local file=$1 prefer port
  prefer=$(cat "$file" 2>/dev/null || true)
  port=$("$BIN/kb-quickstart" free-port ${prefer:+--prefer "$prefer"})
  printf '%s\n' "$port" >"$file"
  printf '%s\n' "$port"
}

# start_backend_as NAME MODE STORE [FRONT_URL]: reuses backend NAME unless its binary was rebuilt
# since; else starts it on the port it had before (if free) so its URL stays the same. Logs to
# $LOG_DIR/NAME.log; the port is kept in $LOCAL/NAME-port (backend-port for "backend"). Sets
# BACKEND_PID and BACKEND_PORT.
start_backend_as() {
  local name=$1 mode=$2 store=$3 front=${4:-} port_file=$LOCAL/$1-port signing='' encryption=''
  if reusable "$name" && [[ -f $port_file ]]; then
    BACKEND_PID=$(pids_get "$name")
    BACKEND_PORT=$(cat "$port_file")
    log "$name already running (pid $BACKEND_PID, port $BACKEND_PORT)"
    return 0
  fi
  if component_running "$name"; then
    log "the backend binary was rebuilt; restarting $name"
    proc_stop "$name"
  fi
  BACKEND_PORT=$(pick_port "$port_file")
  backend_args "$mode" "$BACKEND_PORT" "$store" "$front"
  if [[ $store != memory || -n $front ]]; then
    ensure_keys
    signing=$(cat "$COOKIE_SIGNING_KEY_FILE")
    encryption=$(cat "$COOKIE_ENCRYPTION_KEY_FILE")
  fi
  # The cookie keys travel in the environment, out of sight of ps.
  KUBE_BIND_COOKIE_SIGNING_KEY=$signing KUBE_BIND_COOKIE_ENCRYPTION_KEY=$encryption \
    proc_start "$name" "$LOG_DIR/$name.log" "$BIN/kube-bind-backend" "${BACKEND_ARGS[@]}"
  BACKEND_PID=$START_PID
  log "$name: started (pid $BACKEND_PID) on 127.0.0.1:$BACKEND_PORT; log: $LOG_DIR/$name.log"
}

# A redis-server for --session-store redis: loopback, no persistence, its port in $REDIS_DIR/port.
start_redis() {
  local port rc=0
  if component_running redis && [[ -f $REDIS_DIR/port ]]; then
    log "redis-server already running (pid $(pids_get redis), port $(cat "$REDIS_DIR/port"))"
    return 0
  fi
  redis_install
  mkdir -p "$REDIS_DIR"
  port=$(pick_port "$REDIS_DIR/port")
  # The config file's path in the process title keeps "$LOCAL/" in its command line, which
  # proc.sh checks before it signals the pid (redis-server rewrites its title).
  cat >"$REDIS_DIR/redis.conf" <<CONF
port $port
bind 127.0.0.1
save ""
appendonly no
daemonize no
dir $REDIS_DIR
proc-title-template "{title} {listen-addr} {config-file}"
CONF
  proc_start redis "$LOG_DIR/redis.log" redis-server "$REDIS_DIR/redis.conf"
  wait_until 20 "$START_PID" redis-cli -h 127.0.0.1 -p "$port" ping || rc=$?
  if ((rc != 0)); then
    log_tail "$LOG_DIR/redis.log" 20
    die "redis-server did not answer PING on 127.0.0.1:$port; see $LOG_DIR/redis.log"
  fi
  log "redis-server: started (pid $START_PID) on 127.0.0.1:$port; log: $LOG_DIR/redis.log"
}

# haproxy_config FRONT_PORT PORT...: the front: round-robin over the backends on PORT..., no
# affinity, X-Forwarded-For added, a backend out of rotation while /healthz fails.
haproxy_config() {
  local front=$1 i=0 port
  shift
  cat <<CONF
# Written by hack/quickstart.sh --replicas 2; rewritten on every start.
global
  log stderr format raw daemon
  maxconn 2048
defaults
  mode http
  log global
  option httplog
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend front
  bind 127.0.0.1:$front
  default_backend backends
backend backends
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
CONF
  for port in "$@"; do
    i=$((i + 1))
    printf '  server backend-%s 127.0.0.1:%s check inter 1s fall 2 rise 1\n' "$i" "$port"
  done
}

# start_haproxy FRONT_PORT PORT...: (re)writes the config; reuses a haproxy that runs it. Sets
# HAPROXY_PID.
start_haproxy() {
  local front=$1 config
  shift
  config=$(haproxy_config "$front" "$@")
  if component_running haproxy && [[ $(cat "$HAPROXY_CONFIG" 2>/dev/null) == "$config" ]]; then
    HAPROXY_PID=$(pids_get haproxy)
    log "haproxy already running (pid $HAPROXY_PID, 127.0.0.1:$front)"
    return 0
  fi
  proc_stop haproxy
  ensure_haproxy
  printf '%s\n' "$config" >"$HAPROXY_CONFIG"
  haproxy -c -q -f "$HAPROXY_CONFIG" ||
    die "haproxy refuses $HAPROXY_CONFIG (haproxy -c -f $HAPROXY_CONFIG says why); delete it and run again"
  # -db: in the foreground, not daemonized, so the pid is haproxy's own.
  proc_start haproxy "$LOG_DIR/haproxy.log" haproxy -db -f "$HAPROXY_CONFIG"
  HAPROXY_PID=$START_PID
  log "haproxy: started (pid $HAPROXY_PID) on 127.0.0.1:$front (round-robin over ports $*); log: $LOG_DIR/haproxy.log"
}

# Every process the backend side of a quickstart may run, in the order they are stopped.
BACKEND_SIDE=(haproxy backend backend-1 backend-2 redis)

# start_backends MODE REPLICAS STORE: the backend (or two replicas, haproxy in front) and redis
# when STORE is redis. A run with another REPLICAS/STORE than the running one replaces them.
# Sets FRONT_URL, FRONT_PID and FRONT_LOG (what `ready` waits for and BACKEND_URL), READY_ARGS
# (its --replica arguments) and WATCHED (the pids whose exit ends a foreground quickstart).
start_backends() {
  local mode=$1 replicas=$2 store=$3 topology front_port i
  local -a ports=()
  topology="$replicas $store"
  if [[ -f $TOPOLOGY_FILE && $(cat "$TOPOLOGY_FILE") != "$topology" ]]; then
    log "the backends ran as '$(cat "$TOPOLOGY_FILE")' (replicas, session store); restarting them as '$topology'"
    proc_stop "${BACKEND_SIDE[@]}"
  fi
  printf '%s\n' "$topology" >"$TOPOLOGY_FILE"
  READY_ARGS=()
  WATCHED=()
  if [[ $store == redis ]]; then
    start_redis
    WATCHED+=("$(pids_get redis)")
  else
    proc_stop redis
  fi
  if ((replicas == 1)); then
    proc_stop haproxy backend-1 backend-2
    start_backend_as backend "$mode" "$store"
    FRONT_URL=http://127.0.0.1:$BACKEND_PORT
    FRONT_PID=$BACKEND_PID
    FRONT_LOG=$LOG_DIR/backend.log
    WATCHED+=("$BACKEND_PID")
    return 0
  fi
  proc_stop backend
  # The front's port first: the replicas advertise its URLs. A running haproxy keeps its port.
  if component_running haproxy && [[ -f $PORT_FILE ]]; then
    front_port=$(cat "$PORT_FILE")
  else
    front_port=$(pick_port "$PORT_FILE")
  fi
  FRONT_URL=http://127.0.0.1:$front_port
  # A replica started for another front goes: its issuer URL names the old one.
  if [[ $(cat "$LOCAL/front-url" 2>/dev/null) != "$FRONT_URL" ]]; then
    proc_stop backend-1 backend-2
  fi
  printf '%s\n' "$FRONT_URL" >"$LOCAL/front-url"
  for i in 1 2; do
    start_backend_as "backend-$i" "$mode" "$store" "$FRONT_URL"
    ports+=("$BACKEND_PORT")
    READY_ARGS+=(--replica "http://127.0.0.1:$BACKEND_PORT,$BACKEND_PID,$LOG_DIR/backend-$i.log")
    WATCHED+=("$BACKEND_PID")
  done
  start_haproxy "$front_port" "${ports[@]}"
  FRONT_PID=$HAPROXY_PID
  FRONT_LOG=$LOG_DIR/haproxy.log
  WATCHED+=("$HAPROXY_PID")
}

# Stops the backends, kcp and the control plane (whatever of them runs) and removes the env.
stop_all() {
  local t pid name stopped=false
  lock
  t=$(kb_now)
  rm -f "$ENV_FILE"
  for name in "${BACKEND_SIDE[@]}"; do
    pid=$(pids_get "$name")
    if [[ -n $pid ]] && proc_owned "$pid"; then
      log "stopping $name (pid $pid)"
      stopped=true
    fi
  done
  proc_stop "${BACKEND_SIDE[@]}"
  rm -f "$TOPOLOGY_FILE"
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
  local mode=$1 detach=$2 shards=$3 replicas=$4 store=$5 other=plain t rc=0 pid
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
  start_backends "$mode" "$replicas" "$store"
  "$BIN/kb-quickstart" ready --setup "$SETUP_FILE" --backend-url "$FRONT_URL" \
    --backend-pid "$FRONT_PID" --backend-log "$FRONT_LOG" "${READY_ARGS[@]}" --env "$ENV_FILE"
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
  while ! $STOP_REQUESTED && all_owned "${WATCHED[@]}"; do
    sleep 1 &
    wait $! || true
  done
  if $STOP_REQUESTED; then
    log "stopping"
  elif [[ ! -f $TOPOLOGY_FILE ]]; then
    log "stopped from elsewhere (hack/quickstart.sh down)"
  else
    for pid in "${WATCHED[@]}"; do
      proc_owned "$pid" && continue
      log "pid $pid exited; see the logs in $LOG_DIR"
    done
    log_tail "$FRONT_LOG" 20
    rc=1
  fi
  return "$rc"
}

# all_owned PID...: true while every PID runs and is ours.
all_owned() {
  local pid
  for pid in "$@"; do
    proc_owned "$pid" || return 1
  done
}

main() {
  local mode=plain detach=false shards=1 replicas=1 store=""

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
      --replicas)
        replicas=${2:-}
        if ! [[ $replicas =~ ^[12]$ ]]; then
          usage >&2
          log "error: --replicas takes 1 or 2, got '$replicas'"
          exit 2
        fi
        shift
        ;;
      --session-store)
        store=${2:-}
        if ! [[ $store =~ ^(memory|cookie|redis)$ ]]; then
          usage >&2
          log "error: --session-store takes memory, cookie or redis, got '$store'"
          exit 2
        fi
        shift
        ;;
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
  if [[ $replicas == 2 && $store == memory ]]; then
    log "error: --replicas 2 cannot use --session-store memory: memory sessions live in one process, so a login begun on one replica fails on the other; use cookie or redis"
    exit 2
  fi
  if [[ -z $store ]]; then
    store=memory
    ((replicas == 1)) || store=cookie
  fi
  cmd_up "$mode" "$detach" "$shards" "$replicas" "$store"
}

main "$@"
