//! The backend's runtime on a sharded kcp (two shards behind kcp's front-proxy, with its cache
//! server): provider workspaces on different shards are served through one virtual-workspace
//! URL per shard, and a frozen shard (SIGSTOP) does not stop the clusters of the other shard,
//! even while reconciles of its own clusters hang on it.

mod runtime_support;

use kube_bind_apis::kcp_config;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, World, topology::setup_kube_bind, wait_for};
use std::time::Duration;

use runtime_support::{Runtime, Tuning, export, wait_reconciled};

static SPEC: EnvSpec = EnvSpec {
    world: World::Kcp { shards: 2 },
    workspaces: &["kube-bind", "provider-a", "provider-b"],
    placement: &[
        ("kube-bind", "root"),
        ("provider-a", "root"),
        ("provider-b", "shard-1"),
    ],
};

#[tokio::test]
async fn clusters_on_two_shards_are_served_and_a_frozen_shard_stops_only_its_own()
-> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let patience = env.patience();
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a", "provider-b"], None).await?;
    let (a, b) = (env.workspace("provider-a")?, env.workspace("provider-b")?);
    assert_eq!(
        a.shard.as_deref(),
        Some("root"),
        "provider-a is placed on the root shard"
    );
    assert_eq!(
        b.shard.as_deref(),
        Some("shard-1"),
        "provider-b is placed on shard-1"
    );
    let (a_client, b_client) = (a.client().await?, b.client().await?);

    // Every reconcile reads its object from the cluster, and every object is resynced each
    // second: while shard-1 hangs, its cluster's reconciles keep getting stuck on it.
    let tuning = Tuning {
        live_read: true,
        resync: Some(Duration::from_secs(1)),
        reconcile_deadline: Some(Duration::from_secs(10)),
    };
    let runtime =
        Runtime::kcp_tuned(&topology.home.kubeconfig, kcp_config::EXPORT_NAME, tuning).await?;
    runtime.wait_engaged(&a.id, true, patience).await?;
    runtime.wait_engaged(&b.id, true, patience).await?;
    let name = env.unique("sharded");
    apply(&a_client, &name, 1).await?;
    for i in 0..4 {
        apply(&b_client, &format!("{name}-{i}"), 1).await?;
    }
    apply(&b_client, &name, 1).await?;
    wait_reconciled(&a_client, &name, 1, patience).await?;
    wait_reconciled(&b_client, &name, 1, patience).await?;

    // shard-1 hangs, with provider-b's keys stuck on it: the root shard's cluster keeps
    // reconciling (a cluster holds at most its share of the workers, and a request or
    // reconcile that gets no answer gives its worker back).
    env.shard_command("freeze", "shard-1")?;
    let frozen = async {
        // Reconciles of provider-b hang on the frozen shard first.
        let stuck = "kube_bind_workqueue_unfinished_work_seconds{name=\"controllers\"} ";
        wait_for(
            "reconciles to hang on the frozen shard",
            patience,
            || async {
                match runtime.metric(stuck) {
                    seconds if seconds >= 4.0 => Check::Done(()),
                    seconds => Check::Pending(format!("{seconds} s of unfinished work")),
                }
            },
        )
        .await?;
        apply(&a_client, &name, 2).await?;
        wait_reconciled(&a_client, &name, 2, patience).await
    }
    .await;
    env.shard_command("thaw", "shard-1")?;
    frozen?;

    // Thawed, shard-1's cluster catches up.
    apply(&b_client, &name, 3).await?;
    wait_reconciled(&b_client, &name, 3, patience).await?;
    Ok(())
}

async fn apply(client: &kube::Client, name: &str, mark: usize) -> anyhow::Result<()> {
    kube_bind_e2e::harness::apply::apply(client, &export(name, mark)).await?;
    Ok(())
}
