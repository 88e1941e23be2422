//! The core APIs a permission claim may name, and the lookup from a claim to its API.

/// A built-in API that providers may claim objects of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimableApi {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name.
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
}

/// Every claimable API, in upstream's order. All are namespaced core/v1 resources.
pub const CLAIMABLE_APIS: &[ClaimableApi] = &[
    ClaimableApi {
        group: "",
        version: "v1",
        resource: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
    },
    ClaimableApi {
        group: "",
        version: "v1",
        resource: "secrets",
        singular: "secret",
        kind: "Secret",
    },
    ClaimableApi {
        group: "",
        version: "v1",
        resource: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
    },
];

/// The claimable API with this group and plural resource, if any.
pub fn resolve_claimable_api(group: &str, resource: &str) -> Option<&'static ClaimableApi> {
    CLAIMABLE_APIS
        .iter()
        .find(|api| api.group == group && api.resource == resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_by_group_and_plural() {
        assert_eq!(
            resolve_claimable_api("", "secrets").map(|a| a.kind),
            Some("Secret")
        );
        assert_eq!(
            resolve_claimable_api("", "configmaps").map(|a| a.version),
            Some("v1")
        );
        assert!(resolve_claimable_api("", "secret").is_none());
        assert!(resolve_claimable_api("apps", "secrets").is_none());
        assert!(resolve_claimable_api("", "pods").is_none());
    }
}
