//! Logins and binds per second through haproxy: two backend replicas behind it against one
//! replica behind the same haproxy, with the same load generator, in the same run.
//!
//! Run with `PATH="$(hack/build.sh --bin-dir):$PATH" cargo bench -p kube-bind-e2e --bench
//! replicas` (haproxy on PATH: `hack/test.sh` installs it). Prints figures; asserts nothing
//! about them. `REPLICAS_BENCH_N` (default 200) logins and binds per phase,
//! `REPLICAS_BENCH_CONCURRENCY` (default 8) at once.
//!
//! How it measures:
//! - The shared plain test cluster of the e2e harness with the kube-bind CRDs and one template.
//! - Each replica is the backend's own main as a process (`kb-backend`, this profile's build),
//!   `--session-store cookie` with fixed cookie and token keys, `--leader-elect` (one Lease per
//!   phase), the front's issuer and callback URLs, `--trusted-proxies 127.0.0.1`, no login rate
//!   limit (every bench client is 127.0.0.1).
//! - haproxy as `harness::haproxy` configures it (round-robin, no affinity, health checks).
//! - One login and bind is the CLI's path hop by hop (`harness::cli_flow`): `/api/exports`,
//!   `/api/authorize`, the embedded issuer's form and POST, `/api/callback`, `/api/bind` as a new
//!   user (a new cluster namespace and its RBAC on the apiserver).
//! - Per phase: [`WARM_UP`] logins first (not counted), then the clock runs over N of them.
//!   The phase with one replica runs first.
//!
//! How to read it: `ratio` is two replicas' rate ÷ one's. On a machine where the load generator,
//! haproxy, the replicas and the kube-apiserver share a few cores, the ratio says how much a
//! second replica adds there, not how it scales on separate machines.

use std::time::Instant;

use kube_bind_e2e::harness::backend_process::BackendProcess;
use kube_bind_e2e::harness::child::free_port;
use kube_bind_e2e::harness::cli_flow;
use kube_bind_e2e::harness::haproxy::Haproxy;
use kube_bind_e2e::harness::{Env, EnvSpec, Workspace, apply, paths};
use serde_json::json;

static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);
const DEFAULT_N: usize = 200;
const DEFAULT_CONCURRENCY: usize = 8;
/// Logins before the clock starts (discovery fetched, connections open).
const WARM_UP: usize = 8;
const TEMPLATE: &str = "replicas-bench";
/// Fixed cookie keys (base64 of 32 bytes each), the same for every replica.
const COOKIE_SIGNING_KEY: &str = "c2lnbmluZy1rZXktZm9yLXRlc3RzLW9ubHktMzJieXQ=";
const COOKIE_ENCRYPTION_KEY: &str = "ZW5jcnlwdGlvbi1rZXktZm9yLXRlc3RzLW9ubHktMzI=";

fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                anyhow::anyhow!("{name}={text:?} is not a positive number; unset it or give one")
            }),
        Err(_) => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let n = env_count("REPLICAS_BENCH_N", DEFAULT_N)?;
    let concurrency = env_count("REPLICAS_BENCH_CONCURRENCY", DEFAULT_CONCURRENCY)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(n, concurrency))
}

async fn run(n: usize, concurrency: usize) -> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    let client = plain.client().await?;
    apply::install_kube_bind_crds(&client, env.patience()).await?;
    apply::apply(
        &client,
        &json!({
            "apiVersion": "kube-bind.io/v1alpha2",
            "kind": "APIServiceExportTemplate",
            "metadata": {"name": TEMPLATE},
            "spec": {
                "description": "widgets for the replicas bench",
                "scope": "Namespaced",
                "resources": [{"group": "example.com", "resource": "widgets", "versions": ["v1"]}],
            }
        }),
    )
    .await?;
    println!(
        "replicas bench: {n} logins and binds per phase, {concurrency} at once, through haproxy"
    );
    let one = phase(env, plain, 1, n, concurrency).await?;
    let two = phase(env, plain, 2, n, concurrency).await?;
    println!();
    println!("{:<12} {:>10} {:>12}", "replicas", "seconds", "logins/s");
    for (replicas, (seconds, rate)) in [(1, one), (2, two)] {
        println!("{replicas:<12} {seconds:>10.1} {rate:>12.1}");
    }
    println!("ratio (2 ÷ 1): {:.2}×", two.1 / one.1);
    Ok(())
}

/// `replicas` backends behind haproxy; returns (seconds, logins and binds per second).
async fn phase(
    env: &Env,
    plain: &Workspace,
    replicas: usize,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, f64)> {
    let front_port = free_port()?;
    let front = format!("http://127.0.0.1:{front_port}");
    let signing_key = paths::repo_root().join("src/crypto/testdata/test-only-rsa2048-pkcs8.pem");
    let flags = vec![
        format!("--kubeconfig={}", plain.kubeconfig.display()),
        "--oidc-type=embedded".to_owned(),
        format!("--oidc-issuer-url={front}/oidc"),
        format!("--oidc-callback-url={front}/api/callback"),
        "--session-store=cookie".to_owned(),
        format!("--cookie-signing-key={COOKIE_SIGNING_KEY}"),
        format!("--cookie-encryption-key={COOKIE_ENCRYPTION_KEY}"),
        format!("--jwt-signing-key-file={}", signing_key.display()),
        "--trusted-proxies=127.0.0.1".to_owned(),
        "--auth-rate-limit=0".to_owned(),
        "--leader-elect".to_owned(),
        "--leader-election-namespace=default".to_owned(),
        format!("--leader-election-id={}", env.unique("replicas-bench")),
    ];
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kb-backend"));
    let mut backends = Vec::new();
    for _ in 0..replicas {
        backends.push(BackendProcess::start(binary, &flags, env.patience()).await?);
    }
    let ports: Vec<u16> = backends.iter().map(BackendProcess::port).collect();
    let haproxy = Haproxy::start_on(front_port, &ports).await?;
    let users = env.unique(&format!("bench{replicas}"));
    let warm = cli_flow::run(
        &haproxy.url(),
        &format!("{users}-warm"),
        TEMPLATE,
        WARM_UP,
        concurrency,
    )
    .await;
    if let Some(error) = warm.failed.first() {
        anyhow::bail!("{replicas} replica(s): a warm-up login failed: {error}");
    }
    let started = Instant::now();
    let load = cli_flow::run(&haproxy.url(), &users, TEMPLATE, n, concurrency).await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{replicas} replica(s): {} logins and binds in {seconds:.1} s: {:.1}/s; {} failed",
        load.done.len(),
        load.rate(),
        load.failed.len()
    );
    if let Some(error) = load.failed.first() {
        anyhow::bail!(
            "{replicas} replica(s): {} of {n} logins and binds failed, e.g. {error}",
            load.failed.len()
        );
    }
    drop(haproxy);
    for backend in &mut backends {
        backend.stop().await;
    }
    Ok((seconds, load.rate()))
}
