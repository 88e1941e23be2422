# shellcheck shell=bash
# Running kcp in a state dir (hack/kcp.sh). One shard: `kcp start` with embedded etcd, serving
# the virtual workspaces on its own port. N shards: see kcp-sharded.sh. Requires KB_STATE,
# KB_BIN and log.sh, proc.sh, ports.sh, wait.sh. Sourced, never executed.
#
# Process names (pids, ports, logs/<name>.log): the shards `root`, `shard-1`, ...; with N >= 2
# also `cache-server` and `front-proxy`. Ports: <name> (secure port), <name>-etcd,
# <name>-etcd-peer.
#
# Every client of ours authenticates with one static token from STATE/tokens.csv (group
# system:kcp:admin, as kcp's own `kcp-admin`): kcp's generated kcp-admin token changes on every
# start, and ours must survive restarts of single shards. A second static user,
# `provider-owner` (no groups but system:authenticated), lets tests act as a workspace owner who
# is not a kcp admin.

# shellcheck source=SCRIPTDIR/kcp-sharded.sh
source "$(dirname "${BASH_SOURCE[0]}")/kcp-sharded.sh"

: "${KB_READY_TIMEOUT:=180}"
DEFAULT_KCP_PORT=16800
DEFAULT_KCP_ETCD_PORT=23900
DEFAULT_KCP_ETCD_PEER_PORT=24900
KCP_ADMIN_USER=kcp-admin-static
KCP_PROVIDER_OWNER=provider-owner

kcp_log_file() { printf '%s/logs/%s.log\n' "$KB_STATE" "$1"; }

# The shards of the state dir, one name a line, root first.
shard_names() {
  local n k
  n=$(cat "$KB_STATE/shards" 2>/dev/null) || return 0
  echo root
  for ((k = 1; k < n; k++)); do echo "shard-$k"; done
}

shard_count() { cat "$KB_STATE/shards" 2>/dev/null; }

# user_token USER: the static token of USER in STATE/tokens.csv.
user_token() { awk -F, -v user="$1" '$2 == user { print $1 }' "$KB_STATE/tokens.csv"; }

admin_token() { user_token "$KCP_ADMIN_USER"; }

_KCP_LOCK_FD=
kcp_lock() {
  mkdir -p "$KB_STATE"
  exec {_KCP_LOCK_FD}>"$KB_STATE/.lock"
  flock -w 600 "$_KCP_LOCK_FD" || die "timed out waiting for $KB_STATE/.lock (another hack/kcp.sh is working there)"
}

# The static tokens, made once per state dir (a user missing from an older state dir is added;
# kcp reads the file when it starts).
kcp_init_state() {
  local shards=$1
  mkdir -p "$KB_STATE/logs"
  if [[ ! -f $KB_STATE/tokens.csv ]]; then
    printf '%s,%s,%s,"system:kcp:admin"\n' "$(openssl rand -hex 24)" "$KCP_ADMIN_USER" "$KCP_ADMIN_USER" \
      >"$KB_STATE/tokens.csv.tmp"
    chmod 600 "$KB_STATE/tokens.csv.tmp"
    mv -f "$KB_STATE/tokens.csv.tmp" "$KB_STATE/tokens.csv"
  fi
  if [[ -z $(user_token "$KCP_PROVIDER_OWNER") ]]; then
    printf '%s,%s,%s\n' "$(openssl rand -hex 24)" "$KCP_PROVIDER_OWNER" "$KCP_PROVIDER_OWNER" >>"$KB_STATE/tokens.csv"
  fi
  printf '%s\n' "$shards" >"$KB_STATE/shards"
}

# kcp_allocate_ports NAMES...: a secure port and an embedded-etcd client and peer port for each.
kcp_allocate_ports() {
  local name i=0
  ports_lock
  for name in "$@"; do
    port_allocate "$name" "$((DEFAULT_KCP_PORT + i))"
    port_allocate "$name-etcd" "$((DEFAULT_KCP_ETCD_PORT + i))"
    port_allocate "$name-etcd-peer" "$((DEFAULT_KCP_ETCD_PEER_PORT + i))"
    i=$((i + 1))
  done
  ports_save
  ports_unlock
}

# The URL clients use: the only shard's, or the front-proxy's.
kcp_front_url() {
  if (($(shard_count) == 1)); then
    printf 'https://127.0.0.1:%s\n' "${PORTS[root]}"
  else
    printf 'https://127.0.0.1:%s\n' "${PORTS[front-proxy]}"
  fi
}

# True when URL/readyz answers 200 to the admin token (TLS checked against the state's CA).
kcp_ready() {
  local url=$1 ca=${2:-$KB_STATE/ca.crt}
  curl -fs --max-time 3 --cacert "$ca" -H "Authorization: Bearer $(admin_token)" -o /dev/null "$url/readyz"
}

