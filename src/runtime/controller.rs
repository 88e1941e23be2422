//! Controller plumbing: reconcilers declare the kinds they watch and how events map to keys; the
//! [`Manager`] runs them all on one fair work queue with `--workers` workers.
//!
//! Flow: cache event → mapper → [`WorkKey`] in the queue → worker → reconciler for that key.
//! A key is only reconciled while its cluster is engaged and its endpoint's caches are synced;
//! a disengaged cluster's in-flight reconciles are cancelled.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::cache::{Cache, CacheEvent, CachedResource, SyncState};
use super::caches::{Caches, LateCache};
use super::leader::Leadership;
use super::object::{Entry, Malformed, ObjectKey, is_namespaced};
use super::queue::{Backoff, FairKey, Outcome, QueueMetrics, WorkQueue, run_workers};
use crate::provider::{Change, Cluster, ClusterId, Clusters};

/// How long a key waits when its caches are not synced yet.
const UNSYNCED_RETRY: Duration = Duration::from_millis(250);
/// How long in-flight reconciles may finish when leadership or the process ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one reconcile may take before it is cancelled and retried with backoff, so a
/// cluster that stopped answering gives its worker back.
pub const DEFAULT_RECONCILE_DEADLINE: Duration = Duration::from_secs(60);

/// One unit of work: an object, and the controller that reconciles it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WorkKey {
    /// The controller's name (one controller per primary kind).
    pub controller: &'static str,
    pub object: ObjectKey,
}

impl fmt::Debug for WorkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.controller, self.object)
    }
}

impl FairKey for WorkKey {
    type Group = ClusterId;
    fn group(&self) -> &ClusterId {
        &self.object.cluster
    }
}

/// What a reconcile asks for next.
pub type Action = Outcome;

/// The logic of one controller: make the world match one object of its primary kind.
pub trait Reconciler: Send + Sync + 'static {
    /// The primary kind; its events enqueue its own keys.
    type Object: CachedResource;
    type Error: fmt::Display + Send + 'static;

    /// Name in logs, metrics and work keys, e.g. `clusterbinding`.
    const NAME: &'static str;

    /// Reconciles `key` in `cluster`. The object may be absent (deleted): read it from the
    /// cache and decide. Must be idempotent. Malformed objects go to
    /// [`Reconciler::report_malformed`] instead.
    fn reconcile(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send + 'static;

    /// Tells the owner of `key` that its object cannot be read (e.g. an enum field holds a type
    /// the schema of an older apiserver let through). Only that object is affected; the default
    /// logs it. Kinds with status conditions should write one (see [`report_on_conditions`]).
    fn report_malformed(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
        malformed: Arc<Malformed>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send + 'static {
        let _ = cluster;
        async move {
            tracing::warn!(
                controller = Self::NAME, object = %key, error = %malformed.error,
                "object cannot be decoded; fix or delete it"
            );
            Ok(Action::Done)
        }
    }
}

/// Writes `Ready=False` (reason `InvalidObject`, the decode error as message) into the status
/// conditions of the malformed object at `key`, replacing them: they cannot be trusted when the
/// object does not decode.
///
/// An object that does not fit `K`'s schema is often refused by the apiserver in that version
/// too (e.g. one written through an older served version with `conversion: None`), so the
/// status is tried in `K`'s version first, then in each of `older_versions`, the first the
/// apiserver accepts wins. Returns whether one did; when none does, the object is logged and
/// left alone (retrying would not help). Transient errors are returned, to be retried.
pub async fn report_on_conditions<K: CachedResource>(
    cluster: &Cluster,
    key: &ObjectKey,
    malformed: &Malformed,
    older_versions: &[&str],
) -> Result<bool, kube::Error> {
    use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let patch = serde_json::json!({
        "status": {
            "conditions": [{
                "type": "Ready",
                "status": "False",
                "severity": "Error",
                "reason": "InvalidObject",
                "message": format!("the object cannot be read by kube-bind: {}; fix or recreate it", malformed.error),
                "lastTransitionTime": now,
            }]
        }
    });
    let current = K::version(&());
    let versions = std::iter::once(current.as_ref()).chain(older_versions.iter().copied());
    let mut refusals = Vec::new();
    for version in versions {
        let mut resource = ApiResource::erase::<K>(&());
        resource.version = version.to_owned();
        resource.api_version = match resource.group.as_str() {
            "" => version.to_owned(),
            group => format!("{group}/{version}"),
        };
        let api: Api<DynamicObject> = match &key.namespace {
            Some(namespace) => Api::namespaced_with(cluster.client(), namespace, &resource),
            None => Api::all_with(cluster.client(), &resource),
        };
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            // Refused as it stands (invalid, not served in that version, forbidden): try the next.
            Err(kube::Error::Api(status))
                if (400..500).contains(&status.code) && status.code != 429 =>
            {
                refusals.push(format!("{version}: {}", status.message));
            }
            Err(err) => return Err(err),
        }
    }
    tracing::warn!(
        object = %key, error = %malformed.error, refusals = ?refusals,
        "object cannot be decoded and its status cannot be written; fix or delete it"
    );
    Ok(false)
}

