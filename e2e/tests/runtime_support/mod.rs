//! The backend's multicluster runtime run in-process against real kcp or a plain cluster,
//! with a small test reconciler, so integration tests can watch it engage clusters and reconcile.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube_bind_apis::APIServiceExport;
use kube_bind_apis::conditions;
use kube_bind_backend::controllers::status::report_on_conditions;
use kube_bind_backend::provider::kcp::KcpProvider;
use kube_bind_backend::provider::kubernetes::KubernetesProvider;
use kube_bind_backend::provider::{
    Cluster, ClusterId, Clusters, Endpoints, Provider, ProviderContext,
};
use kube_bind_backend::readiness::Readiness;
use kube_bind_backend::runtime::leader::{Leadership, LeaseElection};
use kube_bind_backend::runtime::{
    Action, Cache, Caches, Malformed, Manager, ObjectKey, Reconciler, Request, status,
};
use kube_bind_e2e::harness::{Check, wait_for};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The condition message the test reconciler writes for an export of `n` resources.
pub fn reconciled_message(n: usize) -> String {
    format!("reconciled mark {n}")
}

/// The annotation tests change to see a reconcile happen (`spec.resources` is immutable).
pub const MARK: &str = "e2e.kube-bind.io/mark";

/// Writes `Ready=True` with [`reconciled_message`] into every APIServiceExport's status.
pub struct ExportReconciler {
    /// Written into the condition message, to tell replicas apart.
    replica: String,
    reconciles: Arc<AtomicUsize>,
    /// Names of the objects reported as malformed, in order.
    malformed_reports: Arc<std::sync::Mutex<Vec<String>>>,
    tuning: Tuning,
}

/// How the test reconciler behaves beyond the defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    /// Read the object from its cluster (not only the cache) on every reconcile: a cluster that
    /// stopped answering then holds the reconcile.
    pub live_read: bool,
    /// Reconcile every object again after this long (a periodic resync).
    pub resync: Option<Duration>,
    /// The manager's reconcile deadline (its default if `None`).
    pub reconcile_deadline: Option<Duration>,
}

impl Reconciler for ExportReconciler {
    type Object = APIServiceExport;
    type Error = kube::Error;
    const NAME: &'static str = "test-export";

    async fn reconcile(
        self: Arc<Self>,
        Request {
            cluster,
            key,
            object,
        }: Request<APIServiceExport>,
    ) -> Result<Action, kube::Error> {
        let Some(export) = object else {
            return Ok(Action::Done);
        };
        self.reconciles.fetch_add(1, Ordering::SeqCst);
        let namespace = key.namespace.as_deref().unwrap_or("default");
        let api: Api<APIServiceExport> = Api::namespaced(cluster.client(), namespace);
        if self.tuning.live_read {
            api.get(&key.name).await?;
        }
        let done = match self.tuning.resync {
            Some(every) => Action::RequeueAfter(every),
            None => Action::Done,
        };
        let want = format!(
            "{} by {}",
            reconciled_message(mark_of(&export)),
            self.replica
        );
        let current = export
            .status
            .as_ref()
            .and_then(|s| conditions::get(&s.conditions, "Ready"));
        if current.is_some_and(|c| c.message == want) {
            return Ok(done);
        }
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let status = json!({"conditions": [{
            "type": "Ready", "status": "True", "reason": "Reconciled", "message": want, "lastTransitionTime": now,
        }]});
        // Guarded by the version just read: a concurrent write makes a 409, run again at once.
        status::patch_status(&api, &export, status).await?;
        Ok(done)
    }

    async fn report_malformed(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
        malformed: Arc<Malformed>,
    ) -> Result<Action, kube::Error> {
        self.malformed_reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(key.name.clone());
        report_on_conditions::<APIServiceExport>(&cluster, &key, &malformed, &["v1alpha1"]).await?;
        Ok(Action::Done)
    }
}

