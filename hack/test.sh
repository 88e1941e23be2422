#!/usr/bin/env bash
# The project's test command: formatting, lints, and the whole suite (unit, integration against
# real kube-apiservers, e2e against real kcp). Installs what it needs on a fresh machine; the
# test world (etcd, Kubernetes, kcp) is built from Go modules once per machine (hack/build.sh).
#
#   hack/test.sh            everything
#   hack/test.sh -- ARGS    extra arguments for the test runner (e.g. a test name filter)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HACK_DIR/.."
KB_LOG_PREFIX="test"
# shellcheck source=lib/log.sh
source "$HACK_DIR/lib/log.sh"
# shellcheck source=lib/tools.sh
source "$HACK_DIR/lib/tools.sh"

started=$SECONDS
step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }

runner_args=()
if [[ "${1:-}" == "--" ]]; then
  shift
  runner_args=("$@")
fi

step "toolchain"
cargo --version
go version
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "${component}"
  fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest (cargo install --locked; a few minutes, once per machine)"
  cargo install --locked --quiet cargo-nextest
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "test world: etcd, kube-apiserver, kube-controller-manager, kubectl, kcp (Go modules; built once per machine, cached)"
hack/build.sh
# Our kubectl (the apiservers' minor, one from kcp's) first, for the tests and scripts below.
PATH="$(hack/build.sh --bin-dir):$PATH"
export PATH
kubectl version --client

export RUST_BACKTRACE=1
step "unit and integration tests (apis, backend, xtask)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude kube-bind-e2e --locked --no-fail-fast "${runner_args[@]}"
  # nextest does not run doctests.
  cargo test --workspace --exclude kube-bind-e2e --locked --doc
else
  cargo test --workspace --exclude kube-bind-e2e --locked --no-fail-fast "${runner_args[@]}"
fi

step "test-only tools: redis-server, haproxy, chromium, chromium-driver (Debian), oidc-provider (npm ci, cached per lock file)"
test_tools_install

# The e2e tests of one binary share one control plane or kcp (started once, ~30 s), which needs
# them in one process: cargo test, not nextest's process per test.
step "end-to-end tests (real kube-apiservers, real kcp)"
cargo test -p kube-bind-e2e --locked --no-fail-fast "${runner_args[@]}"

