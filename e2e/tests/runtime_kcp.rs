//! The backend's multicluster runtime against real kcp (started here, or the one
//! `KCP_KUBECONFIG` names): clusters engage and disengage with their APIBindings, every bound
//! cluster is reconciled through one wildcard watch per resource type, a malformed object stays
//! the problem of that object, HTTP serves exactly the engaged clusters, and a kcp restart loses
//! no work.
//!
//! Tests in this file run one at a time (they count open watches and restart kcp).

mod runtime_support;

use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, DynamicObject};
use kube_bind_apis::kcp_config;
use kube_bind_backend::app;
use kube_bind_backend::options::Options;
use kube_bind_backend::provider::ClusterId;
use kube_bind_backend::runtime::ObjectKey;
use kube_bind_e2e::harness::topology::{
    KubeBindTopology, bind, kube_bind_binding, setup_kube_bind,
};
use kube_bind_e2e::harness::{
    Check, Env, EnvSpec, accounts::service_account_token, apply, wait_for,
};
use runtime_support::{MARK, Runtime, export, v1alpha1_export, wait_reconciled};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

static SPEC: EnvSpec = EnvSpec::kcp(&[
    "kube-bind",
    "provider-a",
    "provider-b",
    "provider-c",
    "provider-stuck",
]);
static SERIAL: Mutex<()> = Mutex::const_new(());

async fn given_two_bound_providers() -> anyhow::Result<(&'static Env, KubeBindTopology)> {
    let env = Env::shared(&SPEC)?;
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a", "provider-b"], None).await?;
    Ok((env, topology))
}

/// Binds or unbinds `workspace` to the `kube-bind.io` export.
async fn set_bound(
    env: &Env,
    topology: &KubeBindTopology,
    workspace: &str,
    bound: bool,
) -> anyhow::Result<()> {
    let client = env.workspace(workspace)?.client().await?;
    if bound {
        let binding = kube_bind_binding(&topology.home)?;
        bind(&client, workspace, &binding, env.patience()).await?;
    } else {
        let bindings: Api<DynamicObject> = Api::all_with(client, &apibinding_resource());
        match bindings
            .delete(kcp_config::EXPORT_NAME, &DeleteParams::default())
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(err.into()),
            Ok(_) => {}
        }
        // kcp finalizes a binding (removing its resources) before it is gone.
        wait_for(
            format!("the APIBinding of {workspace} to be gone"),
            env.patience(),
            || async {
                match bindings.get_opt(kcp_config::EXPORT_NAME).await {
                    Ok(None) => Check::Done(()),
                    Ok(Some(_)) => Check::Pending("still there".into()),
                    Err(err) => Check::Pending(err.to_string()),
                }
            },
        )
        .await?;
    }
    Ok(())
}

fn apibinding_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIBinding"),
        "apibindings",
    )
}