# kcp_wait NAME URL CA: wait until the process NAME serves URL/readyz; dies with its log tail.
kcp_wait() {
  local name=$1 url=$2 ca=$3 rc=0 pid
  pid=$(pids_get "$name")
  wait_until "$KB_READY_TIMEOUT" "$pid" kcp_ready "$url" "$ca" || rc=$?
  if ((rc != 0)); then
    log_tail "$(kcp_log_file "$name")" 25
    ((rc == 2)) && die "$name exited while starting; log: $(kcp_log_file "$name")"
    die "$name was not ready after $KB_READY_TIMEOUT s; log: $(kcp_log_file "$name")"
  fi
}

# --- one shard ---------------------------------------------------------------------------------

# The one shard's serving CA: kcp writes a self-signed serving cert and its CA into its root dir.
single_shard_args() {
  local p=${PORTS[root]}
  printf '%s\n' start --root-directory "$KB_STATE/root" --shard-name root \
    --bind-address 127.0.0.1 --secure-port "$p" --shard-base-url "https://127.0.0.1:$p" \
    --embedded-etcd-client-port "${PORTS[root-etcd]}" --embedded-etcd-peer-port "${PORTS[root-etcd-peer]}" \
    --token-auth-file "$KB_STATE/tokens.csv" --shutdown-watch-termination-grace-period 2s
  if [[ -n ${KCP_ARGS:-} ]]; then
    local -a extra
    read -r -a extra <<<"$KCP_ARGS"
    printf '%s\n' "${extra[@]}"
  fi
}

single_shard_start() {
  local -a args
  mapfile -t args < <(single_shard_args)
  proc_start root "$(kcp_log_file root)" "$KB_BIN/kcp" "${args[@]}"
  log "root: started (pid $START_PID, port ${PORTS[root]})"
  # kcp writes its admin kubeconfig (with the serving CA) once it serves.
  wait_until "$KB_READY_TIMEOUT" "$START_PID" test -s "$KB_STATE/root/admin.kubeconfig" ||
    { log_tail "$(kcp_log_file root)" 25; die "kcp wrote no $KB_STATE/root/admin.kubeconfig; log: $(kcp_log_file root)"; }
  if [[ ! -s $KB_STATE/ca.crt ]]; then
    local data
    # Every cluster of kcp's kubeconfig carries the same CA; the first will do. (No `| head`: under
    # pipefail its early exit would fail the pipeline.)
    data=$(sed -n 's/^[[:space:]]*certificate-authority-data:[[:space:]]*//p' "$KB_STATE/root/admin.kubeconfig")
    base64 -d <<<"${data%%$'\n'*}" >"$KB_STATE/ca.crt.tmp"
    grep -q 'BEGIN CERTIFICATE' "$KB_STATE/ca.crt.tmp" || die "no CA in $KB_STATE/root/admin.kubeconfig"
    mv -f "$KB_STATE/ca.crt.tmp" "$KB_STATE/ca.crt"
  fi
  kcp_wait root "https://127.0.0.1:${PORTS[root]}" "$KB_STATE/ca.crt"
}

# --- files for clients -------------------------------------------------------------------------

# STATE/admin.kubeconfig: contexts `root` (the root workspace) and `base` (the front URL) with
# the static token, which survives restarts (kcp's own kcp-admin token does not).
kcp_write_admin_kubeconfig() {
  local base ca
  base=$(kcp_front_url)
  ca=$(base64 -w0 <"$KB_STATE/ca.crt")
  cat >"$KB_STATE/admin.kubeconfig.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: root
  cluster:
    server: $base/clusters/root
    certificate-authority-data: $ca
- name: base
  cluster:
    server: $base
    certificate-authority-data: $ca
users:
- name: $KCP_ADMIN_USER
  user:
    token: $(admin_token)
contexts:
- name: root
  context:
    cluster: root
    user: $KCP_ADMIN_USER
- name: base
  context:
    cluster: base
    user: $KCP_ADMIN_USER
current-context: root
KUBECONFIG
  chmod 600 "$KB_STATE/admin.kubeconfig.tmp"
  mv -f "$KB_STATE/admin.kubeconfig.tmp" "$KB_STATE/admin.kubeconfig"
  printf '%s\n' "$base" >"$KB_STATE/base-url"
}

# shard_labels NAME: its labels as JSON (the Shard object carries the same).
shard_labels() {
  if [[ $1 == root ]]; then
    printf '{"shard":"root","role":"root"}'
  else
    printf '{"shard":"%s"}' "$1"
  fi
}

# Labels each Shard object (root workspace, shards.core.kcp.io) so that workspaces can be
# placed with spec.location.selector.
kcp_label_shards() {
  local name labels
  for name in $(shard_names); do
    labels=$(shard_labels "$name")
    curl -fs --max-time 10 --cacert "$KB_STATE/ca.crt" -H "Authorization: Bearer $(admin_token)" \
      -X PATCH -H 'Content-Type: application/merge-patch+json' \
      -d "{\"metadata\":{\"labels\":$labels}}" -o /dev/null \
      "$(kcp_front_url)/clusters/root/apis/core.kcp.io/v1alpha1/shards/$name" ||
      die "could not label the Shard object $name in the root workspace"
  done
}

