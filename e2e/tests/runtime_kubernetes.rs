//! The backend's runtime with the `kubernetes` provider on a plain cluster (a real 1.20
//! apiserver, reached through the stand-in's pass-through `/clusters/<path>` URL as upstream's
//! e2e uses kcp workspaces as plain clusters): the one cluster is engaged and reconciled, only the
//! lease holder reconciles and hands over, and an apiserver restart loses no work.

mod runtime_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_bind_apis::crds;
use kube_bind_backend::runtime::leader::LEASE_DURATION_SECONDS;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, Workspace, apply, wait_for};
use runtime_support::{Runtime, export, reconciled_message, wait_ready_message, wait_reconciled};
use tokio::sync::{Mutex, OnceCell};

static SPEC: EnvSpec = EnvSpec {
    workspaces: &["plain"],
};
static CRDS: OnceCell<()> = OnceCell::const_new();
/// Tests here restart the apiserver; they must not overlap.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The plain cluster, with the kube-bind CRDs installed as a service provider would.
async fn given_a_plain_provider_cluster() -> anyhow::Result<(&'static Env, &'static Workspace)> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    CRDS.get_or_try_init(|| async {
        let client = plain.client().await?;
        for crd in crds::all()? {
            apply::apply(&client, &serde_json::to_value(crd)?).await?;
        }
        anyhow::Ok(())
    })
    .await?;
    Ok((env, plain))
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
    if !env.is_sim() {
        return Ok(()); // restarting the apiserver needs the local control plane
    }
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
