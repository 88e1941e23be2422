//! Objects the controller tests start from, as another part of kube-bind would leave them.

use serde_json::{Value, json};

use super::{Env, HarnessError, Workspace, apply};

/// A new cluster namespace in `workspace` as bind-time provisioning leaves it: the kubeconfig
/// Secret and the ClusterBinding `cluster` pointing at it, then the objects `extra` makes for
/// the namespace (exports, schemas, requests). Returns the namespace.
pub async fn provisioned_cluster_namespace<E>(
    env: &Env,
    workspace: &Workspace,
    extra: impl FnOnce(&str) -> E,
) -> Result<String, HarnessError>
where
    E: IntoIterator<Item = Value>,
{
    let client = workspace.client().await?;
    let ns = env.test_namespace(workspace, "cluster").await?;
    let provisioned = [
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kubeconfig", "namespace": ns},
            "stringData": {"kubeconfig": "apiVersion: v1\nkind: Config\n"}}),
        json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "ClusterBinding",
            "metadata": {"name": "cluster", "namespace": ns},
            "spec": {"kubeconfigSecretRef": {"name": "kubeconfig", "key": "kubeconfig"},
                     "providerPrettyName": "Wild West"}}),
    ];
    for object in provisioned.into_iter().chain(extra(&ns)) {
        apply::apply(&client, &object).await?;
    }
    Ok(ns)
}
