//! Permission claims as kcp's APIExport and APIBinding carry them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::strict::check_fields;

/// An export's claim on objects of another API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionClaim {
    /// API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub resource: String,
    /// Allowed verbs (`["*"]` for all); v1alpha2 only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,
    /// Identity of the export providing a claimed non-built-in resource.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_hash: String,
}

open_enum! {
    /// Whether a binding accepts a claim.
    pub enum ClaimState {
        Accepted => "Accepted",
        Rejected => "Rejected",
    }
}

/// Which claimed objects a binding lets the export see (v1alpha2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionClaimSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
    /// Every object of the resource.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_all: bool,
}

impl PermissionClaimSelector {
    /// Selects every object.
    pub fn all() -> Self {
        Self {
            match_all: true,
            ..Default::default()
        }
    }
}

/// A claim as a binding accepts or rejects it.
///
/// Covers both served versions: v1alpha2 uses `verbs` + `selector`, v1alpha1 uses `all`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptablePermissionClaim {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<PermissionClaimSelector>,
    /// v1alpha1's "all objects" flag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    pub state: ClaimState,
}

impl AcceptablePermissionClaim {
    /// Accepts `claim` for every object, with the claim's verbs.
    pub fn accept_all(claim: &PermissionClaim) -> Self {
        Self {
            group: claim.group.clone(),
            resource: claim.resource.clone(),
            verbs: claim.verbs.clone(),
            identity_hash: claim.identity_hash.clone(),
            selector: Some(PermissionClaimSelector::all()),
            all: false,
            state: ClaimState::Accepted,
        }
    }

    /// Whether this acceptance is about `claim` (same group, resource and identity).
    pub fn matches(&self, claim: &PermissionClaim) -> bool {
        self.group == claim.group
            && self.resource == claim.resource
            && self.identity_hash == claim.identity_hash
    }
}

crate::strict::no_open_enums!(PermissionClaim, PermissionClaimSelector);
check_fields!(AcceptablePermissionClaim { state => "state" });
