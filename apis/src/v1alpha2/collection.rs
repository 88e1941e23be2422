//! Collection: a named group of templates offered together.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::strict::{check_fields, no_open_enums};

/// The templates in a collection.
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "Collection",
    doc = "A named group of APIServiceExportTemplates.",
    status = "CollectionStatus",
    category = "kube-bind",
    printcolumn = r#"{"name":"Description","type":"string","jsonPath":".spec.description"}"#,
    printcolumn = r#"{"name":"Templates","type":"string","jsonPath":".spec.templates[*].name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq"
)]
pub struct CollectionSpec {
    /// Shown to people choosing what to bind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The templates, by name.
    #[schemars(length(min = 1))]
    pub templates: Vec<APIServiceExportTemplateReference>,
}

/// A reference to an APIServiceExportTemplate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIServiceExportTemplateReference {
    pub name: String,
}

/// Observed state of a collection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CollectionStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

no_open_enums!(CollectionSpec, APIServiceExportTemplateReference);
check_fields!(CollectionStatus { conditions => "conditions" });
check_fields!(Collection { status => "status" });

crate::conditions::conditions_in_status!(Collection);