/// Type-erased controller, as the manager dispatches to it.
trait Dispatch: Send + Sync {
    fn reconcile(
        &self,
        cluster: Cluster,
        key: ObjectKey,
    ) -> BoxFuture<'static, Result<Action, String>>;
    /// Every cached primary key of `cluster` (to enqueue on engagement and on becoming leader).
    fn keys(&self, cluster: &ClusterId) -> Vec<ObjectKey>;
    /// Whether every cache this controller reads completed its first LIST on endpoint
    /// `instance` (each controller waits only for its own caches).
    fn is_synced(&self, instance: u64) -> bool;
}

struct Registered<R: Reconciler> {
    reconciler: Arc<R>,
    primary: Arc<Cache<R::Object>>,
    /// Every cache the controller reads, the primary included.
    reads: Vec<Arc<dyn SyncState>>,
}

impl<R: Reconciler> Dispatch for Registered<R> {
    fn reconcile(
        &self,
        cluster: Cluster,
        key: ObjectKey,
    ) -> BoxFuture<'static, Result<Action, String>> {
        let reconciler = self.reconciler.clone();
        if let Some(Entry::Malformed(malformed)) = self.primary.entry(&key) {
            let future = reconciler.report_malformed(cluster, key, malformed);
            return Box::pin(async move { future.await.map_err(|e| e.to_string()) });
        }
        let future = reconciler.reconcile(cluster, key);
        Box::pin(async move { future.await.map_err(|e| e.to_string()) })
    }
    fn keys(&self, cluster: &ClusterId) -> Vec<ObjectKey> {
        self.primary.keys(cluster)
    }
    fn is_synced(&self, instance: u64) -> bool {
        self.reads.iter().all(|c| c.is_endpoint_synced(instance))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

/// Per-controller reconcile metrics.
#[derive(Clone)]
struct ReconcileMetrics {
    total: Family<ResultLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
}

impl ReconcileMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            total: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        };
        registry.register(
            "reconcile",
            "Reconciles by controller and result",
            metrics.total.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in reconcile, by controller",
            metrics.duration.clone(),
        );
        metrics
    }
}

/// Runs every controller of the process on one queue.
pub struct Manager {
    clusters: Clusters,
    caches: Caches,
    queue: WorkQueue<WorkKey>,
    controllers: Arc<HashMap<&'static str, Arc<dyn Dispatch>>>,
    metrics: ReconcileMetrics,
    reconcile_deadline: Duration,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.controllers.keys().collect();
        f.debug_struct("Manager")
            .field("controllers", &names)
            .finish()
    }
}

impl Manager {
    /// A manager over `caches`, enqueueing every cached key of a cluster when it is engaged.
    ///
    /// `per_cluster` caps the workers one logical cluster can hold at once, so the keys of a
    /// cluster that stopped answering cannot occupy them all (`None`: no cap, for a single
    /// cluster).
    pub fn new(
        clusters: &Clusters,
        caches: &Caches,
        per_cluster: Option<NonZeroUsize>,
        registry: &mut Registry,
    ) -> Self {
        let queue = WorkQueue::new("controllers", Backoff::default()).with_group_limit(per_cluster);
        QueueMetrics::register(registry).attach(&queue);
        Self {
            clusters: clusters.clone(),
            caches: caches.clone(),
            queue,
            controllers: Arc::default(),
            metrics: ReconcileMetrics::register(registry),
            reconcile_deadline: DEFAULT_RECONCILE_DEADLINE,
        }
    }