/// A running runtime: provider, caches, manager with [`ExportReconciler`].
pub struct Runtime {
    pub clusters: Clusters,
    pub caches: Caches,
    /// Namespaces of every cluster (claimed objects in kcp), cached next to the exports.
    pub namespaces: Arc<Cache<Namespace>>,
    pub readiness: Readiness,
    pub reconciler_cache: Arc<Cache<APIServiceExport>>,
    pub malformed_reports: Arc<std::sync::Mutex<Vec<String>>>,
    /// Reconciles run by this runtime.
    pub reconciles: Arc<AtomicUsize>,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Runtime {
    /// The kcp provider on the workspace `home_kubeconfig` points at, serving slice `slice`.
    pub async fn kcp(home_kubeconfig: &Path, slice: &str) -> anyhow::Result<Self> {
        Self::kcp_tuned(home_kubeconfig, slice, Tuning::default()).await
    }

    /// [`Runtime::kcp`] with a test reconciler tuned by `tuning`.
    pub async fn kcp_tuned(
        home_kubeconfig: &Path,
        slice: &str,
        tuning: Tuning,
    ) -> anyhow::Result<Self> {
        let config = config_from(home_kubeconfig).await?;
        let client = kube::Client::try_from(config.clone())?;
        let provider = Box::new(KcpProvider::new(client, config, slice));
        Self::start_tuned(provider, "replica", |_| Leadership::Always, tuning)
    }

    /// The kubernetes provider on the cluster `kubeconfig` points at.
    pub async fn kubernetes(kubeconfig: &Path) -> anyhow::Result<Self> {
        let config = config_from(kubeconfig).await?;
        let url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config)?;
        let provider = Box::new(KubernetesProvider::new(client, url));
        Self::start(provider, "replica", |_| Leadership::Always)
    }

    /// The kubernetes provider, reconciling only while replica `replica` holds Lease
    /// `default/<lease>` in that cluster.
    pub async fn kubernetes_elected(
        kubeconfig: &Path,
        replica: &str,
        lease: &str,
    ) -> anyhow::Result<Self> {
        let config = config_from(kubeconfig).await?;
        let url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config)?;
        let provider = Box::new(KubernetesProvider::new(client.clone(), url));
        Self::start(provider, replica, |shutdown| {
            Leadership::Elected(LeaseElection::start(
                client, "default", lease, replica, shutdown,
            ))
        })
    }

    fn start(
        provider: Box<dyn Provider>,
        replica: &str,
        leadership: impl FnOnce(&CancellationToken) -> Leadership,
    ) -> anyhow::Result<Self> {
        Self::start_tuned(provider, replica, leadership, Tuning::default())
    }

    fn start_tuned(
        provider: Box<dyn Provider>,
        replica: &str,
        leadership: impl FnOnce(&CancellationToken) -> Leadership,
        tuning: Tuning,
    ) -> anyhow::Result<Self> {
        // Logs show with `--nocapture` and RUST_LOG; a second init in the same binary is a no-op.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let shutdown = CancellationToken::new();
        let clusters = Clusters::default();
        let endpoints = Endpoints::default();
        let readiness = Readiness::default();
        let caches = Caches::new(&endpoints);
        let mut registry = Registry::with_prefix("kube_bind");
        caches.register_metrics(&mut registry);
        // Two workers, one per cluster at most (as the backend caps them with kcp).
        let per_cluster = std::num::NonZeroUsize::new(1);
        let mut manager = Manager::new(&clusters, &caches, per_cluster, &mut registry);
        if let Some(deadline) = tuning.reconcile_deadline {
            manager = manager.with_reconcile_deadline(deadline);
        }
        let reconciler_cache = caches.get::<APIServiceExport>()?;
        let namespaces = caches.get::<Namespace>()?;
        let malformed_reports = Arc::default();
        let reconciles = Arc::new(AtomicUsize::new(0));
        let reconciler = ExportReconciler {
            replica: replica.to_owned(),
            reconciles: Arc::clone(&reconciles),
            malformed_reports: Arc::clone(&malformed_reports),
            tuning,
        };
        manager.controller(reconciler)?.build()?;
        let ctx = ProviderContext {
            clusters: clusters.clone(),
            endpoints,
            readiness: readiness.register("provider", "starting"),
            shutdown: shutdown.child_token(),
        };
        tokio::spawn(provider.run(ctx));
        let workers = std::num::NonZeroUsize::new(2).unwrap_or(std::num::NonZeroUsize::MIN);
        let leadership = leadership(&shutdown);
        tokio::spawn(manager.run(workers, leadership, shutdown.child_token()));
        Ok(Self {
            clusters,
            caches,
            namespaces,
            readiness,
            reconciler_cache,
            malformed_reports,
            reconciles,
            registry: Arc::new(registry),
            shutdown,
        })
    }

    /// Waits until cluster `id` is engaged (`true`) or not (`false`).
    pub async fn wait_engaged(
        &self,
        id: &str,
        engaged: bool,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let cluster = ClusterId::new(id);
        let what = format!(
            "cluster {id} to be {}",
            if engaged { "engaged" } else { "disengaged" }
        );
        wait_for(what, timeout, || async {
            if self.clusters.contains(&cluster) == engaged {
                Check::Done(())
            } else {
                Check::Pending(format!("engaged clusters: {:?}", self.engaged_ids()))
            }
        })
        .await?;
        Ok(())
    }

    /// The runtime's metrics in Prometheus text.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The value of the metric line starting with `series` (name and labels), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    pub fn engaged_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .clusters
            .all()
            .iter()
            .map(|c| c.id().to_string())
            .collect();
        ids.sort();
        ids
    }
}

