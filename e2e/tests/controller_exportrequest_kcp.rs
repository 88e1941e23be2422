//! The APIServiceExportRequest controller on real kcp: the backend, serving the `kube-bind.io`
//! APIExport's virtual workspace with `--schema-source apiresourceschemas`, turns a request in
//! a service-provider workspace into a BoundSchema (with the APIResourceSchema's bare schema)
//! and an export, and the request succeeds.

use kube::api::Api;
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, BoundSchema,
    ResourceScope,
};
use kube_bind_backend::app;
use kube_bind_backend::options::Options;
use kube_bind_e2e::harness::topology::setup_kube_bind;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, apply, wait_for};
use serde_json::json;
use tokio_util::sync::CancellationToken;

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a"]);

/// The cowboys API as an exported APIResourceSchema (kcp's bare JSON schema per version).
fn cowboys_schema() -> serde_json::Value {
    json!({
        "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIResourceSchema",
        "metadata": {"name": "v1.cowboys.wildwest.dev", "labels": {"kube-bind.io/exported": "true"}},
        "spec": {
            "group": "wildwest.dev", "scope": "Namespaced",
            "names": {"plural": "cowboys", "singular": "cowboy", "kind": "Cowboy", "listKind": "CowboyList"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"type": "object", "description": "a cowboy"}}],
        }
    })
}

#[tokio::test]
async fn a_request_in_a_provider_workspace_succeeds_from_an_api_resource_schema()
-> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a"], None).await?;
    let provider = env.workspace("provider-a")?;
    let client = provider.client().await?;
    apply::apply(&client, &cowboys_schema()).await?;
    let ns = env.test_namespace(provider, "cluster").await?;

    let options = Options::from_args([
        "kube-bind-backend",
        "--kubeconfig",
        &topology.home.kubeconfig.display().to_string(),
        "--multicluster-runtime-provider=kcp",
        "--apiexport-endpointslice-name=kube-bind.io",
        "--oidc-type=embedded",
        "--listen-address=127.0.0.1:0",
        "--schema-source=apiresourceschemas",
    ])?;
    let shutdown = CancellationToken::new();
    let backend = app::start(options, shutdown.clone()).await?;

    apply::apply(
        &client,
        &json!({
            "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
            "metadata": {"name": "cowboys", "namespace": ns},
            "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys"}],
                     "permissionClaims": [{"group": "", "resource": "secrets", "selector": {}}]},
        }),
    )
    .await?;
    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), &ns);
    wait_for("the request to succeed", env.patience(), || async {
        match requests.get("cowboys").await {
            Ok(r) => match r.status.as_ref().map(|s| s.phase()) {
                Some(APIServiceExportRequestPhase::Succeeded) => Check::Done(()),
                _ => Check::Pending(format!("{:?}", r.status)),
            },
            Err(err) => Check::Pending(err.to_string()),
        }
    })
    .await?;

    let schema = Api::<BoundSchema>::namespaced(client.clone(), &ns)
        .get("cowboys.wildwest.dev")
        .await?;
    assert_eq!(schema.spec.scope, ResourceScope::Namespaced);
    assert_eq!(
        schema.spec.versions[0].schema,
        json!({"type": "object", "description": "a cowboy"}),
        "the bare schema of the APIResourceSchema, verbatim"
    );
    let export = Api::<APIServiceExport>::namespaced(client, &ns)
        .get("cowboys")
        .await?;
    assert_eq!(export.spec.resources[0].versions, ["v1alpha1"]);
    assert_eq!(export.spec.permission_claims[0].resource, "secrets");

    shutdown.cancel();
    backend.wait().await?;
    Ok(())
}
