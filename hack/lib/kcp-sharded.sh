# shellcheck shell=bash
# Sharded kcp (hack/kcp.sh up --shards N, N >= 2): kcp's cache server, the root shard, shards
# shard-1 ... shard-(N-1) and kcp's front-proxy, each its own process on free ports (all bound to
# 127.0.0.1), started, stopped and frozen on its own. Sourced by kcp.sh; uses its helpers.
#
# Layout in the state dir:
#   pki/   our own PKI, made once with openssl and kept across restarts:
#          serving-ca    signs serving.crt (127.0.0.1, localhost), used by every server
#          client-ca     signs the client certs shards, cache server and front-proxy accept
#          requestheader-ca  signs front-proxy-client.crt (the front-proxy's identity towards
#                        the shards, which then trust its X-Remote-User/-Group headers)
#          service-account.key/.pub  one SA signing key for all shards
#   conf/  kubeconfigs (client certs) and the front-proxy's mapping file, rewritten on each up
#          (they carry the ports)
#   <name>/  each process's --root-directory
#
# Authentication through the front-proxy: the front-proxy is given no token authenticator, so
# it forwards requests without a client certificate as they are (the Authorization header
# included) and the shard behind it checks the bearer token. Every shard reads the same
# tokens.csv, so the static tokens (admin, provider-owner) work through the front-proxy, on every shard and on
# every shard's virtual workspaces; so do service-account tokens (one SA key for all shards).
# Client certificates of client-ca are authenticated by the front-proxy itself and forwarded
# as request headers.

SHARDED_DEFAULT_FRONT_PROXY_PORT=16880
SHARDED_DEFAULT_CACHE_PORT=16890
SHARDED_DEFAULT_CACHE_ETCD_PORT=23990
SHARDED_DEFAULT_CACHE_ETCD_PEER_PORT=24990

_sharded_pki() { printf '%s/pki\n' "$KB_STATE"; }
_sharded_conf() { printf '%s/conf\n' "$KB_STATE"; }

# --- PKI (openssl) -----------------------------------------------------------------------------

# _pki_openssl_conf EXTENSIONS...: a minimal openssl config whose section [ext] holds the
# given extension lines (no system openssl.cnf defaults get mixed in).
_pki_openssl_conf() {
  printf '[req]\ndistinguished_name = dn\n[dn]\n[ext]\n'
  printf '%s\n' "$@"
}

# _pki_key FILE: a new P-256 key, mode 0600.
_pki_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.tmp") ||
    die "openssl could not make the key $1"
  mv -f "$1.tmp" "$1"
}

# _pki_ca NAME CN: pki/NAME.{crt,key}, a self-signed CA (kept if present).
_pki_ca() {
  local name=$1 cn=$2 pki
  pki=$(_sharded_pki)
  [[ -s $pki/$name.crt && -s $pki/$name.key ]] && return 0
  _pki_key "$pki/$name.key"
  openssl req -x509 -new -sha256 -days 3650 -key "$pki/$name.key" -subj "/CN=$cn" \
    -config <(_pki_openssl_conf 'basicConstraints = critical,CA:TRUE' \
      'keyUsage = critical,keyCertSign,cRLSign,digitalSignature' 'subjectKeyIdentifier = hash') \
    -extensions ext -out "$pki/$name.crt.tmp" 2>/dev/null || die "openssl could not make the CA $name"
  mv -f "$pki/$name.crt.tmp" "$pki/$name.crt"
}

# _pki_cert NAME CA SUBJECT server|client: pki/NAME.{crt,key} signed by pki/CA (kept if present
# and still signed by that CA). SUBJECT as for openssl -subj, e.g. /O=group/CN=user.
_pki_cert() {
  local name=$1 ca=$2 subject=$3 kind=$4 pki
  local -a usage
  pki=$(_sharded_pki)
  if [[ -s $pki/$name.crt && -s $pki/$name.key ]] &&
    openssl verify -CAfile "$pki/$ca.crt" "$pki/$name.crt" >/dev/null 2>&1; then
    return 0
  fi
  if [[ $kind == server ]]; then
    usage=('extendedKeyUsage = serverAuth' 'subjectAltName = IP:127.0.0.1,DNS:localhost')
  else
    usage=('extendedKeyUsage = clientAuth')
  fi
  _pki_key "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "$subject" -config <(_pki_openssl_conf) 2>/dev/null |
    openssl x509 -req -sha256 -days 3650 -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" \
      -extfile <(_pki_openssl_conf 'basicConstraints = critical,CA:FALSE' \
        'keyUsage = critical,digitalSignature,keyEncipherment' "${usage[@]}" \
        'authorityKeyIdentifier = keyid') \
      -extensions ext -out "$pki/$name.crt.tmp" 2>/dev/null || die "openssl could not make the certificate $name"
  mv -f "$pki/$name.crt.tmp" "$pki/$name.crt"
}

