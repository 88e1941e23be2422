//! BoundSchemas built from the provider's source schemas (reference §3.3 step 1): a CRD labelled
//! `kube-bind.io/exported=true`, or a kcp APIResourceSchema, becomes the BoundSchema
//! `<resource>.<group>` in the consumer's cluster namespace.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource as _;
use kube_bind_apis::kcp::APIResourceSchema;
use kube_bind_apis::{
    APIServiceExport, BoundSchema, BoundSchemaSpec, GroupResource, InformerScope, Isolation,
    ResourceScope,
};
use serde_json::{Value, json};

/// The BoundSchema spec a CRD describes, for consumers watching with `informer_scope`; `None`
/// when the CRD does not fit a BoundSchema (e.g. an unknown scope), which is then not exported.
///
/// Fields carry over by name as upstream's unstructured conversion does; CRD fields a
/// BoundSchema has no place for (a conversion webhook's `service`) are dropped.
pub fn spec_from_crd(
    crd: &CustomResourceDefinition,
    informer_scope: &InformerScope,
) -> Option<BoundSchemaSpec> {
    let source = serde_json::to_value(&crd.spec).ok()?;
    spec_from_source(source, informer_scope)
}

/// Like [`spec_from_crd`], for a kcp APIResourceSchema (whose version schemas are bare).
pub fn spec_from_api_resource_schema(
    schema: &APIResourceSchema,
    informer_scope: &InformerScope,
) -> Option<BoundSchemaSpec> {
    let source = serde_json::to_value(&schema.spec).ok()?;
    spec_from_source(source, informer_scope)
}

fn spec_from_source(mut source: Value, informer_scope: &InformerScope) -> Option<BoundSchemaSpec> {
    let object = source.as_object_mut()?;
    // A BoundSchema version must carry a schema; a source version without one gets an empty one.
    for version in object.get_mut("versions")?.as_array_mut()? {
        let version = version.as_object_mut()?;
        version.entry("schema").or_insert_with(|| json!({}));
    }
    object.insert("informerScope".to_owned(), json!(informer_scope));
    let spec: BoundSchemaSpec = serde_json::from_value(source).ok()?;
    let known_scope = matches!(
        spec.scope,
        ResourceScope::Cluster | ResourceScope::Namespaced
    );
    (known_scope && !spec.versions.is_empty()).then_some(spec)
}

/// The group and plural resource a spec describes.
pub fn group_resource(spec: &BoundSchemaSpec) -> GroupResource {
    GroupResource::new(spec.group.clone(), spec.names.plural.clone())
}

/// The spec the BoundSchema of `source` has when exported with `isolation`: a Namespaced
/// resource exported with `Namespaced` isolation is Cluster-scoped for the consumer (the
/// provider stores its objects namespaced in the cluster namespace, reference §3.6).
pub fn exported_spec(source: &BoundSchemaSpec, isolation: &Isolation) -> BoundSchemaSpec {
    let mut spec = source.clone();
    if spec.scope == ResourceScope::Namespaced && *isolation == Isolation::Namespaced {
        spec.scope = ResourceScope::Cluster;
    }
    spec
}

/// The name of the BoundSchema of `group_resource` (`<resource>.<group|core>`), as the
/// konnector and the export controller look it up.
pub fn bound_schema_name(group_resource: &GroupResource) -> String {
    group_resource.resource_group_name()
}

