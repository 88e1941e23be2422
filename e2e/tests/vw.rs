//! What the backend relies on in real kcp's APIExport virtual workspace: merged watches over bound
//! workspaces, joins and leaves, what is refused, kubectl, endpoint slices.

mod common;

use std::collections::BTreeMap;

use common::{Recorder, record_labelled_configmaps};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Pod, ServiceAccount},
};
use kube::{
    Api, Client,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta,
        PostParams,
    },
    runtime::watcher,
};
use kube_bind_e2e::harness::{
    Check, Env, EnvSpec,
    accounts::service_account_token,
    apply,
    kubectl::kubectl,
    topology::{KubeBindTopology, bind, endpoint_url, kube_bind_binding, setup_kube_bind},
    wait::binding_bound,
    wait_for,
};
use serde_json::json;
use tokio::sync::OnceCell;

static SPEC: EnvSpec = EnvSpec::kcp(&[
    "kube-bind",
    "provider-a",
    "provider-b",
    "provider-c",
    "consumer",
]);
static TOPOLOGY: OnceCell<KubeBindTopology> = OnceCell::const_new();

async fn given_kube_bind() -> anyhow::Result<(&'static Env, &'static KubeBindTopology)> {
    let env = Env::shared(&SPEC)?;
    let topology = TOPOLOGY
        .get_or_try_init(|| {
            setup_kube_bind(
                env,
                "kube-bind",
                &["provider-a", "provider-b"],
                Some("consumer"),
            )
        })
        .await?;
    Ok((env, topology))
}

async fn create_labelled_configmap(client: &Client, name: &str, label: &str) -> anyhow::Result<()> {
    create_labelled_configmap_in(client, "default", name, label).await
}

async fn create_labelled_configmap_in(
    client: &Client,
    namespace: &str,
    name: &str,
    label: &str,
) -> anyhow::Result<()> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([("e2e".to_string(), label.to_string())])),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &cm)
        .await?;
    Ok(())
}

/// An admin client of the `kube-bind.io` virtual workspace for `cluster` (an id, or `*` for all).
async fn vw_as_admin(
    env: &Env,
    topology: &KubeBindTopology,
    cluster: &str,
) -> anyhow::Result<Client> {
    Ok(env
        .client_for(
            &format!("{}/clusters/{cluster}", topology.endpoint_url),
            &env.admin_token,
        )
        .await?)
}

