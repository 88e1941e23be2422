#!/usr/bin/env bash
# The kcp stand-in for local runs: a control plane with one member apiserver per workspace
# (hack/control-plane.sh) and kcp-sim (e2e/src/bin/kcp-sim.rs) in front of it.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: hack/kcp-sim.sh COMMAND STATE_DIR [ARGS]

  up STATE_DIR [PATH...]   start members + kcp-sim for the workspace PATHs (default:
                           root:kube-bind root:provider-a root:provider-b root:consumer); idempotent
  down STATE_DIR           stop kcp-sim and the control plane
  env STATE_DIR            print `export` lines: KCP_BASE_URL, KCP_SIM_STATE, KCP_CA_FILE and
                           KCP_KUBECONFIG_<PATH> (admin kubeconfig per workspace, ':' and '-' → '_')

Files: STATE_DIR/control-plane/ (see control-plane.sh), STATE_DIR/kcp-sim/ (ca.crt, base-url,
clusters.json, kubeconfigs/<path with ':' → '.'>.kubeconfig, ready), STATE_DIR/kcp-sim.log,
STATE_DIR/kcp-sim.pid. Environment: KCP_SIM_BIN (skip the cargo build), KCP_SIM_SEED.
USAGE
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '%s [kcp-sim] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

sim_pid() {
  local pid
  pid=$(cat "$STATE/kcp-sim.pid" 2>/dev/null) || return 1
  [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/kcp-sim" || return 1
  echo "$pid"
}

cmd_up() {
  local paths=("$@") n k pid bin args=()
  ((${#paths[@]})) || paths=(root:kube-bind root:provider-a root:provider-b root:consumer)
  n=${#paths[@]}
  if pid=$(sim_pid) && [[ -f $STATE/kcp-sim/ready ]]; then
    log "already running (pid $pid): $(cat "$STATE/kcp-sim/base-url")"
    return 0
  fi
  "$ROOT/hack/control-plane.sh" up "$n" "$STATE/control-plane"
  if [[ -n ${KCP_SIM_BIN:-} ]]; then
    bin=$KCP_SIM_BIN
  else
    log "building kcp-sim"
    cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p kube-bind-e2e --bin kcp-sim
    bin=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
      sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/kcp-sim
  fi
  [[ -x $bin ]] || die "kcp-sim binary not found at $bin"
  for ((k = 1; k <= n; k++)); do
    args+=(--workspace "${paths[k - 1]}=$STATE/control-plane/lc$k/kubeconfig")
  done
  mkdir -p "$STATE/kcp-sim"
  rm -f "$STATE/kcp-sim/ready"
  nohup "$bin" --state-dir "$STATE/kcp-sim" --seed "${KCP_SIM_SEED:-kcp-sim}" "${args[@]}" \
    >"$STATE/kcp-sim.log" 2>&1 </dev/null &
  echo $! >"$STATE/kcp-sim.pid"
  for _ in $(seq 1 900); do
    [[ -f $STATE/kcp-sim/ready ]] && break
    sim_pid >/dev/null || { tail -20 "$STATE/kcp-sim.log" >&2; die "kcp-sim exited; log: $STATE/kcp-sim.log"; }
    sleep 0.1
  done
  [[ -f $STATE/kcp-sim/ready ]] || die "kcp-sim not ready after 90 s; log: $STATE/kcp-sim.log"
  log "ready: $(cat "$STATE/kcp-sim/base-url") (workspaces: ${paths[*]})"
}

cmd_down() {
  local pid
  if pid=$(sim_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped kcp-sim (pid $pid)"
  fi
  rm -f "$STATE/kcp-sim.pid" "$STATE/kcp-sim/ready"
  [[ -d $STATE/control-plane ]] && "$ROOT/hack/control-plane.sh" down "$STATE/control-plane"
  return 0
}

cmd_env() {
  [[ -f $STATE/kcp-sim/ready ]] || die "$STATE is not running (up first)"
  echo "export KCP_SIM_STATE='$STATE/kcp-sim'"
  echo "export KCP_BASE_URL='$(cat "$STATE/kcp-sim/base-url")'"
  echo "export KCP_CA_FILE='$STATE/kcp-sim/ca.crt'"
  local f name
  for f in "$STATE"/kcp-sim/kubeconfigs/*.kubeconfig; do
    name=$(basename "$f" .kubeconfig)
    name=${name//./_}
    name=${name//-/_}
    echo "export KCP_KUBECONFIG_${name^^}='$f'"
  done
}

main() {
  local cmd=${1:-}
  [[ $cmd == -h || $cmd == --help || $cmd == help ]] && { usage; return 0; }
  [[ -n ${2:-} ]] || { usage >&2; exit 2; }
  STATE=$(realpath -m "$2")
  shift 2
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    env) cmd_env ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
