//! The objects bind-time provisioning writes (reference §3.1 steps 1–5), as pure builders and
//! decisions; [`super::steps`] sends them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_bind_apis::keys::{IDENTITY_ANNOTATION, LEGACY_IDENTITY_ANNOTATION};
use kube_bind_apis::{
    CLUSTER_BINDING_NAME, ClusterBinding, ClusterBindingSpec, GROUP, KubeconfigSecretKey,
    LocalSecretKeyRef,
};
use serde_json::{Value, json};

use super::Identity;
use crate::resources::rbac::{BINDER_ROLE_NAME, SERVICE_ACCOUNT_NAME};

/// The kubeconfig Secret of a new ClusterBinding, and the key in it.
pub const KUBECONFIG_SECRET_NAME: &str = "kubeconfig";
pub const KUBECONFIG_SECRET_KEY: &str = "kubeconfig";
/// The ServiceAccount token Secret in each cluster namespace.
pub const TOKEN_SECRET_NAME: &str = "kube-binder";
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// `generateName` of a new cluster namespace: the prefix, with a `-` unless it ends with one.
pub fn namespace_generate_name(prefix: &str) -> String {
    if prefix.ends_with('-') {
        prefix.to_owned()
    } else {
        format!("{prefix}-")
    }
}

/// A new cluster namespace for `identity`.
pub fn cluster_namespace(prefix: &str, identity: &Identity) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            generate_name: Some(namespace_generate_name(prefix)),
            annotations: Some(BTreeMap::from([(
                IDENTITY_ANNOTATION.to_owned(),
                identity.as_str().to_owned(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// How a namespace is tied to an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Annotated with [`IDENTITY_ANNOTATION`].
    Current,
    /// Annotated with [`LEGACY_IDENTITY_ANNOTATION`] only: to migrate.
    Legacy,
}

/// Whether `namespace` is the cluster namespace of `identity`. The current key wins: a
/// namespace whose current key names another identity is not taken over by its legacy key.
/// A terminating namespace belongs to nobody (nothing can be created in it any more).
pub fn claim_of(namespace: &Namespace, identity: &Identity) -> Option<Claim> {
    if namespace.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let annotations = namespace.metadata.annotations.as_ref()?;
    match annotations.get(IDENTITY_ANNOTATION) {
        Some(current) => (current == identity.as_str()).then_some(Claim::Current),
        None => (annotations
            .get(LEGACY_IDENTITY_ANNOTATION)
            .map(String::as_str)
            == Some(identity.as_str()))
        .then_some(Claim::Legacy),
    }
}

/// The merge patch moving `identity` from the legacy annotation key to the current one.
pub fn legacy_migration_patch(identity: &Identity) -> Value {
    json!({"metadata": {"annotations": {
        IDENTITY_ANNOTATION: identity.as_str(),
        LEGACY_IDENTITY_ANNOTATION: null,
    }}})
}

/// Among several namespaces of one identity (two binds raced), the one every backend keeps:
/// the oldest, ties broken by name.
pub fn oldest<'n>(namespaces: impl IntoIterator<Item = &'n Namespace>) -> Option<&'n Namespace> {
    namespaces.into_iter().min_by(|a, b| {
        let key = |n: &'n Namespace| {
            (
                n.metadata.creation_timestamp.as_ref().map(|t| t.0),
                n.metadata.name.as_deref(),
            )
        };
        key(a).cmp(&key(b))
    })
}

/// The ClusterBinding `cluster` of a new cluster namespace.
pub fn cluster_binding(namespace: &str, pretty_name: &str) -> ClusterBinding {
    let mut binding = ClusterBinding::new(
        CLUSTER_BINDING_NAME,
        ClusterBindingSpec {
            kubeconfig_secret_ref: LocalSecretKeyRef {
                name: KUBECONFIG_SECRET_NAME.to_owned(),
                key: KubeconfigSecretKey::Kubeconfig,
            },
            provider_pretty_name: pretty_name.to_owned(),
            service_provider_spec: None,
        },
    );
    binding.metadata.namespace = Some(namespace.to_owned());
    binding
}

/// The `kube-binder` ServiceAccount of a cluster namespace.
pub fn service_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(SERVICE_ACCOUNT_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The legacy (non-expiring) token Secret of the `kube-binder` ServiceAccount.
pub fn token_secret(namespace: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(TOKEN_SECRET_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            annotations: Some(BTreeMap::from([(
                SERVICE_ACCOUNT_NAME_ANNOTATION.to_owned(),
                SERVICE_ACCOUNT_NAME.to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some(SERVICE_ACCOUNT_TOKEN_TYPE.to_owned()),
        ..Default::default()
    }
}

/// The token in a filled token Secret: `data.token`, once `data["ca.crt"]` is there too (the
/// token controller writes both at once). `None` while it is not filled.
pub fn filled_token(secret: &Secret) -> Option<&[u8]> {
    let data = secret.data.as_ref()?;
    let token = data.get("token").filter(|t| !t.0.is_empty())?;
    data.get("ca.crt").filter(|c| !c.0.is_empty())?;
    Some(&token.0)
}

/// The kubeconfig Secret `name` of a cluster namespace, holding `kubeconfig`.
pub fn kubeconfig_secret(namespace: &str, name: &str, kubeconfig: &[u8]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        data: Some(kubeconfig_data(kubeconfig)),
        ..Default::default()
    }
}

/// `data` of the kubeconfig Secret.
pub fn kubeconfig_data(kubeconfig: &[u8]) -> BTreeMap<String, k8s_openapi::ByteString> {
    BTreeMap::from([(
        KUBECONFIG_SECRET_KEY.to_owned(),
        k8s_openapi::ByteString(kubeconfig.to_vec()),
    )])
}

/// Whether the kubeconfig Secret holds `kubeconfig` already.
pub fn holds_kubeconfig(secret: &Secret, kubeconfig: &[u8]) -> bool {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(KUBECONFIG_SECRET_KEY))
        .is_some_and(|k| k.0 == kubeconfig)
}

/// The global `kube-binder` ClusterRole: what a consumer's konnector needs in its cluster
/// namespace. Rules in upstream's order, so a role the Go backend made compares equal.
pub fn binder_cluster_role() -> ClusterRole {
    const ALL: &[&str] = &[
        "create", "delete", "patch", "update", "get", "list", "watch",
    ];
    const READ: &[&str] = &["get", "watch", "list"];
    const STATUS: &[&str] = &["get", "patch", "update"];
    let rule = |group: &str, resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    };
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(BINDER_ROLE_NAME.to_owned()),
            ..Default::default()
        },
        rules: Some(vec![
            rule(GROUP, "apiserviceexportrequests", ALL),
            rule("", "namespaces", &["get"]),
            rule("", "secrets", READ),
            rule(GROUP, "clusterbindings", READ),
            rule(GROUP, "clusterbindings/status", STATUS),
            rule(GROUP, "apiserviceexports", READ),
            rule(GROUP, "apiserviceexports/status", STATUS),
            rule(GROUP, "apiservicenamespaces", ALL),
            rule(GROUP, "boundschemas", &["get", "list", "watch"]),
            rule(
                GROUP,
                "boundschemas/status",
                &["get", "list", "patch", "update"],
            ),
        ]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::provider::ClusterId;

    fn alice() -> Identity {
        Identity::new("alice", &ClusterId::single())
    }

    fn namespace(name: &str, annotations: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn generate_name_gets_one_dash() {
        for (prefix, want) in [
            ("cluster", "cluster-"),
            ("kube-bind-", "kube-bind-"),
            ("a--", "a--"),
        ] {
            assert_eq!(namespace_generate_name(prefix), want, "{prefix}");
        }
    }

    #[test]
    fn new_cluster_namespace_as_upstream() {
        let json = serde_json::to_value(cluster_namespace("cluster", &alice())).unwrap();
        assert_eq!(
            json,
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"generateName": "cluster-",
                "annotations": {"backend.kube-bind.io/identity": "alice#"}}})
        );
    }

    #[test]
    fn claim_table() {
        let mut terminating = namespace("t", &[(IDENTITY_ANNOTATION, "alice#")]);
        terminating.metadata.deletion_timestamp = Some(Time(Default::default()));
        let cases = [
            (
                "current key",
                namespace("a", &[(IDENTITY_ANNOTATION, "alice#")]),
                Some(Claim::Current),
            ),
            (
                "legacy key only",
                namespace("a", &[(LEGACY_IDENTITY_ANNOTATION, "alice#")]),
                Some(Claim::Legacy),
            ),
            (
                "both keys",
                namespace(
                    "a",
                    &[
                        (IDENTITY_ANNOTATION, "alice#"),
                        (LEGACY_IDENTITY_ANNOTATION, "alice#"),
                    ],
                ),
                Some(Claim::Current),
            ),
            (
                "current key names someone else",
                namespace(
                    "a",
                    &[
                        (IDENTITY_ANNOTATION, "bob#"),
                        (LEGACY_IDENTITY_ANNOTATION, "alice#"),
                    ],
                ),
                None,
            ),
            (
                "other identity",
                namespace("a", &[(IDENTITY_ANNOTATION, "alice#x")]),
                None,
            ),
            ("no annotations", Namespace::default(), None),
            ("terminating", terminating, None),
        ];
        for (name, ns, want) in cases {
            assert_eq!(claim_of(&ns, &alice()), want, "{name}");
        }
    }

    #[test]
    fn legacy_migration_moves_the_key() {
        assert_eq!(
            legacy_migration_patch(&alice()),
            json!({"metadata": {"annotations": {
                "backend.kube-bind.io/identity": "alice#",
                "example-backend.kube-bind.io/identity": null}}})
        );
    }

    #[test]
    fn oldest_wins_then_name() {
        let at = |name: &str, secs: i64| {
            let mut ns = namespace(name, &[]);
            ns.metadata.creation_timestamp = Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(secs).unwrap(),
            ));
            ns
        };
        let all = [at("c", 2), at("b", 1), at("a", 3)];
        assert_eq!(oldest(&all).unwrap().metadata.name.as_deref(), Some("b"));
        let tie = [at("z", 1), at("y", 1)];
        assert_eq!(oldest(&tie).unwrap().metadata.name.as_deref(), Some("y"));
        assert!(oldest(&[]).is_none());
    }

    #[test]
    fn cluster_binding_as_upstream_without_empty_fields() {
        let json = serde_json::to_value(cluster_binding("cluster-abc", "Wild West")).unwrap();
        assert_eq!(
            json,
            json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "ClusterBinding",
                "metadata": {"name": "cluster", "namespace": "cluster-abc"},
                "spec": {"kubeconfigSecretRef": {"name": "kubeconfig", "key": "kubeconfig"},
                         "providerPrettyName": "Wild West"}})
        );
    }

    #[test]
    fn token_secret_as_upstream() {
        let json = serde_json::to_value(token_secret("cluster-abc")).unwrap();
        assert_eq!(
            json,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "kube-binder", "namespace": "cluster-abc",
                    "annotations": {"kubernetes.io/service-account.name": "kube-binder"}},
                   "type": "kubernetes.io/service-account-token"})
        );
    }

    #[test]
    fn a_token_counts_once_the_ca_is_there_too() {
        let with = |keys: &[(&str, &str)]| {
            let mut secret = token_secret("ns");
            secret.data = Some(
                keys.iter()
                    .map(|(k, v)| {
                        (
                            (*k).to_owned(),
                            k8s_openapi::ByteString(v.as_bytes().to_vec()),
                        )
                    })
                    .collect(),
            );
            secret
        };
        assert_eq!(filled_token(&token_secret("ns")), None);
        assert_eq!(filled_token(&with(&[("token", "t")])), None);
        assert_eq!(filled_token(&with(&[("ca.crt", "c")])), None);
        assert_eq!(filled_token(&with(&[("token", ""), ("ca.crt", "c")])), None);
        assert_eq!(
            filled_token(&with(&[("token", "t"), ("ca.crt", "c")])),
            Some(&b"t"[..])
        );
    }

    #[test]
    fn kubeconfig_secret_holds_the_bytes() {
        let secret = kubeconfig_secret("ns", "kubeconfig", b"apiVersion: v1\n");
        assert!(holds_kubeconfig(&secret, b"apiVersion: v1\n"));
        assert!(!holds_kubeconfig(&secret, b"other"));
        assert!(!holds_kubeconfig(&Secret::default(), b"other"));
        assert_eq!(
            secret.type_, None,
            "type left to the API server, as upstream"
        );
    }

    #[test]
    fn binder_cluster_role_rules_as_upstream() {
        let role = binder_cluster_role();
        assert_eq!(role.metadata.name.as_deref(), Some("kube-binder"));
        let rules: Vec<(String, String, String)> = role
            .rules
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.api_groups.as_ref().unwrap().join(","),
                    r.resources.as_ref().unwrap().join(","),
                    r.verbs.join(","),
                )
            })
            .collect();
        let want = [
            (
                "kube-bind.io",
                "apiserviceexportrequests",
                "create,delete,patch,update,get,list,watch",
            ),
            ("", "namespaces", "get"),
            ("", "secrets", "get,watch,list"),
            ("kube-bind.io", "clusterbindings", "get,watch,list"),
            ("kube-bind.io", "clusterbindings/status", "get,patch,update"),
            ("kube-bind.io", "apiserviceexports", "get,watch,list"),
            (
                "kube-bind.io",
                "apiserviceexports/status",
                "get,patch,update",
            ),
            (
                "kube-bind.io",
                "apiservicenamespaces",
                "create,delete,patch,update,get,list,watch",
            ),
            ("kube-bind.io", "boundschemas", "get,list,watch"),
            (
                "kube-bind.io",
                "boundschemas/status",
                "get,list,patch,update",
            ),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(g, r, v)| ((*g).to_owned(), (*r).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(rules, want);
    }
}
