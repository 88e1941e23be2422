//! BoundSchema: the schema of one bound resource, copied from the provider for the consumer.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::scope::InformerScope;
use crate::conditions::Condition;
use crate::open_enum::open_enum;
use crate::strict::{check_fields, no_open_enums};

/// Condition type declared upstream: the schema was accepted.
pub const CONDITION_VALID: &str = "Valid";
/// Condition type declared upstream: the schema was rejected.
pub const CONDITION_INVALID: &str = "Invalid";
/// Reasons declared upstream for BoundSchema conditions.
pub const REASON_ACCEPTED: &str = "Accepted";
pub const REASON_REJECTED: &str = "Rejected";
pub const REASON_PENDING: &str = "Pending";
pub const REASON_DRIFT_DETECTED: &str = "DriftDetected";

/// Pattern of a Kubernetes API version name such as `v1` or `v1alpha2`.
pub const VERSION_PATTERN: &str = r"^v[1-9][0-9]*([a-z]+[1-9][0-9]*)?$";

/// A CRD-like description of one resource. Named `<resource>.<group>`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "BoundSchema",
    doc = "The schema of one bound resource, as the consumer installs it.",
    namespaced,
    status = "BoundSchemaStatus",
    category = "kube-bindings",
    shortname = "bs",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct BoundSchemaSpec {
    /// Informer scope of the export this schema belongs to.
    #[schemars(schema_with = "informer_scope_schema")]
    pub informer_scope: InformerScope,
    /// API group of the resource.
    pub group: String,
    /// Names of the resource.
    pub names: CrdNames,
    /// Whether objects are namespaced.
    pub scope: ResourceScope,
    /// The versions, keyed by name.
    #[schemars(
        length(min = 1),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub versions: Vec<APIResourceVersion>,
    /// How to convert between versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<CustomResourceConversion>,
}

/// Upstream's schema lists the informer scope values twice (type and field markers).
fn informer_scope_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "allOf": [
            { "enum": ["Cluster", "Namespaced"] },
            { "enum": ["Cluster", "Namespaced"] },
        ],
    })
}

impl BoundSchema {
    /// `<plural>.<group>`, the name of the CRD this schema becomes.
    pub fn resource_group_name(&self) -> String {
        format!("{}.{}", self.spec.names.plural, self.spec.group)
    }
}

open_enum! {
    /// Whether objects of a resource live in namespaces.
    pub enum ResourceScope {
        Cluster => "Cluster",
        Namespaced => "Namespaced",
    }
}

/// CRD-style names of a resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrdNames {
    pub plural: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub singular: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::atomic_string_list")]
    pub short_names: Vec<String>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub list_kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::atomic_string_list")]
    pub categories: Vec<String>,
}

/// One version of a bound resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIResourceVersion {
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
    /// The source schema verbatim: `{openAPIV3Schema: …}` from a CRD, or bare JSONSchemaProps
    /// from a kcp APIResourceSchema.
    #[schemars(schema_with = "crate::schema::preserve_unknown_atomic_object")]
    pub schema: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresources: Option<Subresources>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub additional_printer_columns: Vec<PrinterColumn>,
}

impl APIResourceVersion {
    /// The OpenAPI v3 schema, whichever of the two shapes `schema` holds.
    pub fn open_api_v3_schema(&self) -> Option<&serde_json::Value> {
        match self.schema.get("openAPIV3Schema") {
            Some(inner) => Some(inner),
            None if self.schema.is_object()
                && !self.schema.as_object().is_some_and(|o| o.is_empty()) =>
            {
                Some(&self.schema)
            }
            None => None,
        }
    }
}

/// Status and scale subresources of a version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Subresources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::empty_object")]
    pub status: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleSubresource>,
}

/// Where the scale subresource finds replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSubresource {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector_path: Option<String>,
}

/// An extra `kubectl get` column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(rename = "jsonPath")]
    pub json_path: String,
}

open_enum! {
    /// How a resource converts between versions.
    pub enum ConversionStrategy {
        None => "None",
        Webhook => "Webhook",
    }
}

impl Default for ConversionStrategy {
    /// Unset (empty), which only a malformed object has.
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

impl ConversionStrategy {
    fn is_unset(&self) -> bool {
        self.as_str().is_empty()
    }
}

/// Conversion settings; a webhook is given exactly when the strategy is `Webhook`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "message": "Webhook must be specified if strategy=Webhook",
    "rule": "(self.strategy == 'None' && !has(self.webhook))  || (self.strategy == 'Webhook' && has(self.webhook))",
}]))]
pub struct CustomResourceConversion {
    /// Optional in upstream's schema (the CEL rule still demands a known value).
    #[serde(default, skip_serializing_if = "ConversionStrategy::is_unset")]
    pub strategy: ConversionStrategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConversion>,
}

/// A conversion webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConversion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_config: Option<WebhookClientConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::atomic_string_list")]
    pub conversion_review_versions: Vec<String>,
}

/// How to reach a conversion webhook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "uri"))]
    pub url: Option<String>,
    /// PEM CA bundle, base64 as in Go's `[]byte`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::byte_string")]
    pub ca_bundle: Option<String>,
}

/// What the konnector observed when installing the CRD.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundSchemaStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_names: Option<CrdNames>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_versions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Declared upstream, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::plain_integer")]
    pub instantiations: Option<i64>,
}

no_open_enums!(
    CrdNames,
    APIResourceVersion,
    Subresources,
    ScaleSubresource,
    PrinterColumn,
    WebhookConversion
);
no_open_enums!(WebhookClientConfig);
check_fields!(BoundSchemaSpec {
    informer_scope => "informerScope",
    scope => "scope",
    conversion => "conversion",
});
check_fields!(CustomResourceConversion { strategy => "strategy" });
check_fields!(BoundSchemaStatus { conditions => "conditions" });
check_fields!(BoundSchema { spec => "spec", status => "status" });

crate::conditions::conditions_in_status!(BoundSchema);
