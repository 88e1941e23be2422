# shellcheck shell=bash
# The local control plane in a state dir: one etcd, N kube-apiservers lc1..lcN sharing it
# under their own --etcd-prefix, one kube-controller-manager each (binaries from hack/build.sh).
# Requires KB_STATE, KB_BIN and log.sh, proc.sh, ports.sh, wait.sh.
# Sourced, never executed.
#
# Component names (pids, ports and logs/<name>.log use them): etcd, lcK-apiserver,
# lcK-controller-manager; etcd's peer port is recorded as etcd-peer.

KB_ADMIN_TOKEN=admin-token
: "${KB_READY_TIMEOUT:=180}"
SERVICE_CIDR=10.0.0.0/24
SA_ISSUER=https://kubernetes.default.svc

# Recipe defaults; the first free port from there up is used unless the env forces one.
DEFAULT_ETCD_PORT=23790
DEFAULT_ETCD_PEER_PORT=23800
DEFAULT_APISERVER_PORT_BASE=16443
DEFAULT_KCM_PORT_BASE=17257

declare -ga CP_STARTED=()
CP_T0=

cluster_count() {
  local n
  n=$(cat "$KB_STATE/clusters" 2>/dev/null) || return 1
  printf '%s\n' "$n"
}

component_log() { printf '%s/logs/%s.log\n' "$KB_STATE" "$1"; }

# Every component of an N-cluster state dir, controller-managers first (the order to stop in).
all_components() {
  local n=$1 k
  for ((k = 1; k <= n; k++)); do printf 'lc%s-controller-manager\n' "$k"; done
  for ((k = 1; k <= n; k++)); do printf 'lc%s-apiserver\n' "$k"; done
  printf 'etcd\n'
}

