//! The shared environment of one test binary, started lazily by the first test that asks.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{HarnessError, kcp_mode::KcpAccess, paths, processes::Launcher};

/// One workspace (logical cluster) of the environment.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The name in the [`EnvSpec`].
    pub name: String,
    /// `root:provider-a` (kcp started here), `root:e2e-<run>-provider-a` (a kcp elsewhere), or
    /// `lcK` (a plain cluster).
    pub path: String,
    /// The logical-cluster id (`spec.cluster` of the Workspace); empty for a plain cluster.
    pub id: String,
    /// An admin kubeconfig whose server is `<base>/clusters/<path>`.
    pub kubeconfig: PathBuf,
    /// The shard it landed on (kcp worlds).
    pub shard: Option<String>,
}

impl Workspace {
    /// An admin client for this workspace.
    pub async fn client(&self) -> Result<kube::Client, HarnessError> {
        client_from_kubeconfig(&self.kubeconfig).await
    }
}

/// Builds a client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, HarnessError> {
    crate::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| HarnessError::Kubeconfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| HarnessError::Kubeconfig {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(kube::Client::try_from(config)?)
}

/// Which world a test binary runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    /// The local Kubernetes control plane: one cluster (apiserver `lcK`) per workspace name.
    Plain,
    /// Real kcp: started here with this many shards (`hack/kcp.sh`), or the kcp that
    /// `KCP_KUBECONFIG` names. Workspaces are children of `root`.
    Kcp { shards: usize },
}

/// The world and the workspaces a test binary needs, by name below `root`
/// (`"kube-bind"` → `root:kube-bind`).
#[derive(Debug)]
pub struct EnvSpec {
    pub world: World,
    pub workspaces: &'static [&'static str],
    /// Workspaces placed on a shard (`(workspace, shard)`, by the shard's `shard` label); the
    /// others go where kcp puts them.
    pub placement: &'static [(&'static str, &'static str)],
}

impl EnvSpec {
    /// Each workspace with the shard it is placed on, if any.
    fn placed(&self) -> Vec<(String, Option<String>)> {
        self.workspaces
            .iter()
            .map(|name| {
                let shard = self
                    .placement
                    .iter()
                    .find(|(w, _)| w == name)
                    .map(|(_, s)| s.to_string());
                (name.to_string(), shard)
            })
            .collect()
    }

    /// Real kcp with one shard and these workspaces.
    pub const fn kcp(workspaces: &'static [&'static str]) -> Self {
        EnvSpec {
            world: World::Kcp { shards: 1 },
            workspaces,
            placement: &[],
        }
    }

    /// The local control plane with one cluster per name.
    pub const fn plain(clusters: &'static [&'static str]) -> Self {
        EnvSpec {
            world: World::Plain,
            workspaces: clusters,
            placement: &[],
        }
    }
}

pub(super) enum Backend {
    /// `members` maps cluster names to their `lcK` member number.
    ControlPlane {
        launcher: Launcher,
        members: BTreeMap<String, usize>,
    },
    /// kcp started by this harness (`hack/kcp.sh`).
    Kcp { launcher: Launcher },
    /// A kcp someone else runs (`KCP_KUBECONFIG`, or the quickstart's): nothing is stopped here.
    ExternalKcp,
}

/// The environment: where the clusters or kcp are, the workspaces, and how to reach them.
pub struct Env {
    backend: Backend,
    workspaces: BTreeMap<String, Workspace>,
    /// kcp's base URL (its front), or the first plain cluster's URL.
    pub base_url: String,
    /// PEM of the CA that signs the front's serving certificate.
    pub ca_pem: String,
    /// The admin bearer token (kcp: the static `system:kcp:admin` token of `hack/kcp.sh`).
    pub admin_token: String,
    /// `target/e2e-logs/<test binary>/`.
    pub log_dir: PathBuf,
}

static SHARED: OnceLock<Result<Env, String>> = OnceLock::new();

