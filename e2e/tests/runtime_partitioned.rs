//! Scaling out on a sharded kcp: one backend per Partition of shards, each serving its own
//! APIExportEndpointSlice of `kube-bind.io` and holding its own Lease. kcp lists a shard's
//! virtual-workspace URL in a slice only while the slice's Partition selects the shard and the
//! shard hosts a binding to the export, so each backend engages only its shard's clusters.

mod runtime_support;

use std::collections::BTreeSet;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube_bind_apis::kcp_config;
use kube_bind_backend::provider::ClusterId;
use kube_bind_e2e::harness::{
    Check, Env, EnvSpec, World, apply,
    topology::{install_kcp_config, setup_kube_bind},
    wait_for,
};
use runtime_support::{Runtime, export, reconciled_message, wait_ready_message};
use serde_json::{Value, json};

static SPEC: EnvSpec = EnvSpec {
    world: World::Kcp { shards: 2 },
    workspaces: &["kube-bind", "provider-a", "provider-b"],
    placement: &[
        ("kube-bind", "root"),
        ("provider-a", "root"),
        ("provider-b", "shard-1"),
    ],
};

/// One partitioned backend: the shard label its Partition selects, and its names.
struct Backend {
    shard: &'static str,
    /// Partition, APIExportEndpointSlice and Lease name alike.
    name: &'static str,
    replica: &'static str,
}

const ROOT: Backend = Backend {
    shard: "root",
    name: "kube-bind-root",
    replica: "backend-root",
};
const SHARD_1: Backend = Backend {
    shard: "shard-1",
    name: "kube-bind-shard-1",
    replica: "backend-shard-1",
};

#[tokio::test]
async fn given_a_backend_per_partition_when_exports_change_on_both_shards_then_each_backend_reconciles_only_its_shard()
-> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let patience = env.patience();
    let (a, b) = (env.workspace("provider-a")?, env.workspace("provider-b")?);

    // Given the export, and a Partition and a slice per shard in the home workspace, made before
    // any workspace binds: kcp v0.31's URL controller takes a slice whose status it has not
    // filled yet as unpartitioned, and a shard outside the partition that listed itself then
    // stays listed while it hosts bindings (see README, "Scaling out on a sharded kcp").
    let home = install_kcp_config(env, "kube-bind", &[kcp_config::SELF_BINDING_FILE]).await?;
    let home_client = home.client().await?;
    for backend in [&ROOT, &SHARD_1] {
        apply::apply(&home_client, &partition(backend)).await?;
        apply::apply(&home_client, &slice(&home.path, backend)).await?;
        wait_partitioned(&home_client, backend, patience).await?;
    }
    // ... then the home and the providers bind, and each slice lists exactly its shard's URL, out
    // of those of kcp's own slice.
    setup_kube_bind(env, "kube-bind", &["provider-a", "provider-b"], None).await?;
    let all = slice_urls(&home_client, kcp_config::EXPORT_NAME, 2, patience).await?;
    let root_urls = slice_urls(&home_client, ROOT.name, 1, patience).await?;
    let shard_1_urls = slice_urls(&home_client, SHARD_1.name, 1, patience).await?;
    assert_eq!(
        root_urls
            .union(&shard_1_urls)
            .cloned()
            .collect::<BTreeSet<_>>(),
        all,
        "the two partitions split kcp's slice between them"
    );

    // ... and a backend per slice, each with its own Lease (`--leader-election-id`).
    let root_backend = start(&home, &ROOT).await?;
    let shard_1_backend = start(&home, &SHARD_1).await?;

    // Then each engages exactly the clusters bound on its shard (the home binds itself).
    wait_engaged_exactly(&root_backend, &[&home.id, &a.id], patience).await?;
    wait_engaged_exactly(&shard_1_backend, &[&b.id], patience).await?;

    // When an export changes in each provider workspace ...
    let name = env.unique("partitioned");
    let (a_client, b_client) = (a.client().await?, b.client().await?);
    apply::apply(&a_client, &export(&name, 1)).await?;
    apply::apply(&b_client, &export(&name, 1)).await?;

    // ... then each is reconciled by its shard's backend ...
    let by = |backend: &Backend| format!("{} by {}", reconciled_message(1), backend.replica);
    wait_ready_message(&a_client, &name, &by(&ROOT), "Reconciled", patience).await?;
    wait_ready_message(&b_client, &name, &by(&SHARD_1), "Reconciled", patience).await?;
    // ... and neither backend ever saw the other's: each cache holds its own export only.
    for (backend, runtime, own, other) in [
        (&ROOT, &root_backend, a, b),
        (&SHARD_1, &shard_1_backend, b, a),
    ] {
        let cache = &runtime.reconciler_cache;
        assert_eq!(
            cache.keys(&ClusterId::new(&own.id)).len(),
            1,
            "{} caches the export of {}",
            backend.replica,
            own.name
        );
        assert!(
            cache.keys(&ClusterId::new(&other.id)).is_empty(),
            "{} caches nothing of {}",
            backend.replica,
            other.name
        );
        assert!(
            runtime.reconciles.load(std::sync::atomic::Ordering::SeqCst) >= 1,
            "{} reconciled",
            backend.replica
        );
    }
    // Had both written one export, its message would now name the other backend.
    wait_ready_message(&a_client, &name, &by(&ROOT), "Reconciled", patience).await?;
    wait_ready_message(&b_client, &name, &by(&SHARD_1), "Reconciled", patience).await?;
    Ok(())
}