/// Open WATCH requests on `resource` of `group` in kcp, as its apiserver metrics count them
/// (kcp's own informers included, so tests compare against a baseline).
async fn open_watches(env: &Env, group: &str, resource: &str) -> anyhow::Result<u64> {
    let text = env.metrics().await?;
    let (group, resource) = (
        format!("group=\"{group}\""),
        format!("resource=\"{resource}\""),
    );
    Ok(text
        .lines()
        .filter(|line| line.starts_with("apiserver_longrunning_requests{"))
        .filter(|line| {
            line.contains(&group) && line.contains(&resource) && line.contains("verb=\"WATCH\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// The resources whose watches the runtime opens once per endpoint.
const WATCHED: [(&str, &str); 2] = [
    ("kube-bind.io", "apiserviceexports"),
    ("apis.kcp.io", "apibindings"),
];

/// How many open watches kcp counts for one wildcard watch on `resource.group` through the
/// virtual workspace at `endpoint_url`: opens one, measures, closes it and waits until the count
/// is back.
async fn cost_of_one_watch(
    env: &Env,
    endpoint_url: &str,
    group: &str,
    resource: &str,
) -> anyhow::Result<u64> {
    use futures::StreamExt;
    let before = open_watches(env, group, resource).await?;
    let version = if group == "apis.kcp.io" {
        "v1alpha1"
    } else {
        "v1alpha2"
    };
    let client = env
        .client_for(&format!("{endpoint_url}/clusters/*"), &env.admin_token)
        .await?;
    let api: Api<DynamicObject> = Api::all_with(
        client,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(group, version, ""),
            resource,
        ),
    );
    let watch = tokio::spawn(async move {
        let mut events = std::pin::pin!(kube::runtime::watcher(api, Default::default()));
        while events.next().await.is_some() {}
    });
    let open = wait_for(
        format!("a test watch on {resource}.{group} to be counted"),
        env.patience(),
        || async {
            match open_watches(env, group, resource).await {
                Ok(open) if open > before => Check::Done(open),
                Ok(open) => Check::Pending(format!("{open} open")),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    // Counted once all of its parts are open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = open.max(open_watches(env, group, resource).await?);
    watch.abort();
    wait_for(
        format!("the test watch on {resource}.{group} to close"),
        env.patience(),
        || async {
            match open_watches(env, group, resource).await {
                Ok(now) if now <= before => Check::Done(()),
                Ok(now) => Check::Pending(format!("{now} open")),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    Ok(open - before)
}

/// The open watches on each of `resources` once they have not changed for two seconds.
async fn settled_watches(env: &Env, resources: &[(&str, &str)]) -> anyhow::Result<Vec<u64>> {
    let mut last = Vec::new();
    loop {
        let mut now = Vec::new();
        for (group, resource) in resources {
            now.push(open_watches(env, group, resource).await?);
        }
        if now == last {
            return Ok(now);
        }
        last = now;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn clusters_engage_and_disengage_with_their_apibindings() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    let (a, b, c) = (
        env.workspace("provider-a")?,
        env.workspace("provider-b")?,
        env.workspace("provider-c")?,
    );
    set_bound(env, &topology, "provider-c", false).await?;

    let runtime = Runtime::kcp(&topology.home.kubeconfig, kcp_config::EXPORT_NAME).await?;
    runtime.wait_engaged(&a.id, true, patience).await?;
    runtime.wait_engaged(&b.id, true, patience).await?;
    assert!(
        !runtime.engaged_ids().contains(&c.id),
        "an unbound workspace is not engaged"
    );

    // A late binder joins, an unbinding one leaves, a rebinding one comes back.
    set_bound(env, &topology, "provider-c", true).await?;
    runtime.wait_engaged(&c.id, true, patience).await?;
    set_bound(env, &topology, "provider-c", false).await?;
    runtime.wait_engaged(&c.id, false, patience).await?;
    set_bound(env, &topology, "provider-c", true).await?;
    runtime.wait_engaged(&c.id, true, patience).await?;
    runtime.wait_engaged(&a.id, true, Duration::ZERO).await?;
    set_bound(env, &topology, "provider-c", false).await?;
    runtime.wait_engaged(&c.id, false, patience).await?;
    Ok(())
}

#[tokio::test]
async fn every_bound_cluster_is_reconciled_through_one_watch_per_resource() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    let (a, b) = (env.workspace("provider-a")?, env.workspace("provider-b")?);
    let (a_client, b_client) = (a.client().await?, b.client().await?);
    let name = env.unique("reconciled");
    apply::apply(&a_client, &export(&name, 1)).await?;
    apply::apply(&b_client, &export(&name, 3)).await?;
    // Before this test's runtime: what kcp's own informers (and nothing of ours) keep open, and
    // what one wildcard watch through the virtual workspace adds to that (kcp counts the
    // virtual workspace's request and what it opens behind it).
    let baseline = settled_watches(env, &WATCHED).await?;
    let mut one_watch = Vec::new();
    for (group, resource) in WATCHED {
        one_watch.push(cost_of_one_watch(env, &topology.endpoint_url, group, resource).await?);
    }
    let runtime = Runtime::kcp(&topology.home.kubeconfig, kcp_config::EXPORT_NAME).await?;
    wait_reconciled(&a_client, &name, 1, patience).await?;
    wait_reconciled(&b_client, &name, 3, patience).await?;

    // A change made while running is picked up too.
    apply::apply(&a_client, &export(&name, 2)).await?;
    wait_reconciled(&a_client, &name, 2, patience).await?;

    // One wildcard watch per resource type in the virtual workspace, however many clusters are
    // engaged.
    for (((group, resource), before), cost) in WATCHED.iter().zip(baseline).zip(one_watch) {
        let clusters = runtime.clusters.len();
        wait_for(
            format!("the open watches on {resource}.{group} for {clusters} clusters to be those of one watch"),
            patience,
            || async {
                match open_watches(env, group, resource).await {
                    Ok(open) if open == before + cost => Check::Done(()),
                    Ok(open) => Check::Pending(format!(
                        "{open} open, {before} before the runtime, one watch counts {cost}"
                    )),
                    Err(err) => Check::Pending(err.to_string()),
                }
            },
        )
        .await?;
    }
    drop(runtime);
    Ok(())
}

#[tokio::test]
async fn a_malformed_object_stays_its_own_problem_while_the_others_reconcile() -> anyhow::Result<()>
{
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    let (a, b) = (env.workspace("provider-a")?, env.workspace("provider-b")?);
    let (a_client, b_client) = (a.client().await?, b.client().await?);

    // An older consumer in provider-b wrote an export through the served v1alpha1 version.
    // Stored as v1alpha2 (conversion None) its v1alpha1 fields are pruned: it fits neither
    // version any more, so it does not decode and not even its status can be written.
    let bad = format!("{}.wildwest.dev", env.unique("old-shape"));
    apply::apply(&b_client, &v1alpha1_export(&bad)).await?;
    let good = env.unique("new-shape");
    apply::apply(&a_client, &export(&good, 1)).await?;
    apply::apply(&b_client, &export(&good, 2)).await?;

    let runtime = Runtime::kcp(&topology.home.kubeconfig, kcp_config::EXPORT_NAME).await?;
    // The shared watch keeps flowing: both clusters, the bad object's own included, reconcile.
    wait_reconciled(&a_client, &good, 1, patience).await?;
    wait_reconciled(&b_client, &good, 2, patience).await?;
    // The bad object went to the reporting hook, not to reconcile, and is counted.
    let malformed =
        "kube_bind_cache_malformed_objects{resource=\"apiserviceexports.kube-bind.io\"} ";
    wait_for(
        format!("{bad} to be reported as malformed"),
        patience,
        || async {
            let reported = runtime
                .malformed_reports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&bad);
            if reported && runtime.metric(malformed) >= 1.0 {
                Check::Done(())
            } else {
                Check::Pending(format!(
                    "reported: {reported}, metric: {}",
                    runtime.metric(malformed)
                ))
            }
        },
    )
    .await?;

    // Made again in the current shape, it is an ordinary object. (Replacing it in place is
    // refused: its CEL rules compare against the pruned old object.)
    let exports: Api<DynamicObject> = Api::namespaced_with(
        b_client.clone(),
        "default",
        &kube::api::ApiResource::erase::<kube_bind_apis::APIServiceExport>(&()),
    );
    exports.delete(&bad, &DeleteParams::default()).await?;
    wait_for(format!("{bad} to be gone"), patience, || async {
        match exports.get_opt(&bad).await {
            Ok(None) => Check::Done(()),
            Ok(Some(_)) => Check::Pending("still there".into()),
            Err(err) => Check::Pending(err.to_string()),
        }
    })
    .await?;
    apply::apply(&b_client, &export(&bad, 4)).await?;
    wait_reconciled(&b_client, &bad, 4, patience).await?;
    assert_eq!(
        runtime.metric(malformed),
        0.0,
        "nothing malformed is cached any more"
    );
    Ok(())
}

#[tokio::test]
async fn http_serves_exactly_the_engaged_clusters() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    let (a, c) = (env.workspace("provider-a")?, env.workspace("provider-c")?);
    set_bound(env, &topology, "provider-c", false).await?;

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
    let base = format!("http://{}", backend.local_addr());
    let exports = |cluster: &str| format!("{base}/api/exports?cluster_id={cluster}");

    expect_status(&exports(&a.id), 200, patience).await?;
    expect_status(&exports(&c.id), 404, patience).await?;
    expect_status(&exports("default"), 404, patience).await?;
    set_bound(env, &topology, "provider-c", true).await?;
    expect_status(&exports(&c.id), 200, patience).await?;
    set_bound(env, &topology, "provider-c", false).await?;
    expect_status(&exports(&c.id), 404, patience).await?;
    set_bound(env, &topology, "provider-c", true).await?;
    expect_status(&exports(&c.id), 200, patience).await?;
    set_bound(env, &topology, "provider-c", false).await?;
    expect_status(&format!("{base}/readyz"), 200, patience).await?;

    shutdown.cancel();
    backend.wait().await?;
    Ok(())
}

async fn expect_status(url: &str, want: u16, timeout: Duration) -> anyhow::Result<()> {
    wait_for(format!("GET {url} to answer {want}"), timeout, || async {
        match http_status(url).await {
            Ok(code) if code == want => Check::Done(()),
            Ok(code) => Check::Pending(format!("answered {code}")),
            Err(err) => Check::Pending(err.to_string()),
        }
    })
    .await?;
    Ok(())
}

/// A minimal HTTP/1.1 GET over loopback (no client library needed for a status code).
async fn http_status(url: &str) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not http: {url}"))?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    code.ok_or_else(|| anyhow::anyhow!("no status line from {url}"))
}

/// A second export in the home workspace serving the same schemas: kcp lists a slice endpoint
/// only while the export has a binding, so binding and unbinding it adds and removes the URL.
#[tokio::test]
async fn slice_urls_added_and_removed_at_runtime_open_and_close_endpoints() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    let c = env.workspace("provider-c")?;
    let c_client = c.client().await?;
    set_bound(env, &topology, "provider-c", false).await?;
    let home_client = topology.home.client().await?;
    let late = "late.kube-bind.io";
    let mut export = kcp_config::committed()?
        .into_iter()
        .find(|o| o["kind"] == "APIExport")
        .ok_or_else(|| anyhow::anyhow!("kcp-config has no APIExport"))?;
    export["metadata"]["name"] = serde_json::json!(late);
    apply::apply(&home_client, &export).await?;

    // A slice without endpoints is normal (nothing bound yet): ready, with no cluster.
    let runtime = Runtime::kcp(&topology.home.kubeconfig, late).await?;
    wait_for(
        "the runtime to be ready on an empty slice",
        patience,
        || async {
            match provider_failure(&runtime) {
                None => Check::Done(()),
                Some(reason) => Check::Pending(reason),
            }
        },
    )
    .await?;
    assert!(runtime.clusters.is_empty());

    // Binding provider-c makes kcp list the export's URL: the runtime opens it.
    let mut binding = kube_bind_binding(&topology.home)?;
    binding["metadata"]["name"] = serde_json::json!(late);
    binding["spec"]["reference"]["export"]["name"] = serde_json::json!(late);
    bind(&c_client, &c.path, &binding, patience).await?;
    runtime.wait_engaged(&c.id, true, patience).await?;
    wait_for(
        "the runtime to be ready with an endpoint",
        patience,
        || async {
            match provider_failure(&runtime) {
                None => Check::Done(()),
                Some(reason) => Check::Pending(reason),
            }
        },
    )
    .await?;

    // Unbinding the last workspace removes the URL: the endpoint closes, its cluster goes.
    let bindings: Api<DynamicObject> = Api::all_with(c_client.clone(), &apibinding_resource());
    bindings.delete(late, &DeleteParams::default()).await?;
    runtime.wait_engaged(&c.id, false, patience).await?;
    assert_eq!(
        provider_failure(&runtime),
        None,
        "a slice that empties again is still normal"
    );
    let exports: Api<DynamicObject> = Api::all_with(home_client, &apiexport_resource());
    exports.delete(late, &DeleteParams::default()).await?;
    Ok(())
}

/// Why the runtime's provider is not ready, if it is not.
fn provider_failure(runtime: &Runtime) -> Option<String> {
    runtime
        .readiness
        .report()
        .into_iter()
        .find(|c| c.name == "provider")
        .and_then(|c| c.failure)
}

fn apiexport_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("apis.kcp.io", "v1alpha2", "APIExport"),
        "apiexports",
    )
}

/// kcp stopped and started again under a running backend: the virtual workspace's watches
/// break and resume, and what was written before and after is reconciled in both clusters.
#[tokio::test]
async fn a_kcp_restart_loses_no_work() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let Ok(shard) = env.shard_of("provider-b") else {
        return Ok(()); // a kcp someone else runs is not ours to restart
    };
    let patience = env.patience();
    let (a, b) = (env.workspace("provider-a")?, env.workspace("provider-b")?);
    let (a_client, b_client) = (a.client().await?, b.client().await?);
    let runtime = Runtime::kcp(&topology.home.kubeconfig, kcp_config::EXPORT_NAME).await?;
    runtime.wait_engaged(&b.id, true, patience).await?;

    let name = env.unique("restart");
    apply::apply(&b_client, &export(&name, 1)).await?;
    if env.shard_command("stop-shard", &shard).is_err() {
        return Ok(()); // not the kcp this harness started
    }
    env.shard_command("start-shard", &shard)?;
    wait_reconciled(&b_client, &name, 1, patience).await?;
    apply::apply(&a_client, &export(&name, 2)).await?;
    apply::apply(&b_client, &export(&name, 3)).await?;
    wait_reconciled(&a_client, &name, 2, patience).await?;
    wait_reconciled(&b_client, &name, 3, patience).await?;
    runtime.wait_engaged(&b.id, true, Duration::ZERO).await?;
    Ok(())
}

/// A ServiceAccount `name` in the home workspace's `default` namespace, allowed to read endpoint
/// slices (and, with `content`, to use the `kube-bind.io` virtual workspace), and a kubeconfig
/// for the home workspace with its token.
async fn home_identity(
    env: &Env,
    topology: &KubeBindTopology,
    name: &str,
    content: bool,
) -> anyhow::Result<std::path::PathBuf> {
    let home = topology.home.client().await?;
    let mut rules = vec![serde_json::json!({
        "apiGroups": ["apis.kcp.io"], "resources": ["apiexportendpointslices"], "verbs": ["get", "list", "watch"],
    })];
    if content {
        rules.push(serde_json::json!({
            "apiGroups": ["apis.kcp.io"], "resources": ["apiexports/content"],
            "resourceNames": [kcp_config::EXPORT_NAME], "verbs": ["*"],
        }));
    }
    for object in [
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "default"}}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "namespace": "default", "name": name}],
        }),
    ] {
        apply::apply(&home, &object).await?;
    }
    let token = service_account_token(&home, "default", name, env.patience()).await?;
    let home_url = format!("{}/clusters/{}", env.base_url, topology.home.path);
    Ok(env.write_kubeconfig(&home_url, &token)?)
}

