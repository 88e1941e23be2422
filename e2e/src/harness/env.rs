//! The shared environment of one test binary, started lazily by the first test that asks.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::{
    HarnessError, paths,
    processes::{ControlPlane, SimProcess, spawn_reaper},
};

/// The workspaces a test binary needs, by name below `root` (`"kube-bind"` → `root:kube-bind`).
#[derive(Debug)]
pub struct EnvSpec {
    pub workspaces: &'static [&'static str],
}

/// One workspace (logical cluster) of the environment.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The name in the [`EnvSpec`].
    pub name: String,
    /// `root:provider-a` (with the stand-in) or `root:e2e-<run>-provider-a` (real kcp).
    pub path: String,
    /// The logical-cluster id (last segment of `LogicalCluster/cluster` `status.URL`).
    pub id: String,
    /// An admin kubeconfig whose server is `<base>/clusters/<path>`.
    pub kubeconfig: PathBuf,
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

enum Backend {
    /// `members` maps workspace names to their `lcK` member number.
    Sim {
        control_plane: ControlPlane,
        sim: SimProcess,
        members: BTreeMap<String, usize>,
    },
    Kcp,
    /// A stand-in started by someone else (`hack/quickstart.sh --kcp`); nothing is stopped here.
    AttachedSim,
}

/// The environment: where kcp (or the stand-in) is, its workspaces, and how to reach them.
pub struct Env {
    backend: Backend,
    workspaces: BTreeMap<String, Workspace>,
    /// `https://127.0.0.1:<port>` (stand-in) or the real kcp's base URL.
    pub base_url: String,
    /// PEM of the CA that signs the front's serving certificate.
    pub ca_pem: String,
    /// The admin bearer token.
    pub admin_token: String,
    /// `target/e2e-logs/<test binary>/`.
    pub log_dir: PathBuf,
}

static SHARED: OnceLock<Result<Env, String>> = OnceLock::new();

