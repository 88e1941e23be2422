//! The konnector simulator against a real kube-apiserver with upstream's CRDs: each of its
//! provider-side writes lands through the status subresource, conditions another writer set
//! survive them, a conflicting write is retried, and the heartbeat advances on its own.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use kube_bind_apis::conditions::{self, ConditionStatus};
use kube_bind_apis::keys::OWNER_LABEL;
use kube_bind_apis::{APIServiceExport, APIServiceNamespace, BoundSchema, ClusterBinding};
use kube_bind_e2e::harness::fixtures::provisioned_cluster_namespace;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, Workspace, apply, wait_for};
use kube_bind_e2e::konnector::{
    ConsumerBinding, ExportReport, Konnector, established_crd_status, write,
};
use serde_json::json;
use tokio::sync::OnceCell;

static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);
static CRDS: OnceCell<()> = OnceCell::const_new();

const EXPORT: &str = "cowboys";
const SCHEMA: &str = "cowboys.wildwest.dev";

/// The plain cluster with the kube-bind CRDs installed.
async fn given_a_provider_cluster() -> anyhow::Result<(&'static Env, &'static Workspace)> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    CRDS.get_or_try_init(|| async {
        apply::install_kube_bind_crds(&plain.client().await?, env.patience()).await?;
        anyhow::Ok(())
    })
    .await?;
    Ok((env, plain))
}

/// A cluster namespace as bind-time provisioning leaves it: the kubeconfig Secret, the
/// ClusterBinding `cluster`, one APIServiceExport and its BoundSchema. Returns its name.
async fn given_a_bound_cluster_namespace(env: &Env, plain: &Workspace) -> anyhow::Result<String> {
    let ns = provisioned_cluster_namespace(env, plain, |ns| {
        vec![
            json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExport",
                "metadata": {"name": EXPORT, "namespace": ns},
                "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys", "versions": ["v1alpha1"]}],
                         "informerScope": "Namespaced"}}),
            json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "BoundSchema",
                "metadata": {"name": SCHEMA, "namespace": ns},
                "spec": {"informerScope": "Namespaced", "group": "wildwest.dev", "scope": "Namespaced",
                         "names": {"plural": "cowboys", "singular": "cowboy", "kind": "Cowboy", "listKind": "CowboyList"},
                         "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
        ]
    })
    .await?;
    Ok(ns)
}

