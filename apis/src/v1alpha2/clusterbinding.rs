//! ClusterBinding: one per cluster namespace, always named `cluster`, describing the consumer.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::secret_ref::LocalSecretKeyRef;
use crate::conditions::Condition;
use crate::strict::check_fields;

/// The only allowed ClusterBinding name.
pub const CLUSTER_BINDING_NAME: &str = "cluster";
/// Condition type: the kubeconfig Secret is present and valid.
pub const CONDITION_SECRET_VALID: &str = "SecretValid";
/// Condition type: the konnector version is supported.
pub const CONDITION_VALID_VERSION: &str = "ValidVersion";
/// Condition type: the konnector heartbeats in time.
pub const CONDITION_HEALTHY: &str = "Healthy";
/// Condition type (ours, not upstream's): the backend may write the cluster namespace's RBAC.
/// `False` with reason `Forbidden` while the API server refuses it, e.g. while a kcp permission
/// claim of the kube-bind.io APIBinding is not accepted; absent once the RBAC is written.
pub const CONDITION_PERMITTED: &str = "Permitted";

/// The consumer's access to the provider.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "ClusterBinding",
    doc = "The consumer's connection to the provider; one per cluster namespace, named cluster.",
    namespaced,
    status = "ClusterBindingStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Konnector Version","type":"string","jsonPath":".status.konnectorVersion"}"#,
    printcolumn = r#"{"name":"Last Heartbeat","type":"date","jsonPath":".status.lastHeartbeatTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = kube::core::Rule::new("self.metadata.name == \"cluster\"").message("cluster binding name should be cluster"),
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBindingSpec {
    /// The Secret (in this namespace) with the consumer's kubeconfig; immutable.
    #[schemars(extend("x-kubernetes-validations" = [{"message": "kubeconfigSecretRef is immutable", "rule": "self == oldSelf"}]))]
    pub kubeconfig_secret_ref: LocalSecretKeyRef,
    /// The provider's name, shown to the consumer.
    #[schemars(length(min = 1))]
    pub provider_pretty_name: String,
    /// Free-form provider-specific data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub service_provider_spec: Option<serde_json::Value>,
}

/// Observed state of a ClusterBinding, mostly written by the konnector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBindingStatus {
    /// When the konnector last reported in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,
    /// How often the konnector reports, as a Go duration such as `5m0s`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub heartbeat_interval: String,
    /// The konnector's version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub konnector_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

check_fields!(ClusterBindingSpec { kubeconfig_secret_ref => "kubeconfigSecretRef" });
check_fields!(ClusterBindingStatus { conditions => "conditions" });
check_fields!(ClusterBinding { spec => "spec", status => "status" });

crate::conditions::conditions_in_status!(ClusterBinding);
