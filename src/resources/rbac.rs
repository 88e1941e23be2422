//! The RBAC the backend grants a consumer's `kube-binder` ServiceAccount (reference §3.2 steps
//! 2–4, §3.5 steps 2 and 4, §3.6).
//!
//! Two owners produce RBAC here:
//! - a ClusterBinding: RoleBinding `kube-binder` in the cluster namespace, ClusterRole and (in
//!   Cluster consumer scope only) ClusterRoleBinding `kube-binder-<clusterNs>`;
//! - an APIServiceNamespace: RoleBinding `kube-binder` in the provider namespace (Namespaced
//!   scope) and, per APIServiceExport, the permission-claim RBAC `kube-binder-export-<name>-<export>`.
//!
//! Every object carries [`super::owner`] labels naming its owner, since most of them live in
//! another scope or namespace than the owner and cannot point at it with an ownerReference.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_bind_apis::{APIServiceExport, BoundSchema, GROUP, InformerScope};

use super::owner::owner_labels;

/// The ServiceAccount in each cluster namespace whose token is in the consumer's kubeconfig.
pub const SERVICE_ACCOUNT_NAME: &str = "kube-binder";
/// The global ClusterRole created at bind time (reference §3.1 step 4), and the name of the
/// RoleBindings to it and to the per-namespace ClusterRole.
pub const BINDER_ROLE_NAME: &str = "kube-binder";
/// API group of RBAC role references.
pub const RBAC_API_GROUP: &str = "rbac.authorization.k8s.io";
/// Owner kind in the owner labels of RBAC made for a ClusterBinding.
pub const CLUSTER_BINDING_KIND: &str = "ClusterBinding";
/// Owner kind in the owner labels of RBAC made for an APIServiceNamespace.
pub const API_SERVICE_NAMESPACE_KIND: &str = "APIServiceNamespace";

/// Verbs on every bound resource (reference §3.2 step 3).
const BOUND_RESOURCE_VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// Something went wrong deciding RBAC.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RbacError {
    #[error(
        "BoundSchemas {} are missing in cluster namespace {namespace}; they are created from the \
         APIServiceExportRequest and the exports using them cannot be granted until they exist",
        names.join(", ")
    )]
    BoundSchemasMissing {
        namespace: String,
        names: Vec<String>,
    },
}

/// The cluster namespace of a consumer, as RBAC needs it: its name, and its uid for owner
/// references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterNamespace<'a> {
    pub name: &'a str,
    pub uid: &'a str,
}

/// `kube-binder-<clusterNs>`: the ClusterRole and ClusterRoleBinding of one consumer.
pub fn cluster_role_name(cluster_ns: &str) -> String {
    format!("{BINDER_ROLE_NAME}-{cluster_ns}")
}

/// `kube-binder-export-<apiservicenamespace>-<export>`: the permission-claim RBAC of one export in
/// one consumer namespace.
pub fn claim_rbac_name(api_service_namespace: &str, export: &str) -> String {
    format!("{}{export}", claim_rbac_prefix(api_service_namespace))
}

fn claim_rbac_prefix(api_service_namespace: &str) -> String {
    format!("{BINDER_ROLE_NAME}-export-{api_service_namespace}-")
}

fn service_account_subject(cluster_ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: SERVICE_ACCOUNT_NAME.to_owned(),
        namespace: Some(cluster_ns.to_owned()),
        api_group: None,
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_API_GROUP.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

fn rule(group: &str, resource: &str, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    }
}

fn cluster_binding_labels(cluster_ns: &str) -> BTreeMap<String, String> {
    owner_labels(
        CLUSTER_BINDING_KIND,
        cluster_ns,
        kube_bind_apis::CLUSTER_BINDING_NAME,
    )
}

fn api_service_namespace_labels(
    cluster_ns: &str,
    api_service_namespace: &str,
) -> BTreeMap<String, String> {
    owner_labels(
        API_SERVICE_NAMESPACE_KIND,
        cluster_ns,
        api_service_namespace,
    )
}

