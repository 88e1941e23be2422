//! Workspaces on a real kcp: made through the tenancy API as users do (`spec.location.selector`
//! places one on a shard), found again when they exist, and an admin kubeconfig for each.
//!
//! Against the kcp this harness starts, workspaces are `root:<name>`. Against a kcp someone else
//! runs (`KCP_KUBECONFIG`), they are `root:e2e-<run>-<name>` and left in place afterwards.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

use super::{
    HarnessError, Workspace,
    env::{Backend, Env, client_from_kubeconfig},
    wait::{Check, wait_for},
};

/// The annotation kcp sets on a Workspace with a hash of the name of the shard it landed on
/// ([`shard_hash`]).
pub const SHARD_ANNOTATION: &str = "internal.tenancy.kcp.io/shard";

/// kcp's hash of a shard name, as in the Workspace annotation [`SHARD_ANNOTATION`]: the first 8
/// characters of the lower-case base-36 form of the name's SHA-224 (leading zero digits dropped,
/// as Go's big.Int prints it).
pub fn shard_hash(name: &str) -> String {
    use sha2::Digest;
    let mut number: Vec<u8> = sha2::Sha224::digest(name.as_bytes()).to_vec();
    let mut digits = Vec::new();
    // Long division of the big-endian number by 36, least significant digit first.
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 36) as u8;
            remainder = value % 36;
        }
        digits.push(char::from_digit(remainder, 36).unwrap_or('0'));
    }
    digits.iter().rev().take(8).collect()
}

/// The name of the shard whose [`shard_hash`] is `hash`, among the Shards of the root workspace
/// (`root` is an admin client of it).
async fn shard_named_by(root: &kube::Client, hash: &str) -> Result<Option<String>, HarnessError> {
    let shards: Api<DynamicObject> = Api::all_with(
        root.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("core.kcp.io", "v1alpha1", "Shard"),
            "shards",
        ),
    );
    let list = shards.list(&Default::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .find(|name| shard_hash(name) == hash))
}

/// How to reach kcp as its admin, read from an admin kubeconfig of the root workspace.
pub struct KcpAccess {
    pub base_url: String,
    pub ca_pem: String,
    pub token: String,
    /// The kubeconfig as JSON, to derive one per workspace.
    raw: Value,
}

/// A prefix unique to this run, for workspaces in a shared kcp: `e2e-<hex seconds>-`.
pub fn run_prefix() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() % 0xfffff)
        .unwrap_or(0);
    format!("e2e-{secs:x}-")
}

/// Makes (or finds) the workspaces `names` (each with the shard to place it on, if any) below
/// `root`, named `<prefix><name>`, and returns the environment. Runs on a thread of its own: the caller may be inside a runtime already.
pub(super) fn attach(
    backend: Backend,
    kubeconfig: &Path,
    names: Vec<(String, Option<String>)>,
    prefix: &str,
    log_dir: PathBuf,
) -> Result<Env, HarnessError> {
    let kubeconfig = kubeconfig.to_path_buf();
    let prefix = prefix.to_string();
    let dir = log_dir.clone();
    let (access, workspaces) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HarnessError::io(&kubeconfig, e))?;
        runtime.block_on(async {
            let access = KcpAccess::read(&kubeconfig)?;
            let root = client_from_kubeconfig(&kubeconfig).await?;
            let mut workspaces = BTreeMap::new();
            for (name, shard) in names {
                let ws = ensure_workspace(
                    &access,
                    &root,
                    &name,
                    &format!("{prefix}{name}"),
                    shard.as_deref(),
                    &dir,
                )
                .await?;
                workspaces.insert(name, ws);
            }
            Ok::<_, HarnessError>((access, workspaces))
        })
    })
    .join()
    .map_err(|_| HarnessError::Other("starting against kcp panicked".into()))??;
    Ok(Env::new_kcp(backend, workspaces, access, log_dir))
}