fn status_code(result: Result<impl std::fmt::Debug, kube::Error>) -> u16 {
    match result {
        Err(kube::Error::Api(e)) => e.code,
        Ok(_) => 200,
        Err(other) => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn wildcard_watch_sees_bound_workspaces_and_follows_binds_and_unbinds() -> anyhow::Result<()>
{
    let (env, topology) = given_kube_bind().await?;
    let (a, b, c, consumer) = (
        env.workspace("provider-a")?,
        env.workspace("provider-b")?,
        env.workspace("provider-c")?,
        env.workspace("consumer")?,
    );
    let label = env.unique("follow");
    let recorder = record_labelled_configmaps(env, &topology.endpoint_url, &label).await?;

    // Given objects in two bound workspaces, one not yet bound, and a consumer that never binds.
    create_labelled_configmap(&a.client().await?, "in-a", &label).await?;
    create_labelled_configmap(&b.client().await?, "in-b", &label).await?;
    create_labelled_configmap(&c.client().await?, "in-c", &label).await?;
    create_labelled_configmap(&consumer.client().await?, "in-consumer", &label).await?;
    let patience = env.patience();
    recorder
        .wait("both bound providers' configmaps", patience, |seen| {
            ["in-a", "in-b"].iter().all(|n| {
                seen.iter()
                    .any(|s| s.name == *n && s.what.ends_with("Apply"))
            })
        })
        .await;
    assert_eq!(
        recorder.count(&["Apply", "InitApply"], &a.id, "in-a"),
        1,
        "in-a carries provider-a's cluster id once"
    );
    assert_eq!(recorder.count(&["Apply", "InitApply"], &b.id, "in-b"), 1);

    // When provider-c binds late, its objects join the watch.
    let c_client = c.client().await?;
    bind(
        &c_client,
        &c.path,
        &kube_bind_binding(&topology.home)?,
        env.patience(),
    )
    .await?;
    binding_bound(&c_client, &c.path, "kube-bind.io", patience).await?;
    recorder
        .wait("provider-c's configmap after it bound", patience, |seen| {
            seen.iter().any(|s| s.name == "in-c" && s.cluster == c.id)
        })
        .await;
    create_labelled_configmap(&c_client, "in-c-later", &label).await?;
    recorder
        .wait("provider-c's new configmap", patience, |seen| {
            seen.iter().any(|s| s.name == "in-c-later")
        })
        .await;

    // When it unbinds, real kcp (v0.31) sends no DELETED for the objects the watch has already
    // shown, and a fresh LIST may still return them: the backend's runtime must treat a
    // disengaged cluster's objects as unknown, not as deleted (see the README's kcp notes).
    let bindings = Api::<DynamicObject>::all_with(
        c_client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIBinding"),
            "apibindings",
        ),
    );
    bindings
        .delete("kube-bind.io", &DeleteParams::default())
        .await?;
    wait_for("provider-c's APIBinding to be gone", patience, || async {
        match bindings.get_opt("kube-bind.io").await {
            Ok(None) => Check::Done(()),
            Ok(Some(_)) => Check::Pending("still there".into()),
            Err(err) => Check::Pending(err.to_string()),
        }
    })
    .await?;
    let all = vw_as_admin(env, topology, "*").await?;
    let listed = Api::<ConfigMap>::all(all)
        .list(&ListParams::default().labels(&format!("e2e={label}")))
        .await?;
    let of_c = listed
        .items
        .iter()
        .filter(|cm| cluster_of(cm) == c.id)
        .count();
    eprintln!(
        "after provider-c unbound, a fresh wildcard LIST still returns {of_c} of its configmaps"
    );

    // Then: later objects of the unbound and the never-bound workspace stay invisible.
    create_labelled_configmap(&c_client, "in-c-unbound", &label).await?;
    create_labelled_configmap(&a.client().await?, "in-a-last", &label).await?;
    recorder
        .wait("a marker object after the unbind", patience, |seen| {
            seen.iter().any(|s| s.name == "in-a-last")
        })
        .await;
    let seen = recorder.snapshot();
    assert!(
        !seen.iter().any(|s| s.name == "in-c-unbound"),
        "unbound workspace leaked: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|s| s.name == "in-consumer" || s.cluster == consumer.id),
        "never-bound workspace leaked: {seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s.what == "Error"),
        "watch errors: {seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s.what == "Delete" && s.cluster == c.id),
        "kcp sent DELETED for an unbound workspace's objects, which the runtime does not rely on: {seen:?}"
    );
    Ok(())
}

fn cluster_of(object: &ConfigMap) -> String {
    object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kcp.io/cluster"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_client_reconnecting_often_misses_nothing_and_sees_nothing_twice() -> anyhow::Result<()> {
    let (env, topology) = given_kube_bind().await?;
    let (a, b) = (env.workspace("provider-a")?, env.workspace("provider-b")?);
    let (a_client, b_client) = (a.client().await?, b.client().await?);
    let label = env.unique("reconnect");
    let vw = vw_as_admin(env, topology, "*").await?;
    // Every 2 s the server ends the watch; kube-rs resumes from the last resourceVersion it saw,
    // which the virtual workspace must map back to where each workspace's stream was.
    let config = watcher::Config::default()
        .labels(&format!("e2e={label}"))
        .timeout(2);
    let recorder = Recorder::start(Api::<ConfigMap>::all(vw), config);
    recorder
        .wait("the initial list", env.patience(), |s| {
            s.iter().any(|e| e.what == "InitDone")
        })
        .await;

    let a_ns = env.test_namespace(a, "reconnect").await?;
    let b_ns = env.test_namespace(b, "reconnect").await?;
    let mut expected = Vec::new();
    for i in 0..12 {
        let (client, id, ns) = if i % 2 == 0 {
            (&a_client, &a.id, &a_ns)
        } else {
            (&b_client, &b.id, &b_ns)
        };
        let name = format!("obj-{i}");
        create_labelled_configmap_in(client, ns, &name, &label).await?;
        expected.push((name, id.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    recorder
        .expect_each_once_without_relist(
            "every object across reconnects",
            env.patience(),
            &expected,
        )
        .await;
    Ok(())
}

#[tokio::test]
async fn resources_outside_the_export_and_unbound_clusters_are_forbidden() -> anyhow::Result<()> {
    let (env, topology) = given_kube_bind().await?;
    let a = env.workspace("provider-a")?;
    let consumer = env.workspace("consumer")?;
    let one = vw_as_admin(env, topology, &a.id).await?;
    let all = vw_as_admin(env, topology, "*").await?;

    assert_eq!(
        status_code(
            Api::<ConfigMap>::namespaced(one.clone(), "default")
                .list(&ListParams::default())
                .await
        ),
        200
    );
    // Resources outside the export are refused; real kcp answers 404 (not served) or 403
    // depending on the request path and on what its discovery has cached.
    let refused = [403, 404];
    let code = status_code(
        Api::<Deployment>::namespaced(one.clone(), "default")
            .list(&ListParams::default())
            .await,
    );
    assert!(
        refused.contains(&code),
        "deployments in one cluster: {code}"
    );
    let code = status_code(
        Api::<Pod>::all(all.clone())
            .list(&ListParams::default())
            .await,
    );
    assert!(refused.contains(&code), "pods across clusters: {code}");
    assert_eq!(
        status_code(
            Api::<ConfigMap>::all(all)
                .list(&ListParams::default())
                .await
        ),
        200
    );
    let unbound = vw_as_admin(env, topology, &consumer.id).await?;
    assert_eq!(
        status_code(
            Api::<ConfigMap>::namespaced(unbound, "default")
                .list(&ListParams::default())
                .await
        ),
        403
    );
    // APIBindings are served read-only.
    let bindings = Api::<DynamicObject>::all_with(
        one,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIBinding"),
            "apibindings",
        ),
    );
    assert_eq!(
        status_code(bindings.list(&ListParams::default()).await),
        200
    );
    assert_eq!(
        status_code(
            bindings
                .delete("kube-bind.io", &DeleteParams::default())
                .await
        ),
        403
    );
    Ok(())
}

#[tokio::test]
async fn only_callers_allowed_to_use_the_export_get_in() -> anyhow::Result<()> {
    let (env, topology) = given_kube_bind().await?;
    let home = topology.home.client().await?;
    let name = env.unique("e2e-caller");
    let sas = Api::<ServiceAccount>::namespaced(home.clone(), "default");
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;
    let token = service_account_token(&home, "default", &name, env.patience()).await?;
    let url = format!("{}/clusters/*", topology.endpoint_url);

    let vw = env.client_for(&url, &token).await?;
    assert_eq!(
        status_code(Api::<ConfigMap>::all(vw).list(&ListParams::default()).await),
        403,
        "no apiexports/content: forbidden"
    );
    let bogus = env.client_for(&url, "not-a-token").await?;
    assert_eq!(
        status_code(
            Api::<ConfigMap>::all(bogus)
                .list(&ListParams::default())
                .await
        ),
        401
    );

    // Granting apiexports/content on the export in its workspace lets the caller in.
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
        "rules": [{"apiGroups": ["apis.kcp.io"], "resources": ["apiexports/content"], "resourceNames": ["kube-bind.io"], "verbs": ["*"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "namespace": "default", "name": name}],
    });
    apply::apply(&home, &role).await?;
    apply::apply(&home, &binding).await?;
    let vw = env.client_for(&url, &token).await?;
    wait_for(
        "the granted caller to list through the virtual workspace",
        env.patience(),
        || async {
            match Api::<ConfigMap>::all(vw.clone())
                .list(&ListParams::default())
                .await
            {
                Ok(_) => Check::Done(()),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn kubectl_works_on_workspaces_and_virtual_workspaces() -> anyhow::Result<()> {
    let (env, topology) = given_kube_bind().await?;
    let a = env.workspace("provider-a")?;
    let name = env.unique("kubectl");
    let manifest = env.log_dir.join(format!("{name}.yaml"));
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{e2e: {name}}}\ndata: {{k: v}}\n"
        ),
    )?;
    let manifest = manifest.display().to_string();

    let applied = kubectl(&a.kubeconfig, &["apply", "-f", &manifest], &env.log_dir)?;
    assert!(
        applied.success,
        "kubectl apply on /clusters/{}: {}",
        a.path, applied.stderr
    );
    let reapplied = kubectl(&a.kubeconfig, &["apply", "-f", &manifest], &env.log_dir)?;
    assert!(
        reapplied.success && reapplied.stdout.contains("unchanged"),
        "second apply: {reapplied:?}"
    );
    let annotation = kubectl(
        &a.kubeconfig,
        &[
            "get",
            "configmap",
            &name,
            "-n",
            "default",
            "-o",
            r"jsonpath={.metadata.annotations.kcp\.io/cluster}",
        ],
        &env.log_dir,
    )?;
    assert_eq!(annotation.stdout.trim(), a.id);

    let all = env.write_kubeconfig(
        &format!("{}/clusters/*", topology.endpoint_url),
        &env.admin_token,
    )?;
    let listed = kubectl(
        &all,
        &["get", "configmaps", "-A", "-l", &format!("e2e={name}")],
        &env.log_dir,
    )?;
    assert!(
        listed.success && listed.stdout.contains(&name),
        "kubectl get on /clusters/*: {listed:?}"
    );
    let one = env.write_kubeconfig(
        &format!("{}/clusters/{}", topology.endpoint_url, a.id),
        &env.admin_token,
    )?;
    let got = kubectl(
        &one,
        &["get", "configmap", &name, "-n", "default", "-o", "name"],
        &env.log_dir,
    )?;
    assert_eq!(got.stdout.trim(), format!("configmap/{name}"), "{got:?}");
    let through_vw = env.log_dir.join(format!("{name}-vw.yaml"));
    std::fs::write(
        &through_vw,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-vw\n  namespace: default\ndata: {{k: v}}\n"
        ),
    )?;
    // The virtual workspace serves no OpenAPI, so kubectl cannot validate client-side there.
    let applied = kubectl(
        &one,
        &[
            "apply",
            "--validate=false",
            "-f",
            &through_vw.display().to_string(),
        ],
        &env.log_dir,
    )?;
    assert!(
        applied.success,
        "kubectl apply through the virtual workspace: {applied:?}"
    );
    let resources = kubectl(&one, &["api-resources", "-o", "name"], &env.log_dir)?;
    assert!(resources.success, "{resources:?}");
    let names: Vec<&str> = resources.stdout.lines().collect();
    for expected in [
        "configmaps",
        "namespaces",
        "apiserviceexports.kube-bind.io",
        "apibindings.apis.kcp.io",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from VW discovery: {names:?}"
        );
    }
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("deployments") || n.starts_with("pods")),
        "{names:?}"
    );
    let refused = kubectl(&one, &["get", "deployments", "-A"], &env.log_dir)?;
    assert!(!refused.success, "deployments are not served: {refused:?}");
    Ok(())
}