async fn start(
    home: &kube_bind_e2e::harness::Workspace,
    backend: &Backend,
) -> anyhow::Result<Runtime> {
    Runtime::kcp_elected(
        &home.kubeconfig,
        backend.name,
        backend.replica,
        backend.name,
    )
    .await
}

/// Partition `<backend.name>` selecting the shards labelled `shard=<backend.shard>`.
fn partition(backend: &Backend) -> Value {
    json!({
        "apiVersion": "topology.kcp.io/v1alpha1", "kind": "Partition",
        "metadata": { "name": backend.name },
        "spec": { "selector": { "matchLabels": { "shard": backend.shard } } },
    })
}

/// APIExportEndpointSlice `<backend.name>` of `kube-bind.io`, filtered by its Partition.
fn slice(home_path: &str, backend: &Backend) -> Value {
    json!({
        "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIExportEndpointSlice",
        "metadata": { "name": backend.name },
        "spec": {
            "export": { "path": home_path, "name": kcp_config::EXPORT_NAME },
            "partition": backend.name,
        },
    })
}

fn slices(home: &kube::Client) -> Api<DynamicObject> {
    Api::all_with(
        home.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIExportEndpointSlice"),
            "apiexportendpointslices",
        ),
    )
}

/// Waits until kcp has resolved the Partition of `backend`'s slice (`status.shardSelector`).
async fn wait_partitioned(
    home: &kube::Client,
    backend: &Backend,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let api = slices(home);
    let want = format!("shard={}", backend.shard);
    wait_for(
        format!("APIExportEndpointSlice {} to select {want}", backend.name),
        timeout,
        || async {
            match api.get_opt(backend.name).await {
                Ok(Some(slice)) if slice.data["status"]["shardSelector"] == want.as_str() => {
                    Check::Done(())
                }
                Ok(Some(slice)) => Check::Pending(format!("status {}", slice.data["status"])),
                Ok(None) => Check::Pending("not found".into()),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

/// Waits until slice `name` lists `count` URLs, and returns them.
async fn slice_urls(
    home: &kube::Client,
    name: &str,
    count: usize,
    timeout: std::time::Duration,
) -> anyhow::Result<BTreeSet<String>> {
    let api = slices(home);
    let urls = wait_for(
        format!("APIExportEndpointSlice {name} to list {count} URLs"),
        timeout,
        || async {
            match api.get_opt(name).await {
                Ok(Some(slice)) => {
                    let urls: BTreeSet<String> = slice.data["status"]["endpoints"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e["url"].as_str().map(str::to_owned))
                        .collect();
                    if urls.len() == count {
                        Check::Done(urls)
                    } else {
                        // Each shard writes its own URL as field manager `<shard>`.
                        let managers: Vec<&str> = slice
                            .metadata
                            .managed_fields
                            .iter()
                            .flatten()
                            .filter_map(|f| f.manager.as_deref())
                            .collect();
                        Check::Pending(format!(
                            "status {}, written by {managers:?}",
                            slice.data["status"]
                        ))
                    }
                }
                Ok(None) => Check::Pending("not found".into()),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    Ok(urls)
}

/// Waits until `runtime` engages exactly the clusters `ids`.
async fn wait_engaged_exactly(
    runtime: &Runtime,
    ids: &[&String],
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let mut want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    want.sort();
    wait_for(
        format!("engaged clusters to be {want:?}"),
        timeout,
        || async {
            let engaged = runtime.engaged_ids();
            if engaged == want {
                Check::Done(())
            } else {
                Check::Pending(format!("engaged {engaged:?}"))
            }
        },
    )
    .await?;
    Ok(())
}
