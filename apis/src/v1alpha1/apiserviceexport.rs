//! APIServiceExport v1alpha1: the CRD-shaped predecessor, carrying the schema itself.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::v1alpha2::boundschema::{
    CrdNames, PrinterColumn, ResourceScope, Subresources, VERSION_PATTERN,
};
use crate::v1alpha2::{InformerScope, Isolation};

/// A full resource definition plus how to sync it (v1alpha1).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha1",
    kind = "APIServiceExport",
    doc = "A resource definition a provider exports to one consumer (v1alpha1).",
    namespaced,
    status = "APIServiceExportStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Established","type":"string","jsonPath":".status.conditions[?(@.type==\"Established\")].status","priority":5}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // Upstream's message does not match the rule; kept verbatim for compatibility.
    validation = kube::core::Rule::new("self.metadata.name == self.spec.names.plural+\".\"+self.spec.group").message("informerScope is immutable"),
    storage = false,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"message": "informerScope must be Cluster for cluster-scoped resources",
     "rule": "self.scope == \"Namespaced\" || self.informerScope == \"Cluster\""},
    {"message": "clusterScopedIsolation must be defined for cluster-scoped resources",
     "rule": "self.scope == \"Namespaced\" || has(self.clusterScopedIsolation)"},
    {"message": "clusterScopedIsolation is not relevant for namespaced resources",
     "rule": "self.scope == \"Cluster\" || !has(self.clusterScopedIsolation)"},
]))]
pub struct APIServiceExportSpec {
    #[schemars(extend("x-kubernetes-validations" = [{"message": "informerScope is immutable", "rule": "self == oldSelf"}]))]
    pub informer_scope: InformerScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scoped_isolation: Option<Isolation>,
    pub group: String,
    pub names: CrdNames,
    pub scope: ResourceScope,
    #[schemars(
        length(min = 1),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub versions: Vec<APIServiceExportVersion>,
}

/// Upstream's name for the CRD-like part of the v1alpha1 spec.
pub type APIServiceExportCRDSpec = APIServiceExportSpec;

/// One version with its full schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportVersion {
    #[schemars(length(min = 1), pattern(VERSION_PATTERN))]
    pub name: String,
    /// Defaulted to true by the schema.
    #[schemars(extend("default" = true))]
    pub served: bool,
    pub storage: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_warning: Option<String>,
    pub schema: CustomResourceValidation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresources: Option<Subresources>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub additional_printer_columns: Vec<PrinterColumn>,
}

/// Wraps the OpenAPI v3 schema of a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CustomResourceValidation {
    #[serde(rename = "openAPIV3Schema")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_atomic_object")]
    pub open_api_v3_schema: serde_json::Value,
}

/// Observed state of a v1alpha1 export.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_names: Option<CrdNames>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_versions: Option<Vec<String>>,
}
