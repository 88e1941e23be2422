//! Provider namespaces of APIServiceNamespaces, and the APIServiceNamespaces a request
//! pre-creates (reference §3.5 step 1, §3.3 step 4).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_bind_apis::keys::{API_SERVICE_NAMESPACE_ANNOTATION, OWNER_LABEL, Owner};
use kube_bind_apis::{APIServiceExport, APIServiceNamespace, APIServiceNamespaceStatus};

/// `<clusterNs>-<name>`: where the objects of consumer namespace `name` live on the provider,
/// unless the APIServiceNamespace already recorded another one.
pub fn default_provider_namespace_name(cluster_ns: &str, api_service_namespace: &str) -> String {
    format!("{cluster_ns}-{api_service_namespace}")
}

/// The provider namespace of an APIServiceNamespace: `status.namespace` once recorded, else
/// [`default_provider_namespace_name`]. This is also the value to record in `status.namespace`.
pub fn provider_namespace_name(
    cluster_ns: &str,
    api_service_namespace: &str,
    status: Option<&APIServiceNamespaceStatus>,
) -> String {
    match status.map(|s| s.namespace.as_str()) {
        Some(recorded) if !recorded.is_empty() => recorded.to_owned(),
        _ => default_provider_namespace_name(cluster_ns, api_service_namespace),
    }
}

/// `<clusterNs>/<name>`, the value of `kube-bind.io/api-service-namespace`.
pub fn api_service_namespace_annotation_value(
    cluster_ns: &str,
    api_service_namespace: &str,
) -> String {
    format!("{cluster_ns}/{api_service_namespace}")
}

/// The provider namespace to create: annotated with its APIServiceNamespace, no owner (an
/// ownerReference from a cluster-scoped object to a namespaced one is not allowed).
pub fn provider_namespace(
    cluster_ns: &str,
    api_service_namespace: &str,
    provider_ns: &str,
) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(provider_ns.to_owned()),
            annotations: Some(BTreeMap::from([(
                API_SERVICE_NAMESPACE_ANNOTATION.to_owned(),
                api_service_namespace_annotation_value(cluster_ns, api_service_namespace),
            )])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The `(clusterNs, name)` of the APIServiceNamespace a provider namespace belongs to, read
/// from its annotation.
///
/// Upstream bug (reference §3.5, deletion): when an APIServiceNamespace is gone it deletes
/// `<clusterNs>-<name>`, not the namespace it had recorded. The intent is to delete the provider
/// namespace of that APIServiceNamespace; this annotation names it whatever it is called.
pub fn api_service_namespace_of(namespace: &Namespace) -> Option<(String, String)> {
    let value = namespace
        .metadata
        .annotations
        .as_ref()?
        .get(API_SERVICE_NAMESPACE_ANNOTATION)?;
    let (cluster_ns, name) = value.split_once('/')?;
    (!cluster_ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .then(|| (cluster_ns.to_owned(), name.to_owned()))
}

/// The APIServiceNamespace `name` a request pre-creates next to `export` (upstream
/// `helpers.APIServiceNamespaceFromExport`): label `kube-bind.io/owner=provider` and a
/// controller ownerReference to the export, so it goes when the export goes.
///
/// `None` when the export has no name or uid yet (it was not read from the API server).
pub fn api_service_namespace_for_export(
    export: &APIServiceExport,
    name: &str,
) -> Option<APIServiceNamespace> {
    let owner = OwnerReference {
        api_version: format!("{}/{}", kube_bind_apis::GROUP, kube_bind_apis::VERSION),
        kind: "APIServiceExport".to_owned(),
        name: export.metadata.name.clone()?,
        uid: export.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    Some(APIServiceNamespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: export.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([(
                OWNER_LABEL.to_owned(),
                Owner::Provider.as_str().to_owned(),
            )])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Default::default(),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use kube_bind_apis::{APIServiceExportSpec, InformerScope};

    use super::*;

    #[test]
    fn provider_namespace_name_table() {
        let status = |ns: &str| APIServiceNamespaceStatus {
            namespace: ns.to_owned(),
        };
        let cases = [
            ("no status", None, "cluster-abc-default"),
            ("empty status", Some(status("")), "cluster-abc-default"),
            ("recorded wins", Some(status("elsewhere")), "elsewhere"),
        ];
        for (name, status, want) in cases {
            assert_eq!(
                provider_namespace_name("cluster-abc", "default", status.as_ref()),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn provider_namespace_is_annotated_and_unowned() {
        let ns = provider_namespace("cluster-abc", "default", "cluster-abc-default");
        let json = serde_json::to_value(&ns).unwrap();
        assert!(json.get("spec").is_none() && json.get("status").is_none());
        assert_eq!(
            json["metadata"],
            serde_json::json!({

                    "name": "cluster-abc-default",
                    "annotations": {"kube-bind.io/api-service-namespace": "cluster-abc/default"},
            })
        );
        assert_eq!(
            api_service_namespace_of(&ns),
            Some(("cluster-abc".to_owned(), "default".to_owned()))
        );
    }

    #[test]
    fn api_service_namespace_of_rejects_malformed_annotations() {
        for value in ["", "/", "cluster-abc", "cluster-abc/", "/default", "a/b/c"] {
            let mut ns = provider_namespace("x", "y", "x-y");
            ns.metadata.annotations = Some(BTreeMap::from([(
                API_SERVICE_NAMESPACE_ANNOTATION.to_owned(),
                value.to_owned(),
            )]));
            assert_eq!(api_service_namespace_of(&ns), None, "{value:?}");
        }
        assert_eq!(api_service_namespace_of(&Namespace::default()), None);
    }

    #[test]
    fn api_service_namespace_for_export_as_upstream() {
        let mut export = APIServiceExport::new(
            "cowboys",
            APIServiceExportSpec {
                resources: vec![],
                permission_claims: vec![],
                informer_scope: InformerScope::Namespaced,
                cluster_scoped_isolation: None,
            },
        );
        export.metadata.namespace = Some("cluster-abc".to_owned());
        assert_eq!(api_service_namespace_for_export(&export, "default"), None);
        export.metadata.uid = Some("uid-7".to_owned());
        let sns = api_service_namespace_for_export(&export, "default").unwrap();
        let json = serde_json::to_value(&sns).unwrap();
        assert_eq!(json["metadata"]["name"], "default");
        assert_eq!(json["metadata"]["namespace"], "cluster-abc");
        assert_eq!(
            json["metadata"]["labels"],
            serde_json::json!({"kube-bind.io/owner": "provider"})
        );
        assert_eq!(
            json["metadata"]["ownerReferences"],
            serde_json::json!([{
                "apiVersion": "kube-bind.io/v1alpha2",
                "kind": "APIServiceExport",
                "name": "cowboys",
                "uid": "uid-7",
                "controller": true,
                "blockOwnerDeletion": true,
            }])
        );
        assert_eq!(json["spec"], serde_json::json!({}));
        assert!(json.get("status").is_none());
    }
}
