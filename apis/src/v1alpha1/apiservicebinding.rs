//! APIServiceBinding v1alpha1: like v1alpha2 without bound schemas and claims in the status.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::v1alpha2::secret_ref::ClusterSecretKeyRef;

/// Which kubeconfig the konnector uses for this binding (v1alpha1).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha1",
    kind = "APIServiceBinding",
    doc = "A consumer-side binding to a provider's exported API (v1alpha1).",
    status = "APIServiceBindingStatus",
    category = "kube-bindings",
    shortname = "sb",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".status.providerPrettyName"}"#,
    printcolumn = r#"{"name":"Resources","type":"string","jsonPath":".metadata.annotations.kube-bind\\.io/resources","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    storage = false,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceBindingSpec {
    #[schemars(extend("x-kubernetes-validations" = [{"message": "kubeconfigSecretRef is immutable", "rule": "self == oldSelf"}]))]
    pub kubeconfig_secret_ref: ClusterSecretKeyRef,
}

/// Observed state of a v1alpha1 binding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceBindingStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_pretty_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
