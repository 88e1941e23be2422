//! The kcp topology the backend needs (SPEC §7 "Roles in kcp mode"): the home workspace with the
//! `kube-bind.io` APIExport and its schemas from `kcp-config/`, service-provider workspaces bound
//! to it accepting all ten claims, and a consumer workspace.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube_bind_apis::kcp_config;
use serde_json::{Value, json};

use super::{
    Env, HarnessError, Workspace, apply,
    wait::{Check, binding_bound, wait_for},
};

/// The workspaces of a kube-bind setup and the virtual-workspace URL the backend will use.
#[derive(Clone, Debug)]
pub struct KubeBindTopology {
    /// The backend's home (`root:kube-bind`): APIExport `kube-bind.io` and its endpoint slice.
    pub home: Workspace,
    /// Service-provider workspaces, each bound to `kube-bind.io`.
    pub providers: Vec<Workspace>,
    /// A consumer workspace (binds nothing).
    pub consumer: Option<Workspace>,
    /// `status.endpoints[0].url` of the `kube-bind.io` APIExportEndpointSlice.
    pub endpoint_url: String,
}

/// The APIBinding to `kube-bind.io` in `home`, accepting every claim (from `kcp-config/`).
pub fn kube_bind_binding(home: &Workspace) -> Result<Value, HarnessError> {
    let objects = kcp_config::committed().map_err(|e| HarnessError::Other(e.to_string()))?;
    let mut binding = objects
        .into_iter()
        .find(|o| o["kind"] == "APIBinding")
        .ok_or_else(|| HarnessError::Other("kcp-config has no APIBinding".into()))?;
    binding["spec"]["reference"]["export"]["path"] = json!(home.path);
    Ok(binding)
}

/// Sets the topology up (idempotent: objects are created or replaced).
pub async fn setup_kube_bind(
    env: &Env,
    home: &str,
    providers: &[&str],
    consumer: Option<&str>,
) -> Result<KubeBindTopology, HarnessError> {
    let patience = env.patience();
    let home = install_kcp_config(env, home, &[]).await?;
    let home_client = home.client().await?;

    let binding = kube_bind_binding(&home)?;
    let mut provider_workspaces = Vec::new();
    for name in providers {
        let ws = env.workspace(name)?.clone();
        let client = ws.client().await?;
        bind(&client, &ws.path, &binding, patience).await?;
        binding_bound(&client, &ws.path, kcp_config::EXPORT_NAME, patience)
            .await
            .map_err(|e| HarnessError::Other(e.to_string()))?;
        provider_workspaces.push(ws);
    }
    let endpoint_url =
        endpoint_url(&home_client, &home.path, kcp_config::EXPORT_NAME, patience).await?;
    let consumer = consumer.map(|c| env.workspace(c).cloned()).transpose()?;
    Ok(KubeBindTopology {
        home,
        providers: provider_workspaces,
        consumer,
        endpoint_url,
    })
}

/// Whether kcp's APIBinding admission refused a binding (403 "no permission to bind"). kcp gives
/// the same answer while it has not resolved a just-created export and when the user lacks verb
/// `bind` on it (so as not to leak whether the export exists).
pub fn is_bind_refused(error: &HarnessError) -> bool {
    matches!(error, HarnessError::Kube(kube::Error::Api(status))
        if status.code == 403 && status.message.contains("no permission to bind"))
}

/// Applies kcp-config to the workspace `home` as admin, leaving out the files named in `without`
/// (e.g. [`kcp_config::BIND_GRANT_FILE`]), and waits until its self-binding is bound (unless
/// [`kcp_config::SELF_BINDING_FILE`] is left out).
pub async fn install_kcp_config(
    env: &Env,
    home: &str,
    without: &[&str],
) -> Result<Workspace, HarnessError> {
    let patience = env.patience();
    let home = env.workspace(home)?.clone();
    let home_client = home.client().await?;
    let objects =
        kcp_config::committed_without(without).map_err(|e| HarnessError::Other(e.to_string()))?;
    for mut object in objects {
        if object["kind"] == "APIBinding" {
            object["spec"]["reference"]["export"]["path"] = json!(home.path);
            bind(&home_client, &home.path, &object, patience).await?;
        } else {
            apply::apply(&home_client, &object).await?;
        }
    }
    if !without.contains(&kcp_config::SELF_BINDING_FILE) {
        binding_bound(&home_client, &home.path, kcp_config::EXPORT_NAME, patience)
            .await
            .map_err(|e| HarnessError::Other(e.to_string()))?;
    }
    Ok(home)
}

/// Creates (or replaces) an APIBinding. Right after its APIExport is created, kcp's admission
/// answers 403 "no permission to bind" until it has resolved the export: that is retried, and a
/// refusal that outlasts `timeout` means the user lacks verb `bind` on the export.
pub async fn bind(
    client: &kube::Client,
    workspace: &str,
    binding: &Value,
    timeout: Duration,
) -> Result<(), HarnessError> {
    let name = binding["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for(
        format!(
            "APIBinding {workspace}/{name} to be admitted (if kcp keeps refusing it, grant the \
             user verb bind on the export, as kcp-config/{} does)",
            kcp_config::BIND_GRANT_FILE
        ),
        timeout,
        || async {
            match apply::apply(client, binding).await {
                Ok(_) => Check::Done(Ok(())),
                Err(refused) if is_bind_refused(&refused) => Check::Pending(refused.to_string()),
                Err(other) => Check::Done(Err(other)),
            }
        },
    )
    .await
    .map_err(|e| HarnessError::Other(e.to_string()))?
}

/// Waits until the APIExportEndpointSlice `name` lists an endpoint, and returns its URL.
pub async fn endpoint_url(
    client: &kube::Client,
    workspace: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, HarnessError> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIExportEndpointSlice"),
        "apiexportendpointslices",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    wait_for(
        format!("APIExportEndpointSlice {workspace}/{name} to list an endpoint"),
        timeout,
        || async {
            match api.get_opt(name).await {
                Ok(Some(slice)) => match slice
                    .data
                    .pointer("/status/endpoints/0/url")
                    .and_then(Value::as_str)
                {
                    Some(url) => Check::Done(url.to_string()),
                    None => Check::Pending("no endpoints".into()),
                },
                Ok(None) => Check::Pending("not found".into()),
                Err(e) => Check::Pending(format!("error {e}")),
            }
        },
    )
    .await
    .map_err(|e| HarnessError::Other(e.to_string()))
}
