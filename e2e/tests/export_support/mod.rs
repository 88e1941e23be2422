//! The real backend (`app::start`, so the real controller wiring runs) against the test
//! binary's plain kube-apiserver, with the kube-bind CRDs and the example CRDs installed.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_bind_apis::{APIServiceExportRequest, APIServiceExportRequestPhase};
use kube_bind_backend::app;
use kube_bind_backend::options::Options;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, Workspace, apply, wait_for};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);

/// The plain cluster with the kube-bind CRDs and the exported example CRDs (cowboys:
/// Namespaced, sheriffs: Cluster), and one backend with default flags serving it for the whole
/// test binary.
pub async fn given_a_provider_with_a_backend() -> anyhow::Result<(&'static Env, &'static Workspace)>
{
    given_a_provider_with_a_backend_flagged(&[]).await
}

/// Like [`given_a_provider_with_a_backend`], the backend started with `flags` as well (the
/// first caller's flags hold for the whole test binary).
pub async fn given_a_provider_with_a_backend_flagged(
    flags: &[&str],
) -> anyhow::Result<(&'static Env, &'static Workspace)> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_try_init(|| async {
            let client = plain.client().await?;
            apply::install_kube_bind_crds(&client, env.patience()).await?;
            apply::install_crds(&client, &example_crds()?, env.patience()).await?;
            start_backend_once(plain, flags)?;
            anyhow::Ok(())
        })
        .await?;
    Ok((env, plain))
}

/// The example CRDs of `hack/examples`.
pub fn example_crds() -> anyhow::Result<Vec<Value>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/examples");
    ["crd-cowboys.yaml", "crd-sheriffs.yaml"]
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(root.join(file))?;
            Ok(serde_saphyr::from_str(&text)?)
        })
        .collect()
}

/// Starts the backend on its own thread and runtime, so it outlives each test's runtime.
fn start_backend_once(plain: &Workspace, flags: &[&str]) -> anyhow::Result<()> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let kubeconfig = plain.kubeconfig.display().to_string();
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    let started = STARTED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = tx.send(Err(err.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                    .with_test_writer()
                    .try_init();
                let args = [
                    "kube-bind-backend",
                    "--kubeconfig",
                    &kubeconfig,
                    "--oidc-type=embedded",
                    "--listen-address=127.0.0.1:0",
                ]
                .into_iter()
                .chain(flags.iter().map(String::as_str));
                let options = match Options::from_args(args) {
                    Ok(options) => options,
                    Err(err) => {
                        let _ = tx.send(Err(err.to_string()));
                        return;
                    }
                };
                match app::start(options, CancellationToken::new()).await {
                    Ok(backend) => {
                        let _ = tx.send(Ok(()));
                        let _ = backend.wait().await;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err.to_string()));
                    }
                }
            });
        });
        rx.recv().map_err(|e| e.to_string()).and_then(|r| r)
    });
    started.clone().map_err(|e| anyhow::anyhow!("backend: {e}"))
}

/// Creates (or updates) `object` in the cluster.
pub async fn create(plain: &Workspace, object: Value) -> anyhow::Result<()> {
    apply::apply(&plain.client().await?, &object).await?;
    Ok(())
}

/// Waits until the object `name` exists and `check` accepts it; returns it.
pub async fn wait_until<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    check: impl Fn(&K) -> Result<(), String>,
) -> anyhow::Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let found = wait_for(format!("{name}: {what}"), timeout, || async {
        match api.get_opt(name).await {
            Ok(Some(object)) => match check(&object) {
                Ok(()) => Check::Done(object),
                Err(state) => Check::Pending(state),
            },
            Ok(None) => Check::Pending("not found".into()),
            Err(err) => Check::Pending(err.to_string()),
        }
    })
    .await?;
    Ok(found)
}

/// Merge-patches `patch` into the object `name`.
pub async fn merge_patch<K>(api: &Api<K>, name: &str, patch: Value) -> anyhow::Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?)
}

/// The request's phase; `Pending` until the backend writes one (the CRD's default).
pub fn phase(request: &APIServiceExportRequest) -> APIServiceExportRequestPhase {
    request
        .status
        .as_ref()
        .map(|s| s.phase())
        .unwrap_or(APIServiceExportRequestPhase::Pending)
}
