#!/usr/bin/env bash
# The project's test command: formatting, lints, and the whole suite (unit, integration against
# real kube-apiservers, e2e through the kcp stand-in). Installs what it needs on a fresh machine.
#
#   hack/test.sh            everything
#   hack/test.sh -- ARGS    extra arguments for the test runner (e.g. a test name filter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }

runner_args=()
if [[ "${1:-}" == "--" ]]; then
  shift
  runner_args=("$@")
fi

step "toolchain"
cargo --version
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "${component}"
  fi
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "local control plane (built once per machine, cached)"
hack/control-plane.sh build

export RUST_BACKTRACE=1
step "unit and integration tests (apis, backend, xtask)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude kube-bind-e2e --locked --no-fail-fast "${runner_args[@]}"
  # nextest does not run doctests.
  cargo test --workspace --exclude kube-bind-e2e --locked --doc
else
  cargo test --workspace --exclude kube-bind-e2e --locked --no-fail-fast "${runner_args[@]}"
fi

# The e2e tests of one binary share one control plane and kcp stand-in (started once, ~20 s),
# which needs them in one process: cargo test, not nextest's process per test.
step "end-to-end tests (real kube-apiservers, kcp stand-in)"
cargo test -p kube-bind-e2e --locked --no-fail-fast "${runner_args[@]}"

step "all checks passed"
