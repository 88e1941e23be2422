//! `core.kcp.io/v1alpha1` LogicalCluster: the one object named `cluster` in every workspace.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::open_enum::open_enum;

/// The name of the LogicalCluster object in every workspace.
pub const LOGICAL_CLUSTER_NAME: &str = "cluster";

/// Nothing the backend reads.
#[derive(
    CustomResource,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[kube(
    group = "core.kcp.io",
    version = "v1alpha1",
    kind = "LogicalCluster",
    status = "LogicalClusterStatus",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct LogicalClusterSpec {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub directly_deletable: bool,
}

open_enum! {
    /// Lifecycle phase of a logical cluster.
    pub enum LogicalClusterPhase {
        Scheduling => "Scheduling",
        Initializing => "Initializing",
        Ready => "Ready",
        Unavailable => "Unavailable",
        Inactive => "Inactive",
        Terminating => "Terminating",
        Deleting => "Deleting",
    }
}

/// Where the workspace is served and how far along it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogicalClusterStatus {
    /// Base URL, ending in `/clusters/<logical cluster id>`.
    #[serde(rename = "URL", default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<LogicalClusterPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl LogicalCluster {
    /// The logical cluster id: the last path segment of `status.URL`.
    pub fn cluster_id(&self) -> Option<&str> {
        let url = self.status.as_ref()?.url.trim_end_matches('/');
        url.rsplit('/')
            .next()
            .filter(|id| !id.is_empty() && url.contains("/clusters/"))
    }

    /// The workspace path from the `kcp.io/path` annotation.
    pub fn path(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(super::PATH_ANNOTATION)
            .map(String::as_str)
    }
}
