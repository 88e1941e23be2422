//! The ClusterBinding controller of the real backend (started in-process with its real wiring)
//! against a real kube-apiserver: heartbeat states become `Healthy`, the cluster namespace gets
//! its RBAC by consumer scope, the konnector's conditions survive, the two writers settle, and
//! deleting the cluster namespace leaves no cluster-scoped RBAC behind.
//!
//! Tests run one at a time: each starts its own backend, and a backend in Namespaced scope
//! removes the ClusterRoleBindings a Cluster-scope one makes.

mod controller_support;

use std::time::Duration;

use controller_support::{Backend, given_a_provider_cluster, wait_gone, wait_object};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use kube_bind_apis::ClusterBinding;
use kube_bind_apis::conditions::{self, Condition, ConditionSeverity, ConditionStatus};
use kube_bind_e2e::harness::fixtures::provisioned_cluster_namespace;
use kube_bind_e2e::harness::kubectl::{KONNECTOR_NEEDS, can_i};
use kube_bind_e2e::harness::{Check, Env, Workspace, apply, wait_for};
use kube_bind_e2e::konnector::Konnector;
use serde_json::json;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// The label every RBAC object the backend makes for a cluster namespace carries.
const OWNER_NAMESPACE_LABEL: &str = "kube-bind.io/owner-namespace";

/// A BoundSchema (and the APIServiceExport using it) for `plural.wildwest.dev` in `ns`.
fn export_and_schema(ns: &str, plural: &str) -> [serde_json::Value; 2] {
    let kind = format!("K{plural}");
    [
        json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "BoundSchema",
            "metadata": {"name": format!("{plural}.wildwest.dev"), "namespace": ns},
            "spec": {"informerScope": "Namespaced", "group": "wildwest.dev", "scope": "Namespaced",
                     "names": {"plural": plural, "kind": kind},
                     "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
        json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExport",
            "metadata": {"name": plural, "namespace": ns},
            "spec": {"resources": [{"group": "wildwest.dev", "resource": plural, "versions": ["v1alpha1"]}],
                     "informerScope": "Namespaced"}}),
    ]
}

/// A cluster namespace as bind-time provisioning leaves it (kubeconfig Secret, ClusterBinding
/// `cluster`) with one export of `cowboys` and its BoundSchema. Returns its name.
async fn given_a_bound_cluster_namespace(env: &Env, plain: &Workspace) -> anyhow::Result<String> {
    Ok(provisioned_cluster_namespace(env, plain, |ns| export_and_schema(ns, "cowboys")).await?)
}

