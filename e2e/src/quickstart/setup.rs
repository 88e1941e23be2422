//! What the quickstart installs before the backend starts, in either mode. Every step creates or
//! replaces, so running it again over a running setup changes nothing.
//!
//! - plain: the provider cluster gets the kube-bind CRDs, the example CRDs, templates and the
//!   collection; the consumer cluster gets the APIServiceBinding CRD.
//! - kcp: the workspaces are made through the tenancy API; `root:kube-bind` gets kcp-config and
//!   each provider workspace binds `kube-bind.io`
//!   (both through [`setup_kube_bind`]); each provider workspace then gets the example schemas,
//!   its `cowboys-stable` export bound locally, templates and the collection; the consumer
//!   workspace gets the APIServiceBinding CRD. The backend's kubeconfig carries the token of its
//!   own ServiceAccount, so kcp-config's RBAC is all it has.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube_bind_apis::kcp_config;
use serde_json::Value;

use super::{
    Mode, ProviderCluster, Setup, ShardInfo, WorkspaceInfo,
    examples::{self, Examples, ExamplesError, describe},
    say,
};
use crate::harness::{
    Env, HarnessError, Workspace,
    accounts::secret_token,
    apply,
    env::client_from_kubeconfig,
    topology::{self, setup_kube_bind},
    wait::{Check, WaitError, binding_bound, wait_for},
};

/// How long each step may take on a busy machine (first runs compete with builds).
const PATIENCE: Duration = Duration::from_secs(120);
/// The quickstart's workspaces, below `root`.
pub const HOME: &str = "kube-bind";
pub const PROVIDERS: &[&str] = &["provider-a", "provider-b"];
pub const CONSUMER: &str = "consumer";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error(transparent)]
    Examples(#[from] ExamplesError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{workspace}: {message}")]
    Workspace { workspace: String, message: String },
}

/// Plain mode: one provider cluster (served as cluster id `default`) and one consumer cluster.
pub async fn plain(
    provider_kubeconfig: &Path,
    consumer_kubeconfig: &Path,
    examples: &Examples,
) -> Result<Setup, SetupError> {
    let provider = client_from_kubeconfig(provider_kubeconfig).await?;
    let consumer = client_from_kubeconfig(consumer_kubeconfig).await?;
    say("provider: kube-bind CRDs (apis/crds, as upstream ships them)");
    apply::install_kube_bind_crds(&provider, PATIENCE).await?;
    say("provider: example CRDs cowboys.wildwest.dev and sheriffs.wildwest.dev");
    apply::install_crds(&provider, &examples.load(examples::CRDS)?, PATIENCE).await?;
    say("provider: templates cowboys, sheriffs and collection all");
    apply_all(&provider, &examples.load(examples::CATALOG)?).await?;
    say("consumer: APIServiceBinding CRD");
    apply::install_crds(&consumer, &[apiservicebinding_crd()?], PATIENCE).await?;
    Ok(Setup {
        mode: Mode::Plain,
        backend_kubeconfig: provider_kubeconfig.to_path_buf(),
        backend_identity: "admin of the provider cluster".into(),
        providers: vec![ProviderCluster {
            name: "the provider cluster".into(),
            kubeconfig: provider_kubeconfig.to_path_buf(),
            cluster_id: "default".into(),
        }],
        consumer_kubeconfig: consumer_kubeconfig.to_path_buf(),
        kcp_base_url: None,
        endpoint_url: None,
        workspaces: Vec::new(),
        shards: Vec::new(),
        kcp_pids: Default::default(),
    })
}