impl KcpAccess {
    /// Reads the current context of an admin kubeconfig of kcp's root workspace.
    pub fn read(kubeconfig: &Path) -> Result<Self, HarnessError> {
        let bad = |message: &str| HarnessError::Kubeconfig {
            path: kubeconfig.to_path_buf(),
            message: message.to_string(),
        };
        let text =
            std::fs::read_to_string(kubeconfig).map_err(|e| HarnessError::io(kubeconfig, e))?;
        let raw: Value = serde_saphyr::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        let context_name = raw["current-context"].as_str().unwrap_or_default();
        let context = named(&raw["contexts"], context_name)
            .map(|c| c["context"].clone())
            .ok_or_else(|| bad("its current-context names no context"))?;
        let cluster = named(
            &raw["clusters"],
            context["cluster"].as_str().unwrap_or_default(),
        )
        .ok_or_else(|| bad("its current context names no cluster"))?;
        let user = named(&raw["users"], context["user"].as_str().unwrap_or_default())
            .ok_or_else(|| bad("its current context names no user"))?;
        let server = cluster["cluster"]["server"].as_str().unwrap_or_default();
        let base_url = server
            .split("/clusters/")
            .next()
            .unwrap_or(server)
            .trim_end_matches('/')
            .to_string();
        let ca_pem = cluster["cluster"]["certificate-authority-data"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let token = user["user"]["token"]
            .as_str()
            .ok_or_else(|| bad("its current user has no bearer token"))?
            .to_string();
        // Only the current context's cluster and user, pointed at each workspace in turn.
        let raw = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [cluster], "users": [user],
            "contexts": [{"name": context_name, "context": context}],
            "current-context": context_name,
        });
        Ok(KcpAccess {
            base_url,
            ca_pem,
            token,
            raw,
        })
    }

    /// Writes an admin kubeconfig for workspace `path` into `dir` and returns its file.
    pub fn write_workspace_kubeconfig(
        &self,
        path: &str,
        dir: &Path,
    ) -> Result<PathBuf, HarnessError> {
        let mut kubeconfig = self.raw.clone();
        if let Some(clusters) = kubeconfig["clusters"].as_array_mut() {
            for c in clusters {
                c["cluster"]["server"] = json!(format!("{}/clusters/{path}", self.base_url));
            }
        }
        let dir = dir.join("kubeconfigs");
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(&dir, e))?;
        let file = dir.join(format!("{}.kubeconfig", path.replace(':', ".")));
        let text = serde_json::to_vec_pretty(&kubeconfig)
            .map_err(|e| HarnessError::Other(format!("kubeconfig for {path}: {e}")))?;
        std::fs::write(&file, text).map_err(|e| HarnessError::io(&file, e))?;
        Ok(file)
    }
}

fn named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|c| c["name"] == name)
}

fn workspace_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tenancy.kcp.io", "v1alpha1", "Workspace"),
        "workspaces",
    )
}

/// Creates the workspace `root:<ws_name>` (on the shard labelled `shard=<shard>` if given)
/// unless it exists, waits until it is Ready, and returns it with its logical-cluster id and
/// shard. `root` is an admin client of the root workspace.
pub async fn ensure_workspace(
    access: &KcpAccess,
    root: &kube::Client,
    name: &str,
    ws_name: &str,
    shard: Option<&str>,
    dir: &Path,
) -> Result<Workspace, HarnessError> {
    let api: Api<DynamicObject> = Api::all_with(root.clone(), &workspace_resource());
    let mut spec = json!({});
    if let Some(shard) = shard {
        spec["location"] = json!({"selector": {"matchLabels": {"shard": shard}}});
    }
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace",
        "metadata": {"name": ws_name}, "spec": spec,
    }))
    .map_err(|e| HarnessError::Other(e.to_string()))?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let ready = wait_for(
        format!("Workspace root:{ws_name} to be Ready"),
        Duration::from_secs(120),
        || async {
            match api.get(ws_name).await {
                Ok(w) => match w.data.pointer("/status/phase").and_then(Value::as_str) {
                    Some("Ready") => Check::Done(w),
                    other => Check::Pending(format!("phase {}", other.unwrap_or("<none>"))),
                },
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await
    .map_err(|e| HarnessError::Other(e.to_string()))?;
    let hash = ready
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SHARD_ANNOTATION))
        .cloned();
    let landed = match hash {
        Some(hash) => shard_named_by(root, &hash).await?,
        None => None,
    };
    let id = ready
        .data
        .pointer("/spec/cluster")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            HarnessError::Other(format!(
                "Workspace root:{ws_name} is Ready without spec.cluster"
            ))
        })?;
    let path = format!("root:{ws_name}");
    let kubeconfig = access.write_workspace_kubeconfig(&path, dir)?;
    Ok(Workspace {
        name: name.to_string(),
        path,
        id,
        kubeconfig,
        shard: landed,
    })
}

#[cfg(test)]
mod tests {
    use super::shard_hash;

    #[test]
    fn shard_hash_matches_kcps_annotation() {
        // What kcp v0.31 writes into a Workspace scheduled on the shard "root".
        assert_eq!(shard_hash("root"), "1pfxsevk");
    }
}
