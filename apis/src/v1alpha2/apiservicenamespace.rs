//! APIServiceNamespace: maps a consumer namespace to the provider namespace holding its objects.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::strict::no_open_enums;

/// Empty: the object's name is the consumer namespace.
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
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "APIServiceNamespace",
    doc = "Maps a consumer namespace to its namespace on the provider.",
    namespaced,
    status = "APIServiceNamespaceStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq",
    derive = "Default"
)]
pub struct APIServiceNamespaceSpec {}

/// Where the consumer namespace lives on the provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIServiceNamespaceStatus {
    /// The provider namespace, once created.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

no_open_enums!(
    APIServiceNamespaceSpec,
    APIServiceNamespaceStatus,
    APIServiceNamespace
);