    /// Cancels (and retries with backoff) a reconcile that runs longer than `deadline`.
    #[must_use]
    pub fn with_reconcile_deadline(mut self, deadline: Duration) -> Self {
        self.reconcile_deadline = deadline;
        self
    }

    /// The shared work queue (e.g. for tests and metrics).
    pub fn queue(&self) -> &WorkQueue<WorkKey> {
        &self.queue
    }

    /// Starts declaring the controller for `reconciler`; its primary cache must be declarable
    /// (before the provider starts).
    pub fn controller<R: Reconciler>(
        &mut self,
        reconciler: R,
    ) -> Result<ControllerBuilder<'_, R>, LateCache> {
        let primary = self.caches.get::<R::Object>()?;
        let queue = self.queue.clone();
        primary.on_change(move |event| {
            queue.add(WorkKey {
                controller: R::NAME,
                object: event.key().clone(),
            });
        });
        let reads: Vec<Arc<dyn SyncState>> = vec![primary.clone()];
        Ok(ControllerBuilder {
            manager: self,
            reconciler: Arc::new(reconciler),
            primary,
            reads,
            late: None,
        })
    }

    fn register<R: Reconciler>(&mut self, registered: Registered<R>) {
        // `controllers` is only shared once `run` starts, which takes the manager by value:
        // every registration happens before.
        if let Some(controllers) = Arc::get_mut(&mut self.controllers) {
            controllers.insert(R::NAME, Arc::new(registered));
        }
    }

    /// Reconciles until `shutdown`: at once, or only while holding the lease of `leadership`.
    /// The provider, caches and HTTP keep running on followers.
    pub async fn run(
        self,
        workers: NonZeroUsize,
        mut leadership: Leadership,
        shutdown: CancellationToken,
    ) {
        self.enqueue_on_engagement();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = leadership.acquired() => {}
            }
            tracing::info!(controllers = ?self.controllers.keys().collect::<Vec<_>>(), workers, "starting reconcilers");
            self.enqueue_everything();
            let lost = CancellationToken::new();
            let running = run_workers(self.queue.clone(), workers, lost.clone(), self.handler());
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = leadership.lost() => tracing::warn!("lost leadership; stopping reconcilers"),
            }
            lost.cancel();
            if tokio::time::timeout(DRAIN_TIMEOUT, running.join())
                .await
                .is_err()
            {
                tracing::warn!(
                    in_flight = self.queue.in_flight(),
                    "reconciles still running after {DRAIN_TIMEOUT:?}"
                );
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
        if let Err(err) = self.queue.drain(DRAIN_TIMEOUT).await {
            tracing::warn!(error = %err, "work queue did not drain");
        }
        leadership.release().await;
    }

    fn handler(
        &self,
    ) -> impl Fn(&WorkKey) -> BoxFuture<'static, Result<Action, String>> + Send + Sync + 'static
    {
        let clusters = self.clusters.clone();
        let controllers = self.controllers.clone();
        let metrics = self.metrics.clone();
        let deadline = self.reconcile_deadline;
        move |key: &WorkKey| {
            let Some(controller) = controllers.get(key.controller).cloned() else {
                return Box::pin(async { Ok(Action::Done) });
            };
            // Work for a cluster that left is dropped; it is re-enqueued if the cluster returns.
            let Some(cluster) = clusters.get(&key.object.cluster) else {
                return Box::pin(async { Ok(Action::Done) });
            };
            if !controller.is_synced(cluster.endpoint().instance()) {
                return Box::pin(async { Ok(Action::RequeueAfter(UNSYNCED_RETRY)) });
            }
            let name = key.controller;
            let object = key.object.clone();
            let metrics = metrics.clone();
            let span = tracing::info_span!(
                "reconcile", controller = name, cluster = %object.cluster,
                namespace = object.namespace.as_deref().unwrap_or(""), name = %object.name
            );
            Box::pin(
                async move {
                    let started = Instant::now();
                    let cancelled = cluster.cancellation().clone();
                    let result = tokio::select! {
                        () = cancelled.cancelled() => Ok(Action::Done),
                        result = tokio::time::timeout(deadline, controller.reconcile(cluster, object)) => {
                            result.unwrap_or_else(|_| Err(format!(
                                "reconcile did not finish within {deadline:?} (its cluster may not answer); cancelled, retrying with backoff"
                            )))
                        }
                    };
                    let outcome = match &result {
                        Ok(_) => "success",
                        Err(_) if started.elapsed() >= deadline => "timeout",
                        Err(_) => "error",
                    };
                    metrics
                        .total
                        .get_or_create(&ResultLabels {
                            controller: name,
                            result: outcome,
                        })
                        .inc();
                    metrics
                        .duration
                        .get_or_create(&ControllerLabels { controller: name })
                        .observe(started.elapsed().as_secs_f64());
                    result
                }
                .instrument(span),
            )
        }
    }

    /// Enqueues every cached primary key of a cluster when it is engaged (its objects may have
    /// been cached before it was).
    fn enqueue_on_engagement(&self) {
        let queue = self.queue.clone();
        let controllers = self.controllers.clone();
        self.clusters.on_change(move |change| match change {
            Change::Added(cluster) | Change::Touched(cluster) => {
                enqueue_cluster(&queue, &controllers, cluster.id());
            }
            Change::Removed(_) => {}
        });
    }

    fn enqueue_everything(&self) {
        for cluster in self.clusters.all() {
            enqueue_cluster(&self.queue, &self.controllers, cluster.id());
        }
    }
}

