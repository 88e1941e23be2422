//! APIServiceNamespace v1alpha1: same shape as v1alpha2.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::v1alpha2::APIServiceNamespaceStatus;

/// Empty: the object's name is the consumer namespace (v1alpha1).
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
    version = "v1alpha1",
    kind = "APIServiceNamespace",
    doc = "Maps a consumer namespace to its namespace on the provider (v1alpha1).",
    namespaced,
    status = "APIServiceNamespaceStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    storage = false,
    derive = "PartialEq",
    derive = "Default"
)]
pub struct APIServiceNamespaceSpec {}
