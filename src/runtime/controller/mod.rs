//! Controller plumbing: reconcilers declare the kinds they watch and how events map to keys; the
//! [`Manager`] runs them all on one fair work queue with `--workers` workers.
//!
//! Flow: cache event → mapper → [`WorkKey`] in the queue → worker → reconciler for that key.
//! A key is only reconciled while its cluster is engaged and its endpoint's caches are synced;
//! a disengaged cluster's in-flight reconciles are cancelled.
//!
//! - `reconciler.rs`: the [`Reconciler`] trait, what a controller implements;
//! - `builder.rs`: [`ControllerBuilder`], what else a controller watches and reads;
//! - `metrics.rs`: reconcile counts and durations per controller;
//! - here: the [`Manager`], which dispatches keys to controllers.

mod builder;
mod events;
mod failure;
mod metrics;
mod reconciler;

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource as _;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use self::builder::ControllerBuilder;
pub use self::events::{EventRecorder, REPORTING_CONTROLLER};
pub use self::failure::FORBIDDEN_RETRY;
pub use self::reconciler::{Reconciler, Request};

use self::events::Reason;
use self::failure::{Followup, describe};
use self::metrics::{ControllerLabels, ReconcileMetrics, ResultLabels};
use super::cache::{Cache, SyncState};
use super::caches::{CacheError, Caches};
use super::leader::Leadership;
use super::object::{Entry, ObjectKey};
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

/// A failed reconcile, as the manager sees it.
struct Failed {
    followup: Followup,
    message: String,
    /// The object the reconcile was for, when it exists (its failure event refers to it).
    regarding: Option<Box<ObjectReference>>,
}

impl Failed {
    fn new(
        error: &(dyn std::error::Error + 'static),
        regarding: Option<Box<ObjectReference>>,
    ) -> Self {
        Self {
            followup: Followup::of(error),
            message: describe(error),
            regarding,
        }
    }

    /// Writes the failure as an event on its object, for the outcomes people must see.
    fn record(&self, events: &EventRecorder, cluster: &Cluster) {
        let Some(regarding) = self.regarding.as_deref().cloned() else {
            return;
        };
        match self.followup {
            Followup::Failure => {
                events.failed(cluster, regarding, Reason::ReconcileFailed, &self.message);
            }
            Followup::Forbidden => {
                let note = format!(
                    "{}; kube-bind-backend is not permitted to do this: on kcp, accept the \
                     permission claims of the kube-bind.io APIBinding in this workspace, \
                     otherwise grant the backend's RBAC; it retries on its own",
                    self.message
                );
                events.failed(cluster, regarding, Reason::Forbidden, &note);
            }
            Followup::Conflict => {}
        }
    }
}

/// Type-erased controller, as the manager dispatches to it.
trait Dispatch: Send + Sync {
    fn reconcile(
        &self,
        cluster: Cluster,
        key: ObjectKey,
    ) -> BoxFuture<'static, Result<Action, Failed>>;
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
    ) -> BoxFuture<'static, Result<Action, Failed>> {
        let reconciler = self.reconciler.clone();
        let object = match self.primary.entry(&key) {
            Some(Entry::Malformed(malformed)) => {
                let future = reconciler.report_malformed(cluster, key, malformed);
                let failed = |error: R::Error| Failed::new(&error, None);
                return Box::pin(async move { future.await.map_err(failed) });
            }
            Some(Entry::Valid(object)) => Some(object),
            None => None,
        };
        let regarding = object.as_ref().map(|o| Box::new(o.object_ref(&())));
        let failed = move |error: R::Error| Failed::new(&error, regarding);
        let future = reconciler.reconcile(Request {
            cluster,
            key,
            object,
        });
        Box::pin(async move { future.await.map_err(failed) })
    }
    fn keys(&self, cluster: &ClusterId) -> Vec<ObjectKey> {
        self.primary.keys(cluster)
    }
    fn is_synced(&self, instance: u64) -> bool {
        self.reads.iter().all(|c| c.is_endpoint_synced(instance))
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
    events: EventRecorder,
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
            events: EventRecorder::new("kube-bind-backend"),
        }
    }

    /// Writes failure events through `events` (whose instance names this replica).
    #[must_use]
    pub fn with_events(mut self, events: EventRecorder) -> Self {
        self.events = events;
        self
    }

    /// Cancels (and retries with backoff) a reconcile that runs longer than `deadline`.
    #[must_use]
    pub fn with_reconcile_deadline(mut self, deadline: Duration) -> Self {
        self.reconcile_deadline = deadline;
        self
    }

    /// The caches controllers declare theirs in (to hand them to a reconciler before it is
    /// registered; declare them read with [`ControllerBuilder::reads`] too).
    pub fn caches(&self) -> &Caches {
        &self.caches
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
    ) -> Result<ControllerBuilder<'_, R>, CacheError> {
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
            refused: None,
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
        let events = self.events.clone();
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
            let events = events.clone();
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
                        result = tokio::time::timeout(deadline, controller.reconcile(cluster.clone(), object)) => {
                            result.unwrap_or_else(|_| Err(Failed {
                                followup: Followup::Failure,
                                message: format!(
                                    "reconcile did not finish within {deadline:?} (its cluster may not answer); cancelled, retrying with backoff"
                                ),
                                regarding: None,
                            }))
                        }
                    };
                    if let Err(failed) = &result {
                        failed.record(&events, &cluster);
                    }
                    let (outcome, result) = match result {
                        Ok(action) => ("success", Ok(action)),
                        Err(failed) => match failed.followup.action() {
                            Some(action) => {
                                tracing::debug!(error = %failed.message, ?action, "reconcile refused; not a failure");
                                (failed.followup.label(), Ok(action))
                            }
                            None if started.elapsed() >= deadline => ("timeout", Err(failed.message)),
                            None => ("error", Err(failed.message)),
                        },
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    /// A cache whose first LIST is done on endpoint 1 only.
    struct SyncedOn(u64);

    impl SyncState for SyncedOn {
        fn resource(&self) -> &str {
            "fakes"
        }
        fn is_endpoint_synced(&self, instance: u64) -> bool {
            instance == self.0
        }
    }

    struct Nothing;

    impl Reconciler for Nothing {
        type Object = ConfigMap;
        type Error = kube::Error;
        const NAME: &'static str = "nothing";
        async fn reconcile(self: Arc<Self>, _: Request<ConfigMap>) -> Result<Action, kube::Error> {
            Ok(Action::Done)
        }
    }

    #[test]
    fn a_controller_waits_only_for_the_caches_it_reads() {
        let registered = |reads: Vec<Arc<dyn SyncState>>| Registered {
            reconciler: Arc::new(Nothing),
            primary: Arc::new(Cache::<ConfigMap>::new()),
            reads,
        };
        let own = registered(vec![Arc::new(SyncedOn(1))]);
        let with_slow_cache = registered(vec![Arc::new(SyncedOn(1)), Arc::new(SyncedOn(2))]);
        assert!(own.is_synced(1));
        assert!(
            !with_slow_cache.is_synced(1),
            "one of its caches is not listed yet"
        );
        assert!(!own.is_synced(2));
    }
}
