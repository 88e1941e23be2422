#!/usr/bin/env bash
# Local Kubernetes control plane for development and tests: builds etcd, kube-apiserver,
# kube-controller-manager and kubectl from their Go modules (hack/tools/, hack/lib/build.sh),
# then runs one etcd and N apiservers (lc1..lcN) in a state dir.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: hack/control-plane.sh COMMAND [ARGS]

  build                       build/cache etcd, kube-apiserver, kube-controller-manager, kubectl
  up STATE_DIR N              start etcd + N apiservers (lc1..lcN) + controller-managers, wait ready
  down STATE_DIR              stop everything recorded in STATE_DIR/pids
  stop-member STATE_DIR K     stop lcK's apiserver and controller-manager (port and data kept)
  start-member STATE_DIR K    start them again and wait until ready
  status STATE_DIR            one line per component: up or down (exit 3 if any is down)
  env STATE_DIR               print `export` lines (KB_ETCD_URL, KB_LC<K>_KUBECONFIG, ...)

State dir: pids ("name pid"), ports ("name port"), clusters (N), env, sa.key, sa.pub,
tokens.csv, etcd/, logs/<name>.log, lcK/{kubeconfig,ca.crt,port,certs/,kcm-certs/}.
Environment: KB_CACHE (default ~/.cache/kube-bind-rs), KB_BIN (default $KB_CACHE/bin),
KB_ETCD_PORT, KB_ETCD_PEER_PORT, KB_APISERVER_PORT_BASE, KB_KCM_PORT_BASE (force ports; else the
first free ones from 23790, 23800, 16443, 17257 up), KB_READY_TIMEOUT (s, default 180),
KB_STOP_GRACE (s before KILL, default 10), KB_APISERVER_ARGS (extra apiserver flags).
USAGE
}

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KB_LOG_PREFIX=control-plane
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
# shellcheck source=lib/cluster.sh
source "$HACK_DIR/lib/cluster.sh"

set_state() { state_dir_set "${1:-}" usage; }

# require_member K: K must name an existing member of the state dir.
require_member() {
  local k=${1:-} n
  n=$(cluster_count) || die "$KB_STATE is not a control-plane state dir (run up first)"
  if ! [[ $k =~ ^[1-9][0-9]*$ ]] || ((k > n)); then
    die "no member '$k' in $KB_STATE (members: 1..$n)"
  fi
}

cmd_build() {
  build_components etcd kubernetes
}

cmd_up() {
  local n=${2:-} k running=() name t_build
  set_state "${1:-}"
  if ! [[ $n =~ ^[1-9][0-9]*$ ]] || ((n > 20)); then
    usage >&2
    die "up: N must be 1..20, got '$n'"
  fi
  t_build=$(kb_now)
  build_components etcd kubernetes
  state_lock
  ports_load
  for name in $(all_components "$(cluster_count 2>/dev/null || echo "$n")"); do
    component_running "$name" && running+=("$name")
  done
  if ((${#running[@]})); then
    if [[ $(cluster_count) == "$n" ]] && all_healthy "$n"; then
      write_env_file
      log "$n cluster(s) already up in $KB_STATE"
      return 0
    fi
    die "$KB_STATE has running components (${running[*]}) but not the $n healthy clusters asked for; run down first"
  fi
  kb_on_exit cp_on_exit
  [[ -d $KB_STATE/etcd ]] && log "reusing the data in $KB_STATE"
  state_init "$n"
  allocate_ports "$n"
  CP_T0=$(kb_now)
  log "starting etcd and $n apiserver(s) in $KB_STATE"
  start_etcd
  wait_ready health "healthy (/health)" etcd
  start_members $(seq 1 "$n")
  write_env_file
  log "$n cluster(s) ready in $(kb_elapsed "$CP_T0") s ($(kb_elapsed "$t_build") s with the build check); kubeconfigs: $KB_STATE/lc{1..$n}/kubeconfig"
  CP_STARTED=()
}

cmd_down() {
  local n name t count=0
  local -a first=()
  set_state "${1:-}"
  if [[ ! -f $KB_STATE/pids ]]; then
    log "nothing recorded as running in $KB_STATE"
    return 0
  fi
  state_lock
  ports_load
  t=$(kb_now)
  while read -r name _; do
    [[ -n $name ]] || continue
    count=$((count + 1))
    [[ $name != etcd ]] && first+=("$name")
  done <"$(pids_file)"
  ((${#first[@]})) && proc_stop "${first[@]}"
  proc_stop etcd
  rm -f "$(pids_file)"
  ports_release
  n=$(cluster_count 2>/dev/null || echo "?")
  log "stopped $KB_STATE ($count recorded processes, $n cluster(s)) in $(kb_elapsed "$t") s"
}

cmd_stop_member() {
  set_state "${1:-}"
  require_member "${2:-}"
  state_lock
  local k=$2 t
  t=$(kb_now)
  proc_stop "lc$k-controller-manager" "lc$k-apiserver"
  log "lc$k stopped in $(kb_elapsed "$t") s (port and data kept; start-member to start it again)"
}

cmd_start_member() {
  set_state "${1:-}"
  require_member "${2:-}"
  state_lock
  ports_load
  local k=$2 name
  if component_running "lc$k-apiserver" && component_running "lc$k-controller-manager"; then
    log "lc$k is already running"
    return 0
  fi
  component_running etcd || die "etcd of $KB_STATE is not running; use up"
  [[ -n ${PORTS[lc$k-apiserver]:-} && -n ${PORTS[lc$k-controller-manager]:-} ]] || die "no ports recorded for lc$k"
  for name in "lc$k-apiserver" "lc$k-controller-manager"; do
    if component_running "$name"; then
      proc_stop "$name" # half-running member: restart it whole
    fi
    ! port_listening "${PORTS[$name]}" || die "port ${PORTS[$name]} of $name is taken by another process"
  done
  kb_on_exit cp_on_exit
  CP_T0=$(kb_now)
  start_members "$k"
  log "lc$k ready again in $(kb_elapsed "$CP_T0") s"
  CP_STARTED=()
}

cmd_status() {
  set_state "${1:-}"
  local n k name pid state check all_up=true
  n=$(cluster_count) || die "$KB_STATE is not a control-plane state dir (run up first)"
  ports_load
  while read -r name; do
    pid=$(pids_get "$name")
    state=down
    if [[ -n $pid ]] && proc_owned "$pid"; then
      case $name in
        etcd) check=health ;;
        *-apiserver) check=readyz ;;
        *) check=healthz ;;
      esac
      if "check_$check" "$name"; then state=up; else state="down (pid $pid runs but /$check fails)"; fi
    fi
    [[ $state == up ]] || all_up=false
    printf '%-26s %-5s pid=%s port=%s\n' "$name" "$state" "${pid:--}" "${PORTS[$name]:--}"
  done < <(printf 'etcd\n'; for ((k = 1; k <= n; k++)); do printf 'lc%s-apiserver\nlc%s-controller-manager\n' "$k" "$k"; done)
  $all_up || return 3
}

cmd_env() {
  set_state "${1:-}"
  ports_load
  env_lines
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    build) cmd_build "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    stop-member) cmd_stop_member "$@" ;;
    start-member) cmd_start_member "$@" ;;
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
