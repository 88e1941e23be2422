//! The APIServiceNamespace controller of the real backend (started in-process with its real
//! wiring) against a real kube-apiserver: a consumer namespace claimed by the konnector gets its
//! provider namespace, the `kube-binder` RoleBinding (Namespaced scope) and the RBAC of the
//! export's permission claims, checked with `kubectl auth can-i` as the consumer's service
//! account; stale claim RBAC is removed; deleting the APIServiceNamespace removes the provider
//! namespace and the cluster-scoped claim RBAC.
//!
//! Tests run one at a time: each starts its own backend, in the scope it checks.

mod controller_support;

use controller_support::{Backend, given_a_provider_cluster, wait_gone, wait_object};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, ResourceExt};
use kube_bind_apis::APIServiceNamespace;
use kube_bind_e2e::harness::fixtures::provisioned_cluster_namespace;
use kube_bind_e2e::harness::kubectl::kubectl;
use kube_bind_e2e::harness::{Check, Env, Workspace, apply, wait_for};
use kube_bind_e2e::konnector::Konnector;
use serde_json::json;
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

const CONSUMER_NS: &str = "default";

/// An APIServiceExport `name` in `ns` claiming core `configmaps`.
fn export(ns: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExport",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"resources": [{"group": "wildwest.dev", "resource": name, "versions": ["v1alpha1"]}],
                 "permissionClaims": [{"group": "", "resource": "configmaps", "selector": {}}],
                 "informerScope": "Namespaced"}})
}

/// A cluster namespace with its ClusterBinding and the exports `cowboys` and `sheriffs`, where
/// the konnector claimed consumer namespace `default` for `cowboys`. Returns its name.
async fn given_a_claimed_consumer_namespace(
    env: &Env,
    plain: &Workspace,
) -> anyhow::Result<String> {
    let ns = provisioned_cluster_namespace(env, plain, |ns| {
        vec![export(ns, "cowboys"), export(ns, "sheriffs")]
    })
    .await?;
    Konnector::new(plain.client().await?, &ns)
        .claim_namespace("cowboys", CONSUMER_NS)
        .await?;
    Ok(ns)
}

/// Whether the consumer's `kube-binder` service account of `cluster_ns` may `verb resource`
/// in `namespace` (everywhere when `None`), as `kubectl auth can-i` answers.
fn binder_can(
    env: &Env,
    plain: &Workspace,
    cluster_ns: &str,
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
) -> anyhow::Result<bool> {
    let user = format!("--as=system:serviceaccount:{cluster_ns}:kube-binder");
    let mut args = vec!["auth", "can-i", verb, resource, user.as_str()];
    match namespace {
        Some(ns) => args.extend(["-n", ns]),
        None => args.push("--all-namespaces"),
    }
    let out = kubectl(&plain.kubeconfig, &args, &env.log_dir)?;
    Ok(out.stdout.trim() == "yes")
}

/// The claim RBAC (any kind) the backend made for APIServiceNamespace `cluster_ns/name`.
async fn claim_rbac_of(
    client: &Client,
    cluster_ns: &str,
    name: &str,
) -> anyhow::Result<Vec<String>> {
    let selector = ListParams::default().labels(&format!(
        "kube-bind.io/owner-kind=APIServiceNamespace,kube-bind.io/owner-namespace={cluster_ns},kube-bind.io/owner-name={name}"
    ));
    let mut found = Vec::new();
    let prefix = format!("kube-binder-export-{name}-");
    let keep = |n: String| n.starts_with(&prefix).then_some(n);
    for o in Api::<Role>::all(client.clone()).list(&selector).await? {
        found.extend(keep(o.name_any()).map(|n| format!("Role/{n}")));
    }
    for o in Api::<RoleBinding>::all(client.clone())
        .list(&selector)
        .await?
    {
        found.extend(keep(o.name_any()).map(|n| format!("RoleBinding/{n}")));
    }
    for o in Api::<ClusterRole>::all(client.clone())
        .list(&selector)
        .await?
    {
        found.extend(keep(o.name_any()).map(|n| format!("ClusterRole/{n}")));
    }
    for o in Api::<ClusterRoleBinding>::all(client.clone())
        .list(&selector)
        .await?
    {
        found.extend(keep(o.name_any()).map(|n| format!("ClusterRoleBinding/{n}")));
    }
    found.sort();
    Ok(found)
}

