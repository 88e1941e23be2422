//! The APIServiceExport controller, run by the real backend against a plain kube-apiserver:
//! BoundSchemas follow their source CRD, the konnector's conditions survive the backend's
//! status writes, and the export settles.

mod export_support;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use kube_bind_apis::conditions::{self, ConditionStatus};
use kube_bind_apis::keys::SOURCE_SPEC_HASH_ANNOTATION;
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, BoundSchema,
};
use kube_bind_e2e::harness::{Check, Env, Workspace, apply, wait_for};
use kube_bind_e2e::konnector::{ExportReport, Konnector, established_crd_status};
use serde_json::json;

use export_support::{create, given_a_provider_with_a_backend, wait_until};

/// A cluster namespace whose request for `resource.group` succeeded; returns its name.
async fn given_a_succeeded_request(
    env: &Env,
    plain: &Workspace,
    name: &str,
    group: &str,
    resource: &str,
) -> anyhow::Result<String> {
    let ns = env.test_namespace(plain, "cluster").await?;
    create(
        plain,
        json!({
            "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"resources": [{"group": group, "resource": resource}]},
        }),
    )
    .await?;
    let requests: Api<APIServiceExportRequest> = Api::namespaced(plain.client().await?, &ns);
    wait_until(&requests, name, env.patience(), "Succeeded", |r| {
        match r.status.as_ref().map(|s| s.phase()) {
            Some(APIServiceExportRequestPhase::Succeeded) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    Ok(ns)
}

/// An exported CRD of its own (`horses.ranch.dev`), so changing it disturbs no other test.
fn horses_crd(description: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "horses.ranch.dev", "labels": {"kube-bind.io/exported": "true"}},
        "spec": {
            "group": "ranch.dev", "scope": "Namespaced",
            "names": {"plural": "horses", "singular": "horse", "kind": "Horse", "listKind": "HorseList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "description": description}}}],
        }
    })
}

fn description(schema: &BoundSchema) -> Option<&str> {
    schema.spec.versions[0]
        .schema
        .pointer("/openAPIV3Schema/description")
        .and_then(|d| d.as_str())
}

#[tokio::test]
async fn a_source_crd_change_reaches_the_bound_schema_and_the_hash() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_with_a_backend().await?;
    let client = plain.client().await?;
    apply::install_crds(&client, &[horses_crd("a horse")], env.patience()).await?;
    let ns = given_a_succeeded_request(env, plain, "horses", "ranch.dev", "horses").await?;
    let schemas: Api<BoundSchema> = Api::namespaced(client.clone(), &ns);
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), &ns);
    let before = wait_until(&exports, "horses", env.patience(), "ProviderInSync", |e| {
        let conditions = e
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        if conditions::is_true(conditions, "ProviderInSync") {
            Ok(())
        } else {
            Err(format!("{conditions:?}"))
        }
    })
    .await?;
    let schema = schemas.get("horses.ranch.dev").await?;
    assert_eq!(description(&schema), Some("a horse"));
    let owners = schema.owner_references();
    assert_eq!(owners.len(), 1, "owned by the export, for GC");
    assert_eq!(
        (owners[0].kind.as_str(), owners[0].name.as_str()),
        ("APIServiceExport", "horses")
    );

    // When the provider changes its CRD,
    apply::apply(&client, &horses_crd("a fast horse")).await?;

    // then the BoundSchema follows and so does the export's hash.
    wait_until(
        &schemas,
        "horses.ranch.dev",
        env.patience(),
        "the new description",
        |s| match description(s) {
            Some("a fast horse") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await?;
    let old_hash = before
        .annotations()
        .get(SOURCE_SPEC_HASH_ANNOTATION)
        .cloned();
    wait_until(&exports, "horses", env.patience(), "a new hash", |e| {
        let hash = e.annotations().get(SOURCE_SPEC_HASH_ANNOTATION);
        if hash.is_some() && hash != old_hash.as_ref() {
            Ok(())
        } else {
            Err(format!("{hash:?}"))
        }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn the_konnectors_conditions_survive_and_the_export_settles() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_with_a_backend().await?;
    let client = plain.client().await?;
    let ns = given_a_succeeded_request(env, plain, "cowboys", "wildwest.dev", "cowboys").await?;
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), &ns);
    wait_until(&exports, "cowboys", env.patience(), "ProviderInSync", |e| {
        let conditions = e
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        if conditions::is_true(conditions, "ProviderInSync") {
            Ok(())
        } else {
            Err(format!("{conditions:?}"))
        }
    })
    .await?;

    // Given the konnector reports the consumer side and the BoundSchema's status,
    let konnector = Konnector::new(client.clone(), &ns);
    konnector
        .mark_export("cowboys", &ExportReport::in_sync())
        .await?;
    let schema = Api::<BoundSchema>::namespaced(client.clone(), &ns)
        .get("cowboys.wildwest.dev")
        .await?;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    konnector
        .report_bound_schema(
            "cowboys.wildwest.dev",
            &established_crd_status(&schema.spec, &now),
        )
        .await?;

    // when the backend's condition is lost and it writes it again,
    let patch = json!({"status": {"conditions": [
        {"type": "Connected", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
        {"type": "ConsumerInSync", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
    ]}});
    exports
        .patch_status("cowboys", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;

    // then every condition is there and Ready summarises them,
    let export = wait_until(
        &exports,
        "cowboys",
        env.patience(),
        "ProviderInSync again",
        |e| {
            let conditions = e
                .status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            if conditions::is_true(conditions, "ProviderInSync") {
                Ok(())
            } else {
                Err(format!("{conditions:?}"))
            }
        },
    )
    .await?;
    let conditions = export.status.unwrap_or_default().conditions;
    for type_ in ["Connected", "ConsumerInSync", "ProviderInSync"] {
        assert!(
            conditions::is_true(&conditions, type_),
            "{type_}: {conditions:?}"
        );
    }
    assert_eq!(
        conditions::get(&conditions, "Ready").map(|c| c.status.clone()),
        Some(ConditionStatus::True)
    );

    // and the export's resourceVersion stops changing (no ping-pong between the writers).
    let settled_for = Duration::from_secs(5);
    let last = std::sync::Mutex::new((String::new(), tokio::time::Instant::now()));
    wait_for(
        "the export's resourceVersion to settle",
        env.patience(),
        || async {
            let rv = match exports.get("cowboys").await {
                Ok(e) => e.resource_version().unwrap_or_default(),
                Err(err) => return Check::Pending(err.to_string()),
            };
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if rv != last.0 {
                *last = (rv.clone(), tokio::time::Instant::now());
                Check::Pending(format!("changed to {rv}"))
            } else if last.1.elapsed() >= settled_for {
                Check::Done(())
            } else {
                Check::Pending(format!("{rv} for {:?}", last.1.elapsed()))
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_bound_schema_goes_with_the_last_export_using_it() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_with_a_backend().await?;
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    // Given two exports of cowboys in one cluster namespace, the first with a namespace,
    for name in ["first", "second"] {
        create(
            plain,
            json!({
                "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys"}],
                         "namespaces": if name == "first" { json!([{"name": "default"}]) } else { json!([]) }},
            }),
        )
        .await?;
    }
    let schemas: Api<BoundSchema> = Api::namespaced(client.clone(), &ns);
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), &ns);
    let namespaces: Api<kube_bind_apis::APIServiceNamespace> = Api::namespaced(client.clone(), &ns);
    wait_until(
        &schemas,
        "cowboys.wildwest.dev",
        env.patience(),
        "owned by both exports",
        |s| {
            let mut owners: Vec<_> = s
                .owner_references()
                .iter()
                .map(|o| o.name.clone())
                .collect();
            owners.sort();
            if owners == ["first", "second"] {
                Ok(())
            } else {
                Err(format!("owners {owners:?}"))
            }
        },
    )
    .await?;
    namespaces.get("default").await?;

    // when the provider deletes the first export, its APIServiceNamespace goes and the shared
    // BoundSchema stays;
    exports.delete("first", &Default::default()).await?;
    wait_for(
        "the first export's APIServiceNamespace to go",
        env.patience(),
        || async {
            match namespaces.get_opt("default").await {
                Ok(None) => Check::Done(()),
                Ok(Some(_)) => Check::Pending("still there".into()),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    assert!(
        schemas.get_opt("cowboys.wildwest.dev").await?.is_some(),
        "still used by the second"
    );
    assert!(
        exports.get_opt("first").await?.is_none(),
        "a Succeeded request is not exported again"
    );

    // when the second goes too, so does the BoundSchema.
    exports.delete("second", &Default::default()).await?;
    wait_for(
        "the BoundSchema to go with the last export",
        env.patience(),
        || async {
            match schemas.get_opt("cowboys.wildwest.dev").await {
                Ok(None) => Check::Done(()),
                Ok(Some(s)) => Check::Pending(format!("owners {:?}", s.owner_references())),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}