fn enqueue_cluster(
    queue: &WorkQueue<WorkKey>,
    controllers: &HashMap<&'static str, Arc<dyn Dispatch>>,
    cluster: &ClusterId,
) {
    for (name, controller) in controllers {
        for object in controller.keys(cluster) {
            queue.add(WorkKey {
                controller: name,
                object,
            });
        }
    }
}

/// Declares what else a controller watches and reads; finish with [`ControllerBuilder::build`].
#[must_use = "a controller is only registered by `build`"]
pub struct ControllerBuilder<'m, R: Reconciler> {
    manager: &'m mut Manager,
    reconciler: Arc<R>,
    primary: Arc<Cache<R::Object>>,
    reads: Vec<Arc<dyn SyncState>>,
    /// The first cache declared too late, reported by `build`.
    late: Option<LateCache>,
}

impl<R: Reconciler> ControllerBuilder<'_, R> {
    /// The primary kind's cache (to read objects in the reconciler).
    pub fn primary(&self) -> &Arc<Cache<R::Object>> {
        &self.primary
    }

    /// Events of `C` enqueue their controller owner of the primary kind.
    pub fn owns<C: CachedResource>(self) -> Self {
        let queue = self.manager.queue.clone();
        self.on::<C>(move |event| {
            for owner in controller_owners::<R::Object, C>(event) {
                queue.add(WorkKey {
                    controller: R::NAME,
                    object: owner,
                });
            }
        })
    }

    /// Events of `C` enqueue whatever primary keys `map` returns (e.g. through an index).
    pub fn watches<C: CachedResource>(
        self,
        map: impl Fn(&CacheEvent<'_, C>) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self {
        let queue = self.manager.queue.clone();
        self.on::<C>(move |event| {
            for object in map(event) {
                queue.add(WorkKey {
                    controller: R::NAME,
                    object,
                });
            }
        })
    }

    /// Declares that the reconciler reads the cache of `C` (its keys wait for its first LIST)
    /// and returns it. `owns` and `watches` declare their caches themselves.
    pub fn reads<C: CachedResource>(&mut self) -> Option<Arc<Cache<C>>> {
        match self.manager.caches.get::<C>() {
            Ok(cache) => {
                self.reads.push(cache.clone());
                Some(cache)
            }
            Err(late) => {
                self.late.get_or_insert(late);
                None
            }
        }
    }

    fn on<C: CachedResource>(
        mut self,
        listener: impl Fn(&CacheEvent<'_, C>) + Send + Sync + 'static,
    ) -> Self {
        if let Some(cache) = self.reads::<C>() {
            cache.on_change(listener);
        }
        self
    }

    /// Registers the controller with the manager; refused if one of its caches was declared
    /// after the caches started.
    pub fn build(self) -> Result<(), LateCache> {
        if let Some(late) = self.late {
            return Err(late);
        }
        let registered = Registered {
            reconciler: self.reconciler,
            primary: self.primary,
            reads: self.reads,
        };
        self.manager.register(registered);
        Ok(())
    }
}

/// The keys of `event`'s controller owners of kind `O` (owners live in the child's namespace
/// if `O` is namespaced, else at cluster scope).
fn controller_owners<O: CachedResource, C: CachedResource>(
    event: &CacheEvent<'_, C>,
) -> Vec<ObjectKey> {
    let (key, entry) = match event {
        CacheEvent::Applied { key, new, .. } => (*key, *new),
        CacheEvent::Deleted { key, old } => (*key, *old),
    };
    let kind = O::kind(&());
    let group = O::group(&());
    let namespace = if is_namespaced::<O>() {
        key.namespace.clone()
    } else {
        None
    };
    entry
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|r| {
            r.controller == Some(true) && r.kind == kind && group_of(&r.api_version) == group
        })
        .map(|r| ObjectKey::new(key.cluster.clone(), namespace.clone(), &r.name))
        .collect()
}

