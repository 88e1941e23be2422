//! `apis.kcp.io/v1alpha1` APIBinding: a workspace's binding to an APIExport.
//!
//! The backend's kcp provider watches these through the APIExport virtual workspace: a logical
//! cluster is served while it has at least one. The same shape is used to create bindings
//! (kcp converts between v1alpha1 and v1alpha2; the claim fields of both are modelled).

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::permission_claim::{AcceptablePermissionClaim, PermissionClaim};
use crate::conditions::Condition;
use crate::open_enum::open_enum;

/// Which export to bind and which of its claims to accept.
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[kube(
    group = "apis.kcp.io",
    version = "v1alpha1",
    kind = "APIBinding",
    status = "APIBindingStatus",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct APIBindingSpec {
    pub reference: BindingReference,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_claims: Vec<AcceptablePermissionClaim>,
}

/// What an APIBinding binds to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BindingReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportBindingReference>,
}

/// An APIExport by workspace path (empty: the binding's own workspace) and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportBindingReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    pub name: String,
}

open_enum! {
    /// Progress of a binding.
    pub enum APIBindingPhase {
        Binding => "Binding",
        Bound => "Bound",
    }
}

/// What kcp reports about a binding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIBindingStatus {
    /// Logical cluster of the bound export.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_export_cluster_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_resources: Vec<BoundAPIResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<APIBindingPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_permission_claims: Vec<PermissionClaim>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_permission_claims: Vec<PermissionClaim>,
}

/// A resource the binding installed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundAPIResource {
    #[serde(default)]
    pub group: String,
    pub resource: String,
    pub schema: BoundAPIResourceSchema,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_versions: Vec<String>,
}

/// The APIResourceSchema behind a bound resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundAPIResourceSchema {
    pub name: String,
    #[serde(rename = "UID", default)]
    pub uid: String,
    #[serde(default)]
    pub identity_hash: String,
}

impl APIBinding {
    /// Whether kcp reports the binding as bound.
    pub fn is_bound(&self) -> bool {
        self.status.as_ref().and_then(|s| s.phase.as_ref()) == Some(&APIBindingPhase::Bound)
    }
}