# Every certificate and key of the sharded setup; existing ones are kept.
sharded_pki() {
  local pki
  pki=$(_sharded_pki)
  mkdir -p "$pki"
  _pki_ca serving-ca kcp-serving-ca
  _pki_ca client-ca kcp-client-ca
  _pki_ca requestheader-ca kcp-front-proxy-requestheader-ca
  # One serving certificate for all processes: they all serve on 127.0.0.1.
  _pki_cert serving serving-ca /CN=kcp-server server
  # The front-proxy's client certificate towards the shards (requestheader authentication).
  _pki_cert front-proxy-client requestheader-ca /CN=kcp-front-proxy client
  # system:masters: the front-proxy's informers on the shards, the shards' client of the cache
  # server, non-root shards' client of the root shard.
  _pki_cert shard-admin client-ca /O=system:masters/CN=shard-admin client
  # Shards creating/deleting LogicalClusters on other shards (directly, and via the front-proxy).
  _pki_cert logical-cluster-admin client-ca /O=system:kcp:logical-cluster-admin/CN=logical-cluster-admin client
  _pki_cert external-logical-cluster-admin client-ca \
    /O=system:kcp:external-logical-cluster-admin/CN=external-logical-cluster-admin client
  if [[ ! -s $pki/service-account.key || ! -s $pki/service-account.pub ]]; then
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/service-account.key.tmp" 2>/dev/null) ||
      die "openssl could not make the service-account key"
    openssl pkey -in "$pki/service-account.key.tmp" -pubout -out "$pki/service-account.pub" ||
      die "openssl could not write the service-account public key"
    mv -f "$pki/service-account.key.tmp" "$pki/service-account.key"
  fi
  # Clients trust the front-proxy's serving certificate: the same CA.
  cp -f "$pki/serving-ca.crt" "$KB_STATE/ca.crt.tmp"
  mv -f "$KB_STATE/ca.crt.tmp" "$KB_STATE/ca.crt"
}

# --- configuration files -----------------------------------------------------------------------

# _sharded_kubeconfig FILE SERVER CERT CONTEXT: a kubeconfig for SERVER with client cert pki/CERT.
_sharded_kubeconfig() {
  local file=$1 server=$2 cert=$3 context=$4 pki
  pki=$(_sharded_pki)
  cat >"$file.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: base
  cluster:
    server: $server
    certificate-authority: $pki/serving-ca.crt
users:
- name: $cert
  user:
    client-certificate: $pki/$cert.crt
    client-key: $pki/$cert.key
contexts:
- name: $context
  context:
    cluster: base
    user: $cert
current-context: $context
KUBECONFIG
  mv -f "$file.tmp" "$file"
}

# The kubeconfigs and the front-proxy's mapping file (they name ports, so they are rewritten on
# every up).
sharded_write_config() {
  local conf pki root_url
  conf=$(_sharded_conf)
  pki=$(_sharded_pki)
  root_url="https://127.0.0.1:${PORTS[root]}"
  mkdir -p "$conf"
  _sharded_kubeconfig "$conf/cache.kubeconfig" "https://127.0.0.1:${PORTS[cache-server]}" shard-admin cache
  # Context shard-base: non-root shards load --root-shard-kubeconfig-file with that context.
  _sharded_kubeconfig "$conf/root-shard.kubeconfig" "$root_url" shard-admin shard-base
  # The front-proxy replaces the server by each Shard's spec.baseURL.
  _sharded_kubeconfig "$conf/shards.kubeconfig" "$root_url" shard-admin base
  # kcp replaces the server by the target Shard's base URL.
  _sharded_kubeconfig "$conf/logical-cluster-admin.kubeconfig" "$root_url" logical-cluster-admin base
  _sharded_kubeconfig "$conf/external-logical-cluster-admin.kubeconfig" "$(kcp_front_url)" \
    external-logical-cluster-admin base
  # /clusters/: routed by the front-proxy's index to the shard holding the logical cluster (the
  # backend named here is not used). /services/ (virtual workspaces): the root shard's; each
  # shard serves its own under its own URL (see the APIExportEndpointSlices).
  local path
  : >"$conf/front-proxy-mapping.yaml.tmp"
  for path in /services/ /clusters/; do
    cat >>"$conf/front-proxy-mapping.yaml.tmp" <<MAPPING
- path: $path
  backend: $root_url
  backend_server_ca: $pki/serving-ca.crt
  proxy_client_cert: $pki/front-proxy-client.crt
  proxy_client_key: $pki/front-proxy-client.key
MAPPING
  done
  mv -f "$conf/front-proxy-mapping.yaml.tmp" "$conf/front-proxy-mapping.yaml"
}

