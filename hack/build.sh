#!/usr/bin/env bash
# Builds the test world's binaries from their Go modules, once per machine (cached in
# $KB_CACHE/bin, default ~/.cache/kube-bind-rs/bin): etcd, kubernetes (kube-apiserver,
# kube-controller-manager, kubectl), kcp (kcp, cache-server, kcp-front-proxy) and kcp-cli
# (kubectl-ws, kubectl-kcp).
#
#   hack/build.sh [COMPONENT...]   build the given components (default: all)
#   hack/build.sh --bin-dir        print the directory the binaries are installed in
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KB_LOG_PREFIX=build
# shellcheck source=lib/log.sh
source "$HACK_DIR/lib/log.sh"
# shellcheck source=lib/build.sh
source "$HACK_DIR/lib/build.sh"

if [[ ${1:-} == --bin-dir ]]; then
  printf '%s\n' "$KB_BIN"
  exit 0
fi
build_components "$@"