#[tokio::test]
async fn an_identity_the_virtual_workspace_refuses_is_reported_not_ready() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    let name = env.unique("backend-without-content");
    let kubeconfig = home_identity(env, &topology, &name, false).await?;

    let runtime = Runtime::kcp(&kubeconfig, kcp_config::EXPORT_NAME).await?;
    wait_for(
        "the runtime to report the refused virtual workspace",
        patience,
        || async {
            match provider_failure(&runtime) {
                Some(reason) if reason.contains("cannot watch APIBindings") => Check::Done(()),
                other => Check::Pending(format!("provider check: {other:?}")),
            }
        },
    )
    .await?;
    assert!(
        runtime.clusters.is_empty(),
        "nothing engaged without access"
    );

    // Once the identity may use the export, the runtime recovers on its own.
    home_identity(env, &topology, &name, true).await?;
    runtime
        .wait_engaged(&env.workspace("provider-a")?.id, true, patience)
        .await?;
    wait_for("the runtime to be ready", patience, || async {
        match provider_failure(&runtime) {
            None => Check::Done(()),
            Some(reason) => Check::Pending(reason),
        }
    })
    .await?;
    Ok(())
}

/// kcp shows a binding in the virtual workspace from its creation, but serves the export's
/// resources in its cluster only once it is `Bound`. A workspace that already has a CRD named
/// like one of the export's resources gets a binding stuck in `Binding` (a naming conflict): its
/// cluster is never engaged. A later change of an engaged cluster's binding re-runs its work.
#[tokio::test]
async fn a_binding_stuck_in_binding_engages_nothing() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    let (a, stuck) = (
        env.workspace("provider-a")?,
        env.workspace("provider-stuck")?,
    );
    let (a_client, stuck_client) = (a.client().await?, stuck.client().await?);
    let name = env.unique("stuck");
    apply::apply(&a_client, &export(&name, 1)).await?;
    let runtime = Runtime::kcp(&topology.home.kubeconfig, kcp_config::EXPORT_NAME).await?;
    wait_reconciled(&a_client, &name, 1, patience).await?;

    // Given a CRD of the export's group and resource in the workspace, its binding stays
    // `Binding`.
    let crd = kube_bind_apis::crds::all()?
        .into_iter()
        .find(|crd| crd.metadata.name.as_deref() == Some("clusterbindings.kube-bind.io"))
        .ok_or_else(|| anyhow::anyhow!("no ClusterBinding CRD among the generated ones"))?;
    apply::apply(&stuck_client, &serde_json::to_value(crd)?).await?;
    let binding = kube_bind_binding(&topology.home)?;
    bind(&stuck_client, &stuck.path, &binding, patience).await?;
    let bindings: Api<DynamicObject> = Api::all_with(stuck_client.clone(), &apibinding_resource());
    let stuck_status = wait_for(
        "kcp to report the conflicting binding as not bound",
        patience,
        || async {
            match bindings.get_opt(kcp_config::EXPORT_NAME).await {
                Ok(Some(b)) if b.data.pointer("/status/conditions").is_some() => {
                    Check::Done(b.data["status"].clone())
                }
                other => Check::Pending(format!("{other:?}")),
            }
        },
    )
    .await?;
    println!("binding with a conflicting CRD: {stuck_status}");
    assert_ne!(stuck_status["phase"], "Bound", "{stuck_status}");

    // When the runtime has seen a later change on the same binding watch (provider-a's binding
    // annotated: its cluster's work re-runs), the stuck workspace is still not engaged.
    let before = runtime.reconciles.load(std::sync::atomic::Ordering::SeqCst);
    let a_bindings: Api<DynamicObject> = Api::all_with(a_client.clone(), &apibinding_resource());
    let marker = serde_json::json!({"metadata": {"annotations": {MARK: env.unique("touch")}}});
    a_bindings
        .patch(
            kcp_config::EXPORT_NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&marker),
        )
        .await?;
    wait_for(
        "a change of provider-a's binding to re-run its work",
        patience,
        || async {
            let now = runtime.reconciles.load(std::sync::atomic::Ordering::SeqCst);
            if now > before {
                Check::Done(())
            } else {
                Check::Pending(format!("{now} reconciles"))
            }
        },
    )
    .await?;
    assert!(
        !runtime.engaged_ids().contains(&stuck.id),
        "a binding stuck in Binding engages nothing; engaged: {:?}",
        runtime.engaged_ids()
    );
    // Cleaned up so the workspace does not stay half-bound for the other tests.
    bindings
        .delete(kcp_config::EXPORT_NAME, &DeleteParams::default())
        .await?;
    Ok(())
}

