//! APIServiceExportRequest v1alpha1: resources only, no claims or namespaces.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::v1alpha2::APIServiceExportRequestStatus;
use crate::v1alpha2::group_resource::{GROUP_PATTERN, RESOURCE_PATTERN};

/// What the consumer asks for (v1alpha1); immutable.
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha1",
    kind = "APIServiceExportRequest",
    doc = "A consumer's request to bind resources of a provider (v1alpha1).",
    namespaced,
    status = "APIServiceExportRequestStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    storage = false,
    derive = "PartialEq"
)]
pub struct APIServiceExportRequestSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        schema_with = "crate::schema::preserve_unknown_object",
        extend("x-kubernetes-validations" = [{"message": "parameters are immutable", "rule": "self == oldSelf"}])
    )]
    pub parameters: Option<serde_json::Value>,
    #[schemars(
        length(min = 1),
        extend("x-kubernetes-validations" = [{"message": "resources are immutable", "rule": "self == oldSelf"}])
    )]
    pub resources: Vec<APIServiceExportRequestResource>,
}

/// A requested resource (v1alpha1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIServiceExportRequestResource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(pattern(GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    #[schemars(pattern(RESOURCE_PATTERN))]
    pub resource: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}
