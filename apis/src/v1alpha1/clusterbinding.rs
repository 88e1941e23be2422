//! ClusterBinding v1alpha1: same shape as v1alpha2.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::v1alpha2::ClusterBindingStatus;
use crate::v1alpha2::secret_ref::LocalSecretKeyRef;

/// The consumer's access to the provider (v1alpha1).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha1",
    kind = "ClusterBinding",
    doc = "The consumer's connection to the provider (v1alpha1).",
    namespaced,
    status = "ClusterBindingStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Konnector Version","type":"string","jsonPath":".status.konnectorVersion"}"#,
    printcolumn = r#"{"name":"Last Heartbeat","type":"date","jsonPath":".status.lastHeartbeatTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = kube::core::Rule::new("self.metadata.name == \"cluster\"").message("cluster binding name should be cluster"),
    storage = false,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBindingSpec {
    #[schemars(extend("x-kubernetes-validations" = [{"message": "kubeconfigSecretRef is immutable", "rule": "self == oldSelf"}]))]
    pub kubeconfig_secret_ref: LocalSecretKeyRef,
    #[schemars(length(min = 1))]
    pub provider_pretty_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub service_provider_spec: Option<serde_json::Value>,
}