/// What the virtual workspace shows of a claimed object (a Namespace) after its workspace
/// unbinds and rebinds, and that the runtime keeps it: the shared watch does not send it again
/// when the cluster comes back, so a cache that dropped it on disengagement would miss it.
#[tokio::test]
async fn a_claimed_object_survives_an_unbind_and_rebind() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, topology) = given_two_bound_providers().await?;
    let patience = env.patience();
    set_bound(env, &topology, "provider-c", true).await?;
    let c = env.workspace("provider-c")?;
    let c_client = c.client().await?;
    let runtime = Runtime::kcp(&topology.home.kubeconfig, kcp_config::EXPORT_NAME).await?;
    runtime.wait_engaged(&c.id, true, patience).await?;
    let namespace = env.unique("claimed");
    apply::apply(
        &c_client,
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )
    .await?;
    let key = ObjectKey::new(ClusterId::new(&c.id), None, &namespace);
    let cached = || runtime.namespaces.get(&key).is_some();
    wait_for("the claimed namespace to be cached", patience, || async {
        if cached() {
            Check::Done(())
        } else {
            Check::Pending("not cached".into())
        }
    })
    .await?;

    set_bound(env, &topology, "provider-c", false).await?;
    runtime.wait_engaged(&c.id, false, patience).await?;
    let listed = namespace_listed(env, &topology, &c.id, &namespace).await?;
    println!("kcp {namespace} while unbound: listed through the virtual workspace: {listed}");
    set_bound(env, &topology, "provider-c", true).await?;
    runtime.wait_engaged(&c.id, true, patience).await?;
    let listed = namespace_listed(env, &topology, &c.id, &namespace).await?;
    println!("kcp {namespace} after rebinding: listed through the virtual workspace: {listed}");
    assert!(
        cached(),
        "the claimed namespace is still known after the rebind (the watch does not send it again)"
    );
    Ok(())
}

/// Whether a fresh wildcard LIST of namespaces through the virtual workspace returns `name` of
/// cluster `cluster`.
async fn namespace_listed(
    env: &Env,
    topology: &KubeBindTopology,
    cluster: &str,
    name: &str,
) -> anyhow::Result<bool> {
    let client = env
        .client_for(
            &format!("{}/clusters/*", topology.endpoint_url),
            &env.admin_token,
        )
        .await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    Ok(namespaces
        .list(&Default::default())
        .await?
        .items
        .iter()
        .any(|ns| {
            ns.metadata.name.as_deref() == Some(name)
                && ns
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kcp.io/cluster"))
                    .is_some_and(|c| c == cluster)
        }))
}
