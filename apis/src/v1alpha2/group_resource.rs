//! API group + resource pairs, the way kube-bind names what is exported or claimed.

use serde::{Deserialize, Serialize};

use crate::strict::no_open_enums;

/// Pattern of an API group: empty (the core group) or a DNS subdomain.
pub const GROUP_PATTERN: &str =
    r"^(|[a-z0-9]([-a-z0-9]*[a-z0-9](\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?)$";
/// Pattern of a plural resource name.
pub const RESOURCE_PATTERN: &str = r"^[a-z][-a-z0-9]*[a-z0-9]$";

/// `<resource>.<group>`, with `core` standing in for the empty core group.
pub fn resource_group_name(resource: &str, group: &str) -> String {
    let group = if group.is_empty() { "core" } else { group };
    format!("{resource}.{group}")
}

/// A resource in an API group. Upstream inlines these two fields into several types; so do we.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct GroupResource {
    /// API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(pattern(GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    /// Plural resource name.
    #[schemars(pattern(RESOURCE_PATTERN))]
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
        }
    }

    /// `<resource>.<group>`, `core` for the empty group.
    pub fn resource_group_name(&self) -> String {
        resource_group_name(&self.resource, &self.group)
    }
}

impl std::fmt::Display for GroupResource {
    /// `<resource>.<group>` verbatim (an empty group leaves a trailing dot), as upstream prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.resource, self.group)
    }
}

/// One exported resource and the versions to export (all served versions when empty).
///
/// Upstream calls it both `APIServiceExportResource` and `APIServiceExportRequestResource`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIServiceExportResource {
    /// API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(pattern(GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    /// Plural resource name.
    #[schemars(pattern(RESOURCE_PATTERN))]
    pub resource: String,
    /// Versions to export; empty means every served version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// Upstream's name for the same shape inside requests.
pub type APIServiceExportRequestResource = APIServiceExportResource;

impl APIServiceExportResource {
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(self.group.clone(), self.resource.clone())
    }

    /// `<resource>.<group>`, `core` for the empty group; also the BoundSchema name.
    pub fn resource_group_name(&self) -> String {
        resource_group_name(&self.resource, &self.group)
    }
}

no_open_enums!(GroupResource, APIServiceExportResource);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_group_name_uses_core_for_empty_group() {
        assert_eq!(resource_group_name("secrets", ""), "secrets.core");
        assert_eq!(
            resource_group_name("cowboys", "wildwest.dev"),
            "cowboys.wildwest.dev"
        );
        let r = APIServiceExportResource {
            group: String::new(),
            resource: "configmaps".into(),
            versions: vec![],
        };
        assert_eq!(r.resource_group_name(), "configmaps.core");
        assert_eq!(
            GroupResource::new("", "configmaps").to_string(),
            "configmaps."
        );
    }
}
