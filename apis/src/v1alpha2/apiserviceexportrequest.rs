//! APIServiceExportRequest: a consumer's request to bind resources, created in its cluster namespace.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::group_resource::APIServiceExportRequestResource;
use super::permission_claim::PermissionClaim;
use crate::conditions::Condition;
use crate::open_enum::open_enum;
use crate::strict::{check_fields, no_open_enums};

/// Condition type: every export the request asked for exists and is ready.
pub const CONDITION_EXPORTS_READY: &str = "ExportsReady";

/// What the consumer asks for. Every field is immutable once created.
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "APIServiceExportRequest",
    doc = "A consumer's request to bind resources of a provider.",
    namespaced,
    status = "APIServiceExportRequestStatus",
    category = "kube-bindings",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportRequestSpec {
    /// Free-form provider-specific parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        schema_with = "crate::schema::preserve_unknown_object",
        extend("x-kubernetes-validations" = [{"message": "parameters are immutable", "rule": "self == oldSelf"}])
    )]
    pub parameters: Option<serde_json::Value>,
    /// The resources to bind.
    #[schemars(
        length(min = 1),
        extend("x-kubernetes-validations" = [{"message": "resources are immutable", "rule": "self == oldSelf"}])
    )]
    pub resources: Vec<APIServiceExportRequestResource>,
    /// Objects of other APIs the provider wants access to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [{"message": "permissionClaims are immutable", "rule": "self == oldSelf"}]))]
    pub permission_claims: Vec<PermissionClaim>,
    /// Consumer namespaces to pre-create on the provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [{"message": "namespaces are immutable", "rule": "self == oldSelf"}]))]
    pub namespaces: Vec<Namespaces>,
}

/// A consumer namespace named in a request or template.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Namespaces {
    pub name: String,
}

open_enum! {
    /// Where a request stands.
    pub enum APIServiceExportRequestPhase {
        /// Not processed yet (the default).
        Pending => "Pending",
        /// Cannot be satisfied; see `terminalMessage`.
        Failed => "Failed",
        /// Every export was created.
        Succeeded => "Succeeded",
    }
}

/// Observed state of a request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportRequestStatus {
    /// Absent means `Pending` (the schema defaults it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Pending"))]
    pub phase: Option<APIServiceExportRequestPhase>,
    /// Why the request failed, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub terminal_message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl APIServiceExportRequestStatus {
    /// The phase, `Pending` when unset.
    pub fn phase(&self) -> APIServiceExportRequestPhase {
        self.phase
            .clone()
            .unwrap_or(APIServiceExportRequestPhase::Pending)
    }
}

no_open_enums!(Namespaces, APIServiceExportRequestSpec);
check_fields!(APIServiceExportRequestStatus { phase => "phase", conditions => "conditions" });
check_fields!(APIServiceExportRequest { status => "status" });

crate::conditions::conditions_in_status!(APIServiceExportRequest);
