//! The backend's runtime with the `kubernetes` provider on a plain cluster (a current
//! kube-apiserver of the local control plane): upstream's CRDs install as they are and their CEL
//! rules are enforced, the one cluster is engaged and reconciled, only the lease holder reconciles
//! and hands over, and an apiserver restart loses no work.

mod runtime_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube_bind_apis::crds;
use kube_bind_backend::runtime::leader::LEASE_DURATION_SECONDS;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, HarnessError, Workspace, apply, wait_for};
use runtime_support::{Runtime, export, reconciled_message, wait_ready_message, wait_reconciled};
use tokio::sync::{Mutex, OnceCell};

static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);
static CRDS: OnceCell<()> = OnceCell::const_new();
/// Tests here restart the apiserver; they must not overlap.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The plain cluster, with the kube-bind CRDs installed as a service provider would: exactly as
/// generated (and as upstream ships them), empty-string defaults and CEL rules included.
async fn given_a_plain_provider_cluster() -> anyhow::Result<(&'static Env, &'static Workspace)> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    CRDS.get_or_try_init(|| async {
        let client = plain.client().await?;
        apply::install_kube_bind_crds(&client, env.patience()).await?;
        anyhow::Ok(())
    })
    .await?;
    Ok((env, plain))
}

/// The installed CRD schemas are the generated ones, and the apiserver enforces upstream's CEL rule
/// `resources are immutable` on APIServiceExportRequest (`self == oldSelf`).
#[tokio::test]
async fn upstream_crds_install_as_they_are_and_their_cel_rules_are_enforced() -> anyhow::Result<()>
{
    let (env, plain) = given_a_plain_provider_cluster().await?;
    let client = plain.client().await?;
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds::all()? {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let live = crd_api.get(&name).await?;
        // The apiserver fills in defaults around them; the schemas themselves (CEL rules and
        // `default: ""` included) are stored exactly as generated.
        for (live, generated) in live.spec.versions.iter().zip(&crd.spec.versions) {
            assert_eq!(
                serde_json::to_value(&live.schema)?,
                serde_json::to_value(&generated.schema)?,
                "{name} {} is stored exactly as generated",
                generated.name
            );
        }
    }

    let name = env.unique("request");
    let request = |resource: &str| {
        serde_json::json!({
            "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"resources": [{"group": "wildwest.dev", "resource": resource, "versions": ["v1alpha1"]}]},
        })
    };
    apply::apply(&client, &request("cowboys")).await?;
    let refused = apply::apply(&client, &request("sheriffs")).await;
    match refused {
        Err(HarnessError::Kube(kube::Error::Api(status))) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("resources are immutable"),
                "the CEL rule's message reaches the client: {}",
                status.message
            );
        }
        other => panic!("changing spec.resources must be refused by the CEL rule, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn the_one_cluster_is_engaged_and_reconciled() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_plain_provider_cluster().await?;
    let client = plain.client().await?;
    let runtime = Runtime::kubernetes(&plain.kubeconfig).await?;
    runtime.wait_engaged("", true, env.patience()).await?;

    let name = env.unique("plain");
    apply::apply(&client, &export(&name, 2)).await?;
    wait_reconciled(&client, &name, 2, env.patience()).await?;
    Ok(())
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_it_hands_over_on_shutdown() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_plain_provider_cluster().await?;
    let client = plain.client().await?;
    let lease = env.unique("lease");
    let first = Runtime::kubernetes_elected(&plain.kubeconfig, "replica-1", &lease).await?;
    // The first replica takes the lease before the second competes.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    wait_for(
        format!("replica-1 to hold Lease default/{lease}"),
        env.patience(),
        || async {
            match leases.get_opt(&lease).await {
                Ok(Some(found)) => match found.spec.and_then(|s| s.holder_identity) {
                    Some(holder) if holder == "replica-1" => Check::Done(()),
                    holder => Check::Pending(format!("holder {holder:?}")),
                },
                Ok(None) => Check::Pending("no Lease yet".into()),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    let second = Runtime::kubernetes_elected(&plain.kubeconfig, "replica-2", &lease).await?;

    let name = env.unique("elected");
    apply::apply(&client, &export(&name, 1)).await?;
    wait_ready_message(&client, &name, "by replica-1", "Reconciled", env.patience()).await?;
    assert_eq!(
        second.reconciles.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the follower never reconciles"
    );

    // The leader stops (and releases the lease); the follower takes over.
    let stopped = Instant::now();
    drop(first);
    apply::apply(&client, &export(&name, 3)).await?;
    let handover = Duration::from_secs(2 * LEASE_DURATION_SECONDS);
    wait_ready_message(
        &client,
        &name,
        &format!("{} by replica-2", reconciled_message(3)),
        "Reconciled",
        handover,
    )
    .await?;
    eprintln!(
        "leadership handed over and the change reconciled {:?} after the leader stopped",
        stopped.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn an_apiserver_restart_loses_no_work() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_plain_provider_cluster().await?;
    let client = plain.client().await?;
    let runtime = Runtime::kubernetes(&plain.kubeconfig).await?;
    runtime.wait_engaged("", true, env.patience()).await?;
    let before = env.unique("before-restart");
    apply::apply(&client, &export(&before, 1)).await?;
    wait_reconciled(&client, &before, 1, env.patience()).await?;

    env.stop_member("plain")?;
    env.start_member("plain")?;
    let client = plain.client().await?;
    let after = env.unique("after-restart");
    apply::apply(&client, &export(&after, 2)).await?;
    apply::apply(&client, &export(&before, 5)).await?;
    wait_reconciled(&client, &after, 2, env.patience()).await?;
    wait_reconciled(&client, &before, 5, env.patience()).await?;
    Ok(())
}

/// The kcp provider pointed at something that is not kcp 0.28 or newer (here a plain
/// Kubernetes apiserver, which serves no `apis.kcp.io` at all) says so in `/readyz`, in one
/// sentence naming the floor, and engages nothing.
#[tokio::test]
async fn a_kcp_provider_on_a_server_without_kcp_apis_names_the_version_floor() -> anyhow::Result<()>
{
    let (env, plain) = given_a_plain_provider_cluster().await?;
    let runtime = Runtime::kcp(&plain.kubeconfig, "kube-bind.io").await?;
    let reason = wait_for(
        "the kcp provider to report the missing kcp APIs",
        env.patience(),
        || async {
            let failure = runtime
                .readiness
                .report()
                .into_iter()
                .find(|c| c.name == "provider")
                .and_then(|c| c.failure);
            match failure {
                Some(reason) if reason.contains("kcp 0.28 or newer") => Check::Done(reason),
                other => Check::Pending(format!("provider check: {other:?}")),
            }
        },
    )
    .await?;
    println!("readiness: {reason}");
    assert!(reason.contains("apis.kcp.io/v1alpha2"), "{reason}");
    assert!(runtime.clusters.is_empty());
    Ok(())
}