/// Another writer (the backend) sets condition `type_` on `kind`'s status.
async fn given_another_writer_set<K>(
    api: &Api<K>,
    name: &str,
    type_: &str,
    status: &str,
) -> anyhow::Result<()>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let condition = json!({"type": type_, "status": status, "lastTransitionTime": "2024-01-01T00:00:00Z",
        "severity": if status == "True" { "" } else { "Info" },
        "reason": if status == "True" { "" } else { "FirstHeartbeatPending" },
        "message": if status == "True" { "" } else { "Waiting for first heartbeat" }});
    let patch = json!({"status": {"conditions": [condition]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[tokio::test]
async fn heartbeat_lands_keeps_healthy_and_advances() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let client = plain.client().await?;
    let bindings: Api<ClusterBinding> = Api::namespaced(client.clone(), &ns);
    given_another_writer_set(&bindings, "cluster", "Healthy", "False").await?;

    let konnector =
        Konnector::new(client.clone(), &ns).with_heartbeat_interval(Duration::from_secs(2));
    konnector.heartbeat_once().await?;

    let binding = bindings.get("cluster").await?;
    let status = binding.status.clone().unwrap_or_default();
    let first = status
        .last_heartbeat_time
        .clone()
        .expect("lastHeartbeatTime is written");
    assert_eq!(status.heartbeat_interval, "2s");
    assert_eq!(status.konnector_version, "v0.0.0");
    assert!(
        conditions::is_true(&status.conditions, "SecretValid"),
        "{:?}",
        status.conditions
    );
    assert!(
        conditions::is_true(&status.conditions, "ValidVersion"),
        "{:?}",
        status.conditions
    );
    let healthy = conditions::get(&status.conditions, "Healthy").expect("Healthy survives");
    assert_eq!(healthy.reason, "FirstHeartbeatPending");
    let ready = conditions::get(&status.conditions, "Ready").expect("Ready is summarised");
    assert_eq!(
        (&ready.status, ready.reason.as_str()),
        (&ConditionStatus::False, "FirstHeartbeatPending"),
        "Ready follows the worst condition, the backend's Healthy"
    );

    let task = konnector.start_heartbeat();
    wait_for("the heartbeat to advance", env.patience(), || async {
        match bindings.get("cluster").await {
            Ok(b) => match b.status.and_then(|s| s.last_heartbeat_time) {
                Some(t) if t.0 > first.0 => Check::Done(()),
                t => Check::Pending(format!("lastHeartbeatTime {t:?}")),
            },
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    task.stop().await;

    let status = bindings.get("cluster").await?.status.unwrap_or_default();
    assert!(
        conditions::get(&status.conditions, "Healthy").is_some(),
        "Healthy survives heartbeats"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_kubeconfig_secret_marks_secret_valid_false() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let client = plain.client().await?;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &ns)
        .delete("kubeconfig", &Default::default())
        .await?;

    let binding = Konnector::new(client, &ns).heartbeat_once().await?;

    let status = binding.status.unwrap_or_default();
    let ready = conditions::get(&status.conditions, "Ready").expect("Ready");
    assert_eq!(
        ready.reason, "ProviderSecretNotFound",
        "{:?}",
        status.conditions
    );
    assert_eq!(status.heartbeat_interval, "5m0s");
    Ok(())
}

#[tokio::test]
async fn export_conditions_land_and_provider_in_sync_survives() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let client = plain.client().await?;
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), &ns);
    given_another_writer_set(&exports, EXPORT, "ProviderInSync", "True").await?;
    let konnector = Konnector::new(client, &ns);

    konnector
        .mark_export(EXPORT, &ExportReport::in_sync())
        .await?;
    let live = exports
        .get(EXPORT)
        .await?
        .status
        .unwrap_or_default()
        .conditions;
    for type_ in ["Connected", "ConsumerInSync", "ProviderInSync"] {
        assert!(conditions::is_true(&live, type_), "{type_}: {live:?}");
    }
    assert!(
        conditions::get(&live, "Ready").is_none(),
        "the konnector writes no Ready on exports"
    );

    let gone = ExportReport {
        binding: ConsumerBinding::Missing,
        bound_schemas_valid: true,
    };
    konnector.mark_export(EXPORT, &gone).await?;
    let live = exports
        .get(EXPORT)
        .await?
        .status
        .unwrap_or_default()
        .conditions;
    assert_eq!(
        conditions::get(&live, "ConsumerInSync").map(|c| c.reason.as_str()),
        Some("NA")
    );
    assert!(conditions::is_true(&live, "ProviderInSync"), "{live:?}");
    Ok(())
}

#[tokio::test]
async fn bound_schema_status_lands_and_foreign_conditions_survive() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let client = plain.client().await?;
    let schemas: Api<BoundSchema> = Api::namespaced(client.clone(), &ns);
    given_another_writer_set(&schemas, SCHEMA, "Valid", "True").await?;
    let schema = schemas.get(SCHEMA).await?;

    let crd = established_crd_status(&schema.spec, &Time(k8s_openapi::jiff::Timestamp::now()));
    Konnector::new(client, &ns)
        .report_bound_schema(SCHEMA, &crd)
        .await?;

    let status = schemas.get(SCHEMA).await?.status.unwrap_or_default();
    for type_ in ["Ready", "Established", "NamesAccepted", "Valid"] {
        assert!(
            conditions::is_true(&status.conditions, type_),
            "{type_}: {:?}",
            status.conditions
        );
    }
    assert_eq!(
        status.accepted_names.map(|n| n.kind),
        Some("Cowboy".to_owned())
    );
    assert_eq!(status.stored_versions, Some(vec!["v1alpha1".to_owned()]));
    Ok(())
}

#[tokio::test]
async fn namespaces_are_claimed_for_the_export_and_released_only_when_consumer_owned()
-> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let client = plain.client().await?;
    let konnector = Konnector::new(client.clone(), &ns);
    let export = Api::<APIServiceExport>::namespaced(client.clone(), &ns)
        .get(EXPORT)
        .await?;

    let claimed = konnector.claim_namespace(EXPORT, "wild-west").await?;
    assert_eq!(claimed.name_any(), "wild-west");
    assert!(
        claimed.labels().get(OWNER_LABEL).is_none(),
        "the konnector sets no owner label"
    );
    let owner = &claimed.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        (
            "APIServiceExport",
            export.uid().unwrap_or_default().as_str()
        )
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        konnector.claim_namespace(EXPORT, "wild-west").await?.uid(),
        claimed.uid(),
        "claiming again reuses it"
    );

    let namespaces: Api<APIServiceNamespace> = Api::namespaced(client.clone(), &ns);
    apply::apply(&client, &json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceNamespace",
        "metadata": {"name": "pre-seeded", "namespace": ns, "labels": {OWNER_LABEL: "provider"}}, "spec": {}})).await?;

    assert!(konnector.release_namespace("wild-west").await?);
    assert!(
        !konnector.release_namespace("pre-seeded").await?,
        "provider-owned ones stay"
    );
    assert!(namespaces.get_opt("pre-seeded").await?.is_some());
    wait_for(
        "APIServiceNamespace wild-west to be gone",
        env.patience(),
        || async {
            match namespaces.get_opt("wild-west").await {
                Ok(None) => Check::Done(()),
                Ok(Some(_)) => Check::Pending("still there".into()),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

/// A write between the simulator's read and its patch makes the patch conflict (409); it reads
/// again and re-applies, so both writes survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_write_is_retried_on_the_new_object() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let client = plain.client().await?;
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), &ns);

    let mut decisions = 0;
    write::write_status(&exports, &ns, EXPORT, |live, now| {
        decisions += 1;
        if decisions == 1 {
            interfere(&client, &ns);
        }
        let current = live.status.clone().unwrap_or_default().conditions;
        let next = kube_bind_e2e::konnector::decide::export_conditions(
            &current,
            EXPORT,
            &ExportReport::in_sync(),
            now,
        );
        Some(json!({"conditions": next}))
    })
    .await?;

    assert_eq!(decisions, 2, "the conflict made it read and decide again");
    let live = exports
        .get(EXPORT)
        .await?
        .status
        .unwrap_or_default()
        .conditions;
    assert!(
        conditions::is_true(&live, "ProviderInSync"),
        "the interfering write survives: {live:?}"
    );
    assert!(conditions::is_true(&live, "Connected"), "{live:?}");
    Ok(())
}

/// The backend writes `ProviderInSync` while the simulator is deciding.
fn interfere(client: &Client, ns: &str) {
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), ns);
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(given_another_writer_set(
            &exports,
            EXPORT,
            "ProviderInSync",
            "True",
        ))
    })
    .expect("the interfering write");
}
