//! APIServiceExportTemplate: a provider-defined bundle of resources consumers can bind by name.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::apiserviceexportrequest::Namespaces;
use super::group_resource::APIServiceExportResource;
use super::permission_claim::PermissionClaim;
use super::scope::InformerScope;
use crate::conditions::Condition;
use crate::strict::check_fields;

/// What binding this template gives a consumer.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "APIServiceExportTemplate",
    doc = "A named set of resources and claims consumers can bind.",
    status = "APIServiceExportTemplateStatus",
    category = "kube-bind",
    printcolumn = r#"{"name":"Resources","type":"string","jsonPath":".spec.resources[*].group"}"#,
    printcolumn = r#"{"name":"PermissionClaims","type":"string","jsonPath":".spec.permissionClaims[*].resource"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportTemplateSpec {
    /// Shown to people choosing what to bind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Informer scope of the exports made from this template.
    #[schemars(schema_with = "template_scope_schema")]
    pub scope: InformerScope,
    /// The resources to export.
    #[schemars(length(min = 1))]
    pub resources: Vec<APIServiceExportResource>,
    /// Objects of other APIs the provider wants access to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_claims: Vec<PermissionClaim>,
    /// Consumer namespaces to pre-create on the provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<Namespaces>,
}

/// Upstream's schema carries both the type's and the field's enum markers, in their own orders.
fn template_scope_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "allOf": [
            { "enum": ["Cluster", "Namespaced"] },
            { "enum": ["Namespaced", "Cluster"] },
        ],
    })
}

/// Observed state of a template (no condition types are defined yet).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIServiceExportTemplateStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

check_fields!(APIServiceExportTemplateSpec { scope => "scope" });
check_fields!(APIServiceExportTemplateStatus { conditions => "conditions" });
check_fields!(APIServiceExportTemplate { spec => "spec", status => "status" });

crate::conditions::conditions_in_status!(APIServiceExportTemplate);
