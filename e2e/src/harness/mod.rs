//! The e2e harness: one environment per test binary (the local control plane, or real kcp started
//! here, or the kcp `KCP_KUBECONFIG` names), workspaces, clients, waits, and the kube-bind
//! topology.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::Namespace;
//! use kube::{Api, api::ListParams};
//! use kube_bind_e2e::harness::{Env, EnvSpec, topology::setup_kube_bind};
//!
//! static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a", "consumer"]);
//!
//! // #[tokio::test]
//! async fn provider_namespaces_are_visible_through_the_virtual_workspace() -> anyhow::Result<()> {
//!     let env = Env::shared(&SPEC)?; // kcp, once per test binary
//!     let kcp = setup_kube_bind(env, "kube-bind", &["provider-a"], Some("consumer")).await?;
//!     let vw = env.client_for(&format!("{}/clusters/*", kcp.endpoint_url), &env.admin_token).await?;
//!     let namespaces = Api::<Namespace>::all(vw).list(&ListParams::default()).await?;
//!     assert!(namespaces.items.iter().all(|ns| ns.metadata.annotations.as_ref()
//!         .and_then(|a| a.get("kcp.io/cluster")) == Some(&kcp.providers[0].id)));
//!     Ok(())
//! }
//! ```

pub mod accounts;
pub mod apply;
pub mod backend_process;
pub mod browser;
pub mod child;
pub mod chromium;
pub mod cli_callback;
pub mod cli_flow;
pub mod env;
pub mod fixtures;
pub mod haproxy;
pub mod idp;
mod kcp_mode;
pub mod kubectl;
pub mod paths;
pub mod processes;
pub mod redis;
pub mod tcp_proxy;
pub mod topology;
pub mod wait;

use std::path::{Path, PathBuf};

pub use browser::{Browser, Form, Page};
pub use env::{Env, EnvSpec, Workspace, World};
pub use wait::{Check, wait_for};

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} failed; see {log}")]
    Command { what: String, log: PathBuf },
    #[error("{what}; see {log}")]
    Start { what: String, log: PathBuf },
    #[error("the e2e environment could not start earlier: {0}")]
    Earlier(String),
    #[error("no workspace {0:?} in this environment (declare it in the EnvSpec)")]
    UnknownWorkspace(String),
    #[error("{0}; this environment cannot do it")]
    Unsupported(&'static str),
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{method} {url}: {source}")]
    Http {
        method: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl HarnessError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        HarnessError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