/// The BoundSchema of `spec` in `namespace`. Upstream also copies the source's metadata; we copy
/// its labels only (its annotations may hold a whole `last-applied-configuration`).
pub fn bound_schema(
    spec: BoundSchemaSpec,
    namespace: &str,
    source_labels: Option<&BTreeMap<String, String>>,
) -> BoundSchema {
    BoundSchema {
        metadata: ObjectMeta {
            name: Some(bound_schema_name(&group_resource(&spec))),
            namespace: Some(namespace.to_owned()),
            labels: source_labels.filter(|l| !l.is_empty()).cloned(),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

/// The (non-controller) ownerReference a BoundSchema carries for each export using it, so it is
/// collected once no export uses it; `None` when the export was not read from the apiserver.
pub fn export_owner_reference(export: &APIServiceExport) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: APIServiceExport::api_version(&()).into_owned(),
        kind: APIServiceExport::kind(&()).into_owned(),
        name: export.metadata.name.clone()?,
        uid: export.metadata.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// The ownerReferences of `schema` with `owner` added, or `None` if it is there already.
pub fn with_owner(schema: &BoundSchema, owner: &OwnerReference) -> Option<Vec<OwnerReference>> {
    let mut owners = schema.metadata.owner_references.clone().unwrap_or_default();
    if owners.iter().any(|o| o.uid == owner.uid) {
        return None;
    }
    owners.push(owner.clone());
    Some(owners)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "cowboys.wildwest.dev", "labels": {"kube-bind.io/exported": "true"}},
            "spec": {
                "group": "wildwest.dev",
                "names": {"plural": "cowboys", "singular": "cowboy", "kind": "Cowboy", "listKind": "CowboyList"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1alpha1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    "subresources": {"status": {}},
                }],
                "conversion": {"strategy": "Webhook", "webhook": {
                    "clientConfig": {"url": "https://x", "service": {"name": "s", "namespace": "n"}},
                    "conversionReviewVersions": ["v1"],
                }},
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_crd_becomes_a_bound_schema_spec_with_its_schema_verbatim() {
        let spec = spec_from_crd(&crd(), &InformerScope::Cluster).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            json!({
                "informerScope": "Cluster",
                "group": "wildwest.dev",
                "names": {"plural": "cowboys", "singular": "cowboy", "kind": "Cowboy", "listKind": "CowboyList"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1alpha1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    "subresources": {"status": {}},
                }],
                "conversion": {"strategy": "Webhook", "webhook": {
                    "clientConfig": {"url": "https://x"},
                    "conversionReviewVersions": ["v1"],
                }},
            })
        );
        assert_eq!(
            group_resource(&spec),
            GroupResource::new("wildwest.dev", "cowboys")
        );
    }

    #[test]
    fn an_api_resource_schema_keeps_its_bare_schema() {
        let schema: APIResourceSchema = serde_json::from_value(json!({
            "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIResourceSchema",
            "metadata": {"name": "v1.cowboys.wildwest.dev"},
            "spec": {
                "group": "wildwest.dev",
                "names": {"plural": "cowboys", "kind": "Cowboy"},
                "scope": "Cluster",
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"type": "object"}}],
            }
        }))
        .unwrap();
        let spec = spec_from_api_resource_schema(&schema, &InformerScope::Namespaced).unwrap();
        assert_eq!(spec.scope, ResourceScope::Cluster);
        assert_eq!(spec.versions[0].schema, json!({"type": "object"}));
        assert_eq!(spec.informer_scope, InformerScope::Namespaced);
    }

    #[test]
    fn unusable_sources_are_not_exported() {
        let mut odd_scope = crd();
        odd_scope.spec.scope = "Galactic".into();
        assert_eq!(spec_from_crd(&odd_scope, &InformerScope::Cluster), None);
        let mut no_versions = crd();
        no_versions.spec.versions.clear();
        assert_eq!(spec_from_crd(&no_versions, &InformerScope::Cluster), None);
    }

    #[test]
    fn namespaced_isolation_flips_namespaced_resources_to_cluster_scope() {
        let source = spec_from_crd(&crd(), &InformerScope::Namespaced).unwrap();
        type Case = (ResourceScope, Isolation, ResourceScope);
        let cases: [Case; 5] = [
            (
                ResourceScope::Namespaced,
                Isolation::Namespaced,
                ResourceScope::Cluster,
            ),
            (
                ResourceScope::Namespaced,
                Isolation::Prefixed,
                ResourceScope::Namespaced,
            ),
            (
                ResourceScope::Namespaced,
                Isolation::None,
                ResourceScope::Namespaced,
            ),
            (
                ResourceScope::Cluster,
                Isolation::Namespaced,
                ResourceScope::Cluster,
            ),
            (
                ResourceScope::Cluster,
                Isolation::Prefixed,
                ResourceScope::Cluster,
            ),
        ];
        for (scope, isolation, want) in cases {
            let mut s = source.clone();
            s.scope = scope.clone();
            assert_eq!(
                exported_spec(&s, &isolation).scope,
                want,
                "{scope} {isolation}"
            );
        }
    }

    #[test]
    fn the_bound_schema_is_named_after_resource_and_group_and_keeps_labels_only() {
        let source = crd();
        let spec = spec_from_crd(&source, &InformerScope::Namespaced).unwrap();
        let schema = bound_schema(spec, "cluster-abc", source.metadata.labels.as_ref());
        let json = serde_json::to_value(&schema).unwrap();
        assert_eq!(
            json["metadata"],
            json!({
                "name": "cowboys.wildwest.dev",
                "namespace": "cluster-abc",
                "labels": {"kube-bind.io/exported": "true"},
            })
        );
        assert!(json.get("status").is_none());
    }

    #[test]
    fn owners_are_added_once() {
        let mut export = APIServiceExport::new(
            "cowboys",
            kube_bind_apis::APIServiceExportSpec {
                resources: vec![],
                permission_claims: vec![],
                informer_scope: InformerScope::Namespaced,
                cluster_scoped_isolation: None,
            },
        );
        assert_eq!(export_owner_reference(&export), None);
        export.metadata.uid = Some("u1".into());
        let owner = export_owner_reference(&export).unwrap();
        assert_eq!(owner.api_version, "kube-bind.io/v1alpha2");
        assert_eq!(owner.kind, "APIServiceExport");
        let spec = spec_from_crd(&crd(), &InformerScope::Namespaced).unwrap();
        let mut schema = bound_schema(spec, "ns", None);
        let owners = with_owner(&schema, &owner).unwrap();
        assert_eq!(owners.len(), 1);
        schema.metadata.owner_references = Some(owners);
        assert_eq!(with_owner(&schema, &owner), None);
    }
}