/// The controller ownerReference to the cluster Namespace that upstream puts on the
/// `kube-binder-<clusterNs>` ClusterRole and ClusterRoleBinding, so they go with the namespace.
pub fn namespace_owner_reference(cluster_ns: ClusterNamespace<'_>) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        name: cluster_ns.name.to_owned(),
        uid: cluster_ns.uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// RoleBinding `kube-binder` in the cluster namespace: the ServiceAccount gets the global
/// `kube-binder` ClusterRole there (reference §3.2 step 2). Upstream gives it no owner.
pub fn cluster_namespace_role_binding(cluster_ns: &str) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(BINDER_ROLE_NAME.to_owned()),
            namespace: Some(cluster_ns.to_owned()),
            labels: Some(cluster_binding_labels(cluster_ns)),
            ..Default::default()
        },
        role_ref: role_ref("ClusterRole", BINDER_ROLE_NAME),
        subjects: Some(vec![service_account_subject(cluster_ns)]),
    }
}

/// The rules of `kube-binder-<clusterNs>`: BoundSchemas always, then full access to each
/// resource bound by an export in the namespace (reference §3.2 step 3).
///
/// `bound_schema` looks a BoundSchema up by name (`<resource>.<group|core>`) in the cluster
/// namespace. The rule names the schema's group and plural, as upstream does.
///
/// Upstream dedups and sorts per export; we do it over all exports, so the rules do not depend
/// on list order and a resource shared by two exports is granted once. Every missing schema is
/// named in the error, not just the first.
pub fn bound_resource_rules<'s>(
    cluster_ns: &str,
    exports: &[APIServiceExport],
    bound_schema: impl Fn(&str) -> Option<&'s BoundSchema>,
) -> Result<Vec<PolicyRule>, RbacError> {
    let mut rules = vec![
        rule(GROUP, "boundschemas", &["get", "list", "watch"]),
        rule(GROUP, "boundschemas/status", &["get", "update", "patch"]),
    ];
    let names: BTreeSet<String> = exports
        .iter()
        .flat_map(|e| e.spec.resources.iter())
        .map(|r| r.resource_group_name())
        .collect();
    let mut missing = Vec::new();
    for name in names {
        match bound_schema(&name) {
            Some(schema) => rules.push(rule(
                &schema.spec.group,
                &schema.spec.names.plural,
                BOUND_RESOURCE_VERBS,
            )),
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        Ok(rules)
    } else {
        Err(RbacError::BoundSchemasMissing {
            namespace: cluster_ns.to_owned(),
            names: missing,
        })
    }
}

/// ClusterRole `kube-binder-<clusterNs>` with `rules` from [`bound_resource_rules`], owned by
/// the cluster Namespace.
pub fn cluster_role(cluster_ns: ClusterNamespace<'_>, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(cluster_role_name(cluster_ns.name)),
            owner_references: Some(vec![namespace_owner_reference(cluster_ns)]),
            labels: Some(cluster_binding_labels(cluster_ns.name)),
            ..Default::default()
        },
        rules: Some(rules),
        aggregation_rule: None,
    }
}

/// Whether ClusterRoleBinding `kube-binder-<clusterNs>` should exist: only when the consumer
/// watches cluster-wide.
///
/// Upstream bug (reference §3.2 step 4): outside Cluster scope it deletes the binding, then
/// re-creates it because its cache still said it was absent. The intent is a binding in Cluster
/// scope only; anything else means delete it.
pub fn wants_cluster_role_binding(scope: &InformerScope) -> bool {
    *scope == InformerScope::Cluster
}

/// ClusterRoleBinding `kube-binder-<clusterNs>` of the ServiceAccount to the ClusterRole of the
/// same name, owned by the cluster Namespace. Only wanted in Cluster scope
/// ([`wants_cluster_role_binding`]).
pub fn cluster_role_binding(cluster_ns: ClusterNamespace<'_>) -> ClusterRoleBinding {
    let name = cluster_role_name(cluster_ns.name);
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            owner_references: Some(vec![namespace_owner_reference(cluster_ns)]),
            labels: Some(cluster_binding_labels(cluster_ns.name)),
            ..Default::default()
        },
        role_ref: role_ref("ClusterRole", &name),
        subjects: Some(vec![service_account_subject(cluster_ns.name)]),
    }
}