impl Env {
    /// The environment of this test binary, started on first use with `spec` (later callers
    /// must pass the same spec). Blocks while starting (~30 s for kcp).
    pub fn shared(spec: &EnvSpec) -> Result<&'static Env, HarnessError> {
        let env = SHARED.get_or_init(|| Env::start(spec).map_err(|e| e.to_string()));
        match env {
            Ok(env) => {
                for name in spec.workspaces {
                    env.workspace(name)?;
                }
                Ok(env)
            }
            Err(e) => Err(HarnessError::Earlier(e.clone())),
        }
    }

    fn start(spec: &EnvSpec) -> Result<Env, HarnessError> {
        crate::install_crypto_provider();
        let log_dir = paths::log_dir();
        match (spec.world, std::env::var_os("KCP_KUBECONFIG")) {
            (World::Kcp { .. }, Some(kubeconfig)) => {
                std::fs::create_dir_all(&log_dir).map_err(|e| HarnessError::io(&log_dir, e))?;
                let kubeconfig = PathBuf::from(kubeconfig);
                let prefix = super::kcp_mode::run_prefix();
                super::kcp_mode::attach(
                    Backend::ExternalKcp,
                    &kubeconfig,
                    spec.placed(),
                    &prefix,
                    log_dir,
                )
            }
            (World::Kcp { shards }, None) => {
                Self::fresh_log_dir(&log_dir)?;
                let shards = shards.to_string();
                let launcher = Launcher::up(
                    Launcher::KCP,
                    log_dir.join("kcp"),
                    &["--shards", &shards],
                    log_dir.join("kcp.log"),
                )?;
                let kubeconfig = launcher.state.join("admin.kubeconfig");
                super::kcp_mode::attach(
                    Backend::Kcp { launcher },
                    &kubeconfig,
                    spec.placed(),
                    "",
                    log_dir,
                )
            }
            (World::Plain, _) => Self::start_plain(spec, log_dir),
        }
    }

    /// Stops what a killed earlier run left and starts with an empty log dir.
    fn fresh_log_dir(log_dir: &Path) -> Result<(), HarnessError> {
        super::processes::stop_leftovers(log_dir);
        let _ = std::fs::remove_dir_all(log_dir);
        std::fs::create_dir_all(log_dir).map_err(|e| HarnessError::io(log_dir, e))
    }

    fn start_plain(spec: &EnvSpec, log_dir: PathBuf) -> Result<Env, HarnessError> {
        Self::fresh_log_dir(&log_dir)?;
        let n = spec.workspaces.len().to_string();
        let launcher = Launcher::up(
            Launcher::CONTROL_PLANE,
            log_dir.join("control-plane"),
            &[&n],
            log_dir.join("control-plane.log"),
        )?;
        let mut workspaces = BTreeMap::new();
        let mut members = BTreeMap::new();
        for (i, name) in spec.workspaces.iter().enumerate() {
            let member = i + 1;
            members.insert(name.to_string(), member);
            workspaces.insert(
                name.to_string(),
                Workspace {
                    name: name.to_string(),
                    path: format!("lc{member}"),
                    id: String::new(),
                    kubeconfig: launcher.state.join(format!("lc{member}/kubeconfig")),
                    shard: None,
                },
            );
        }
        let first = launcher.state.join("lc1");
        let read = |file: &str| {
            let path = first.join(file);
            std::fs::read_to_string(&path).map_err(|e| HarnessError::io(&path, e))
        };
        let base_url = format!("https://127.0.0.1:{}", read("port")?.trim());
        let ca_pem = read("ca.crt")?;
        Ok(Env {
            backend: Backend::ControlPlane { launcher, members },
            workspaces,
            base_url,
            ca_pem,
            admin_token: "admin-token".to_string(),
            log_dir,
        })
    }

    /// The environment of a kcp that already runs (e.g. `hack/quickstart.sh --kcp`), given an
    /// admin kubeconfig of its root workspace: `workspaces` (each with the shard to place it on,
    /// if any) are made or found as children of `root` with exactly these names. Nothing is stopped here; kubeconfigs go to `log_dir`.
    pub fn attach_kcp(
        root_kubeconfig: &Path,
        workspaces: Vec<(String, Option<String>)>,
        log_dir: PathBuf,
    ) -> Result<Env, HarnessError> {
        crate::install_crypto_provider();
        std::fs::create_dir_all(&log_dir).map_err(|e| HarnessError::io(&log_dir, e))?;
        super::kcp_mode::attach(
            Backend::ExternalKcp,
            root_kubeconfig,
            workspaces,
            "",
            log_dir,
        )
    }

    pub(super) fn new_kcp(
        backend: Backend,
        workspaces: BTreeMap<String, Workspace>,
        access: KcpAccess,
        log_dir: PathBuf,
    ) -> Env {
        Env {
            backend,
            workspaces,
            base_url: access.base_url,
            ca_pem: access.ca_pem,
            admin_token: access.token,
            log_dir,
        }
    }

    /// Whether this is a kcp world (else the plain control plane).
    pub fn is_kcp(&self) -> bool {
        !matches!(self.backend, Backend::ControlPlane { .. })
    }

    pub fn workspace(&self, name: &str) -> Result<&Workspace, HarnessError> {
        self.workspaces
            .get(name)
            .ok_or_else(|| HarnessError::UnknownWorkspace(name.to_string()))
    }

    /// A client for any URL served by the front (a virtual workspace URL, say) with `token`.
    pub async fn client_for(&self, url: &str, token: &str) -> Result<kube::Client, HarnessError> {
        let kubeconfig = self.write_kubeconfig(url, token)?;
        client_from_kubeconfig(&kubeconfig).await
    }

    /// Writes a kubeconfig for `url` with `token` under the log dir and returns its path.
    pub fn write_kubeconfig(&self, url: &str, token: &str) -> Result<PathBuf, HarnessError> {
        use base64::Engine;
        let dir = self.log_dir.join("kubeconfigs");
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(&dir, e))?;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let text = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": url, "certificate-authority-data": ca}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        });
        let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
            sha2::Sha256::default(),
            format!("{url}\0{token}"),
        ));
        let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let file = dir.join(format!("{name}.kubeconfig"));
        // Written aside and renamed: tests running at once may write and read the same file.
        let partial = dir.join(format!("{name}.kubeconfig.{}", self.unique("partial")));
        std::fs::write(
            &partial,
            serde_json::to_vec_pretty(&text).unwrap_or_default(),
        )
        .map_err(|e| HarnessError::io(&partial, e))?;
        std::fs::rename(&partial, &file).map_err(|e| HarnessError::io(&file, e))?;
        Ok(file)
    }

    fn control_plane_member(&self, cluster: &str) -> Result<(&Launcher, usize), HarnessError> {
        let Backend::ControlPlane { launcher, members } = &self.backend else {
            return Err(HarnessError::Unsupported(
                "restarting a plain cluster's apiserver needs the local control plane",
            ));
        };
        let member = members
            .get(cluster)
            .ok_or_else(|| HarnessError::UnknownWorkspace(cluster.to_string()))?;
        Ok((launcher, *member))
    }

    /// Stops the apiserver of a plain cluster (data and port kept).
    pub fn stop_member(&self, cluster: &str) -> Result<(), HarnessError> {
        let (launcher, k) = self.control_plane_member(cluster)?;
        launcher.run("stop-member", &[&k.to_string()])
    }

    /// Starts it again and waits until it is ready.
    pub fn start_member(&self, cluster: &str) -> Result<(), HarnessError> {
        let (launcher, k) = self.control_plane_member(cluster)?;
        launcher.run("start-member", &[&k.to_string()])
    }

    fn kcp_launcher(&self) -> Result<&Launcher, HarnessError> {
        match &self.backend {
            Backend::Kcp { launcher } => Ok(launcher),
            _ => Err(HarnessError::Unsupported(
                "controlling kcp's processes needs the kcp this harness started",
            )),
        }
    }

    /// `hack/kcp.sh <command> <state> <shard>`: `stop-shard`, `start-shard` (waits until
    /// ready), `freeze` (SIGSTOP) or `thaw` (SIGCONT).
    pub fn shard_command(&self, command: &str, shard: &str) -> Result<(), HarnessError> {
        self.kcp_launcher()?.run(command, &[shard])
    }

    /// The static token of `user` in the `tokens.csv` of the kcp this harness started
    /// (`hack/lib/kcp.sh` makes the admin and [`super::accounts::PROVIDER_OWNER`]).
    pub fn static_token(&self, user: &str) -> Result<String, HarnessError> {
        let path = self.kcp_launcher()?.state.join("tokens.csv");
        let text = std::fs::read_to_string(&path).map_err(|e| HarnessError::io(&path, e))?;
        text.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| fields.get(1) == Some(&user))
            .and_then(|fields| fields.first().map(|token| token.to_string()))
            .ok_or_else(|| {
                HarnessError::Other(format!(
                    "{} has no token for user {user}; restart kcp with a fresh state dir",
                    path.display()
                ))
            })
    }

    /// The shard serving `workspace` (as recorded when it was made).
    pub fn shard_of(&self, workspace: &str) -> Result<String, HarnessError> {
        self.workspace(workspace)?.shard.clone().ok_or_else(|| {
            HarnessError::Other(format!("workspace {workspace} has no recorded shard"))
        })
    }

    /// kcp's (or the plain cluster's) Prometheus metrics text, read as the admin (kcp serves
    /// them in the root workspace).
    pub async fn metrics(&self) -> Result<String, HarnessError> {
        let client = self.client_for(&self.base_url, &self.admin_token).await?;
        let path = if self.is_kcp() {
            "/clusters/root/metrics"
        } else {
            "/metrics"
        };
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| HarnessError::Other(e.to_string()))?;
        Ok(client.request_text(request).await?)
    }

    /// Names unique to this run, for objects tests create (`<prefix>-<pid>-<n>`).
    pub fn unique(&self, prefix: &str) -> String {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}-{}-{n}", std::process::id() % 100_000)
    }

    /// Creates a namespace of its own for a test in `workspace` (`<prefix>-<pid>-<n>`) and
    /// returns its name.
    pub async fn test_namespace(
        &self,
        workspace: &Workspace,
        prefix: &str,
    ) -> Result<String, HarnessError> {
        use k8s_openapi::api::core::v1::Namespace;
        let name = self.unique(prefix);
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        kube::Api::<Namespace>::all(workspace.client().await?)
            .create(&kube::api::PostParams::default(), &namespace)
            .await?;
        Ok(name)
    }

    /// How long waits should allow for; longer against a real kcp.
    pub fn patience(&self) -> Duration {
        match self.backend {
            Backend::ControlPlane { .. } => Duration::from_secs(30),
            Backend::Kcp { .. } => Duration::from_secs(90),
            // Maybe a person is waiting on a first run while builds load the machine.
            Backend::ExternalKcp => Duration::from_secs(120),
        }
    }
}