/// kcp mode, against the kcp `hack/kcp.sh` runs in `kcp_state`: makes the workspaces through
/// the tenancy API (with two or more shards, `provider-b` goes to `shard-1` and the rest to the
/// root shard), then sets them up. The backend's kubeconfig is written to `backend_kubeconfig`;
/// `work_dir` takes the harness's scratch kubeconfigs.
pub async fn kcp(
    kcp_state: &Path,
    examples: &Examples,
    backend_kubeconfig: &Path,
    work_dir: PathBuf,
) -> Result<Setup, SetupError> {
    let shards = read_shards(kcp_state)?;
    let names = placement(shards.len() > 1);
    let root_kubeconfig = kcp_state.join("admin.kubeconfig");
    let env =
        tokio::task::spawn_blocking(move || Env::attach_kcp(&root_kubeconfig, names, work_dir))
            .await
            .map_err(|e| HarnessError::Other(format!("making workspaces: {e}")))??;
    let provider_paths: Vec<String> = PROVIDERS.iter().map(|p| format!("root:{p}")).collect();
    say(format!(
        "root:{HOME}: kcp-config (APIExport {}, schemas, RBAC, bootstrap, self-binding); \
         {} bind it accepting all ten claims",
        kcp_config::EXPORT_NAME,
        provider_paths.join(" and ")
    ));
    let topology = setup_kube_bind(&env, HOME, PROVIDERS, Some(CONSUMER)).await?;

    let mut providers = Vec::new();
    for ws in &topology.providers {
        say(format!(
            "{}: schemas, APIExport cowboys-stable bound locally, templates, collection",
            ws.path
        ));
        let client = ws.client().await?;
        apply_all(&client, &examples.load(examples::KCP_APIS)?).await?;
        binding_bound(&client, &ws.path, examples::KCP_BINDING, PATIENCE).await?;
        for (group, version, plural) in examples::RESOURCES {
            wait_served(&client, &ws.path, group, version, plural).await?;
        }
        apply_all(&client, &examples.load(examples::CATALOG)?).await?;
        providers.push(ProviderCluster {
            name: ws.path.clone(),
            kubeconfig: ws.kubeconfig.clone(),
            cluster_id: logical_cluster_id(ws).await?,
        });
    }

    let consumer = topology
        .consumer
        .clone()
        .ok_or_else(|| HarnessError::UnknownWorkspace(CONSUMER.into()))?;
    say(format!("{}: APIServiceBinding CRD", consumer.path));
    apply::install_crds(
        &consumer.client().await?,
        &[apiservicebinding_crd()?],
        PATIENCE,
    )
    .await?;

    let backend_identity = backend_kubeconfig_for(
        &env,
        &topology.home,
        &topology.endpoint_url,
        backend_kubeconfig,
    )
    .await?;
    Ok(Setup {
        mode: Mode::Kcp,
        backend_kubeconfig: backend_kubeconfig.to_path_buf(),
        backend_identity,
        providers,
        consumer_kubeconfig: consumer.kubeconfig,
        kcp_base_url: Some(env.base_url.clone()),
        endpoint_url: Some(topology.endpoint_url),
        workspaces: [HOME, PROVIDERS[0], PROVIDERS[1], CONSUMER]
            .iter()
            .map(|name| {
                env.workspace(name).map(|ws| WorkspaceInfo {
                    path: ws.path.clone(),
                    cluster: ws.id.clone(),
                    shard: ws.shard.clone(),
                })
            })
            .collect::<Result<_, _>>()?,
        shards,
        kcp_pids: read_pids(kcp_state)?,
    })
}

/// The quickstart's workspaces with the shard each goes to: with several shards, `provider-b`
/// on `shard-1` and the others on `root`; with one, wherever kcp puts them.
fn placement(sharded: bool) -> Vec<(String, Option<String>)> {
    say(format!(
        "workspaces root:{HOME}, root:{}, root:{} and root:{CONSUMER} (tenancy.kcp.io){}",
        PROVIDERS[0],
        PROVIDERS[1],
        if sharded {
            format!("; root:{} on shard-1, the others on root", PROVIDERS[1])
        } else {
            String::new()
        }
    ));
    [HOME, PROVIDERS[0], PROVIDERS[1], CONSUMER]
        .into_iter()
        .map(|name| {
            let shard = match (sharded, name == PROVIDERS[1]) {
                (false, _) => None,
                (true, true) => Some("shard-1".to_string()),
                (true, false) => Some("root".to_string()),
            };
            (name.to_string(), shard)
        })
        .collect()
}

