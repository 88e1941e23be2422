//! `apis.kcp.io/v1alpha1` APIResourceSchema: an immutable CRD-like schema an APIExport refers to.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::v1alpha2::boundschema::{
    CrdNames, CustomResourceConversion, PrinterColumn, ResourceScope, Subresources,
};

/// A resource definition. Named `v<yymmdd>-<hash>.<plural>.<group>` by convention.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "apis.kcp.io",
    version = "v1alpha1",
    kind = "APIResourceSchema",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct APIResourceSchemaSpec {
    pub group: String,
    pub names: CrdNames,
    pub scope: ResourceScope,
    pub versions: Vec<APIResourceSchemaVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<CustomResourceConversion>,
}

/// One version; unlike a CRD, `schema` is the bare OpenAPI v3 schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIResourceSchemaVersion {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_warning: Option<String>,
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub schema: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresources: Option<Subresources>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_printer_columns: Vec<PrinterColumn>,
}