# --- command lines -----------------------------------------------------------------------------

# sharded_args NAME: the command line of process NAME, one word a line (the same on every start).
# Flags in the --flag=value form: cache-server picks --root-directory out of its arguments only
# in that form. Shards:
#   --shard-base-url / --shard-virtual-workspace-url  the shard's own port: the front-proxy
#       routes to the base URL, APIExportEndpointSlices list the VW URL (VWs run in-process)
#   --shard-external-url  the front-proxy (Workspace URLs)
#   --requestheader-*     trust the front-proxy's forwarded user (client cert of requestheader-ca)
#   --service-account-*   one SA key for all shards (tokens valid on every shard)
#   --cache-kubeconfig    the shared cache server (without it the root shard runs its own)
#   --[external-]logical-cluster-admin-kubeconfig  cross-shard clients (workspace scheduling
#       creates LogicalClusters on other shards; VWs check RBAC of exports on other shards)
#   --root-shard-kubeconfig-file (non-root)  reads the root shard's APIs and identities
#   --shutdown-watch-termination-grace-period=2s  close open watches on SIGTERM; without it a
#       shard that any client watches (e.g. the front-proxy) hangs until KB_STOP_GRACE and KILL
sharded_args() {
  local name=$1 pki conf
  pki=$(_sharded_pki)
  conf=$(_sharded_conf)
  case $name in
    cache-server)
      printf '%s\n' "$KB_BIN/cache-server" \
        "--root-directory=$KB_STATE/cache-server" \
        --bind-address=127.0.0.1 "--secure-port=${PORTS[cache-server]}" \
        "--embedded-etcd-client-port=${PORTS[cache-server-etcd]}" \
        "--embedded-etcd-peer-port=${PORTS[cache-server-etcd-peer]}" \
        "--tls-cert-file=$pki/serving.crt" "--tls-private-key-file=$pki/serving.key" \
        "--client-ca-file=$pki/client-ca.crt"
      ;;
    front-proxy)
      printf '%s\n' "$KB_BIN/kcp-front-proxy" \
        "--root-directory=$KB_STATE/front-proxy" \
        --bind-address=127.0.0.1 "--secure-port=${PORTS[front-proxy]}" \
        "--tls-cert-file=$pki/serving.crt" "--tls-private-key-file=$pki/serving.key" \
        "--mapping-file=$conf/front-proxy-mapping.yaml" \
        "--root-kubeconfig=$conf/root-shard.kubeconfig" \
        "--shards-kubeconfig=$conf/shards.kubeconfig" \
        "--client-ca-file=$pki/client-ca.crt"
      ;;
    *)
      local p=${PORTS[$name]}
      printf '%s\n' "$KB_BIN/kcp" start \
        "--root-directory=$KB_STATE/$name" --shard-name="$name" \
        --bind-address=127.0.0.1 "--secure-port=$p" \
        "--embedded-etcd-client-port=${PORTS[$name-etcd]}" \
        "--embedded-etcd-peer-port=${PORTS[$name-etcd-peer]}" \
        "--shard-base-url=https://127.0.0.1:$p" \
        "--shard-external-url=$(kcp_front_url)" \
        "--shard-virtual-workspace-url=https://127.0.0.1:$p" \
        "--tls-cert-file=$pki/serving.crt" "--tls-private-key-file=$pki/serving.key" \
        "--client-ca-file=$pki/client-ca.crt" \
        "--requestheader-client-ca-file=$pki/requestheader-ca.crt" \
        --requestheader-username-headers=X-Remote-User \
        --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        "--service-account-key-file=$pki/service-account.pub" \
        "--service-account-private-key-file=$pki/service-account.key" \
        "--service-account-signing-key-file=$pki/service-account.key" \
        "--cache-kubeconfig=$conf/cache.kubeconfig" \
        "--logical-cluster-admin-kubeconfig=$conf/logical-cluster-admin.kubeconfig" \
        "--external-logical-cluster-admin-kubeconfig=$conf/external-logical-cluster-admin.kubeconfig" \
        "--token-auth-file=$KB_STATE/tokens.csv" \
        --shutdown-watch-termination-grace-period=2s
      if [[ $name != root ]]; then
        printf '%s\n' "--root-shard-kubeconfig-file=$conf/root-shard.kubeconfig"
      fi
      if [[ -n ${KCP_ARGS:-} ]]; then
        local -a extra
        read -r -a extra <<<"$KCP_ARGS"
        printf '%s\n' "${extra[@]}"
      fi
      ;;
  esac
}

# --- readiness ---------------------------------------------------------------------------------

