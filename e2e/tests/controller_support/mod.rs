//! What the controller tests share: the plain cluster with the kube-bind CRDs, the real
//! backend started in-process (its real wiring), and waits for objects.

#![allow(dead_code)]

use kube::api::Api;
use kube_bind_backend::app::{self, RunningBackend};
use kube_bind_backend::options::Options;
use kube_bind_e2e::harness::topology::KubeBindTopology;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, Workspace, apply, wait_for};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);
static CRDS: OnceCell<()> = OnceCell::const_new();

/// The plain cluster with the kube-bind CRDs installed.
pub async fn given_a_provider_cluster() -> anyhow::Result<(&'static Env, &'static Workspace)> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    CRDS.get_or_try_init(|| async {
        apply::install_kube_bind_crds(&plain.client().await?, env.patience()).await?;
        anyhow::Ok(())
    })
    .await?;
    Ok((env, plain))
}

/// A running backend and its shutdown.
pub struct Backend {
    running: Option<RunningBackend>,
    shutdown: CancellationToken,
}

impl Backend {
    /// The real backend on `plain` with `--consumer-scope=<scope>`.
    pub async fn start(plain: &Workspace, scope: &str) -> anyhow::Result<Self> {
        Self::start_with([
            "--kubeconfig".to_owned(),
            plain.kubeconfig.display().to_string(),
            format!("--consumer-scope={scope}"),
        ])
        .await
    }

    /// The real backend serving the `kube-bind.io` endpoint slice of `topology` (kcp provider)
    /// with `--consumer-scope=<scope>`.
    pub async fn start_kcp(topology: &KubeBindTopology, scope: &str) -> anyhow::Result<Self> {
        Self::start_with([
            "--kubeconfig".to_owned(),
            topology.home.kubeconfig.display().to_string(),
            "--multicluster-runtime-provider=kcp".to_owned(),
            "--apiexport-endpointslice-name=kube-bind.io".to_owned(),
            "--schema-source=apiresourceschemas".to_owned(),
            format!("--consumer-scope={scope}"),
        ])
        .await
    }

    /// The real backend with `flags`; unless they say otherwise, with the embedded issuer on a
    /// free loopback port.
    pub async fn start_with(flags: impl IntoIterator<Item = String>) -> anyhow::Result<Self> {
        let mut args = vec!["kube-bind-backend".to_owned()];
        args.extend(flags);
        for (flag, default) in [
            ("--oidc-type", "--oidc-type=embedded"),
            ("--listen-address", "--listen-address=127.0.0.1:0"),
        ] {
            if !args.iter().any(|a| a.starts_with(flag)) {
                args.push(default.to_owned());
            }
        }
        let options = Options::from_args(args)?;
        let shutdown = CancellationToken::new();
        let running = app::start(options, shutdown.clone()).await?;
        Ok(Self {
            running: Some(running),
            shutdown,
        })
    }

    /// `http://127.0.0.1:<port>` of its HTTP API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.running
            .as_ref()
            .map(|r| r.local_addr().port())
            .unwrap_or_default()
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await?;
        }
        Ok(())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits until `get` returns `Some` satisfying `want`.
pub async fn wait_object<K, F>(env: &Env, api: &Api<K>, name: &str, want: F) -> anyhow::Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    let found = wait_for(format!("object {name}"), env.patience(), || async {
        match api.get_opt(name).await {
            Ok(Some(o)) if want(&o) => Check::Done(o),
            Ok(Some(o)) => Check::Pending(format!("not yet as wanted: {o:?}")),
            Ok(None) => Check::Pending("not found".into()),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    Ok(found)
}

/// Waits until `name` is gone.
pub async fn wait_gone<K>(env: &Env, api: &Api<K>, name: &str) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(format!("{name} to be gone"), env.patience(), || async {
        match api.get_opt(name).await {
            Ok(None) => Check::Done(()),
            Ok(Some(_)) => Check::Pending("still there".into()),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    Ok(())
}
