//! APIServiceBinding: the consumer-side record of one binding (cluster-scoped, short name `sb`).

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::group_resource::GroupResource;
use super::permission_claim::PermissionClaim;
use super::secret_ref::ClusterSecretKeyRef;
use crate::conditions::Condition;
use crate::strict::check_fields;

/// Condition type: the kubeconfig Secret is present and valid.
pub const CONDITION_SECRET_VALID: &str = "SecretValid";
/// Condition type: the konnector's informers have synced.
pub const CONDITION_INFORMERS_SYNCED: &str = "InformersSynced";
/// Condition type: the konnector heartbeats to the provider.
pub const CONDITION_HEARTBEATING: &str = "Heartbeating";
/// Condition type: connected to the provider.
pub const CONDITION_CONNECTED: &str = "Connected";
/// Condition type: the consumer CRDs match the BoundSchemas.
pub const CONDITION_SCHEMA_IN_SYNC: &str = "SchemaInSync";

/// Which kubeconfig the konnector uses for this binding.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "APIServiceBinding",
    doc = "A consumer-side binding to a provider's exported API.",
    status = "APIServiceBindingStatus",
    category = "kube-bindings",
    shortname = "sb",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".status.providerPrettyName"}"#,
    printcolumn = r#"{"name":"Resources","type":"string","jsonPath":".metadata.annotations.kube-bind\\.io/resources","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceBindingSpec {
    /// The Secret with the provider kubeconfig; immutable.
    #[schemars(extend("x-kubernetes-validations" = [{"message": "kubeconfigSecretRef is immutable", "rule": "self == oldSelf"}]))]
    pub kubeconfig_secret_ref: ClusterSecretKeyRef,
}

/// Observed state of a binding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceBindingStatus {
    /// The provider's name, copied from its ClusterBinding.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_pretty_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The BoundSchemas this binding installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1))]
    pub bound_schemas: Vec<GroupResource>,
    /// The permission claims, copied from the export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_claims: Vec<PermissionClaim>,
}

check_fields!(APIServiceBindingSpec { kubeconfig_secret_ref => "kubeconfigSecretRef" });
check_fields!(APIServiceBindingStatus { conditions => "conditions" });
check_fields!(APIServiceBinding { spec => "spec", status => "status" });

crate::conditions::conditions_in_status!(APIServiceBinding);