async fn wait_claim_rbac(
    env: &Env,
    client: &Client,
    ns: &str,
    want: &[&str],
) -> anyhow::Result<()> {
    wait_for(
        format!("claim RBAC to be {want:?}"),
        env.patience(),
        || async {
            match claim_rbac_of(client, ns, CONSUMER_NS).await {
                Ok(found) if found == want => Check::Done(()),
                Ok(found) => Check::Pending(format!("{found:?}")),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

/// Waits until the APIServiceNamespace records its provider namespace; returns it.
async fn wait_provider_namespace(env: &Env, client: &Client, ns: &str) -> anyhow::Result<String> {
    let api: Api<APIServiceNamespace> = Api::namespaced(client.clone(), ns);
    let sns = wait_object(env, &api, CONSUMER_NS, |o| {
        o.status.as_ref().is_some_and(|s| !s.namespace.is_empty())
    })
    .await?;
    Ok(sns.status.unwrap_or_default().namespace)
}

/// Given a backend in Cluster consumer scope and a claimed consumer namespace whose
/// cluster-scoped claim RBAC is in place: the backend, the cluster namespace and the provider
/// namespace.
async fn given_cluster_scoped_claims(
    env: &Env,
    plain: &Workspace,
    client: &Client,
) -> anyhow::Result<(Backend, String, String)> {
    let backend = Backend::start(plain, "cluster").await?;
    let ns = given_a_claimed_consumer_namespace(env, plain).await?;
    let provider_ns = wait_provider_namespace(env, client, &ns).await?;
    let mut want = Vec::new();
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        for export in ["cowboys", "sheriffs"] {
            want.push(format!("{kind}/kube-binder-export-default-{export}"));
        }
    }
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    wait_claim_rbac(env, client, &ns, &want).await?;
    Ok((backend, ns, provider_ns))
}

#[tokio::test]
async fn namespaced_scope_grants_claims_in_the_provider_namespace() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let backend = Backend::start(plain, "namespaced").await?;
    let ns = given_a_claimed_consumer_namespace(env, plain).await?;

    // The provider namespace, annotated, recorded in the status.
    let provider_ns = wait_provider_namespace(env, &client, &ns).await?;
    assert_eq!(provider_ns, format!("{ns}-{CONSUMER_NS}"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = namespaces.get(&provider_ns).await?;
    assert_eq!(
        namespace
            .annotations()
            .get("kube-bind.io/api-service-namespace"),
        Some(&format!("{ns}/{CONSUMER_NS}"))
    );
    assert!(namespace.metadata.owner_references.is_none());

    // The kube-binder RoleBinding → ClusterRole kube-binder-<ns>.
    let binder = wait_object(
        env,
        &Api::<RoleBinding>::namespaced(client.clone(), &provider_ns),
        "kube-binder",
        |_| true,
    )
    .await?;
    assert_eq!(binder.role_ref.name, format!("kube-binder-{ns}"));

    // Claim RBAC per export, namespaced.
    let cowboys = "kube-binder-export-default-cowboys";
    let sheriffs = "kube-binder-export-default-sheriffs";
    wait_claim_rbac(
        env,
        &client,
        &ns,
        &[
            &format!("Role/{cowboys}"),
            &format!("Role/{sheriffs}"),
            &format!("RoleBinding/{cowboys}"),
            &format!("RoleBinding/{sheriffs}"),
        ],
    )
    .await?;
    let role = Api::<Role>::namespaced(client.clone(), &provider_ns)
        .get(cowboys)
        .await?;
    let rule = serde_json::to_value(&role.rules.unwrap_or_default()[0])?;
    assert_eq!(
        rule,
        json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]})
    );

    // RBAC checked as the consumer's service account.
    assert!(binder_can(
        env,
        plain,
        &ns,
        "delete",
        "configmaps",
        Some(&provider_ns)
    )?);
    assert!(!binder_can(
        env,
        plain,
        &ns,
        "get",
        "configmaps",
        Some("kube-system")
    )?);
    assert!(!binder_can(
        env,
        plain,
        &ns,
        "get",
        "secrets",
        Some(&provider_ns)
    )?);

    // When an export goes, its claim RBAC goes.
    Api::<kube_bind_apis::APIServiceExport>::namespaced(client.clone(), &ns)
        .delete("sheriffs", &DeleteParams::default())
        .await?;
    wait_claim_rbac(
        env,
        &client,
        &ns,
        &[
            &format!("Role/{cowboys}"),
            &format!("RoleBinding/{cowboys}"),
        ],
    )
    .await?;

    // When the konnector releases the namespace, the provider namespace goes.
    Konnector::new(client.clone(), &ns)
        .release_namespace(CONSUMER_NS)
        .await?;
    wait_for(
        "the provider namespace to be deleted",
        env.patience(),
        || async {
            match namespaces.get_opt(&provider_ns).await {
                Ok(None) => Check::Done(()),
                Ok(Some(n)) if n.metadata.deletion_timestamp.is_some() => Check::Done(()),
                Ok(Some(_)) => Check::Pending("still there".into()),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;

    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn cluster_scope_grants_claims_cluster_wide_and_deletion_removes_them() -> anyhow::Result<()>
{
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let (backend, ns, provider_ns) = given_cluster_scoped_claims(env, plain, &client).await?;
    // No per-namespace kube-binder RoleBinding in Cluster scope.
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &provider_ns);
    assert!(bindings.get_opt("kube-binder").await?.is_none());
    assert!(binder_can(env, plain, &ns, "list", "configmaps", None)?);

    // When the APIServiceNamespace is deleted, the provider namespace and the cluster-scoped
    // claim RBAC go.
    Api::<APIServiceNamespace>::namespaced(client.clone(), &ns)
        .delete(CONSUMER_NS, &DeleteParams::default())
        .await?;
    wait_claim_rbac(env, &client, &ns, &[]).await?;
    wait_gone(env, &Api::<Namespace>::all(client.clone()), &provider_ns).await?;
    assert!(!binder_can(env, plain, &ns, "list", "configmaps", None)?);

    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_deletion_while_the_backend_is_down_is_cleaned_up_on_restart() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let (backend, ns, provider_ns) = given_cluster_scoped_claims(env, plain, &client).await?;
    backend.stop().await?;

    // When the APIServiceNamespace goes while no backend runs (no finalizer holds it) ...
    let sns: Api<APIServiceNamespace> = Api::namespaced(client.clone(), &ns);
    sns.delete(CONSUMER_NS, &DeleteParams::default()).await?;
    wait_gone(env, &sns, CONSUMER_NS).await?;

    // ... the next backend finds what it left by label and annotation and removes it.
    let backend = Backend::start(plain, "cluster").await?;
    wait_claim_rbac(env, &client, &ns, &[]).await?;
    wait_gone(env, &Api::<Namespace>::all(client.clone()), &provider_ns).await?;
    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn deleting_the_cluster_namespace_leaves_no_claim_rbac() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let (backend, ns, provider_ns) = given_cluster_scoped_claims(env, plain, &client).await?;

    // When the provider operator deletes the cluster namespace, everything made for it goes.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    wait_gone(env, &namespaces, &ns).await?;
    wait_claim_rbac(env, &client, &ns, &[]).await?;
    wait_gone(env, &namespaces, &provider_ns).await?;
    let left = ListParams::default().labels(&format!("kube-bind.io/owner-namespace={ns}"));
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .list(&left)
            .await?
            .items
            .is_empty()
    );
    assert!(
        Api::<ClusterRoleBinding>::all(client.clone())
            .list(&left)
            .await?
            .items
            .is_empty()
    );

    backend.stop().await?;
    Ok(())
}

#[tokio::test]
async fn deleting_the_owning_export_leaves_no_claim_rbac() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let (backend, ns, provider_ns) = given_cluster_scoped_claims(env, plain, &client).await?;

    // When the export the konnector claimed the namespace for is deleted, garbage collection
    // takes the APIServiceNamespace, and the backend what was made for it.
    Api::<kube_bind_apis::APIServiceExport>::namespaced(client.clone(), &ns)
        .delete("cowboys", &DeleteParams::default())
        .await?;
    wait_gone(
        env,
        &Api::<APIServiceNamespace>::namespaced(client.clone(), &ns),
        CONSUMER_NS,
    )
    .await?;
    wait_claim_rbac(env, &client, &ns, &[]).await?;
    wait_gone(env, &Api::<Namespace>::all(client.clone()), &provider_ns).await?;

    backend.stop().await?;
    Ok(())
}

/// A failure that has no condition of its own (here the apiserver refusing the provider
/// namespace's name) is an event on the object, for `kubectl events` to show.
#[tokio::test]
async fn a_failure_without_a_condition_is_an_event_on_the_object() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_cluster().await?;
    let client = plain.client().await?;
    let backend = Backend::start(plain, "namespaced").await?;
    let ns = given_a_claimed_consumer_namespace(env, plain).await?;

    // A valid object name, but `<cluster ns>-<name>` is longer than a namespace name may be.
    let name = format!("a{}", "-long".repeat(12));
    apply::apply(
        &client,
        &json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceNamespace",
            "metadata": {"name": name, "namespace": ns}, "spec": {}}),
    )
    .await?;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let event = wait_for(
        format!("an event about APIServiceNamespace {ns}/{name}"),
        env.patience(),
        || async {
            let list = match events.list(&ListParams::default()).await {
                Ok(list) => list,
                Err(e) => return Check::Pending(e.to_string()),
            };
            let about = list
                .items
                .into_iter()
                .find(|e| e.involved_object.name.as_deref() == Some(name.as_str()));
            match about {
                Some(event) => Check::Done(event),
                None => Check::Pending("no event yet".to_owned()),
            }
        },
    )
    .await?;
    println!("event: {:?} {:?}", event.reason, event.message);
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reason.as_deref(), Some("ReconcileFailed"));
    assert_eq!(
        event.reporting_component.as_deref(),
        Some("kube-bind.io/backend")
    );
    let regarding = event.involved_object;
    assert_eq!(regarding.kind.as_deref(), Some("APIServiceNamespace"));
    assert!(regarding.uid.is_some());
    let note = event.message.unwrap_or_default();
    assert!(
        note.contains(&format!("{ns}-{name}")) && note.contains("63"),
        "the note names the refused namespace and why: {note}"
    );

    // The well-named one next to it is served as usual.
    wait_provider_namespace(env, &client, &ns).await?;
    Api::<APIServiceNamespace>::namespaced(client.clone(), &ns)
        .delete(&name, &DeleteParams::default())
        .await?;
    backend.stop().await?;
    Ok(())
}
