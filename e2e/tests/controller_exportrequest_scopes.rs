//! The export request controller with `--consumer-scope=Cluster` and
//! `--cluster-scoped-isolation=Namespaced`: the scope and isolation reach the export and its
//! BoundSchemas, and namespaced resources are served cluster-scoped to the consumer (the
//! provider keeps their objects in the cluster namespace), as upstream does.

mod export_support;

use kube::api::Api;
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, BoundSchema,
    InformerScope, Isolation, ResourceScope,
};
use serde_json::json;

use export_support::{create, given_a_provider_with_a_backend_flagged, wait_until};

const FLAGS: &[&str] = &[
    "--consumer-scope=Cluster",
    "--cluster-scoped-isolation=Namespaced",
];

#[tokio::test]
async fn cluster_scope_and_namespaced_isolation_reach_the_export_and_its_schemas()
-> anyhow::Result<()> {
    let (env, plain) = given_a_provider_with_a_backend_flagged(FLAGS).await?;
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    for (name, resource) in [("cowboys", "cowboys"), ("sheriffs", "sheriffs")] {
        create(
            plain,
            json!({
                "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"resources": [{"group": "wildwest.dev", "resource": resource}]},
            }),
        )
        .await?;
    }
    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), &ns);
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), &ns);
    let schemas: Api<BoundSchema> = Api::namespaced(client.clone(), &ns);
    for name in ["cowboys", "sheriffs"] {
        wait_until(&requests, name, env.patience(), "Succeeded", |r| {
            match r.status.as_ref().map(|s| s.phase()) {
                Some(APIServiceExportRequestPhase::Succeeded) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
        let export = exports.get(name).await?;
        assert_eq!(export.spec.informer_scope, InformerScope::Cluster, "{name}");
        assert_eq!(
            export.spec.cluster_scoped_isolation,
            Some(Isolation::Namespaced),
            "{name}: set, as its BoundSchema is cluster-scoped"
        );
        let schema = schemas.get(&format!("{name}.wildwest.dev")).await?;
        assert_eq!(schema.spec.informer_scope, InformerScope::Cluster, "{name}");
        assert_eq!(
            schema.spec.scope,
            ResourceScope::Cluster,
            "{name}: namespaced cowboys are flipped to Cluster for Namespaced isolation"
        );
    }
    Ok(())
}
