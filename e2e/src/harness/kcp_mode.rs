//! Running the same tests against a real kcp (`KCP_KUBECONFIG`: an admin kubeconfig of `root`).
//! Each EnvSpec workspace becomes a new child of `root` named `e2e-<run>-<name>`; they are left in
//! place afterwards (their names are unique per run).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

use super::{
    Env, EnvSpec, HarnessError, Workspace,
    env::client_from_kubeconfig,
    wait::{Check, wait_for},
};

pub fn start(spec: &EnvSpec, kubeconfig: &Path, log_dir: PathBuf) -> Result<Env, HarnessError> {
    std::fs::create_dir_all(log_dir.join("kubeconfigs"))
        .map_err(|e| HarnessError::io(&log_dir, e))?;
    let kubeconfig = kubeconfig.to_path_buf();
    let workspace_names: Vec<String> = spec.workspaces.iter().map(|s| s.to_string()).collect();
    // The caller may be inside a runtime already: start on a thread of our own.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HarnessError::io(&kubeconfig, e))?;
        runtime.block_on(start_async(workspace_names, kubeconfig, log_dir))
    })
    .join()
    .map_err(|_| HarnessError::Other("starting against kcp panicked".into()))?
}

async fn start_async(
    names: Vec<String>,
    kubeconfig: PathBuf,
    log_dir: PathBuf,
) -> Result<Env, HarnessError> {
    let text =
        std::fs::read_to_string(&kubeconfig).map_err(|e| HarnessError::io(&kubeconfig, e))?;
    let raw: Value = serde_saphyr::from_str(&text).map_err(|e| HarnessError::Kubeconfig {
        path: kubeconfig.clone(),
        message: e.to_string(),
    })?;
    let context = raw["current-context"].as_str().unwrap_or_default();
    let cluster_name = raw["contexts"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == context))
        .map(|c| c["context"]["cluster"].clone());
    let cluster = raw["clusters"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| Some(&c["name"]) == cluster_name.as_ref())
                .or_else(|| cs.first())
        })
        .cloned()
        .ok_or_else(|| HarnessError::Kubeconfig {
            path: kubeconfig.clone(),
            message: "no cluster".into(),
        })?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base_url = server
        .split("/clusters/")
        .next()
        .unwrap_or(&server)
        .trim_end_matches('/')
        .to_string();
    let ca_pem = cluster["cluster"]["certificate-authority-data"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let token = raw["users"]
        .as_array()
        .and_then(|u| u.first())
        .and_then(|u| u["user"]["token"].as_str())
        .unwrap_or_default()
        .to_string();

    let root = client_from_kubeconfig(&kubeconfig).await?;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 0xfffff)
            .unwrap_or(0)
    );
    let workspaces_api: Api<DynamicObject> = Api::all_with(
        root,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("tenancy.kcp.io", "v1alpha1", "Workspace"),
            "workspaces",
        ),
    );
    let mut workspaces = BTreeMap::new();
    for name in names {
        let ws_name = format!("e2e-{run}-{name}");
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": ws_name}, "spec": {}}))
        .map_err(|e| HarnessError::Other(e.to_string()))?;
        workspaces_api
            .create(&PostParams::default(), &object)
            .await?;
        wait_for(
            format!("Workspace root:{ws_name} to be Ready"),
            Duration::from_secs(120),
            || async {
                match workspaces_api.get(&ws_name).await {
                    Ok(w) => match w.data.pointer("/status/phase").and_then(Value::as_str) {
                        Some("Ready") => Check::Done(()),
                        other => Check::Pending(format!("phase {}", other.unwrap_or("<none>"))),
                    },
                    Err(e) => Check::Pending(e.to_string()),
                }
            },
        )
        .await
        .map_err(|e| HarnessError::Other(e.to_string()))?;
        let path = format!("root:{ws_name}");
        let mut ws_kubeconfig = raw.clone();
        if let Some(clusters) = ws_kubeconfig["clusters"].as_array_mut() {
            for c in clusters {
                c["cluster"]["server"] = json!(format!("{base_url}/clusters/{path}"));
            }
        }
        let file = log_dir
            .join("kubeconfigs")
            .join(format!("{path}.kubeconfig").replace(':', "."));
        std::fs::write(
            &file,
            serde_json::to_vec_pretty(&ws_kubeconfig).unwrap_or_default(),
        )
        .map_err(|e| HarnessError::io(&file, e))?;
        let client = client_from_kubeconfig(&file).await?;
        let lc: Api<DynamicObject> = Api::all_with(
            client,
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("core.kcp.io", "v1alpha1", "LogicalCluster"),
                "logicalclusters",
            ),
        );
        let cluster = lc.get("cluster").await?;
        let id = cluster
            .data
            .pointer("/status/URL")
            .and_then(Value::as_str)
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        workspaces.insert(
            name.clone(),
            Workspace {
                name,
                path,
                id,
                kubeconfig: file,
            },
        );
    }
    Ok(Env::new_kcp(workspaces, base_url, ca_pem, token, log_dir))
}
