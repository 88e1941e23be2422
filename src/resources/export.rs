//! The APIServiceExport a valid APIServiceExportRequest becomes (reference §3.3 step 3).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_bind_apis::keys::SOURCE_SPEC_HASH_ANNOTATION;
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportResource, APIServiceExportSpec,
    BoundSchemaSpec, InformerScope, Isolation, ResourceScope,
};

use super::export_hash::export_spec_hash;
use super::export_request::ResolvedResource;

/// The export of `request`: same name and namespace, the spec-hash annotation over `schemas`
/// (the BoundSchema specs, in `resources` order), the consumer's informer scope, the resources
/// with their resolved versions, and the claims as requested.
///
/// `clusterScopedIsolation` is set only when the exported schemas are Cluster-scoped (after the
/// `Namespaced` isolation flip), as upstream does; it means nothing for namespaced objects.
/// Upstream looks at the last schema only; a valid request has one scope for all.
pub fn export_for_request(
    request: &APIServiceExportRequest,
    resources: &[ResolvedResource],
    schemas: &[BoundSchemaSpec],
    informer_scope: &InformerScope,
    isolation: &Isolation,
) -> APIServiceExport {
    let cluster_scoped = schemas
        .last()
        .is_some_and(|s| s.scope == ResourceScope::Cluster);
    APIServiceExport {
        metadata: ObjectMeta {
            name: request.metadata.name.clone(),
            namespace: request.metadata.namespace.clone(),
            annotations: Some(BTreeMap::from([(
                SOURCE_SPEC_HASH_ANNOTATION.to_owned(),
                export_spec_hash(schemas),
            )])),
            ..Default::default()
        },
        spec: APIServiceExportSpec {
            resources: resources
                .iter()
                .map(|r| APIServiceExportResource {
                    group: r.group_resource.group.clone(),
                    resource: r.group_resource.resource.clone(),
                    versions: r.versions.clone(),
                })
                .collect(),
            permission_claims: request.spec.permission_claims.clone(),
            informer_scope: informer_scope.clone(),
            cluster_scoped_isolation: cluster_scoped.then(|| isolation.clone()),
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use kube_bind_apis::{
        APIResourceVersion, APIServiceExportRequestSpec, CrdNames, GroupResource, PermissionClaim,
    };
    use serde_json::json;

    use super::*;

    fn schema(scope: ResourceScope) -> BoundSchemaSpec {
        BoundSchemaSpec {
            informer_scope: InformerScope::Namespaced,
            group: "wildwest.dev".into(),
            names: CrdNames {
                plural: "cowboys".into(),
                kind: "Cowboy".into(),
                ..Default::default()
            },
            scope,
            versions: vec![APIResourceVersion {
                name: "v1".into(),
                served: true,
                storage: true,
                deprecated: false,
                deprecation_warning: None,
                schema: json!({}),
                subresources: None,
                additional_printer_columns: vec![],
            }],
            conversion: None,
        }
    }

    fn request() -> APIServiceExportRequest {
        let mut request = APIServiceExportRequest::new(
            "cowboys",
            APIServiceExportRequestSpec {
                resources: vec![APIServiceExportResource {
                    group: "wildwest.dev".into(),
                    resource: "cowboys".into(),
                    versions: vec![],
                }],
                permission_claims: vec![PermissionClaim {
                    group: "".into(),
                    resource: "secrets".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        request.metadata.namespace = Some("cluster-abc".into());
        request.metadata.uid = Some("uid-r".into());
        request
    }

    fn resolved() -> Vec<ResolvedResource> {
        vec![ResolvedResource {
            group_resource: GroupResource::new("wildwest.dev", "cowboys"),
            versions: vec!["v1".into()],
        }]
    }

    #[test]
    fn the_export_of_a_namespaced_request() {
        let schemas = [schema(ResourceScope::Namespaced)];
        let export = export_for_request(
            &request(),
            &resolved(),
            &schemas,
            &InformerScope::Namespaced,
            &Isolation::Prefixed,
        );
        let json = serde_json::to_value(&export).unwrap();
        assert_eq!(
            json["metadata"],
            json!({
                "name": "cowboys",
                "namespace": "cluster-abc",
                "annotations": {"kube-bind.io/source-spec-hash": export_spec_hash(&schemas)},
            })
        );
        // No `clusterScopedIsolation` (not even ""), no empty claim group, no status.
        assert_eq!(
            json["spec"],
            json!({
                "resources": [{"group": "wildwest.dev", "resource": "cowboys", "versions": ["v1"]}],
                "permissionClaims": [{"resource": "secrets", "selector": {}}],
                "informerScope": "Namespaced",
            })
        );
        assert!(json.get("status").is_none());
    }

    #[test]
    fn cluster_scoped_schemas_carry_the_isolation() {
        for isolation in [Isolation::Prefixed, Isolation::Namespaced, Isolation::None] {
            let export = export_for_request(
                &request(),
                &resolved(),
                &[schema(ResourceScope::Cluster)],
                &InformerScope::Cluster,
                &isolation,
            );
            assert_eq!(export.spec.cluster_scoped_isolation, Some(isolation));
            assert_eq!(export.spec.informer_scope, InformerScope::Cluster);
        }
    }
}
