//! The APIServiceExportRequest controller, run by the real backend against a plain
//! kube-apiserver: a consumer's request becomes BoundSchemas, an APIServiceExport and
//! APIServiceNamespaces, or ends Failed with a message that names what is wrong.

mod export_support;

use std::time::Duration;

use kube::ResourceExt as _;
use kube::api::Api;
use kube_bind_apis::conditions::{self, ConditionStatus};
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, APIServiceNamespace,
    BoundSchema, InformerScope, ResourceScope,
};
use serde_json::json;

use export_support::{create, given_a_provider_with_a_backend, phase, wait_until};

/// The request `name` in `ns` for `resources` (`[group, resource]`) with `claims`.
fn request(
    ns: &str,
    name: &str,
    resources: &[(&str, &str)],
    claims: serde_json::Value,
) -> serde_json::Value {
    let resources: Vec<_> = resources
        .iter()
        .map(|(group, resource)| json!({"group": group, "resource": resource}))
        .collect();
    json!({
        "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"resources": resources, "permissionClaims": claims},
    })
}

/// (status, reason, message) of condition `type_`.
fn condition(
    request: &APIServiceExportRequest,
    type_: &str,
) -> Option<(ConditionStatus, String, String)> {
    let conditions = &request.status.as_ref()?.conditions;
    conditions::get(conditions, type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until request `name` has `ExportsReady` False; returns it with that condition's reason
/// and message.
async fn exports_not_ready(
    requests: &Api<APIServiceExportRequest>,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<(APIServiceExportRequest, String, String)> {
    let request = wait_until(
        requests,
        name,
        timeout,
        "ExportsReady False",
        |r| match condition(r, "ExportsReady") {
            Some((ConditionStatus::False, ..)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await?;
    let (_, reason, message) = condition(&request, "ExportsReady")
        .ok_or_else(|| anyhow::anyhow!("{name} lost its ExportsReady condition"))?;
    Ok((request, reason, message))
}

#[tokio::test]
async fn a_request_for_cowboys_becomes_a_bound_schema_an_export_and_succeeds() -> anyhow::Result<()>
{
    let (env, plain) = given_a_provider_with_a_backend().await?;
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    let mut req = request(&ns, "cowboys", &[("wildwest.dev", "cowboys")], json!([]));
    req["spec"]["namespaces"] = json!([{"name": "default"}]);
    create(plain, req).await?;

    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), &ns);
    let done = wait_until(&requests, "cowboys", env.patience(), "Succeeded", |r| {
        if phase(r) == APIServiceExportRequestPhase::Succeeded {
            Ok(())
        } else {
            Err(format!("{:?}", r.status))
        }
    })
    .await?;
    let status = done.status.clone().unwrap_or_default();
    assert!(status.terminal_message.is_empty());
    assert_eq!(
        condition(&done, "ExportsReady").map(|c| c.0),
        Some(ConditionStatus::True)
    );
    assert_eq!(
        condition(&done, "Ready").map(|c| c.0),
        Some(ConditionStatus::True)
    );

    let schema = Api::<BoundSchema>::namespaced(client.clone(), &ns)
        .get("cowboys.wildwest.dev")
        .await?;
    assert_eq!(schema.spec.group, "wildwest.dev");
    assert_eq!(schema.spec.names.kind, "Cowboy");
    assert_eq!(schema.spec.scope, ResourceScope::Namespaced);
    assert_eq!(schema.spec.informer_scope, InformerScope::Namespaced);
    assert!(
        schema.spec.versions[0]
            .schema
            .get("openAPIV3Schema")
            .is_some()
    );
    assert_eq!(
        schema
            .labels()
            .get("kube-bind.io/exported")
            .map(String::as_str),
        Some("true")
    );

    let export = Api::<APIServiceExport>::namespaced(client.clone(), &ns)
        .get("cowboys")
        .await?;
    assert_eq!(export.spec.informer_scope, InformerScope::Namespaced);
    assert_eq!(
        export.spec.cluster_scoped_isolation, None,
        "namespaced resources carry no isolation"
    );
    assert_eq!(export.spec.resources.len(), 1);
    assert_eq!(export.spec.resources[0].resource, "cowboys");
    assert_eq!(
        export.spec.resources[0].versions,
        ["v1alpha1"],
        "no versions asked: every served one"
    );
    assert!(
        export
            .annotations()
            .contains_key("kube-bind.io/source-spec-hash")
    );
    let raw = serde_json::to_value(&export)?;
    assert!(raw["spec"].get("clusterScopedIsolation").is_none());

    let sns = Api::<APIServiceNamespace>::namespaced(client.clone(), &ns)
        .get("default")
        .await?;
    assert_eq!(
        sns.labels().get("kube-bind.io/owner").map(String::as_str),
        Some("provider")
    );
    let owner = &sns.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("APIServiceExport", "cowboys", Some(true))
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_resource_is_named_at_once_and_fails_after_the_grace() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_with_a_backend().await?;
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    create(
        plain,
        request(
            &ns,
            "unknown",
            &[("wildwest.dev", "cowboys"), ("example.dev", "foos")],
            json!([]),
        ),
    )
    .await?;

    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), &ns);
    let (named, reason, message) = exports_not_ready(&requests, "unknown", env.patience()).await?;
    assert_eq!(reason, "SchemaNotFound");
    assert_eq!(message, "Schema foos.example.dev not found");
    assert_eq!(
        phase(&named),
        APIServiceExportRequestPhase::Pending,
        "a CRD may still be on its way"
    );
    assert!(
        Api::<APIServiceExport>::namespaced(client.clone(), &ns)
            .get_opt("unknown")
            .await?
            .is_none()
    );

    // The grace is one minute from creation; the backend requeues itself at its end.
    let failed = wait_until(
        &requests,
        "unknown",
        Duration::from_secs(60) + env.patience(),
        "Failed",
        |r| {
            if phase(r) == APIServiceExportRequestPhase::Failed {
                Ok(())
            } else {
                Err(format!("{:?}", r.status))
            }
        },
    )
    .await?;
    assert_eq!(
        failed.status.unwrap_or_default().terminal_message,
        "Schema foos.example.dev not found"
    );
    assert!(
        Api::<APIServiceExport>::namespaced(client, &ns)
            .get_opt("unknown")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn a_claim_on_the_core_group_succeeds_and_an_unclaimable_one_fails_at_once()
-> anyhow::Result<()> {
    let (env, plain) = given_a_provider_with_a_backend().await?;
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    let core = json!([{"group": "", "resource": "configmaps", "selector": {}}]);
    create(
        plain,
        request(&ns, "claims", &[("wildwest.dev", "cowboys")], core),
    )
    .await?;
    let pods = json!([{"group": "", "resource": "pods", "selector": {}}]);
    create(
        plain,
        request(&ns, "pods", &[("wildwest.dev", "cowboys")], pods),
    )
    .await?;

    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), &ns);
    wait_until(&requests, "claims", env.patience(), "Succeeded", |r| {
        if phase(r) == APIServiceExportRequestPhase::Succeeded {
            Ok(())
        } else {
            Err(format!("{:?}", r.status))
        }
    })
    .await?;
    let export = Api::<APIServiceExport>::namespaced(client.clone(), &ns)
        .get("claims")
        .await?;
    assert_eq!(export.spec.permission_claims.len(), 1);
    assert_eq!(export.spec.permission_claims[0].group, "");
    assert_eq!(export.spec.permission_claims[0].resource, "configmaps");

    let failed = wait_until(&requests, "pods", env.patience(), "Failed", |r| {
        if phase(r) == APIServiceExportRequestPhase::Failed {
            Ok(())
        } else {
            Err(format!("{:?}", r.status))
        }
    })
    .await?;
    let (status, reason, message) = condition(&failed, "PermissionClaim").unwrap_or((
        ConditionStatus::True,
        String::new(),
        String::new(),
    ));
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, "InvalidPermissionClaim")
    );
    assert_eq!(failed.status.unwrap_or_default().terminal_message, message);
    assert!(
        Api::<APIServiceExport>::namespaced(client, &ns)
            .get_opt("pods")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn a_request_mixing_namespaced_and_cluster_scoped_resources_is_refused() -> anyhow::Result<()>
{
    let (env, plain) = given_a_provider_with_a_backend().await?;
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    create(
        plain,
        request(
            &ns,
            "mixed",
            &[("wildwest.dev", "cowboys"), ("wildwest.dev", "sheriffs")],
            json!([]),
        ),
    )
    .await?;

    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), &ns);
    let (refused, reason, _) = exports_not_ready(&requests, "mixed", env.patience()).await?;
    assert_eq!(reason, "DifferentScopes");
    assert_eq!(
        condition(&refused, "Ready").map(|c| c.1),
        Some("DifferentScopes".to_owned())
    );
    assert!(
        Api::<APIServiceExport>::namespaced(client.clone(), &ns)
            .get_opt("mixed")
            .await?
            .is_none()
    );
    assert!(
        Api::<BoundSchema>::namespaced(client, &ns)
            .list(&Default::default())
            .await?
            .items
            .is_empty()
    );
    Ok(())
}