/// Waits until the ClusterBinding's `type_` condition satisfies `want`; returns it.
async fn wait_condition(
    env: &Env,
    bindings: &Api<ClusterBinding>,
    type_: &str,
    want: impl Fn(&Condition) -> bool,
) -> anyhow::Result<Condition> {
    let found = wait_for(
        format!("ClusterBinding condition {type_}"),
        env.patience(),
        || async {
            match bindings.get("cluster").await {
                Ok(b) => {
                    let all = b.status.unwrap_or_default().conditions;
                    match conditions::get(&all, type_) {
                        Some(c) if want(c) => Check::Done(c.clone()),
                        _ => Check::Pending(format!("conditions {all:?}")),
                    }
                }
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;
    Ok(found)
}

/// The resources granted by a ClusterRole's rules, as `<resource>.<group>`.
fn granted(role: &ClusterRole) -> Vec<String> {
    role.rules
        .iter()
        .flatten()
        .flat_map(|r| {
            let groups = r.api_groups.clone().unwrap_or_default();
            let resources = r.resources.clone().unwrap_or_default();
            groups.into_iter().flat_map(move |g| {
                resources
                    .clone()
                    .into_iter()
                    .map(move |r| format!("{r}.{g}"))
            })
        })
        .collect()
}

fn subject_is_binder(
    subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>,
    ns: &str,
) -> bool {
    subjects.as_ref().is_some_and(|s| {
        s.len() == 1
            && s[0].kind == "ServiceAccount"
            && s[0].name == "kube-binder"
            && s[0].namespace.as_deref() == Some(ns)
    })
}

/// Every cluster-scoped RBAC object the backend made for cluster namespace `ns`.
async fn cluster_rbac_of(client: &Client, ns: &str) -> anyhow::Result<Vec<String>> {
    let selector = ListParams::default().labels(&format!("{OWNER_NAMESPACE_LABEL}={ns}"));
    let mut names = Vec::new();
    for role in Api::<ClusterRole>::all(client.clone())
        .list(&selector)
        .await?
    {
        names.push(format!("ClusterRole/{}", role.name_any()));
    }
    for binding in Api::<ClusterRoleBinding>::all(client.clone())
        .list(&selector)
        .await?
    {
        names.push(format!("ClusterRoleBinding/{}", binding.name_any()));
    }
    Ok(names)
}

#[tokio::test]
async fn heartbeating_konnector_makes_the_binding_ready_and_both_writers_settle()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let backend = Backend::start(plain, "namespaced").await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let bindings: Api<ClusterBinding> = Api::namespaced(client.clone(), &ns);

    // Given no heartbeat yet: Healthy and Ready wait for it.
    let healthy = wait_condition(env, &bindings, "Healthy", |c| {
        c.status == ConditionStatus::False
    })
    .await?;
    assert_eq!(healthy.reason, "FirstHeartbeatPending");
    assert_eq!(healthy.message, "Waiting for first heartbeat");
    let ready = wait_condition(env, &bindings, "Ready", |_| true).await?;
    assert_eq!(ready.reason, "FirstHeartbeatPending");

    // Then the RBAC of the cluster namespace is there.
    let role_binding = wait_object(
        env,
        &Api::<RoleBinding>::namespaced(client.clone(), &ns),
        "kube-binder",
        |_| true,
    )
    .await?;
    assert_eq!(role_binding.role_ref.kind, "ClusterRole");
    assert_eq!(role_binding.role_ref.name, "kube-binder");
    assert!(
        subject_is_binder(&role_binding.subjects, &ns),
        "{:?}",
        role_binding.subjects
    );
    assert!(
        role_binding.metadata.owner_references.is_none(),
        "upstream sets no owner"
    );
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role_name = format!("kube-binder-{ns}");
    let role = wait_object(env, &roles, &role_name, |r| {
        granted(r).contains(&"cowboys.wildwest.dev".to_owned())
    })
    .await?;
    assert_eq!(
        granted(&role),
        [
            "boundschemas.kube-bind.io",
            "boundschemas/status.kube-bind.io",
            "cowboys.wildwest.dev"
        ]
    );
    let owner = &role.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Namespace", ns.as_str(), Some(true))
    );
    // Namespaced scope: no ClusterRoleBinding.
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    assert!(crbs.get_opt(&role_name).await?.is_none());

    // When another export appears, its resource is granted too.
    for object in export_and_schema(&ns, "sheriffs") {
        apply::apply(&client, &object).await?;
    }
    wait_object(env, &roles, &role_name, |r| {
        granted(r).contains(&"sheriffs.wildwest.dev".to_owned())
    })
    .await?;

    // When the konnector heartbeats, Healthy and Ready turn True, its conditions kept.
    let heartbeat = Konnector::new(client.clone(), &ns).start_heartbeat();
    wait_condition(env, &bindings, "Ready", |c| {
        c.status == ConditionStatus::True
    })
    .await?;
    let live = bindings
        .get("cluster")
        .await?
        .status
        .unwrap_or_default()
        .conditions;
    for type_ in ["Healthy", "SecretValid", "ValidVersion"] {
        assert!(conditions::is_true(&live, type_), "{type_}: {live:?}");
    }
    let serialized = serde_json::to_value(bindings.get("cluster").await?)?;
    let healthy = serialized["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Healthy"))
        .cloned()
        .unwrap_or_default();
    for omitted in ["reason", "message", "severity"] {
        assert!(
            healthy.get(omitted).is_none(),
            "{omitted} omitted when True: {healthy}"
        );
    }

    // Then the two writers settle: the resourceVersion stays put for 10 s within the patience.
    let settled = wait_for(
        "the ClusterBinding to settle for 10 s",
        env.patience() * 2,
        || async {
            let before = match bindings.get("cluster").await {
                Ok(b) => b.resource_version(),
                Err(e) => return Check::Pending(e.to_string()),
            };
            tokio::time::sleep(Duration::from_secs(10)).await;
            match bindings.get("cluster").await {
                Ok(b) if b.resource_version() == before => Check::Done(()),
                Ok(b) => Check::Pending(format!("{before:?} became {:?}", b.resource_version())),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    );
    settled.await?;

    heartbeat.stop().await;
    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_old_heartbeat_times_out() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let backend = Backend::start(plain, "namespaced").await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let bindings: Api<ClusterBinding> = Api::namespaced(client.clone(), &ns);

    // Given a heartbeat without an interval.
    let an_hour_ago = Timestamp::now() - SignedDuration::from_hours(1);
    let status = |interval: Option<&str>| {
        json!({"status": {"lastHeartbeatTime": an_hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                          "heartbeatInterval": interval}})
    };
    bindings
        .patch_status(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(&status(None)),
        )
        .await?;
    wait_condition(env, &bindings, "Healthy", |c| {
        c.reason == "HeartbeatIntervalMissing"
    })
    .await?;

    // When the interval says the heartbeat is 12 intervals old, it times out.
    bindings
        .patch_status(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(&status(Some("5m0s"))),
        )
        .await?;
    let healthy = wait_condition(env, &bindings, "Healthy", |c| {
        c.reason == "HeartbeatTimeout"
    })
    .await?;
    assert_eq!(healthy.status, ConditionStatus::False);
    assert_eq!(healthy.severity, ConditionSeverity::Error);
    assert!(
        healthy
            .message
            .starts_with("Heartbeat timeout: expected heartbeat within 5m0s"),
        "{}",
        healthy.message
    );
    let ready = wait_condition(env, &bindings, "Ready", |c| c.reason == "HeartbeatTimeout").await?;
    assert_eq!(ready.status, ConditionStatus::False);

    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn cluster_scope_binds_cluster_wide_and_namespaced_scope_removes_it() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let name = format!("kube-binder-{ns}");

    // Given Cluster scope: the ClusterRoleBinding binds the service account to the role.
    let backend = Backend::start(plain, "cluster").await?;
    let crb = wait_object(env, &crbs, &name, |_| true).await?;
    assert_eq!(
        (crb.role_ref.kind.as_str(), crb.role_ref.name.as_str()),
        ("ClusterRole", name.as_str())
    );
    assert!(subject_is_binder(&crb.subjects, &ns), "{:?}", crb.subjects);
    assert_eq!(crb.owner_references()[0].kind, "Namespace");
    backend.stop().await?;

    // When the backend runs in Namespaced scope, it is removed; the ClusterRole stays.
    let backend = Backend::start(plain, "namespaced").await?;
    wait_gone(env, &crbs, &name).await?;
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&name)
            .await?
            .is_some()
    );
    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn deleting_the_cluster_namespace_leaves_no_cluster_scoped_rbac() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let backend = Backend::start(plain, "cluster").await?;
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let want = [
        format!("ClusterRole/kube-binder-{ns}"),
        format!("ClusterRoleBinding/kube-binder-{ns}"),
    ];
    wait_for(
        "the cluster-scoped RBAC to be made",
        env.patience(),
        || async {
            match cluster_rbac_of(&client, &ns).await {
                Ok(names) if names == want => Check::Done(()),
                Ok(names) => Check::Pending(format!("{names:?}")),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;

    // When the provider operator deletes the cluster namespace, everything goes with it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    wait_gone(env, &namespaces, &ns).await?;
    wait_for(
        "the cluster-scoped RBAC to be gone",
        env.patience(),
        || async {
            match cluster_rbac_of(&client, &ns).await {
                Ok(names) if names.is_empty() => Check::Done(()),
                Ok(names) => Check::Pending(format!("{names:?}")),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;

    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_binding_made_without_a_bind_grants_the_konnector_what_it_needs() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    // Given a cluster without the global kube-binder ClusterRole (no consumer ever bound here),
    let roles: Api<ClusterRole> = Api::all(client.clone());
    if roles.get_opt("kube-binder").await?.is_some() {
        roles
            .delete("kube-binder", &DeleteParams::default())
            .await?;
        wait_gone(env, &roles, "kube-binder").await?;
    }
    // and a ClusterBinding made directly, as an operator would,
    let ns = given_a_bound_cluster_namespace(env, plain).await?;
    let other = given_a_bound_cluster_namespace(env, plain).await?;
    let backend = Backend::start(plain, "namespaced").await?;

    // the controller writes the role its RoleBinding refers to,
    let rolebindings: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
    wait_object(env, &rolebindings, "kube-binder", |_| true).await?;
    let role = wait_object(env, &roles, "kube-binder", |_| true).await?;
    assert!(
        granted(&role).contains(&"apiserviceexportrequests.kube-bind.io".to_owned()),
        "{:?}",
        role.rules
    );
    backend.stop().await?;

    // and the consumer's ServiceAccount may do what the konnector needs in its namespace only.
    let binder = format!("--as=system:serviceaccount:{ns}:kube-binder");
    let mut wrong = Vec::new();
    for (verb, resource, subresource) in KONNECTOR_NEEDS {
        let sub = format!("--subresource={subresource}");
        for (namespace, want) in [(&ns, true), (&other, false)] {
            let mut args = vec![*verb, *resource, "-n", namespace.as_str(), binder.as_str()];
            if !subresource.is_empty() {
                args.push(&sub);
            }
            if can_i(&plain.kubeconfig, &args, &env.log_dir)? != want {
                wrong.push(format!("{}: want {want}", args.join(" ")));
            }
        }
    }
    assert!(wrong.is_empty(), "kubectl auth can-i disagrees: {wrong:#?}");
    Ok(())
}