/// Whether an APIServiceNamespace gets RoleBinding `kube-binder` in its provider namespace: only
/// in Namespaced consumer scope (in Cluster scope the ClusterRoleBinding covers it).
pub fn wants_provider_namespace_role_binding(scope: &InformerScope) -> bool {
    *scope == InformerScope::Namespaced
}

/// RoleBinding `kube-binder` in `provider_ns` granting ClusterRole `kube-binder-<clusterNs>` to
/// the consumer's ServiceAccount there (reference §3.5 step 2).
pub fn provider_namespace_role_binding(
    cluster_ns: &str,
    api_service_namespace: &str,
    provider_ns: &str,
) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(BINDER_ROLE_NAME.to_owned()),
            namespace: Some(provider_ns.to_owned()),
            labels: Some(api_service_namespace_labels(
                cluster_ns,
                api_service_namespace,
            )),
            ..Default::default()
        },
        role_ref: role_ref("ClusterRole", &cluster_role_name(cluster_ns)),
        subjects: Some(vec![service_account_subject(cluster_ns)]),
    }
}

/// One rule per permission claim of `export`, all verbs (reference §3.5 step 4). An export
/// without claims gives no rules (the role still exists, as upstream's does).
pub fn claim_rules(export: &APIServiceExport) -> Vec<PolicyRule> {
    export
        .spec
        .permission_claims
        .iter()
        .map(|claim| rule(&claim.group, &claim.resource, &["*"]))
        .collect()
}

/// The permission-claim RBAC of one export in one consumer namespace.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimRbac {
    /// Namespaced consumer scope: Role and RoleBinding in the provider namespace.
    Namespaced { role: Role, binding: RoleBinding },
    /// Cluster consumer scope: ClusterRole and ClusterRoleBinding (upstream: no owner).
    Cluster {
        role: ClusterRole,
        binding: ClusterRoleBinding,
    },
}

/// The permission-claim RBAC `kube-binder-export-<apiservicenamespace>-<export>` for `export`,
/// bound to the consumer's ServiceAccount, shaped by `scope` (reference §3.5 step 4).
pub fn claim_rbac(
    scope: &InformerScope,
    cluster_ns: &str,
    api_service_namespace: &str,
    provider_ns: &str,
    export: &APIServiceExport,
) -> ClaimRbac {
    let export_name = export.metadata.name.as_deref().unwrap_or_default();
    let name = claim_rbac_name(api_service_namespace, export_name);
    let labels = api_service_namespace_labels(cluster_ns, api_service_namespace);
    let rules = claim_rules(export);
    let subjects = Some(vec![service_account_subject(cluster_ns)]);
    if *scope == InformerScope::Cluster {
        let metadata = ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            ..Default::default()
        };
        ClaimRbac::Cluster {
            role: ClusterRole {
                metadata: metadata.clone(),
                rules: Some(rules),
                aggregation_rule: None,
            },
            binding: ClusterRoleBinding {
                metadata,
                role_ref: role_ref("ClusterRole", &name),
                subjects,
            },
        }
    } else {
        let metadata = ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(provider_ns.to_owned()),
            labels: Some(labels),
            ..Default::default()
        };
        ClaimRbac::Namespaced {
            role: Role {
                metadata: metadata.clone(),
                rules: Some(rules),
            },
            binding: RoleBinding {
                metadata,
                role_ref: role_ref("Role", &name),
                subjects,
            },
        }
    }
}

