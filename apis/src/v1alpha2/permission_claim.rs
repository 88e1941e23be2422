//! Permission claims: which objects of another API a provider may read or write in the consumer.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

use super::group_resource::{GROUP_PATTERN, GroupResource, RESOURCE_PATTERN};
use crate::strict::no_open_enums;

/// A claim on objects of `group`/`resource`, narrowed by `selector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PermissionClaim {
    /// API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(pattern(GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    /// Plural resource name.
    #[schemars(pattern(RESOURCE_PATTERN))]
    pub resource: String,
    /// Which objects are claimed; all of its parts must match.
    pub selector: Selector,
}

impl PermissionClaim {
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.group.clone(), self.resource.clone())
    }
}

/// Narrows a claim. Every part that is set must match (they are ANDed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Objects named explicitly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_resources: Vec<NamedResource>,
    /// Objects whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::label_selector")]
    pub label_selector: Option<LabelSelector>,
    /// Objects referenced from fields of other objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SelectorReference>,
}

/// An object picked by name (and namespace, for namespaced resources).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamedResource {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// Objects named by fields of objects of another resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectorReference {
    /// API group of the referring resource; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(pattern(GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    /// Plural name of the referring resource.
    #[schemars(pattern(RESOURCE_PATTERN))]
    pub resource: String,
    /// Versions of the referring resource to look at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Where in the referring object the claimed object's name and namespace are.
    #[schemars(required)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<JsonPathReference>,
}

/// JSONPath expressions locating a name and a namespace inside an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JsonPathReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

no_open_enums!(
    PermissionClaim,
    Selector,
    NamedResource,
    SelectorReference,
    JsonPathReference
);
