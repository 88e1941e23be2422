//! The API side of `hack/quickstart.sh` (binary `kb-quickstart`): what goes into the clusters
//! before the backend starts ([`setup`]), the example APIs ([`examples`]), how the script knows
//! the backend really answers ([`ready`]), and the `.local/env` it then writes ([`report`]).
//!
//! The script owns every process (start, pids, stop); this side only talks to APIs, so a
//! `kb-quickstart` run can be interrupted at any point without leaving anything behind.

pub mod examples;
pub mod probe;
pub mod ready;
pub mod report;
pub mod setup;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which quickstart runs: one plain cluster, or real kcp with workspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Plain,
    Kcp,
}

/// One service-provider cluster (plain) or workspace (kcp) the backend serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderCluster {
    /// `provider` (plain) or the workspace path, e.g. `root:provider-a`.
    pub name: String,
    /// An admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// What HTTP calls pass as `cluster_id`: `default` (plain) or the logical-cluster id.
    pub cluster_id: String,
}

/// What [`setup`] prepared; `ready` turns it into `.local/env`. Stored as JSON between the two.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    pub mode: Mode,
    /// The kubeconfig the backend runs with.
    pub backend_kubeconfig: PathBuf,
    /// Whom that kubeconfig authenticates as, in words (shown to the user).
    pub backend_identity: String,
    pub providers: Vec<ProviderCluster>,
    pub consumer_kubeconfig: PathBuf,
    /// kcp: its base URL (the only shard's, or the front-proxy's).
    pub kcp_base_url: Option<String>,
    /// kcp: the `kube-bind.io` APIExportEndpointSlice URL (the virtual workspace).
    pub endpoint_url: Option<String>,
    /// kcp: every workspace the quickstart made, with its logical cluster and shard.
    #[serde(default)]
    pub workspaces: Vec<WorkspaceInfo>,
    /// kcp: its shards (from `hack/kcp.sh`'s `shards.json`).
    #[serde(default)]
    pub shards: Vec<ShardInfo>,
    /// kcp: the process id of each kcp process (shards, cache server, front-proxy) by name.
    #[serde(default)]
    pub kcp_pids: std::collections::BTreeMap<String, u32>,
}

/// A kcp workspace of the quickstart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// `root:provider-a`.
    pub path: String,
    /// Its logical-cluster id.
    pub cluster: String,
    /// The shard it is on.
    pub shard: Option<String>,
}

/// One kcp shard, as `hack/kcp.sh` started it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub name: String,
    pub url: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub pid: u32,
}

/// A progress line on stderr, in the style of the hack/ scripts' logs.
pub fn say(message: impl std::fmt::Display) {
    eprintln!(
        "{} [quickstart] {message}",
        chrono::Local::now().format("%H:%M:%S")
    );
}
