//! `apis.kcp.io/v1alpha2` APIExport: resources a workspace offers for binding, and its claims.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::permission_claim::PermissionClaim;
use crate::conditions::Condition;

/// The exported resources and the permission claims bound workspaces are asked to accept.
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[kube(
    group = "apis.kcp.io",
    version = "v1alpha2",
    kind = "APIExport",
    status = "APIExportStatus",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct APIExportSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceSchema>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_claims: Vec<PermissionClaim>,
}

/// One exported resource, backed by an APIResourceSchema.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResourceSchema {
    /// Plural resource name.
    pub name: String,
    pub group: String,
    /// Name of the APIResourceSchema.
    pub schema: String,
    #[serde(default)]
    pub storage: ResourceSchemaStorage,
}

/// How objects of an exported resource are stored; `crd: {}` for ordinary storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResourceSchemaStorage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crd: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Default for ResourceSchemaStorage {
    /// CRD storage, as kcp defaults it.
    fn default() -> Self {
        Self {
            crd: Some(serde_json::Map::new()),
        }
    }
}

/// What kcp reports about an export.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIExportStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