# STATE/shards.json: name, url, labels and pid of every shard.
kcp_write_shards_json() {
  local name sep="" out="["
  for name in $(shard_names); do
    out+="$sep{\"name\":\"$name\",\"url\":\"https://127.0.0.1:${PORTS[$name]}\",\"labels\":$(shard_labels "$name"),\"pid\":$(pids_get "$name")}"
    sep=","
  done
  printf '%s]\n' "$out" >"$KB_STATE/shards.json.tmp"
  mv -f "$KB_STATE/shards.json.tmp" "$KB_STATE/shards.json"
}

# --- commands ----------------------------------------------------------------------------------

# Every process name, in start order.
kcp_processes() {
  if (($(shard_count) == 1)); then
    echo root
  else
    echo cache-server
    shard_names
    echo front-proxy
  fi
}

kcp_up() {
  local shards=$1 t name
  local -a running=()
  kcp_lock
  ports_load
  if [[ -f $KB_STATE/shards ]]; then
    for name in $(kcp_processes); do
      component_running "$name" && running+=("$name")
    done
  fi
  if ((${#running[@]})); then
    if [[ $(shard_count) == "$shards" ]] && ((${#running[@]} == $(kcp_processes | wc -l))) &&
      kcp_ready "$(kcp_front_url)"; then
      log "kcp already up in $KB_STATE ($shards shard(s)): $(kcp_front_url)"
      return 0
    fi
    die "$KB_STATE has running kcp processes (${running[*]}) but not the $shards healthy shard(s) asked for; run down first"
  fi
  kb_on_exit _kcp_on_failed_up
  t=$(kb_now)
  [[ -d $KB_STATE/root ]] && log "reusing the data in $KB_STATE"
  kcp_init_state "$shards"
  if ((shards == 1)); then
    kcp_allocate_ports root
    single_shard_start
  else
    sharded_up
  fi
  kcp_write_admin_kubeconfig
  kcp_label_shards
  kcp_write_shards_json
  KCP_UP_DONE=true
  log "kcp ready in $(kb_elapsed "$t") s ($shards shard(s)) at $(kcp_front_url); admin kubeconfig: $KB_STATE/admin.kubeconfig"
}

KCP_UP_DONE=false
# A failed `up` leaves nothing running.
_kcp_on_failed_up() {
  if ((KB_EXIT_RC != 0)) && ! $KCP_UP_DONE; then
    log "up failed: stopping what it started"
    kcp_stop_all
  fi
}

kcp_stop_all() {
  local name
  [[ -f $KB_STATE/pids ]] || return 0
  # The front first, the cache server last.
  for name in front-proxy $(shard_names | tac) cache-server; do
    proc_stop "$name"
  done
}

kcp_down() {
  local t
  if [[ ! -f $KB_STATE/pids ]]; then
    log "nothing recorded as running in $KB_STATE"
    return 0
  fi
  kcp_lock
  ports_load
  t=$(kb_now)
  kcp_stop_all
  rm -f "$KB_STATE/pids"
  ports_release
  log "stopped kcp in $KB_STATE in $(kb_elapsed "$t") s"
}

kcp_stop_shard() {
  local name=$1 t
  kcp_lock
  t=$(kb_now)
  proc_stop "$name"
  log "shard $name stopped in $(kb_elapsed "$t") s (ports and data kept; start-shard to start it again)"
}

kcp_start_shard() {
  local name=$1 t
  kcp_lock
  ports_load
  if component_running "$name"; then
    log "shard $name is already running"
    return 0
  fi
  ! port_listening "${PORTS[$name]}" || die "port ${PORTS[$name]} of shard $name is taken by another process"
  t=$(kb_now)
  if (($(shard_count) == 1)); then
    single_shard_start
  else
    sharded_start_shard "$name"
  fi
  kcp_write_shards_json
  log "shard $name ready again in $(kb_elapsed "$t") s"
}

kcp_status() {
  local name pid state all_up=true
  [[ -f $KB_STATE/shards ]] || die "$KB_STATE is not a kcp state dir (run up first)"
  ports_load
  for name in $(kcp_processes); do
    pid=$(pids_get "$name")
    state=down
    if [[ -n $pid ]] && proc_owned "$pid"; then
      if [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) == T ]]; then
        state=frozen
      else
        state=up
      fi
    fi
    [[ $state == up ]] || all_up=false
    printf '%-14s %-7s pid=%s port=%s\n' "$name" "$state" "${pid:--}" "${PORTS[$name]:--}"
  done
  $all_up || return 3
}
