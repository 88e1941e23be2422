//! The ClusterBinding and APIServiceNamespace controllers on real kcp: the backend serves the
//! `kube-bind.io` export's endpoint slice, and a provider workspace bound to it gets the same
//! RBAC, conditions and provider namespace as on a plain cluster, written through the virtual
//! workspace (through the permission claims the binding accepts), in both consumer scopes.
//!
//! Tests run one at a time: a backend in Namespaced scope removes the ClusterRoleBindings of
//! one in Cluster scope.

mod controller_support;

use controller_support::{Backend, wait_gone, wait_object};
use k8s_openapi::api::core::v1::{Event, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams};
use kube_bind_apis::conditions::{self, ConditionStatus};
use kube_bind_apis::{APIServiceNamespace, ClusterBinding};
use kube_bind_e2e::harness::fixtures::provisioned_cluster_namespace;
use kube_bind_e2e::harness::topology::{bind, kube_bind_binding, setup_kube_bind};
use kube_bind_e2e::harness::wait::binding_bound;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, Workspace, wait_for};
use kube_bind_e2e::konnector::Konnector;
use serde_json::json;
use tokio::sync::Mutex;

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a", "provider-claims"]);
static SERIAL: Mutex<()> = Mutex::const_new(());

/// A cluster namespace in `provider`, as bind-time provisioning leaves it, with an export of
/// `cowboys` (informer scope `scope`) claiming configmaps, and consumer namespace `default`
/// claimed for it. Returns its name.
async fn given_a_claimed_cluster_namespace(
    env: &Env,
    provider: &Workspace,
    scope: &str,
) -> anyhow::Result<String> {
    let ns = provisioned_cluster_namespace(env, provider, |ns| {
        vec![
            json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "BoundSchema",
                "metadata": {"name": "cowboys.wildwest.dev", "namespace": ns},
                "spec": {"informerScope": scope, "group": "wildwest.dev", "scope": "Namespaced",
                         "names": {"plural": "cowboys", "kind": "Cowboy"},
                         "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
            json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExport",
                "metadata": {"name": "cowboys", "namespace": ns},
                "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys", "versions": ["v1alpha1"]}],
                         "permissionClaims": [{"group": "", "resource": "configmaps", "selector": {}}],
                         "informerScope": scope}}),
        ]
    })
    .await?;
    Konnector::new(provider.client().await?, &ns)
        .claim_namespace("cowboys", "default")
        .await?;
    Ok(ns)
}