# The cache server's /readyz (anonymous; checked with our client certificate anyway).
_sharded_cache_ready() {
  local pki
  pki=$(_sharded_pki)
  curl -fs --max-time 3 --cacert "$pki/serving-ca.crt" --cert "$pki/shard-admin.crt" --key "$pki/shard-admin.key" \
    -o /dev/null "https://127.0.0.1:${PORTS[cache-server]}/readyz"
}

# The front-proxy is ready when its /readyz answers and it routes the admin token to the root
# workspace, where every shard of the state dir has registered its Shard object.
_sharded_front_ready() {
  local body name
  kcp_ready "$(kcp_front_url)" "$KB_STATE/ca.crt" || return 1
  body=$(curl -fs --max-time 5 --cacert "$KB_STATE/ca.crt" -H "Authorization: Bearer $(admin_token)" \
    "$(kcp_front_url)/clusters/root/apis/core.kcp.io/v1alpha1/shards") || return 1
  for name in $(shard_names); do
    # (kcp pretty-prints JSON for curl)
    [[ $body =~ \"name\":[[:space:]]*\"$name\" ]] || return 1
  done
}

# sharded_ready NAME: one readiness check of process NAME.
sharded_ready() {
  case $1 in
    cache-server) _sharded_cache_ready ;;
    front-proxy) _sharded_front_ready ;;
    *) kcp_ready "https://127.0.0.1:${PORTS[$1]}" "$(_sharded_pki)/serving-ca.crt" ;;
  esac
}

# sharded_wait NAME: wait until NAME is ready; dies with its log tail if it exits or times out.
sharded_wait() {
  local name=$1 rc=0 pid
  pid=$(pids_get "$name")
  wait_until "$KB_READY_TIMEOUT" "$pid" sharded_ready "$name" || rc=$?
  if ((rc != 0)); then
    log_tail "$(kcp_log_file "$name")" 25
    ((rc == 2)) && die "$name exited while starting; log: $(kcp_log_file "$name")"
    die "$name was not ready after $KB_READY_TIMEOUT s; log: $(kcp_log_file "$name")"
  fi
}

# --- processes ---------------------------------------------------------------------------------

# _sharded_start NAME: start process NAME (not waiting); sets START_PID.
_sharded_start() {
  local name=$1
  local -a argv
  mapfile -t argv < <(sharded_args "$name")
  proc_start "$name" "$(kcp_log_file "$name")" "${argv[@]}"
  log "$name: started (pid $START_PID, port ${PORTS[$name]})"
}

# _sharded_wait_timed NAME T0: wait for NAME, then log how long it took since T0.
_sharded_wait_timed() {
  sharded_wait "$1"
  log "$1: ready in $(kb_elapsed "$2") s"
}

sharded_allocate_ports() {
  local -a shard_list
  mapfile -t shard_list < <(shard_names)
  kcp_allocate_ports "${shard_list[@]}"
  ports_lock
  port_allocate cache-server "$SHARDED_DEFAULT_CACHE_PORT"
  port_allocate cache-server-etcd "$SHARDED_DEFAULT_CACHE_ETCD_PORT"
  port_allocate cache-server-etcd-peer "$SHARDED_DEFAULT_CACHE_ETCD_PEER_PORT"
  port_allocate front-proxy "$SHARDED_DEFAULT_FRONT_PROXY_PORT"
  ports_save
  ports_unlock
}

# The whole sharded kcp: cache server, root shard, the other shards (started together), then
# the front-proxy, each waited for in turn.
sharded_up() {
  local name t
  local -a others=()
  sharded_allocate_ports
  sharded_pki
  sharded_write_config
  mkdir -p "$KB_STATE/logs"

  t=$(kb_now)
  _sharded_start cache-server
  _sharded_wait_timed cache-server "$t"

  t=$(kb_now)
  _sharded_start root
  _sharded_wait_timed root "$t"

  t=$(kb_now)
  for name in $(shard_names); do
    [[ $name == root ]] && continue
    others+=("$name")
    _sharded_start "$name"
  done
  for name in "${others[@]}"; do
    _sharded_wait_timed "$name" "$t"
  done

  t=$(kb_now)
  _sharded_start front-proxy
  _sharded_wait_timed front-proxy "$t"
}

# sharded_start_shard NAME: start one stopped process of the sharded setup again (a shard, or
# also cache-server / front-proxy) with the same command line, and wait until it is ready.
sharded_start_shard() {
  local name=$1 t
  [[ -n ${PORTS[$name]:-} ]] || die "no port recorded for $name in $KB_STATE/ports"
  t=$(kb_now)
  _sharded_start "$name"
  _sharded_wait_timed "$name" "$t"
}