#[tokio::test]
async fn a_new_export_gets_its_endpoint_slice_and_binds_in_its_own_workspace() -> anyhow::Result<()>
{
    let (env, _topology) = given_kube_bind().await?;
    let b = env.workspace("provider-b")?;
    let client = b.client().await?;
    let schema = json!({
        "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIResourceSchema", "metadata": {"name": "v1.widgets.e2e.dev"},
        "spec": {"group": "e2e.dev", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "string", "default": ""}}}}}}]},
    });
    let export = json!({
        "apiVersion": "apis.kcp.io/v1alpha2", "kind": "APIExport", "metadata": {"name": "widgets"},
        "spec": {"resources": [{"group": "e2e.dev", "name": "widgets", "schema": "v1.widgets.e2e.dev", "storage": {"crd": {}}}]},
    });
    apply::apply(&client, &schema).await?;
    apply::apply(&client, &export).await?;

    // Then kcp makes the slice; it lists no endpoint while nothing binds the export.
    let slices = Api::<DynamicObject>::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIExportEndpointSlice"),
            "apiexportendpointslices",
        ),
    );
    let slice = wait_for("APIExportEndpointSlice widgets", env.patience(), || async {
        match slices.get_opt("widgets").await {
            Ok(Some(s)) => Check::Done(s),
            Ok(None) => Check::Pending("not found".into()),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    assert_eq!(slice.data["spec"]["export"]["path"], b.path.as_str());
    assert_eq!(slice.data["spec"]["export"]["name"], "widgets");

    // When the export is bound in its own workspace, the slice points at its virtual workspace.
    let binding = json!({
        "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIBinding", "metadata": {"name": "widgets"},
        "spec": {"reference": {"export": {"path": b.path, "name": "widgets"}}},
    });
    bind(&client, &b.path, &binding, env.patience()).await?;
    binding_bound(&client, &b.path, "widgets", env.patience()).await?;
    let url = endpoint_url(&client, &b.path, "widgets", env.patience()).await?;
    assert_eq!(
        url,
        format!("{}/services/apiexport/{}/widgets", env.base_url, b.id)
    );

    let widgets = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("e2e.dev", "v1", "Widget"),
        "widgets",
    );
    let widget: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "e2e.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": "L"}}),
    )?;
    Api::<DynamicObject>::namespaced_with(client, "default", &widgets)
        .create(&PostParams::default(), &widget)
        .await?;
    let vw = env
        .client_for(&format!("{url}/clusters/*"), &env.admin_token)
        .await?;
    let listed = Api::<DynamicObject>::all_with(vw, &widgets)
        .list(&ListParams::default())
        .await?;
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0]
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kcp.io/cluster")),
        Some(&b.id)
    );
    Ok(())
}
