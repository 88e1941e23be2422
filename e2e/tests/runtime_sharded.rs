//! The backend's runtime on a sharded kcp (two shards behind kcp's front-proxy, with its cache
//! server): provider workspaces on different shards are served through one virtual-workspace
//! URL per shard, and a frozen shard (SIGSTOP) does not stop the clusters of the other shard.

mod runtime_support;

use kube_bind_apis::kcp_config;
use kube_bind_e2e::harness::{Env, EnvSpec, World, topology::setup_kube_bind};
use runtime_support::{Runtime, export, wait_reconciled};

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

    let runtime = Runtime::kcp(&topology.home.kubeconfig, kcp_config::EXPORT_NAME).await?;
    runtime.wait_engaged(&a.id, true, patience).await?;
    runtime.wait_engaged(&b.id, true, patience).await?;
    let name = env.unique("sharded");
    apply(&a_client, &name, 1).await?;
    apply(&b_client, &name, 1).await?;
    wait_reconciled(&a_client, &name, 1, patience).await?;
    wait_reconciled(&b_client, &name, 1, patience).await?;

    // shard-1 hangs: the root shard's cluster keeps reconciling.
    env.shard_command("freeze", "shard-1")?;
    let frozen = async {
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