impl Env {
    /// The environment of this test binary, started on first use with `spec` (later callers
    /// must pass the same spec). Blocks while starting (~20 s with the stand-in).
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
        match std::env::var_os("KCP_KUBECONFIG") {
            Some(kubeconfig) => super::kcp_mode::start(spec, Path::new(&kubeconfig), log_dir),
            None => Env::start_sim(spec, log_dir),
        }
    }

    fn start_sim(spec: &EnvSpec, log_dir: PathBuf) -> Result<Env, HarnessError> {
        let script = paths::repo_root().join("hack/control-plane.sh");
        // Whatever a killed earlier run left running is stopped before its state is removed.
        super::processes::stop_leftovers(&script, &log_dir);
        let _ = std::fs::remove_dir_all(&log_dir);
        std::fs::create_dir_all(&log_dir).map_err(|e| HarnessError::io(&log_dir, e))?;
        let binary = paths::kcp_sim_binary().ok_or_else(|| {
            HarnessError::Other("kcp-sim binary not found: build it (cargo build -p kube-bind-e2e) or set KCP_SIM_BIN".into())
        })?;
        let cp_state = log_dir.join("control-plane");
        let cp_log = log_dir.join("control-plane.log");
        let control_plane = ControlPlane::up(script, cp_state, spec.workspaces.len(), &cp_log)?;
        let members: Vec<(String, PathBuf)> = spec
            .workspaces
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("root:{name}"), control_plane.kubeconfig(i + 1)))
            .collect();
        let sim_state = log_dir.join("kcp-sim");
        let sim = SimProcess::start(&binary, &sim_state, &members, &log_dir.join("kcp-sim.log"))?;
        spawn_reaper(
            &[sim.pid],
            Some((&control_plane.script, &control_plane.state)),
            &log_dir.join("reaper.log"),
        )?;

        let (base_url, ca_pem, workspaces) = read_sim_state(&sim_state, spec.workspaces)?;
        let members = spec
            .workspaces
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i + 1))
            .collect();
        Ok(Env {
            backend: Backend::Sim {
                control_plane,
                sim,
                members,
            },
            workspaces,
            base_url,
            ca_pem,
            admin_token: "admin-token".to_string(),
            log_dir,
        })
    }

    /// The environment of a stand-in that already runs (e.g. `hack/quickstart.sh --kcp`), read
    /// from its state dir: `workspaces` are names below `root`, as in an [`EnvSpec`]. Nothing is
    /// started or stopped; kubeconfigs written by [`Env::write_kubeconfig`] go to `log_dir`.
    pub fn attach_sim(
        sim_state: &Path,
        workspaces: &[&str],
        log_dir: PathBuf,
    ) -> Result<Env, HarnessError> {
        crate::install_crypto_provider();
        let (base_url, ca_pem, workspaces) = read_sim_state(sim_state, workspaces)?;
        Ok(Env {
            backend: Backend::AttachedSim,
            workspaces,
            base_url,
            ca_pem,
            admin_token: "admin-token".to_string(),
            log_dir,
        })
    }

    pub(super) fn new_kcp(
        workspaces: BTreeMap<String, Workspace>,
        base_url: String,
        ca_pem: String,
        admin_token: String,
        log_dir: PathBuf,
    ) -> Env {
        Env {
            backend: Backend::Kcp,
            workspaces,
            base_url,
            ca_pem,
            admin_token,
            log_dir,
        }
    }

    /// Whether this runs against the kcp stand-in (some tests need its control plane).
    pub fn is_sim(&self) -> bool {
        matches!(self.backend, Backend::Sim { .. } | Backend::AttachedSim)
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
        std::fs::write(&file, serde_json::to_vec_pretty(&text).unwrap_or_default())
            .map_err(|e| HarnessError::io(&file, e))?;
        Ok(file)
    }

    fn member_of(&self, workspace: &str) -> Result<(&ControlPlane, usize), HarnessError> {
        let Backend::Sim {
            control_plane,
            members,
            ..
        } = &self.backend
        else {
            return Err(HarnessError::SimOnly("restarting a member"));
        };
        let member = members
            .get(workspace)
            .ok_or_else(|| HarnessError::UnknownWorkspace(workspace.to_string()))?;
        Ok((control_plane, *member))
    }

    /// Stops the apiserver serving `workspace` (data and port kept). Stand-in only.
    pub fn stop_member(&self, workspace: &str) -> Result<(), HarnessError> {
        let (cp, k) = self.member_of(workspace)?;
        cp.stop_member(k, &self.log_dir.join("control-plane.log"))
    }

    /// Starts it again and waits until it is ready. Stand-in only.
    pub fn start_member(&self, workspace: &str) -> Result<(), HarnessError> {
        let (cp, k) = self.member_of(workspace)?;
        cp.start_member(k, &self.log_dir.join("control-plane.log"))
    }

    /// The stand-in's Prometheus metrics text.
    pub async fn metrics(&self) -> Result<String, HarnessError> {
        let client = self.client_for(&self.base_url, &self.admin_token).await?;
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .map_err(|e| HarnessError::Other(e.to_string()))?;
        Ok(client.request_text(request).await?)
    }

    /// Stops the stand-in early (it is stopped at exit anyway).
    pub fn stop_sim(&self) {
        if let Backend::Sim { sim, .. } = &self.backend {
            sim.stop();
        }
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
            Backend::Sim { .. } => Duration::from_secs(30),
            // A person is waiting, maybe on a first run while other builds load the machine.
            Backend::AttachedSim => Duration::from_secs(120),
            Backend::Kcp => Duration::from_secs(90),
        }
    }
}

/// Reads a stand-in's state dir: its base URL, CA, and the workspaces `names` (below `root`).
fn read_sim_state(
    sim_state: &Path,
    names: &[&str],
) -> Result<(String, String, BTreeMap<String, Workspace>), HarnessError> {
    let read = |name: &str| {
        let file = sim_state.join(name);
        std::fs::read_to_string(&file).map_err(|e| HarnessError::io(&file, e))
    };
    let base_url = read("base-url")?;
    let ca_pem = read("ca.crt")?;
    let clusters: Vec<Value> = serde_json::from_str(&read("clusters.json")?)
        .map_err(|e| HarnessError::Other(format!("clusters.json: {e}")))?;
    let mut workspaces = BTreeMap::new();
    for name in names {
        let path = format!("root:{name}");
        let id = clusters
            .iter()
            .find(|c| c["path"] == path.as_str())
            .and_then(|c| c["id"].as_str())
            .ok_or_else(|| HarnessError::Other(format!("kcp-sim has no workspace {path}")))?;
        let kubeconfig = sim_state
            .join("kubeconfigs")
            .join(format!("{}.kubeconfig", path.replace(':', ".")));
        workspaces.insert(
            name.to_string(),
            Workspace {
                name: name.to_string(),
                path,
                id: id.to_string(),
                kubeconfig,
            },
        );
    }
    Ok((base_url, ca_pem, workspaces))
}
