//! APIServiceExport: one bound API, created by the backend in the consumer's cluster namespace.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::group_resource::APIServiceExportResource;
use super::permission_claim::PermissionClaim;
use super::scope::{InformerScope, Isolation};
use crate::conditions::Condition;
use crate::strict::check_fields;

/// Condition type: the konnector is connected and heartbeating.
pub const CONDITION_CONNECTED: &str = "Connected";
/// Condition type: the provider side matches the export.
pub const CONDITION_PROVIDER_IN_SYNC: &str = "ProviderInSync";
/// Condition type: the consumer side matches the export.
pub const CONDITION_CONSUMER_IN_SYNC: &str = "ConsumerInSync";
/// Condition type: the permission claims are usable.
pub const CONDITION_PERMISSION_CLAIM: &str = "PermissionClaim";

/// What is exported. Named like the request it came from.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "APIServiceExport",
    doc = "Resources a provider exports to one consumer.",
    namespaced,
    status = "APIServiceExportStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Established","type":"string","jsonPath":".status.conditions[?(@.type==\"Established\")].status","priority":5}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportSpec {
    /// The exported resources.
    #[schemars(
        length(min = 1),
        extend("x-kubernetes-validations" = [{"message": "resources are immutable", "rule": "self == oldSelf"}])
    )]
    pub resources: Vec<APIServiceExportResource>,
    /// Objects of other APIs the provider may access.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [{"message": "permissionClaims are immutable", "rule": "self == oldSelf"}]))]
    pub permission_claims: Vec<PermissionClaim>,
    /// Whether the konnector watches cluster-wide or per namespace.
    #[schemars(extend("x-kubernetes-validations" = [{"message": "informerScope is immutable", "rule": "self == oldSelf"}]))]
    pub informer_scope: InformerScope,
    /// How cluster-scoped objects are kept apart on the provider (unset behaves like `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scoped_isolation: Option<Isolation>,
}

/// Observed state of an export.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIServiceExportStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

check_fields!(APIServiceExportSpec {
    informer_scope => "informerScope",
    cluster_scoped_isolation => "clusterScopedIsolation",
});
check_fields!(APIServiceExportStatus { conditions => "conditions" });
check_fields!(APIServiceExport { spec => "spec", status => "status" });

crate::conditions::conditions_in_status!(APIServiceExport);