/// The group of an `apiVersion` (`""` for the core `v1`).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube_bind_apis::{APIServiceExport, APIServiceExportRequest};

    use super::*;

    fn owned_config_map(owners: Vec<OwnerReference>) -> Entry<ConfigMap> {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("child".into());
        cm.metadata.namespace = Some("ns".into());
        cm.metadata.owner_references = Some(owners);
        Entry::Valid(Arc::new(cm))
    }

    fn owner(api_version: &str, kind: &str, name: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            controller: Some(controller),
            ..Default::default()
        }
    }

    #[test]
    fn owned_objects_map_to_their_controller_owner_of_the_primary_kind() {
        let key = ObjectKey::new(ClusterId::new("c1"), Some("ns".into()), "child");
        let entry = owned_config_map(vec![
            owner("kube-bind.io/v1alpha2", "APIServiceExport", "export", true),
            // Not the controller: ignored.
            owner("kube-bind.io/v1alpha2", "APIServiceExport", "other", false),
            // Another kind: ignored.
            owner(
                "kube-bind.io/v1alpha2",
                "APIServiceExportRequest",
                "request",
                true,
            ),
        ]);
        let event = CacheEvent::Applied {
            key: &key,
            old: None,
            new: &entry,
        };
        assert_eq!(
            controller_owners::<APIServiceExport, ConfigMap>(&event),
            [ObjectKey::new(
                ClusterId::new("c1"),
                Some("ns".into()),
                "export"
            )]
        );
        assert_eq!(
            controller_owners::<APIServiceExportRequest, ConfigMap>(&event),
            [ObjectKey::new(
                ClusterId::new("c1"),
                Some("ns".into()),
                "request"
            )]
        );
    }

    #[test]
    fn an_older_version_of_the_owner_still_maps_and_cluster_scoped_owners_have_no_namespace() {
        let key = ObjectKey::new(ClusterId::new("c1"), Some("ns".into()), "child");
        let entry = owned_config_map(vec![
            owner("kube-bind.io/v1alpha1", "APIServiceExport", "export", true),
            owner("v1", "Namespace", "ns", true),
        ]);
        let event = CacheEvent::Deleted {
            key: &key,
            old: &entry,
        };
        assert_eq!(
            controller_owners::<APIServiceExport, ConfigMap>(&event).len(),
            1
        );
        assert_eq!(
            controller_owners::<Namespace, ConfigMap>(&event),
            [ObjectKey::new(ClusterId::new("c1"), None, "ns")]
        );
    }

    #[test]
    fn groups_of_api_versions() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("kube-bind.io/v1alpha2"), "kube-bind.io");
        assert_eq!(group_of("apis.kcp.io/v1alpha1"), "apis.kcp.io");
    }
}
