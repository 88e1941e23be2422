//! Labels that tie an object to a namespaced owner it cannot carry an ownerReference to.
//!
//! Kubernetes only allows an ownerReference to an owner in the same namespace (or to a
//! cluster-scoped owner). The backend creates cluster-scoped RBAC for a ClusterBinding or an
//! APIServiceNamespace, and namespaced RBAC in a provider namespace other than the owner's, so
//! these labels are how a watch event on such a child finds its way back to the owner's queue,
//! and how cleanup finds exactly one owner's children. Upstream has no such labels (it matches
//! by name prefix, see [`crate::resources::rbac::stale_claim_rbac`]).
//!
//! NOTE: label values are limited to 63 characters. Owners are named after namespaces (cluster
//! namespace, consumer namespace) or `cluster`, which are DNS labels and fit.

use std::collections::BTreeMap;

/// Label: the kind of the owner, e.g. `APIServiceNamespace`.
pub const OWNER_KIND_LABEL: &str = "kube-bind.io/owner-kind";
/// Label: the namespace of the owner.
pub const OWNER_NAMESPACE_LABEL: &str = "kube-bind.io/owner-namespace";
/// Label: the name of the owner.
pub const OWNER_NAME_LABEL: &str = "kube-bind.io/owner-name";

/// The labels naming `kind` `namespace/name` as the owner.
pub fn owner_labels(kind: &str, namespace: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OWNER_KIND_LABEL.to_owned(), kind.to_owned()),
        (OWNER_NAMESPACE_LABEL.to_owned(), namespace.to_owned()),
        (OWNER_NAME_LABEL.to_owned(), name.to_owned()),
    ])
}

/// The `(namespace, name)` of the owner of `kind` these labels name, if they name one.
///
/// The kind is part of the key: a ClusterBinding is always named `cluster`, and so may be an
/// APIServiceNamespace for a consumer namespace called `cluster`.
pub fn owner_of(labels: &BTreeMap<String, String>, kind: &str) -> Option<(String, String)> {
    let non_empty = |key: &str| labels.get(key).filter(|v| !v.is_empty());
    if non_empty(OWNER_KIND_LABEL)? != kind {
        return None;
    }
    Some((
        non_empty(OWNER_NAMESPACE_LABEL)?.clone(),
        non_empty(OWNER_NAME_LABEL)?.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn owner_of_reads_back_what_owner_labels_wrote() {
        let written = owner_labels("APIServiceNamespace", "cluster-abc", "default");
        assert_eq!(
            owner_of(&written, "APIServiceNamespace"),
            Some(("cluster-abc".to_owned(), "default".to_owned()))
        );
    }

    #[test]
    fn owner_of_table() {
        /// (case, labels, expected owner)
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            Option<(&'static str, &'static str)>,
        );
        let cases: &[Case] = &[
            ("no labels", &[], None),
            (
                "other kind",
                &[
                    (OWNER_KIND_LABEL, "ClusterBinding"),
                    (OWNER_NAMESPACE_LABEL, "ns"),
                    (OWNER_NAME_LABEL, "cluster"),
                ],
                None,
            ),
            (
                "missing name",
                &[
                    (OWNER_KIND_LABEL, "APIServiceNamespace"),
                    (OWNER_NAMESPACE_LABEL, "ns"),
                ],
                None,
            ),
            (
                "empty namespace",
                &[
                    (OWNER_KIND_LABEL, "APIServiceNamespace"),
                    (OWNER_NAMESPACE_LABEL, ""),
                    (OWNER_NAME_LABEL, "x"),
                ],
                None,
            ),
            (
                "complete, with unrelated labels",
                &[
                    ("app", "x"),
                    (OWNER_KIND_LABEL, "APIServiceNamespace"),
                    (OWNER_NAMESPACE_LABEL, "ns"),
                    (OWNER_NAME_LABEL, "x"),
                ],
                Some(("ns", "x")),
            ),
        ];
        for (name, pairs, want) in cases {
            let want = want.map(|(ns, n)| (ns.to_owned(), n.to_owned()));
            assert_eq!(
                owner_of(&labels(pairs), "APIServiceNamespace"),
                want,
                "{name}"
            );
        }
    }
}
