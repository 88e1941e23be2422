//! The ClusterBinding and APIServiceNamespace controllers on real kcp: the backend serves the
//! `kube-bind.io` export's endpoint slice, and a provider workspace bound to it gets the same
//! RBAC, conditions and provider namespace as on a plain cluster, written through the virtual
//! workspace (through the permission claims the binding accepts), in both consumer scopes.
//!
//! Tests run one at a time: a backend in Namespaced scope removes the ClusterRoleBindings of
//! one in Cluster scope.

mod controller_support;

use controller_support::{Backend, wait_gone, wait_object};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams};
use kube_bind_apis::conditions::{self, ConditionStatus};
use kube_bind_apis::{APIServiceNamespace, ClusterBinding};
use kube_bind_e2e::harness::topology::setup_kube_bind;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, Workspace, apply, wait_for};
use kube_bind_e2e::konnector::Konnector;
use serde_json::json;
use tokio::sync::Mutex;

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a"]);
static SERIAL: Mutex<()> = Mutex::const_new(());

/// A cluster namespace in `provider`, as bind-time provisioning leaves it, with an export of
/// `cowboys` (informer scope `scope`) claiming configmaps, and consumer namespace `default`
/// claimed for it. Returns its name.
async fn given_a_claimed_cluster_namespace(
    env: &Env,
    provider: &Workspace,
    scope: &str,
) -> anyhow::Result<String> {
    let client = provider.client().await?;
    let ns = env.test_namespace(provider, "cluster").await?;
    let objects = [
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kubeconfig", "namespace": ns},
            "stringData": {"kubeconfig": "apiVersion: v1\nkind: Config\n"}}),
        json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "ClusterBinding",
            "metadata": {"name": "cluster", "namespace": ns},
            "spec": {"kubeconfigSecretRef": {"name": "kubeconfig", "key": "kubeconfig"},
                     "providerPrettyName": "Wild West"}}),
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
    ];
    for object in &objects {
        apply::apply(&client, object).await?;
    }
    Konnector::new(client, &ns)
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