/// Which of `existing` permission-claim RBAC objects (of one kind) of APIServiceNamespace
/// `<clusterNs>/<name>` no longer belong to any of `exports`, and should be deleted
/// (reference §3.5 step 5).
///
/// Upstream bug: it picks candidates by the prefix `kube-binder-export-<name>-` alone, so the
/// APIServiceNamespace `a` deletes the RBAC of `a-b`. We require the owner labels as well. RBAC
/// that upstream created carries no labels and is left alone.
pub fn stale_claim_rbac<'o>(
    cluster_ns: &str,
    api_service_namespace: &str,
    exports: &[APIServiceExport],
    existing: impl IntoIterator<Item = &'o ObjectMeta>,
) -> Vec<String> {
    let prefix = claim_rbac_prefix(api_service_namespace);
    let wanted: BTreeSet<String> = exports
        .iter()
        .filter_map(|e| e.metadata.name.as_deref())
        .map(|export| claim_rbac_name(api_service_namespace, export))
        .collect();
    let owner = Some((cluster_ns.to_owned(), api_service_namespace.to_owned()));
    existing
        .into_iter()
        .filter(|meta| {
            meta.labels
                .as_ref()
                .and_then(|l| super::owner::owner_of(l, API_SERVICE_NAMESPACE_KIND))
                == owner
        })
        .filter_map(|meta| meta.name.as_deref())
        .filter(|name| name.starts_with(&prefix) && !wanted.contains(*name))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use kube_bind_apis::{
        APIServiceExportResource, APIServiceExportSpec, BoundSchemaSpec, CrdNames, PermissionClaim,
        ResourceScope,
    };

    use super::*;
    use crate::resources::owner::owner_of;

    const NS: ClusterNamespace<'static> = ClusterNamespace {
        name: "cluster-abc",
        uid: "uid-1",
    };

    fn export(name: &str, resources: &[(&str, &str)], claims: &[(&str, &str)]) -> APIServiceExport {
        let mut e = APIServiceExport::new(
            name,
            APIServiceExportSpec {
                resources: resources
                    .iter()
                    .map(|(g, r)| APIServiceExportResource {
                        group: (*g).to_owned(),
                        resource: (*r).to_owned(),
                        versions: vec![],
                    })
                    .collect(),
                permission_claims: claims
                    .iter()
                    .map(|(g, r)| PermissionClaim {
                        group: (*g).to_owned(),
                        resource: (*r).to_owned(),
                        ..Default::default()
                    })
                    .collect(),
                informer_scope: InformerScope::Namespaced,
                cluster_scoped_isolation: None,
            },
        );
        e.metadata.namespace = Some(NS.name.to_owned());
        e
    }

    fn schema(group: &str, plural: &str) -> BoundSchema {
        BoundSchema::new(
            &kube_bind_apis::resource_group_name(plural, group),
            BoundSchemaSpec {
                informer_scope: InformerScope::Namespaced,
                group: group.to_owned(),
                names: CrdNames {
                    plural: plural.to_owned(),
                    kind: "K".to_owned(),
                    ..Default::default()
                },
                scope: ResourceScope::Namespaced,
                versions: vec![],
                conversion: None,
            },
        )
    }

    fn rule_of(r: &PolicyRule) -> (String, String, String) {
        (
            r.api_groups.as_ref().unwrap().join(","),
            r.resources.as_ref().unwrap().join(","),
            r.verbs.join(","),
        )
    }

    #[test]
    fn cluster_namespace_role_binding_as_upstream() {
        let rb = serde_json::to_value(cluster_namespace_role_binding("cluster-abc")).unwrap();
        assert_eq!(rb["metadata"]["name"], "kube-binder");
        assert_eq!(rb["metadata"]["namespace"], "cluster-abc");
        assert_eq!(
            rb["roleRef"],
            serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kube-binder"})
        );
        // No apiGroup on the subject: upstream leaves it out.
        assert_eq!(
            rb["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "kube-binder", "namespace": "cluster-abc"}])
        );
        assert!(rb["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn bound_resource_rules_table() {
        let schemas = [
            schema("wildwest.dev", "cowboys"),
            schema("wildwest.dev", "sheriffs"),
            schema("", "widgets"),
        ];
        let lookup = |name: &str| {
            schemas
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
        };
        let base = vec![
            (
                "kube-bind.io".to_owned(),
                "boundschemas".to_owned(),
                "get,list,watch".to_owned(),
            ),
            (
                "kube-bind.io".to_owned(),
                "boundschemas/status".to_owned(),
                "get,update,patch".to_owned(),
            ),
        ];
        let full = "get,list,watch,create,update,patch,delete".to_owned();
        let with = |extra: &[(&str, &str)]| {
            let mut rules = base.clone();
            rules.extend(
                extra
                    .iter()
                    .map(|(g, r)| ((*g).to_owned(), (*r).to_owned(), full.clone())),
            );
            rules
        };
        /// (group, resource, verbs) per rule, or the names of the missing schemas.
        type Want = Result<Vec<(String, String, String)>, Vec<&'static str>>;
        let cases: Vec<(&str, Vec<APIServiceExport>, Want)> = vec![
            ("no exports", vec![], Ok(with(&[]))),
            (
                "sorted by <resource>.<group>, shared resource once, core group as empty",
                vec![
                    export("b", &[("wildwest.dev", "sheriffs"), ("", "widgets")], &[]),
                    export(
                        "a",
                        &[("wildwest.dev", "cowboys"), ("wildwest.dev", "sheriffs")],
                        &[],
                    ),
                ],
                Ok(with(&[
                    ("wildwest.dev", "cowboys"),
                    ("wildwest.dev", "sheriffs"),
                    ("", "widgets"),
                ])),
            ),
            (
                "every missing schema named",
                vec![export(
                    "a",
                    &[("x.dev", "foos"), ("wildwest.dev", "cowboys"), ("", "bars")],
                    &[],
                )],
                Err(vec!["bars.core", "foos.x.dev"]),
            ),
        ];
        for (name, exports, want) in cases {
            let got = bound_resource_rules(NS.name, &exports, lookup)
                .map(|rules| rules.iter().map(rule_of).collect::<Vec<_>>());
            let want = want.map_err(|names| RbacError::BoundSchemasMissing {
                namespace: NS.name.to_owned(),
                names: names.into_iter().map(str::to_owned).collect(),
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn core_group_rule_names_the_empty_group() {
        let schemas = [schema("", "widgets")];
        let rules = bound_resource_rules(NS.name, &[export("a", &[("", "widgets")], &[])], |n| {
            schemas
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(n))
        })
        .unwrap();
        let json = serde_json::to_value(&rules[2]).unwrap();
        assert_eq!(json["apiGroups"], serde_json::json!([""]));
    }

    #[test]
    fn cluster_role_and_binding_owned_by_the_namespace() {
        let role = cluster_role(NS, vec![]);
        let binding = cluster_role_binding(NS);
        for meta in [&role.metadata, &binding.metadata] {
            assert_eq!(meta.name.as_deref(), Some("kube-binder-cluster-abc"));
            assert_eq!(meta.namespace, None);
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (
                    owner.api_version.as_str(),
                    owner.kind.as_str(),
                    owner.name.as_str(),
                    owner.uid.as_str(),
                    owner.controller
                ),
                ("v1", "Namespace", "cluster-abc", "uid-1", Some(true))
            );
            assert_eq!(
                owner_of(meta.labels.as_ref().unwrap(), CLUSTER_BINDING_KIND),
                Some(("cluster-abc".to_owned(), "cluster".to_owned()))
            );
        }
        assert_eq!(
            binding.role_ref,
            role_ref("ClusterRole", "kube-binder-cluster-abc")
        );
        assert_eq!(
            binding.subjects,
            Some(vec![service_account_subject("cluster-abc")])
        );
    }

    #[test]
    fn which_bindings_each_scope_wants() {
        let cases = [
            (InformerScope::Cluster, true, false),
            (InformerScope::Namespaced, false, true),
            (InformerScope::Unknown("Galaxy".into()), false, false),
        ];
        for (scope, crb, provider_rb) in cases {
            assert_eq!(wants_cluster_role_binding(&scope), crb, "{scope}");
            assert_eq!(
                wants_provider_namespace_role_binding(&scope),
                provider_rb,
                "{scope}"
            );
        }
    }

    #[test]
    fn provider_namespace_role_binding_as_upstream() {
        let rb = provider_namespace_role_binding("cluster-abc", "default", "cluster-abc-default");
        assert_eq!(rb.metadata.name.as_deref(), Some("kube-binder"));
        assert_eq!(
            rb.metadata.namespace.as_deref(),
            Some("cluster-abc-default")
        );
        assert_eq!(
            rb.role_ref,
            role_ref("ClusterRole", "kube-binder-cluster-abc")
        );
        assert_eq!(
            rb.subjects,
            Some(vec![service_account_subject("cluster-abc")])
        );
        assert_eq!(
            owner_of(
                rb.metadata.labels.as_ref().unwrap(),
                API_SERVICE_NAMESPACE_KIND
            ),
            Some(("cluster-abc".to_owned(), "default".to_owned()))
        );
    }

    #[test]
    fn claim_rbac_by_scope() {
        let e = export(
            "cowboys",
            &[("wildwest.dev", "cowboys")],
            &[("", "secrets"), ("", "configmaps")],
        );
        let want_rules = vec![rule("", "secrets", &["*"]), rule("", "configmaps", &["*"])];
        let name = "kube-binder-export-default-cowboys";
        match claim_rbac(
            &InformerScope::Namespaced,
            "cluster-abc",
            "default",
            "cluster-abc-default",
            &e,
        ) {
            ClaimRbac::Namespaced { role, binding } => {
                assert_eq!(role.metadata.name.as_deref(), Some(name));
                assert_eq!(
                    role.metadata.namespace.as_deref(),
                    Some("cluster-abc-default")
                );
                assert_eq!(role.rules, Some(want_rules.clone()));
                assert_eq!(
                    binding.metadata.namespace.as_deref(),
                    Some("cluster-abc-default")
                );
                assert_eq!(binding.role_ref, role_ref("Role", name));
                assert_eq!(
                    binding.subjects,
                    Some(vec![service_account_subject("cluster-abc")])
                );
            }
            other => panic!("namespaced scope gave {other:?}"),
        }
        match claim_rbac(
            &InformerScope::Cluster,
            "cluster-abc",
            "default",
            "cluster-abc-default",
            &e,
        ) {
            ClaimRbac::Cluster { role, binding } => {
                assert_eq!(role.metadata.name.as_deref(), Some(name));
                assert_eq!(role.metadata.namespace, None);
                assert_eq!(role.metadata.owner_references, None);
                assert_eq!(role.rules, Some(want_rules));
                assert_eq!(binding.role_ref, role_ref("ClusterRole", name));
                assert_eq!(
                    binding.subjects,
                    Some(vec![service_account_subject("cluster-abc")])
                );
                assert_eq!(
                    owner_of(
                        role.metadata.labels.as_ref().unwrap(),
                        API_SERVICE_NAMESPACE_KIND
                    ),
                    Some(("cluster-abc".to_owned(), "default".to_owned()))
                );
            }
            other => panic!("cluster scope gave {other:?}"),
        }
    }

    #[test]
    fn export_without_claims_gets_an_empty_rule_list() {
        let e = export("plain", &[("wildwest.dev", "cowboys")], &[]);
        let ClaimRbac::Namespaced { role, .. } =
            claim_rbac(&InformerScope::Namespaced, "c", "default", "c-default", &e)
        else {
            panic!("namespaced scope");
        };
        assert_eq!(
            serde_json::to_value(&role).unwrap()["rules"],
            serde_json::json!([])
        );
    }

    #[test]
    fn stale_claim_rbac_table() {
        let meta = |name: &str, owner: Option<(&str, &str)>| ObjectMeta {
            name: Some(name.to_owned()),
            labels: owner.map(|(ns, n)| owner_labels(API_SERVICE_NAMESPACE_KIND, ns, n)),
            ..Default::default()
        };
        let existing = [
            meta("kube-binder-export-a-current", Some(("cluster-abc", "a"))),
            meta("kube-binder-export-a-gone", Some(("cluster-abc", "a"))),
            // APIServiceNamespace `a-b`: same prefix, another owner (upstream would delete it).
            meta(
                "kube-binder-export-a-b-current",
                Some(("cluster-abc", "a-b")),
            ),
            // Same name of another consumer's APIServiceNamespace `a` (cluster scope).
            meta("kube-binder-export-a-other", Some(("cluster-xyz", "a"))),
            // Created by upstream, without labels.
            meta("kube-binder-export-a-legacy", None),
            meta("unrelated", Some(("cluster-abc", "a"))),
        ];
        let exports = [export("current", &[("x.dev", "foos")], &[])];
        assert_eq!(
            stale_claim_rbac("cluster-abc", "a", &exports, &existing),
            vec!["kube-binder-export-a-gone".to_owned()]
        );
        assert_eq!(
            stale_claim_rbac("cluster-abc", "a", &[], &existing),
            vec![
                "kube-binder-export-a-current".to_owned(),
                "kube-binder-export-a-gone".to_owned()
            ]
        );
    }
}