# True when a recorded component has the lock file open: it inherited the lock from the
# command that started it (before proc_start closed inherited fds), so nobody will release it.
_lock_held_by_component() {
  local _n pid fd
  [[ -f $(pids_file) ]] || return 1
  while read -r _n pid; do
    proc_owned "$pid" || continue
    for fd in /proc/"$pid"/fd/*; do
      [[ $(readlink "$fd" 2>/dev/null) == "$KB_STATE/.lock" ]] && return 0
    done
  done <"$(pids_file)"
  return 1
}

_STATE_LOCK_FD=
state_lock() {
  mkdir -p "$KB_STATE"
  exec {_STATE_LOCK_FD}>"$KB_STATE/.lock"
  if ! flock -n "$_STATE_LOCK_FD"; then
    if _lock_held_by_component; then
      log "note: $KB_STATE/.lock is held by a component started by an older control-plane.sh; ignoring it"
      return 0
    fi
    log "another control-plane.sh command is working on $KB_STATE; waiting"
    flock -w 600 "$_STATE_LOCK_FD" || die "timed out waiting for $KB_STATE/.lock"
  fi
}

# Keys and tokens shared by all members; kept across restarts.
state_init() {
  local n=$1 k
  mkdir -p "$KB_STATE/logs"
  for ((k = 1; k <= n; k++)); do mkdir -p "$KB_STATE/lc$k"; done
  if [[ ! -f $KB_STATE/sa.key ]]; then
    openssl genrsa -out "$KB_STATE/sa.key.tmp" 2048 2>/dev/null
    openssl rsa -in "$KB_STATE/sa.key.tmp" -pubout -out "$KB_STATE/sa.pub" 2>/dev/null
    mv "$KB_STATE/sa.key.tmp" "$KB_STATE/sa.key"
  fi
  [[ -f $KB_STATE/tokens.csv ]] || printf '%s,admin,admin,"system:masters"\n' "$KB_ADMIN_TOKEN" >"$KB_STATE/tokens.csv"
  printf '%s\n' "$n" >"$KB_STATE/clusters"
}

# The host's first non-loopback IPv4 (127.0.0.1 fails Endpoints validation), or nothing.
advertise_address() {
  local out line
  out=$(ip -4 -o addr show scope global 2>/dev/null) || return 0
  while read -r line; do
    # "2: eth0    inet 10.1.2.3/24 brd ..."
    line=${line#*inet }
    printf '%s\n' "${line%%/*}"
    return 0
  done <<<"$out"
}

# Choose (or re-check) every port for N clusters and record them.
allocate_ports() {
  local n=$1 k
  ports_lock
  port_allocate etcd "$DEFAULT_ETCD_PORT" "${KB_ETCD_PORT:-}"
  port_allocate etcd-peer "$DEFAULT_ETCD_PEER_PORT" "${KB_ETCD_PEER_PORT:-}"
  for ((k = 1; k <= n; k++)); do
    port_allocate "lc$k-apiserver" "$((DEFAULT_APISERVER_PORT_BASE + k - 1))" \
      "${KB_APISERVER_PORT_BASE:+$((KB_APISERVER_PORT_BASE + k - 1))}"
    port_allocate "lc$k-controller-manager" "$((DEFAULT_KCM_PORT_BASE + k - 1))" \
      "${KB_KCM_PORT_BASE:+$((KB_KCM_PORT_BASE + k - 1))}"
  done
  ports_save
  ports_unlock
  for ((k = 1; k <= n; k++)); do
    printf '%s\n' "${PORTS[lc$k-apiserver]}" >"$KB_STATE/lc$k/port"
  done
}

# --- starting components ---

start_component() {
  local name=$1
  shift
  proc_start "$name" "$(component_log "$name")" "$@"
  CP_STARTED+=("$name")
  log "$name: started (pid $START_PID, port ${PORTS[$name]})"
}

start_etcd() {
  local p=${PORTS[etcd]} pp=${PORTS[etcd-peer]}
  [[ $(uname -m) == aarch64 ]] && export ETCD_UNSUPPORTED_ARCH=arm64
  start_component etcd "$KB_BIN/etcd" --name kb --data-dir "$KB_STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$p" --advertise-client-urls "http://127.0.0.1:$p" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "kb=http://127.0.0.1:$pp"
}

start_apiserver() {
  local k=$1 addr
  local -a extra=()
  addr=$(advertise_address)
  if [[ -z $addr ]]; then
    addr=127.0.0.1
    extra+=(--endpoint-reconciler-type=none)
  fi
  # Optional extra flags for experiments, e.g. KB_APISERVER_ARGS="--v=4".
  if [[ -n ${KB_APISERVER_ARGS:-} ]]; then
    local -a user
    read -r -a user <<<"$KB_APISERVER_ARGS"
    extra+=("${user[@]}")
  fi
  start_component "lc$k-apiserver" "$KB_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${PORTS[etcd]}" --etcd-prefix "/lc$k" \
    --bind-address 127.0.0.1 --secure-port "${PORTS[lc$k-apiserver]}" \
    --advertise-address "$addr" --cert-dir "$KB_STATE/lc$k/certs" \
    --service-account-key-file "$KB_STATE/sa.pub" --service-account-signing-key-file "$KB_STATE/sa.key" \
    --service-account-issuer "$SA_ISSUER" --api-audiences "$SA_ISSUER" \
    --token-auth-file "$KB_STATE/tokens.csv" --authorization-mode RBAC \
    --service-cluster-ip-range "$SERVICE_CIDR" --enable-priority-and-fairness=false --profiling=false \
    "${extra[@]}"
}

start_controller_manager() {
  local k=$1
  start_component "lc$k-controller-manager" "$KB_BIN/kube-controller-manager" \
    --kubeconfig "$KB_STATE/lc$k/kubeconfig" --bind-address 127.0.0.1 \
    --secure-port "${PORTS[lc$k-controller-manager]}" --cert-dir "$KB_STATE/lc$k/kcm-certs" \
    --service-account-private-key-file "$KB_STATE/sa.key" --root-ca-file "$KB_STATE/lc$k/ca.crt" \
    --use-service-account-credentials=false --controllers '*' --leader-elect=false \
    --service-cluster-ip-range "$SERVICE_CIDR"
}

# lcK/ca.crt (the last PEM block of the apiserver's self-signed bundle: its CA) and
# lcK/kubeconfig (admin token, CA embedded), both written atomically.
write_member_files() {
  local k=$1 dir ca
  dir="$KB_STATE/lc$k"
  awk '/-----BEGIN CERTIFICATE-----/ { buf = "" } { buf = buf $0 "\n" }
       /-----END CERTIFICATE-----/ { last = buf } END { printf "%s", last }' \
    "$dir/certs/apiserver.crt" >"$dir/ca.crt.tmp"
  mv -f "$dir/ca.crt.tmp" "$dir/ca.crt"
  ca=$(base64 -w0 <"$dir/ca.crt")
  cat >"$dir/kubeconfig.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: lc$k
  cluster:
    server: https://127.0.0.1:${PORTS[lc$k-apiserver]}
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $KB_ADMIN_TOKEN
contexts:
- name: lc$k
  context:
    cluster: lc$k
    user: admin
current-context: lc$k
KUBECONFIG
  mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
  printf '%s\n' "${PORTS[lc$k-apiserver]}" >"$dir/port"
}

# --- readiness checks: CHECK COMPONENT ---

_member() { printf '%s\n' "${1%%-*}"; }
_auth() { printf 'Authorization: Bearer %s\n' "$KB_ADMIN_TOKEN"; }

check_health() { url_body_matches "http://127.0.0.1:${PORTS[$1]}/health" '"health": ?"true"'; }
check_certs() {
  local f pem
  f="$KB_STATE/$(_member "$1")/certs/apiserver.crt"
  [[ -f $f ]] || return 1
  pem=$(cat "$f")
  [[ $pem == *"END CERTIFICATE"*"END CERTIFICATE"* ]]
}
check_readyz() { url_body_matches "https://127.0.0.1:${PORTS[$1]}/readyz" '^ok' -H "$(_auth)"; }
check_healthz() { url_body_matches "https://127.0.0.1:${PORTS[$1]}/healthz" '^ok'; }
# The controller-manager is really working once it has created default/default.
check_serviceaccount() {
  url_ok "https://127.0.0.1:${PORTS[$(_member "$1")-apiserver]}/api/v1/namespaces/default/serviceaccounts/default" \
    -H "$(_auth)"
}

# Stop with the failing component's last log lines (the exit hook stops what this run started).
fail_component() {
  local name=$1 msg=$2
  log "$name: $msg"
  log_tail "$(component_log "$name")" 30
  die "$name $msg (log: $(component_log "$name"))"
}

# wait_ready CHECK WHAT COMPONENT...: poll check_CHECK for all components together until each
# passes; fails at once if one of them exits, or after KB_READY_TIMEOUT seconds.
wait_ready() {
  local check=$1 what=$2 name pid
  shift 2
  local -a pending=("$@") next
  local deadline=$((SECONDS + KB_READY_TIMEOUT))
  while ((${#pending[@]})); do
    next=()
    for name in "${pending[@]}"; do
      if "check_$check" "$name"; then
        log "$name: $what (+$(kb_elapsed "$CP_T0") s)"
        continue
      fi
      pid=$(pids_get "$name")
      if [[ -z $pid ]] || ! proc_alive "$pid"; then
        fail_component "$name" "exited while waiting for: $what"
      fi
      next+=("$name")
    done
    pending=("${next[@]}")
    ((${#pending[@]})) || break
    ((SECONDS < deadline)) || fail_component "${pending[0]}" "timed out after $KB_READY_TIMEOUT s waiting for: $what"
    sleep 0.3
  done
}

# Bring up apiserver + controller-manager of members "$@" (etcd must be up).
start_members() {
  local k
  local -a apiservers=() kcms=()
  for k in "$@"; do
    start_apiserver "$k"
    apiservers+=("lc$k-apiserver")
    kcms+=("lc$k-controller-manager")
  done
  wait_ready certs "serving certs written" "${apiservers[@]}"
  for k in "$@"; do write_member_files "$k"; done
  wait_ready readyz "ready (/readyz)" "${apiservers[@]}"
  for k in "$@"; do start_controller_manager "$k"; done
  wait_ready healthz "healthy (/healthz)" "${kcms[@]}"
  wait_ready serviceaccount "working (default/default ServiceAccount exists)" "${kcms[@]}"
}

# Exit hook: a failed command stops what it started (and nothing else).
cp_on_exit() {
  ((KB_EXIT_RC != 0)) || return 0
  if ((${#CP_STARTED[@]})); then
    log "stopping what this command started: ${CP_STARTED[*]}"
    local name
    local -a first=()
    for name in "${CP_STARTED[@]}"; do [[ $name != etcd ]] && first+=("$name"); done
    ((${#first[@]})) && proc_stop "${first[@]}"
    [[ " ${CP_STARTED[*]} " == *" etcd "* ]] && proc_stop etcd
  fi
  if [[ ! -s $(pids_file) ]]; then
    rm -f "$(pids_file)"
    ports_release
  fi
}

# True when every component of an N-cluster state dir runs and answers its health check.
all_healthy() {
  local n=$1 name check
  while read -r name; do
    component_running "$name" || return 1
    case $name in
      etcd) check=health ;;
      *-apiserver) check=readyz ;;
      *) check=healthz ;;
    esac
    "check_$check" "$name" || return 1
  done < <(all_components "$n")
}

# 'value' quoted for the shell (plain paths and URLs stay readable for non-shell parsers).
_shq() {
  local v=${1//\'/\'\\\'\'}
  printf "'%s'" "$v"
}

# Shell export lines describing a state dir.
env_lines() {
  local n k kcs=""
  n=$(cluster_count) || die "$KB_STATE is not a control-plane state dir (no clusters file)"
  printf 'export KB_STATE_DIR=%s\n' "$(_shq "$KB_STATE")"
  printf 'export KB_CLUSTERS=%s\n' "$n"
  printf 'export KB_ETCD_URL=%s\n' "$(_shq "http://127.0.0.1:${PORTS[etcd]}")"
  printf 'export KB_ADMIN_TOKEN=%s\n' "$(_shq "$KB_ADMIN_TOKEN")"
  for ((k = 1; k <= n; k++)); do
    printf 'export KB_LC%s_KUBECONFIG=%s\n' "$k" "$(_shq "$KB_STATE/lc$k/kubeconfig")"
    printf 'export KB_LC%s_URL=%s\n' "$k" "$(_shq "https://127.0.0.1:${PORTS[lc$k-apiserver]}")"
    kcs+="${kcs:+,}$KB_STATE/lc$k/kubeconfig"
  done
  printf 'export KB_KUBECONFIGS=%s\n' "$(_shq "$kcs")"
}

write_env_file() {
  env_lines >"$KB_STATE/env.tmp"
  mv -f "$KB_STATE/env.tmp" "$KB_STATE/env"
}
