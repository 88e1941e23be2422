//! The kcp stand-in: a front server over several real kube-apiservers sharing one etcd that
//! serves kcp's URL shapes (workspaces, logical clusters, APIExport virtual workspaces).

pub mod annotate;
pub mod auth;
pub mod binding_reconcile;
pub mod bootstrap;
pub mod bound;
pub mod controllers;
pub mod export_reconcile;
pub mod forward;
pub mod kcp_crds;
pub mod kcp_types;
pub mod lines;
pub mod member_api;
pub mod member_stream;
pub mod metrics;
pub mod names;
pub mod queue;
pub mod reconcile_error;
pub mod request_info;
pub mod resume;
pub mod schema_to_crd;
pub mod server;
pub mod sim;
pub mod slice_reconcile;
pub mod status;
pub mod tls;
pub mod vw;
pub mod vw_discovery;
pub mod vw_watch;
pub mod workspaces;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine;
use serde_json::json;
use tracing::{info, warn};

use self::{
    queue::Queue,
    sim::{Index, Sim},
    workspaces::{WorkspaceConfig, Workspaces},
};

/// How the stand-in is configured (flags, or a JSON/YAML file of the same shape).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct Options {
    /// Where to listen; port 0 picks a free one (written to `<state_dir>/port`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// CA, serving certificate, kubeconfigs, `clusters.json`, `port`, `ready`.
    pub state_dir: PathBuf,
    /// Logical-cluster ids are derived from the path and this seed (stable across restarts).
    #[serde(default = "default_seed")]
    pub seed: String,
    pub workspaces: Vec<WorkspaceConfig>,
}

pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub fn default_seed() -> String {
    "kcp-sim".to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("state dir {dir}: {source}")]
    StateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Workspaces(#[from] workspaces::WorkspaceError),
    #[error("workspace {path} did not become ready: {source}")]
    Bootstrap {
        path: String,
        source: member_api::MemberError,
    },
}

fn write(dir: &Path, name: &str, content: &[u8]) -> Result<(), SimError> {
    let file = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|source| SimError::StateDir { dir: file, source })
}

/// Binds `listen`; with port 0, the port of the previous run in `dir` is preferred so URLs in
/// kubeconfigs, LogicalClusters and endpoint slices stay valid across restarts.
async fn bind(listen: SocketAddr, dir: &Path) -> Result<tokio::net::TcpListener, SimError> {
    if listen.port() == 0
        && let Some(port) = std::fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
        && let Ok(listener) =
            tokio::net::TcpListener::bind(SocketAddr::new(listen.ip(), port)).await
    {
        return Ok(listener);
    }
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Listen {
            addr: listen,
            source,
        })
}

/// Runs the stand-in until `shutdown` completes.
pub async fn run(
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SimError> {
    let dir = &options.state_dir;
    std::fs::create_dir_all(dir.join("kubeconfigs")).map_err(|source| SimError::StateDir {
        dir: dir.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(dir.join("ready"));
    let certs = tls::load_or_generate(dir)?;
    let tls_config = tls::server_config(&certs)?;
    let listener = bind(options.listen, dir).await?;
    let addr = listener.local_addr().map_err(|source| SimError::Listen {
        addr: options.listen,
        source,
    })?;
    let base_url = format!("https://{addr}");

    let workspaces = Workspaces::load(&options.workspaces, &options.seed).await?;
    let (queue, rx) = Queue::new();
    let sim = Arc::new(Sim {
        workspaces,
        base_url: base_url.clone(),
        bindings: Default::default(),
        resume: Default::default(),
        metrics: Default::default(),
        authorizer: Default::default(),
        queue: Arc::new(queue),
        index: Mutex::new(Index::default()),
    });
    write_kubeconfigs(&sim, &options, &certs.ca_pem)?;
    write(dir, "port", addr.port().to_string().as_bytes())?;
    write(dir, "base-url", base_url.as_bytes())?;
    tokio::spawn(server::serve(
        listener,
        tls_config,
        server::router(sim.clone()),
    ));
    info!(%base_url, "kcp-sim listening");

    for member in sim.workspaces.all() {
        let mut attempt = 0;
        loop {
            match bootstrap::workspace(member, &base_url).await {
                Ok(()) => break,
                Err(e) if attempt < 60 => {
                    attempt += 1;
                    warn!(workspace = %member.path, "bootstrap failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(source) => {
                    return Err(SimError::Bootstrap {
                        path: member.path.to_string(),
                        source,
                    });
                }
            }
        }
    }
    controllers::start(sim.clone(), rx);
    write(dir, "ready", b"ok\n")?;
    info!("kcp-sim ready");
    shutdown.await;
    Ok(())
}

/// Writes `kubeconfigs/<path>.kubeconfig` (admin of each workspace through the stand-in) and
/// `clusters.json` (path → id, URL).
fn write_kubeconfigs(sim: &Sim, options: &Options, ca_pem: &str) -> Result<(), SimError> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut clusters = Vec::new();
    for (member, cfg) in sim.workspaces.all().iter().zip(&options.workspaces) {
        let token = admin_token(&cfg.kubeconfig).unwrap_or_default();
        let server = format!("{}/clusters/{}", sim.base_url, member.path);
        let name = member.path.as_str();
        let kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca}}],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": "admin"}}],
            "current-context": name,
        });
        let text = serde_json::to_vec_pretty(&kubeconfig).unwrap_or_default();
        write(
            &options.state_dir.join("kubeconfigs"),
            &format!("{}.kubeconfig", member.path.file_stem()),
            &text,
        )?;
        clusters.push(json!({"path": name, "id": member.id.as_str(), "url": format!("{}/clusters/{}", sim.base_url, member.id)}));
    }
    write(
        &options.state_dir,
        "clusters.json",
        &serde_json::to_vec_pretty(&clusters).unwrap_or_default(),
    )
}

/// The bearer token of a member kubeconfig's first user (the admin token of the control plane).
fn admin_token(path: &Path) -> Option<String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).ok()?;
    let user = kubeconfig.auth_infos.first()?.auth_info.as_ref()?;
    user.token
        .as_ref()
        .map(|t| secrecy::ExposeSecret::expose_secret(t).to_string())
}