step "quickstart smoke test (hack/quickstart.sh --kcp --detach, kubectl checks, down)"
command -v curl >/dev/null || apt_install curl
command -v jq >/dev/null || apt_install jq
# In a dir of its own, so a quickstart the developer runs in .local is left alone. The dev
# profile reuses the binaries the e2e tests just built; a fresh release build would add 5-7
# minutes on 2 cores (QUICKSTART_PROFILE=release tests exactly what the README runs).
# The consumer's path through the quickstart's backend, as upstream's CLI walks it: log in for
# provider workspace $1 through the embedded issuer's form, bind template `cowboys`, create the
# export request with the returned kubeconfig (it targets kcp's front, /clusters/$1) and wait
# until the controllers mark it Succeeded.
login_and_bind() {
  local id=$1 jar page pending location token response kubeconfig phase i
  jar=$(mktemp)
  location=$(curl -fsS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    "$BACKEND_URL/api/authorize?redirect_url=http://127.0.0.1:1/cb&session_id=smoke&client_type=cli&cluster_id=$id")
  page=$(curl -fsS -c "$jar" -b "$jar" "$location")
  pending=$(grep -o 'name="pending" value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
  [[ -n $pending ]] || fail "the embedded issuer's login page has no pending request"
  location=$(curl -fsS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
    --data-urlencode "pending=$pending" --data-urlencode "username=smoke-user" "$BACKEND_URL/oidc/authorize")
  [[ $location == "$BACKEND_URL/api/callback?"* ]] || fail "the issuer did not send the browser to /api/callback: $location"
  location=$(curl -fsS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$location")
  rm -f "$jar"
  token=$(sed -n 's/.*[?&]access_token=\([^&]*\).*/\1/p' <<<"$location")
  [[ -n $token ]] || fail "the login did not end at the CLI callback with a token: ${location%%\?*}"
  response=$(curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data '{"metadata":{"name":"cowboys"},"templateRef":{"name":"cowboys"}}' "$BACKEND_URL/api/bind?cluster_id=$id")
  kubeconfig=$dir/smoke-consumer.kubeconfig
  jq -r .kubeconfig <<<"$response" | base64 -d >"$kubeconfig"
  grep -q "server: .*/clusters/$id\$" "$kubeconfig" || fail "the kubeconfig does not target workspace $id"
  jq '.requests[0]' <<<"$response" | kubectl --kubeconfig "$kubeconfig" create -f - >/dev/null
  for ((i = 0; i < 60; i++)); do
    phase=$(kubectl --kubeconfig "$kubeconfig" get apiserviceexportrequest cowboys -o jsonpath='{.status.phase}')
    [[ $phase == Succeeded ]] && break
    sleep 1
  done
  [[ $phase == Succeeded ]] || fail "the export request made with the bind kubeconfig is ${phase:-without a phase} after 60 s"
  [[ $(kubectl --kubeconfig "$kubeconfig" auth can-i get secrets -n kube-system) == no* ]] ||
    fail "the consumer kubeconfig may read kube-system's secrets"
  echo "login, bind and export request through the quickstart's backend: ok (workspace $id)"
}

quickstart_smoke() (
  local dir=$PWD/target/quickstart-smoke t0=$SECONDS t1 url lines ns pid id i cmdline
  local -a kubeconfigs ids pids=()
  export QUICKSTART_DIR=$dir QUICKSTART_PROFILE=${QUICKSTART_PROFILE:-dev}
  trap 'hack/quickstart.sh down' EXIT
  hack/quickstart.sh --kcp --detach
  # shellcheck source=/dev/null
  source "$dir/env"
  fail() { echo "quickstart smoke test: $*" >&2; exit 1; }
  IFS=, read -r -a kubeconfigs <<<"$PROVIDER_KUBECONFIGS"
  IFS=, read -r -a ids <<<"$PROVIDER_CLUSTER_IDS"
  ((${#kubeconfigs[@]} == 2 && ${#ids[@]} == 2)) || fail "expected two provider workspaces"
  for i in 0 1; do
    url=$(kubectl --kubeconfig "${kubeconfigs[i]}" get logicalcluster cluster -o jsonpath='{.status.URL}')
    [[ $url == */clusters/"${ids[i]}" ]] || fail "${kubeconfigs[i]}: LogicalCluster URL $url is not cluster ${ids[i]}"
    kubectl --kubeconfig "${kubeconfigs[i]}" get namespace default -o name >/dev/null
  done
  kubectl --kubeconfig "$CONSUMER_KUBECONFIG" get crd apiservicebindings.kube-bind.io -o name >/dev/null
  # The virtual workspace as the backend sees it: the URL from the endpoint slice in its own
  # workspace, read and listed with its own (ServiceAccount) kubeconfig.
  url=$(kubectl --kubeconfig "$BACKEND_KUBECONFIG" get apiexportendpointslice kube-bind.io -o jsonpath='{.status.endpoints[0].url}')
  [[ -n $url ]] || fail "the kube-bind.io endpoint slice lists no URL"
  ns=quickstart-smoke-$$
  kubectl --kubeconfig "${kubeconfigs[0]}" create namespace "$ns" >/dev/null
  lines=$(kubectl --kubeconfig "$BACKEND_KUBECONFIG" --server "$url/clusters/*" get namespaces \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.annotations.kcp\.io/cluster}{"\n"}{end}')
  for id in "${ids[@]}"; do
    [[ $'\n'$lines$'\n' == *" $id"$'\n'* ]] || fail "the wildcard LIST at $url has no namespace of cluster $id"
  done
  [[ $(grep -c "^$ns " <<<"$lines") == 1 ]] || fail "namespace $ns is not listed exactly once: $lines"
  [[ $(grep "^$ns " <<<"$lines") == "$ns ${ids[0]}" ]] || fail "namespace $ns does not carry kcp.io/cluster ${ids[0]}"
  kubectl --kubeconfig "${kubeconfigs[0]}" delete namespace "$ns" --wait=false >/dev/null
  for id in "${ids[@]}"; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$BACKEND_URL/api/exports?cluster_id=$id") == 200 ]] ||
      fail "GET $BACKEND_URL/api/exports?cluster_id=$id is not 200"
  done
  login_and_bind "${ids[0]}"
  # Run again as two replicas behind haproxy: kcp and its workspaces are reused, the backend is
  # replaced by backend-1, backend-2 and haproxy; the same login and bind through the front.
  t1=$SECONDS
  hack/quickstart.sh --kcp --replicas 2 --session-store cookie --detach
  # shellcheck source=/dev/null
  source "$dir/env"
  [[ $BACKEND_URL == "http://127.0.0.1:$(cat "$dir/backend-port")" ]] || fail "BACKEND_URL $BACKEND_URL is not the front"
  grep -q '^haproxy ' "$dir/pids" || fail "no haproxy in $dir/pids"
  login_and_bind "${ids[1]}"
  echo "two replicas behind haproxy: login and bind through the front ok ($((SECONDS - t1)) s)"
  # Everything the quickstart started, then nothing of it after down.
  while read -r _ pid; do pids+=("$pid"); done < <(cat "$dir/pids" "$dir/kcp/pids")
  trap - EXIT
  hack/quickstart.sh down
  for pid in "${pids[@]}"; do
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue # gone (zombies read empty)
    [[ $cmdline != *"$dir/"* ]] || fail "pid $pid ($cmdline) still runs after down"
  done
  [[ ! -e $dir/env ]] || fail "$dir/env is still there after down"
  echo "quickstart smoke test passed in $((SECONDS - t0)) s (${#pids[@]} processes started and stopped)"
)
quickstart_smoke

step "all checks passed"