/// `hack/kcp.sh`'s `shards.json`.
fn read_shards(kcp_state: &Path) -> Result<Vec<ShardInfo>, SetupError> {
    let file = kcp_state.join("shards.json");
    let text = std::fs::read_to_string(&file).map_err(|source| SetupError::Io {
        what: format!(
            "reading {} (is kcp running? hack/kcp.sh up)",
            file.display()
        ),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| HarnessError::Other(format!("{}: {e}", file.display())).into())
}

/// `hack/kcp.sh`'s `pids` ("name pid" lines).
fn read_pids(kcp_state: &Path) -> Result<std::collections::BTreeMap<String, u32>, SetupError> {
    let file = kcp_state.join("pids");
    let text = std::fs::read_to_string(&file).map_err(|source| SetupError::Io {
        what: format!("reading {}", file.display()),
        source,
    })?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (name, pid) = line.split_once(' ')?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        })
        .collect())
}

/// Writes the backend's kubeconfig for `home`: the token of kcp-config's ServiceAccount
/// `default/kube-bind-controller` (its legacy token Secret, filled by the controller-manager).
/// Should that identity not reach what the backend needs, falls back to the admin token, says
/// why, and returns whom the kubeconfig is for.
async fn backend_kubeconfig_for(
    env: &Env,
    home: &Workspace,
    endpoint_url: &str,
    target: &Path,
) -> Result<String, SetupError> {
    let (namespace, name) = kcp_config::CONTROLLER_SERVICE_ACCOUNT;
    let server = format!("{}/clusters/{}", env.base_url, home.path);
    let token = service_account_token(home).await?;
    let written = env.write_kubeconfig(&server, &token)?;
    install_file(&written, target)?;
    match backend_access(env, target, endpoint_url, &token).await {
        Ok(()) => Ok(format!(
            "ServiceAccount {namespace}/{name} of {} (kcp-config's RBAC only)",
            home.path
        )),
        Err(reason) => {
            say(format!(
                "WARNING: ServiceAccount {namespace}/{name} cannot do what the backend needs \
                 ({reason}); the backend runs with the ADMIN token instead"
            ));
            let written = env.write_kubeconfig(&server, &env.admin_token)?;
            install_file(&written, target)?;
            Ok(format!(
                "admin of {} (fallback: {namespace}/{name} was refused: {reason})",
                home.path
            ))
        }
    }
}

/// The token the controller-manager put into kcp-config's token Secret for the ServiceAccount.
async fn service_account_token(home: &Workspace) -> Result<String, SetupError> {
    let (namespace, name) = kcp_config::CONTROLLER_SERVICE_ACCOUNT;
    let client = home.client().await?;
    Ok(secret_token(&client, namespace, &format!("{name}-secret"), PATIENCE).await?)
}

/// What the backend does first with its kubeconfig: read the endpoint slice in its workspace,
/// then list APIBindings across the virtual workspace.
async fn backend_access(
    env: &Env,
    kubeconfig: &Path,
    endpoint_url: &str,
    token: &str,
) -> Result<(), String> {
    let home = client_from_kubeconfig(kubeconfig)
        .await
        .map_err(|e| e.to_string())?;
    let slices: Api<DynamicObject> = Api::all_with(
        home,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIExportEndpointSlice"),
            "apiexportendpointslices",
        ),
    );
    slices.get(kcp_config::EXPORT_NAME).await.map_err(|e| {
        format!(
            "get APIExportEndpointSlice {}: {e}",
            kcp_config::EXPORT_NAME
        )
    })?;
    let vw = env
        .client_for(&format!("{endpoint_url}/clusters/*"), token)
        .await
        .map_err(|e| e.to_string())?;
    let bindings: Api<DynamicObject> = Api::all_with(
        vw,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIBinding"),
            "apibindings",
        ),
    );
    bindings
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|e| format!("list APIBindings in the virtual workspace: {e}"))?;
    Ok(())
}

