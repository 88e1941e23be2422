//! The stand-in's workspaces: each a logical cluster served by one member apiserver, reachable by
//! path or by id, with one client acting as the stand-in and one carrying the caller's token.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};

use super::names::{ClusterId, WorkspacePath};

/// One configured workspace: its path and the admin kubeconfig of the member serving it.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct WorkspaceConfig {
    pub path: String,
    pub kubeconfig: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(transparent)]
    Name(#[from] super::names::NameError),
    #[error("workspace {path}: cannot read kubeconfig {file}: {source}")]
    Kubeconfig {
        path: String,
        file: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("workspace {path}: cannot build a client: {source}")]
    Client { path: String, source: kube::Error },
    #[error("workspace {0} is configured twice")]
    Duplicate(String),
    #[error(
        "two workspaces share the member at {0}; every logical cluster needs its own apiserver"
    )]
    SharedMember(String),
    #[error("no workspaces configured")]
    Empty,
}

/// A logical cluster and the member apiserver serving it.
pub struct Member {
    pub path: WorkspacePath,
    pub id: ClusterId,
    /// The member's URL, for logs only.
    pub server: String,
    /// Acts as the stand-in itself (the member kubeconfig's admin credentials).
    pub admin: kube::Client,
    /// Carries no credentials: requests through it forward the caller's `Authorization` header.
    pub passthrough: kube::Client,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("server", &self.server)
            .finish()
    }
}

/// All workspaces, looked up by path or id.
#[derive(Debug, Default)]
pub struct Workspaces {
    members: Vec<Arc<Member>>,
    by_key: HashMap<String, Arc<Member>>,
}

impl Workspaces {
    pub async fn load(configs: &[WorkspaceConfig], seed: &str) -> Result<Self, WorkspaceError> {
        if configs.is_empty() {
            return Err(WorkspaceError::Empty);
        }
        let mut out = Workspaces::default();
        let mut servers = HashMap::new();
        for cfg in configs {
            let path = WorkspacePath::parse(&cfg.path)?;
            let kubeconfig = Kubeconfig::read_from(&cfg.kubeconfig).map_err(|source| {
                WorkspaceError::Kubeconfig {
                    path: cfg.path.clone(),
                    file: cfg.kubeconfig.clone(),
                    source,
                }
            })?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|source| WorkspaceError::Kubeconfig {
                        path: cfg.path.clone(),
                        file: cfg.kubeconfig.clone(),
                        source,
                    })?;
            let server = config.cluster_url.to_string();
            if servers.insert(server.clone(), ()).is_some() {
                return Err(WorkspaceError::SharedMember(server));
            }
            let mut anonymous = config.clone();
            anonymous.auth_info = AuthInfo::default();
            let client_err = |source| WorkspaceError::Client {
                path: cfg.path.clone(),
                source,
            };
            let member = Arc::new(Member {
                id: ClusterId::derive(&path, seed),
                server,
                admin: kube::Client::try_from(config).map_err(client_err)?,
                passthrough: kube::Client::try_from(anonymous).map_err(client_err)?,
                path,
            });
            if out.by_key.contains_key(member.path.as_str()) {
                return Err(WorkspaceError::Duplicate(cfg.path.clone()));
            }
            out.by_key
                .insert(member.path.as_str().to_string(), member.clone());
            out.by_key
                .insert(member.id.as_str().to_string(), member.clone());
            out.members.push(member);
        }
        Ok(out)
    }

    /// Finds a workspace by path (`root:provider-a`) or logical-cluster id.
    pub fn resolve(&self, path_or_id: &str) -> Option<Arc<Member>> {
        self.by_key.get(path_or_id).cloned()
    }

    pub fn by_id(&self, id: &ClusterId) -> Option<Arc<Member>> {
        self.by_key.get(id.as_str()).cloned()
    }

    pub fn all(&self) -> &[Arc<Member>] {
        &self.members
    }
}