async fn config_from(kubeconfig: &Path) -> anyhow::Result<kube::Config> {
    kube_bind_e2e::install_crypto_provider();
    let file = kube::config::Kubeconfig::read_from(kubeconfig)?;
    Ok(
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await?,
    )
}

/// The [`MARK`] annotation's number (0 when missing or not a number).
fn mark_of(export: &APIServiceExport) -> usize {
    export
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MARK))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// An APIServiceExport `name` in namespace `default` carrying [`MARK`] `mark`.
pub fn export(name: &str, mark: usize) -> serde_json::Value {
    json!({
        "apiVersion": "kube-bind.io/v1alpha2",
        "kind": "APIServiceExport",
        "metadata": {"name": name, "namespace": "default", "annotations": {MARK: mark.to_string()}},
        "spec": {
            "resources": [{"group": "wildwest.dev", "resource": "cowboys", "versions": ["v1"]}],
            "informerScope": "Namespaced",
        },
    })
}

/// The same export written through the served `v1alpha1` version by an older consumer: read as
/// `v1alpha2` (conversion `None`) it lacks `spec.resources`, so it does not decode.
///
/// Upstream's v1alpha1 schema requires the name `<plural>.<group>` (CEL), so `name` must have
/// that form (e.g. `old-shape-1.wildwest.dev`).
pub fn v1alpha1_export(name: &str) -> serde_json::Value {
    let (plural, group) = name.split_once('.').unwrap_or((name, "wildwest.dev"));
    json!({
        "apiVersion": "kube-bind.io/v1alpha1",
        "kind": "APIServiceExport",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "informerScope": "Namespaced",
            "group": group,
            "names": {"plural": plural, "kind": "Cowboy"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    })
}

/// Waits until APIServiceExport `default/name` (read with `client`, an admin of its workspace)
/// carries a `Ready` condition with `reason` and a message containing `message`.
pub async fn wait_ready_message(
    client: &kube::Client,
    name: &str,
    message: &str,
    reason: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::erase::<APIServiceExport>(&()),
    );
    wait_for(
        format!("APIServiceExport default/{name} to be marked {reason}: {message:?}"),
        timeout,
        || async {
            match api.get_opt(name).await {
                Ok(Some(object)) => {
                    let ready = object
                        .data
                        .pointer("/status/conditions/0")
                        .cloned()
                        .unwrap_or_default();
                    if ready["reason"] == reason
                        && ready["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(message))
                    {
                        Check::Done(())
                    } else {
                        Check::Pending(format!("status is {}", object.data["status"]))
                    }
                }
                Ok(None) => Check::Pending("not found".into()),
                Err(err) => Check::Pending(format!("error: {err}")),
            }
        },
    )
    .await?;
    Ok(())
}

/// Waits until the test reconciler saw APIServiceExport `default/name` with [`MARK`] `mark`.
pub async fn wait_reconciled(
    client: &kube::Client,
    name: &str,
    mark: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    wait_ready_message(
        client,
        name,
        &reconciled_message(mark),
        "Reconciled",
        timeout,
    )
    .await
}

impl Runtime {
    /// The kcp provider serving slice `slice`, as replica `replica` (written into the conditions
    /// it sets, to tell backends apart).
    pub async fn kcp_replica(
        home_kubeconfig: &Path,
        slice: &str,
        replica: &str,
    ) -> anyhow::Result<Self> {
        let config = config_from(home_kubeconfig).await?;
        let client = kube::Client::try_from(config.clone())?;
        let provider = Box::new(KcpProvider::new(client, config, slice));
        Self::start(provider, replica, |_| Leadership::Always)
    }

    /// The kcp provider serving slice `slice`, reconciling only while replica `replica` holds
    /// Lease `default/<lease>` in the home workspace (the backend's `--leader-election-id`).
    pub async fn kcp_elected(
        home_kubeconfig: &Path,
        slice: &str,
        replica: &str,
        lease: &str,
    ) -> anyhow::Result<Self> {
        let config = config_from(home_kubeconfig).await?;
        let client = kube::Client::try_from(config.clone())?;
        let provider = Box::new(KcpProvider::new(client.clone(), config, slice));
        Self::start(provider, replica, |shutdown| {
            Leadership::Elected(LeaseElection::start(
                client, "default", lease, replica, shutdown,
            ))
        })
    }
}