#[tokio::test]
async fn cluster_scope_happy_path_in_a_provider_workspace() -> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a"], None).await?;
    let _serial = SERIAL.lock().await;
    let backend = Backend::start_kcp(&topology, "cluster").await?;
    let provider = env.workspace("provider-a")?;
    let client = provider.client().await?;
    let ns = given_a_claimed_cluster_namespace(env, provider, "Cluster").await?;
    let konnector = Konnector::new(client.clone(), &ns);

    // Then the ClusterBinding's RBAC, Cluster scope.
    let name = format!("kube-binder-{ns}");
    let role = wait_object(env, &Api::<ClusterRole>::all(client.clone()), &name, |r| {
        r.rules
            .iter()
            .flatten()
            .any(|rule| rule.resources.iter().flatten().any(|x| x == "cowboys"))
    })
    .await?;
    assert_eq!(
        role.metadata.owner_references.unwrap_or_default()[0].kind,
        "Namespace"
    );
    wait_object(
        env,
        &Api::<ClusterRoleBinding>::all(client.clone()),
        &name,
        |_| true,
    )
    .await?;
    wait_object(
        env,
        &Api::<RoleBinding>::namespaced(client.clone(), &ns),
        "kube-binder",
        |_| true,
    )
    .await?;

    // And the APIServiceNamespace's provider namespace and cluster-wide claim RBAC.
    let sns: Api<APIServiceNamespace> = Api::namespaced(client.clone(), &ns);
    let claimed = wait_object(env, &sns, "default", |o| {
        o.status.as_ref().is_some_and(|s| !s.namespace.is_empty())
    })
    .await?;
    let provider_ns = claimed.status.unwrap_or_default().namespace;
    assert_eq!(provider_ns, format!("{ns}-default"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    wait_object(env, &namespaces, &provider_ns, |_| true).await?;
    let claim = "kube-binder-export-default-cowboys";
    wait_object(env, &Api::<ClusterRole>::all(client.clone()), claim, |_| {
        true
    })
    .await?;
    wait_object(
        env,
        &Api::<ClusterRoleBinding>::all(client.clone()),
        claim,
        |_| true,
    )
    .await?;

    // When the konnector heartbeats, the binding becomes Ready.
    let bindings: Api<ClusterBinding> = Api::namespaced(client.clone(), &ns);
    konnector.heartbeat_once().await?;
    wait_for("the ClusterBinding to be Ready", env.patience(), || async {
        match bindings.get("cluster").await {
            Ok(b) => {
                let all = b.status.unwrap_or_default().conditions;
                let ready = conditions::get(&all, "Ready")
                    .is_some_and(|c| c.status == ConditionStatus::True);
                if ready
                    && conditions::is_true(&all, "Healthy")
                    && conditions::is_true(&all, "SecretValid")
                {
                    Check::Done(())
                } else {
                    Check::Pending(format!("{all:?}"))
                }
            }
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;

    // When the APIServiceNamespace goes, its provider namespace and claim RBAC go.
    sns.delete("default", &DeleteParams::default()).await?;
    wait_gone(env, &Api::<ClusterRoleBinding>::all(client.clone()), claim).await?;
    wait_gone(env, &Api::<ClusterRole>::all(client.clone()), claim).await?;
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
async fn namespaced_scope_happy_path_in_a_provider_workspace() -> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a"], None).await?;
    let _serial = SERIAL.lock().await;
    let backend = Backend::start_kcp(&topology, "namespaced").await?;
    let provider = env.workspace("provider-a")?;
    let client = provider.client().await?;
    let ns = given_a_claimed_cluster_namespace(env, provider, "Namespaced").await?;

    // The ClusterRole, but no ClusterRoleBinding: access goes through namespaced bindings.
    let name = format!("kube-binder-{ns}");
    wait_object(env, &Api::<ClusterRole>::all(client.clone()), &name, |_| {
        true
    })
    .await?;
    let sns: Api<APIServiceNamespace> = Api::namespaced(client.clone(), &ns);
    let claimed = wait_object(env, &sns, "default", |o| {
        o.status.as_ref().is_some_and(|s| !s.namespace.is_empty())
    })
    .await?;
    let provider_ns = claimed.status.unwrap_or_default().namespace;
    let binder = wait_object(
        env,
        &Api::<RoleBinding>::namespaced(client.clone(), &provider_ns),
        "kube-binder",
        |_| true,
    )
    .await?;
    assert_eq!(binder.role_ref.name, name);
    let claim = "kube-binder-export-default-cowboys";
    wait_object(
        env,
        &Api::<Role>::namespaced(client.clone(), &provider_ns),
        claim,
        |_| true,
    )
    .await?;
    wait_object(
        env,
        &Api::<RoleBinding>::namespaced(client.clone(), &provider_ns),
        claim,
        |_| true,
    )
    .await?;
    assert!(
        Api::<ClusterRoleBinding>::all(client.clone())
            .get_opt(&name)
            .await?
            .is_none()
    );

    backend.stop().await?;
    Ok(())
}

/// The `Permitted` condition of the ClusterBinding in `ns`, once it is as `want` says.
async fn wait_permitted(
    env: &Env,
    bindings: &Api<ClusterBinding>,
    what: &str,
    want: impl Fn(Option<&conditions::Condition>) -> bool,
) -> anyhow::Result<Vec<conditions::Condition>> {
    let found = wait_for(what.to_owned(), env.patience(), || async {
        match bindings.get("cluster").await {
            Ok(b) => {
                let all = b.status.unwrap_or_default().conditions;
                if want(conditions::get(&all, "Permitted")) {
                    Check::Done(all)
                } else {
                    Check::Pending(format!("{all:?}"))
                }
            }
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    Ok(found)
}

/// A provider that binds kube-bind.io but rejects the RBAC claims sees why nothing happens on
/// its ClusterBinding (a condition, and an event written through the events claim); accepting
/// the claims later is enough, the binding's change runs the work again.
#[tokio::test]
async fn a_rejected_rbac_claim_is_a_condition_until_it_is_accepted() -> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a"], None).await?;
    let _serial = SERIAL.lock().await;
    let provider = env.workspace("provider-claims")?;
    let client = provider.client().await?;
    let accepting = kube_bind_binding(&topology.home)?;
    let mut rejecting = accepting.clone();
    if let Some(claims) = rejecting["spec"]["permissionClaims"].as_array_mut() {
        for claim in claims {
            if claim["group"] == "rbac.authorization.k8s.io" {
                claim["state"] = json!("Rejected");
            }
        }
    }
    bind(&client, &provider.path, &rejecting, env.patience()).await?;
    binding_bound(&client, &provider.path, "kube-bind.io", env.patience()).await?;
    let backend = Backend::start_kcp(&topology, "namespaced").await?;

    let ns = provisioned_cluster_namespace(env, provider, |_| []).await?;
    let bindings: Api<ClusterBinding> = Api::namespaced(client.clone(), &ns);
    let refused = wait_permitted(env, &bindings, "Permitted to be False", |c| {
        c.is_some_and(|c| c.status == ConditionStatus::False)
    })
    .await?;
    let permitted = conditions::get(&refused, "Permitted")
        .ok_or_else(|| anyhow::anyhow!("Permitted is gone again: {refused:?}"))?;
    println!("refused: {} {}", permitted.reason, permitted.message);
    assert_eq!(permitted.reason, "Forbidden");
    assert!(
        permitted.message.contains("permission claims"),
        "{}",
        permitted.message
    );
    assert!(conditions::is_false(&refused, "Ready"), "{refused:?}");

    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let event = wait_for(
        "a Forbidden event on the ClusterBinding",
        env.patience(),
        || async {
            match events.list(&ListParams::default()).await {
                Ok(list) => match list
                    .items
                    .into_iter()
                    .find(|e| e.reason.as_deref() == Some("Forbidden"))
                {
                    Some(event) => Check::Done(event),
                    None => Check::Pending("no event yet".to_owned()),
                },
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;
    assert_eq!(
        event.involved_object.kind.as_deref(),
        Some("ClusterBinding")
    );

    // Accepting the claims is enough: the RBAC is written and the condition goes.
    bind(&client, &provider.path, &accepting, env.patience()).await?;
    let name = format!("kube-binder-{ns}");
    wait_object(env, &Api::<ClusterRole>::all(client.clone()), &name, |_| {
        true
    })
    .await?;
    wait_permitted(env, &bindings, "Permitted to be gone", |c| c.is_none()).await?;

    backend.stop().await?;
    Ok(())
}