/// Copies a kubeconfig holding a token to `target`, readable by its owner only.
fn install_file(from: &Path, target: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| SetupError::Io {
        what: format!("writing {}", target.display()),
        source,
    };
    let text = std::fs::read(from).map_err(io)?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = target.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    std::fs::rename(&tmp, target).map_err(io)
}

/// The logical-cluster id a user reads: the last segment of `LogicalCluster cluster`'s
/// `status.URL` (checked against the Workspace's `spec.cluster`).
async fn logical_cluster_id(ws: &Workspace) -> Result<String, SetupError> {
    let api: Api<DynamicObject> = Api::all_with(
        ws.client().await?,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("core.kcp.io", "v1alpha1", "LogicalCluster"),
            "logicalclusters",
        ),
    );
    let cluster = api.get("cluster").await.map_err(HarnessError::from)?;
    let id = cluster
        .data
        .pointer("/status/URL")
        .and_then(Value::as_str)
        .and_then(|url| url.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || id != ws.id {
        return Err(SetupError::Workspace {
            workspace: ws.path.clone(),
            message: format!(
                "LogicalCluster cluster says id {id:?}, its Workspace says {:?}",
                ws.id
            ),
        });
    }
    Ok(id)
}

/// Waits until `plural.group` is served in the workspace (a LIST answers).
async fn wait_served(
    client: &kube::Client,
    workspace: &str,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<(), SetupError> {
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, ""), plural),
    );
    wait_for(
        format!("{plural}.{group} to be served in {workspace}"),
        PATIENCE,
        || async {
            match api.list(&ListParams::default().limit(1)).await {
                Ok(_) => Check::Done(()),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

/// Applies `objects` in order, retrying while their API is not served yet (right after a CRD or
/// binding appears); other errors (an invalid object, say) fail at once.
async fn apply_all(client: &kube::Client, objects: &[Value]) -> Result<(), SetupError> {
    for object in objects {
        let applied = wait_for(
            format!("{} to be applied", describe(object)),
            PATIENCE,
            || async {
                match apply::apply(client, object).await {
                    Ok(_) => Check::Done(Ok(())),
                    Err(e) if is_transient(&e) => Check::Pending(e.to_string()),
                    Err(e) => Check::Done(Err(e)),
                }
            },
        )
        .await?;
        applied.map_err(|e| HarnessError::Other(format!("applying {}: {e}", describe(object))))?;
    }
    Ok(())
}

fn is_transient(error: &HarnessError) -> bool {
    // An example APIBinding right after its APIExport: kcp refuses it until it resolved the export.
    if topology::is_bind_refused(error) {
        return true;
    }
    match error {
        HarnessError::Kube(kube::Error::Api(status)) => {
            matches!(status.code, 404 | 409 | 429 | 500 | 503 | 504)
        }
        HarnessError::Kube(
            kube::Error::Discovery(_) | kube::Error::HyperError(_) | kube::Error::Service(_),
        ) => true,
        _ => false,
    }
}

/// `apiservicebindings.kube-bind.io` from `apis/crds/`: the one kube-bind CRD a consumer needs.
fn apiservicebinding_crd() -> Result<Value, SetupError> {
    let crds = kube_bind_apis::crds::all().map_err(|e| HarnessError::Other(e.to_string()))?;
    crds.iter()
        .find(|c| c.metadata.name.as_deref() == Some("apiservicebindings.kube-bind.io"))
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| HarnessError::Other(e.to_string()))?
        .ok_or_else(|| HarnessError::Other("no apiservicebindings CRD in apis/crds".into()).into())
}
