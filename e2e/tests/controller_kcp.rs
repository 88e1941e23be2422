//! The ClusterBinding and APIServiceNamespace controllers on real kcp: the backend serves the
//! `kube-bind.io` export's endpoint slice, and a provider workspace bound to it gets the same
//! RBAC, conditions and provider namespace as on a plain cluster, written through the virtual
//! workspace (through the permission claims the binding accepts).

mod controller_support;

use controller_support::{wait_gone, wait_object};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DeleteParams};
use kube_bind_apis::conditions::{self, ConditionStatus};
use kube_bind_apis::{APIServiceNamespace, ClusterBinding};
use kube_bind_backend::app;
use kube_bind_backend::options::Options;
use kube_bind_e2e::harness::topology::setup_kube_bind;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, apply, wait_for};
use kube_bind_e2e::konnector::Konnector;
use serde_json::json;
use tokio_util::sync::CancellationToken;

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a"]);

#[tokio::test]
async fn cluster_scope_happy_path_in_a_provider_workspace() -> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a"], None).await?;
    let options = Options::from_args([
        "kube-bind-backend",
        "--kubeconfig",
        &topology.home.kubeconfig.display().to_string(),
        "--multicluster-runtime-provider=kcp",
        "--apiexport-endpointslice-name=kube-bind.io",
        "--oidc-type=embedded",
        "--listen-address=127.0.0.1:0",
        "--schema-source=apiresourceschemas",
        "--consumer-scope=cluster",
    ])?;
    let shutdown = CancellationToken::new();
    let backend = app::start(options, shutdown.clone()).await?;

    // Given a cluster namespace in the provider workspace, as bind-time provisioning leaves it,
    // with an export claiming configmaps and a consumer namespace claimed for it.
    let provider = env.workspace("provider-a")?;
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
            "spec": {"informerScope": "Cluster", "group": "wildwest.dev", "scope": "Namespaced",
                     "names": {"plural": "cowboys", "kind": "Cowboy"},
                     "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
        json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExport",
            "metadata": {"name": "cowboys", "namespace": ns},
            "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys", "versions": ["v1alpha1"]}],
                     "permissionClaims": [{"group": "", "resource": "configmaps", "selector": {}}],
                     "informerScope": "Cluster"}}),
    ];
    for object in &objects {
        apply::apply(&client, object).await?;
    }
    let konnector = Konnector::new(client.clone(), &ns);
    konnector.claim_namespace("cowboys", "default").await?;

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

    shutdown.cancel();
    backend.wait().await?;
    Ok(())
}
