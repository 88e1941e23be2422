//! The `kcp` provider: every logical cluster bound to our APIExport, reached through the
//! APIExport virtual workspace (VW) URLs of its endpoint slice.
//!
//! Same contract as kcp-dev/multicluster-provider's apiexport provider:
//! - the kubeconfig points at the backend's home workspace, where the APIExport and its
//!   `APIExportEndpointSlice` live; the slice is watched by name;
//! - every URL in `status.endpoints[].url` is opened as one [`Endpoint`]; URLs leaving the slice
//!   are closed (their clusters disengaged);
//! - on each endpoint, APIBindings are watched through `<url>/clusters/*/…/apibindings`; the
//!   `kcp.io/cluster` annotation names the logical cluster, engaged with its first `Bound`
//!   binding and disengaged with its last; a change of a bound binding (a claim accepted)
//!   re-triggers the cluster's work.
//!
//! A missing slice (not created yet, or deleted and recreated, as kcp does) is waited for and
//! reported in `/readyz`, as is a kcp older than 0.28 (no `apis.kcp.io/v1alpha2`); an empty slice
//! is normal (no shard of its partition hosts a binding yet). Nothing here ends the process.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::pin::pin;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube_bind_apis::kcp::{APIBinding, APIExportEndpointSlice};
use tokio_util::sync::CancellationToken;

use super::{Cluster, ClusterId, Endpoint, EndpointKind, Provider, ProviderContext};
use crate::readiness::ReadinessCheck;
use crate::runtime::Tolerant;

/// Serves the clusters bound to the APIExport behind one endpoint slice.
pub struct KcpProvider {
    /// Client of the home workspace (where the slice lives).
    home: kube::Client,
    /// Its config: endpoints reuse the credentials and trust, with the VW URL as server.
    config: kube::Config,
    slice: String,
}

impl KcpProvider {
    pub fn new(home: kube::Client, config: kube::Config, slice: impl Into<String>) -> Self {
        Self {
            home,
            config,
            slice: slice.into(),
        }
    }
}

impl Provider for KcpProvider {
    fn run(self: Box<Self>, ctx: ProviderContext) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let slices: Api<Tolerant<APIExportEndpointSlice>> = Api::all(self.home.clone());
            let selector =
                watcher::Config::default().fields(&format!("metadata.name={}", self.slice));
            let mut events = pin!(watcher::watcher(slices, selector).default_backoff());
            let mut open = OpenEndpoints::default();
            let mut listed: Option<bool> = None;
            let health = Health::new(ctx.readiness.clone());
            health.slice(Some(format!(
                "waiting for APIExportEndpointSlice {}",
                self.slice
            )));
            if let Some(floor) = self.below_version_floor().await {
                tracing::error!("{floor}");
                health.slice(Some(floor));
            }
            loop {
                let event = tokio::select! {
                    () = ctx.shutdown.cancelled() => break,
                    event = events.next() => event,
                };
                match event {
                    None => break,
                    Some(Ok(Event::Init)) => listed = Some(false),
                    Some(Ok(Event::InitApply(slice) | Event::Apply(slice))) => {
                        if listed.is_some() {
                            listed = Some(true);
                        }
                        self.slice_changed(&ctx, &health, &mut open, &slice);
                    }
                    Some(Ok(Event::InitDone)) => {
                        if listed == Some(false) {
                            self.slice_missing(&ctx, &health, &mut open);
                        }
                        listed = None;
                    }
                    Some(Ok(Event::Delete(_))) => self.slice_missing(&ctx, &health, &mut open),
                    Some(Err(err)) => {
                        let reason = match self.below_version_floor().await {
                            Some(floor) => floor,
                            None => format!(
                                "cannot watch APIExportEndpointSlice {} in the home workspace: {err}; \
                                 check that --kubeconfig points at the kcp workspace owning the APIExport",
                                self.slice
                            ),
                        };
                        health.slice(Some(reason));
                    }
                }
            }
            open.close_all(&ctx, &health);
        })
    }
}

impl KcpProvider {
    fn slice_changed(
        &self,
        ctx: &ProviderContext,
        health: &Health,
        open: &mut OpenEndpoints,
        slice: &Tolerant<APIExportEndpointSlice>,
    ) {
        let urls: BTreeSet<String> = match slice {
            Tolerant::Valid(slice) => slice.urls().into_iter().map(str::to_owned).collect(),
            Tolerant::Malformed(malformed) => {
                health.slice(Some(format!(
                    "APIExportEndpointSlice {} cannot be read: {}",
                    self.slice, malformed.error
                )));
                return;
            }
        };
        for url in open.urls().difference(&urls).cloned().collect::<Vec<_>>() {
            tracing::info!(%url, slice = %self.slice, "virtual workspace URL left the slice; closing it");
            open.close(ctx, health, &url);
        }
        for url in urls.difference(&open.urls()).cloned().collect::<Vec<_>>() {
            match self.open(ctx, health, &url) {
                Ok(endpoint) => {
                    tracing::info!(%url, slice = %self.slice, "opening virtual workspace");
                    open.insert(url, endpoint);
                }
                Err(err) => {
                    tracing::error!(%url, error = %err, "cannot open virtual workspace URL from the slice; skipped")
                }
            }
        }
        if urls.is_empty() {
            // Normal: kcp lists a shard's URL only while the shard (in the slice's partition, if
            // any) hosts a binding to the export.
            tracing::info!(slice = %self.slice, "APIExportEndpointSlice lists no endpoints: no workspace is bound yet");
        }
        health.slice(None);
    }

    /// Why the home workspace cannot serve kube-bind's kcp setup, if it is a kcp too old (or no
    /// kcp at all): kcp-config needs `apis.kcp.io/v1alpha2` APIExports and the endpoint slices
    /// kcp creates for them, both in kcp 0.28 and later. Other errors say nothing here (the
    /// watch reports them).
    async fn below_version_floor(&self) -> Option<String> {
        let served = match self
            .home
            .list_api_group_resources("apis.kcp.io/v1alpha2")
            .await
        {
            Ok(list) => list.resources.iter().any(|r| r.name == "apiexports"),
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(_) => return None,
        };
        (!served).then(|| {
            "the server --kubeconfig points at serves no apis.kcp.io/v1alpha2 APIExports: \
             kube-bind needs kcp 0.28 or newer (v1alpha2 APIExports and automatic \
             APIExportEndpointSlices); upgrade kcp or point --kubeconfig at a kcp workspace"
                .to_owned()
        })
    }

    fn slice_missing(&self, ctx: &ProviderContext, health: &Health, open: &mut OpenEndpoints) {
        if !open.is_empty() {
            tracing::warn!(slice = %self.slice, "APIExportEndpointSlice is gone; closing its virtual workspaces");
        }
        open.close_all(ctx, health);
        health.slice(Some(format!(
            "APIExportEndpointSlice {} not found in the home workspace; waiting for it \
             (kcp 0.28 and later create it with the APIExport; check --apiexport-endpointslice-name)",
            self.slice
        )));
    }

    /// Opens `url` as an endpoint and starts engaging its clusters.
    fn open(
        &self,
        ctx: &ProviderContext,
        health: &Health,
        url: &str,
    ) -> Result<Arc<Endpoint>, OpenError> {
        let mut config = self.config.clone();
        config.cluster_url = url
            .parse()
            .map_err(|e| OpenError(format!("not a URL: {e}")))?;
        let client = kube::Client::try_from(config).map_err(|e| OpenError(e.to_string()))?;
        let endpoint = Arc::new(Endpoint::new(
            url,
            EndpointKind::VirtualWorkspace,
            client,
            ctx.shutdown.child_token(),
        ));
        ctx.endpoints.insert(endpoint.clone());
        health.endpoint(url, Some("listing its APIBindings".to_owned()));
        tokio::spawn(engage_bound_clusters(
            ctx.clone(),
            health.clone(),
            endpoint.clone(),
        ));
        Ok(endpoint)
    }
}

/// The provider's readiness: the slice's state first, then each open virtual workspace's.
#[derive(Clone)]
struct Health {
    check: ReadinessCheck,
    state: Arc<Mutex<HealthState>>,
}

#[derive(Default)]
struct HealthState {
    /// Why the slice is not usable, if it is not.
    slice: Option<String>,
    /// Virtual-workspace URL → why it cannot serve (yet), if so.
    endpoints: BTreeMap<String, Option<String>>,
}

impl Health {
    fn new(check: ReadinessCheck) -> Self {
        Self {
            check,
            state: Arc::default(),
        }
    }

    fn slice(&self, failure: Option<String>) {
        self.update(|state| state.slice = failure);
    }

    fn endpoint(&self, url: &str, failure: Option<String>) {
        self.update(|state| {
            state.endpoints.insert(url.to_owned(), failure);
        });
    }

    fn forget_endpoint(&self, url: &str) {
        self.update(|state| {
            state.endpoints.remove(url);
        });
    }

    fn update(&self, change: impl FnOnce(&mut HealthState)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut state);
        let failing_endpoint = state.endpoints.iter().find_map(|(url, failure)| {
            failure
                .as_ref()
                .map(|f| format!("virtual workspace {url}: {f}"))
        });
        match state.slice.clone().or(failing_endpoint) {
            Some(reason) => self.check.not_ready(reason),
            None => self.check.ready(),
        }
    }
}

#[derive(Debug)]
struct OpenError(String);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The endpoints this provider opened, by URL.
#[derive(Default)]
struct OpenEndpoints {
    by_url: HashMap<String, Arc<Endpoint>>,
}

impl OpenEndpoints {
    fn urls(&self) -> BTreeSet<String> {
        self.by_url.keys().cloned().collect()
    }

    fn is_empty(&self) -> bool {
        self.by_url.is_empty()
    }

    fn insert(&mut self, url: String, endpoint: Arc<Endpoint>) {
        self.by_url.insert(url, endpoint);
    }

    /// Closes `url`: its watches stop, its clusters are disengaged.
    fn close(&mut self, ctx: &ProviderContext, health: &Health, url: &str) {
        health.forget_endpoint(url);
        if let Some(endpoint) = self.by_url.remove(url) {
            ctx.clusters
                .remove_where(|cluster| cluster.endpoint().instance() == endpoint.instance());
            ctx.endpoints.remove(&url.to_owned());
        }
    }

    fn close_all(&mut self, ctx: &ProviderContext, health: &Health) {
        for url in self.urls() {
            self.close(ctx, health, &url);
        }
    }
}

/// Watches the APIBindings visible through `endpoint` and keeps the engaged clusters in step:
/// a cluster is engaged while at least one of its bindings is `Bound`.
///
/// kcp shows a binding in the virtual workspace from its creation, but denies requests for the
/// export's resources in its cluster until the binding is bound; a binding can stay in phase
/// `Binding` for good (a missing schema, a name conflict). Engaging it earlier would only make
/// every reconcile of that cluster fail (as multicluster-provider, which engages on `Bound`).
async fn engage_bound_clusters(ctx: ProviderContext, health: Health, endpoint: Arc<Endpoint>) {
    let (client, mut answered) = endpoint.observed_wildcard_client();
    let bindings: Api<Tolerant<APIBinding>> = Api::all(client);
    let mut events = pin!(watcher::watcher(bindings, watcher::Config::default()).default_backoff());
    let cancel: CancellationToken = endpoint.cancellation().clone();
    let mut bound = BoundClusters::default();
    let mut relisted: Option<HashSet<BindingName>> = None;
    // Set by a watch error; cleared as soon as the virtual workspace answers the watch again,
    // which after a short outage is a resumed watch, not a new LIST (so no `InitDone` comes).
    let mut failing = false;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => break,
            Ok(()) = answered.changed(), if failing => {
                failing = false;
                tracing::info!(endpoint = endpoint.url(), "watching APIBindings through the virtual workspace again");
                health.endpoint(endpoint.url(), None);
                continue;
            }
            event = events.next() => event,
        };
        let change = match event {
            None => break,
            Some(Ok(Event::Init)) => {
                relisted = Some(HashSet::new());
                continue;
            }
            Some(Ok(Event::InitApply(binding))) => {
                let Some(observed) = observe(&endpoint, &binding) else {
                    continue;
                };
                if observed.bound {
                    relisted
                        .get_or_insert_with(HashSet::new)
                        .insert(observed.name.clone());
                }
                bound.observe(observed)
            }
            Some(Ok(Event::Apply(binding))) => match observe(&endpoint, &binding) {
                Some(observed) => bound.observe(observed),
                None => continue,
            },
            Some(Ok(Event::Delete(binding))) => match observe(&endpoint, &binding) {
                Some(observed) => bound.remove(&observed.name),
                None => continue,
            },
            Some(Ok(Event::InitDone)) => {
                for cluster in bound.retain(&relisted.take().unwrap_or_default()) {
                    disengage(&ctx, &endpoint, &cluster);
                }
                health.endpoint(endpoint.url(), None);
                continue;
            }
            Some(Err(err)) => {
                failing = true;
                answered.mark_unchanged();
                health.endpoint(
                    endpoint.url(),
                    Some(format!(
                        "cannot watch APIBindings: {err}; the backend's identity needs verb list/watch \
                         on apis.kcp.io apiexports/content of the export (see kcp-config/)"
                    )),
                );
                tracing::warn!(endpoint = endpoint.url(), error = %err, "watching APIBindings through the virtual workspace failed; retrying");
                continue;
            }
        };
        match change {
            Some(Binding::First(cluster)) => {
                tracing::info!(%cluster, endpoint = endpoint.url(), "cluster bound; engaging it");
                ctx.clusters.insert(Cluster::new(cluster, endpoint.clone()));
            }
            // E.g. a permission claim was accepted: work waiting on it can go on.
            Some(Binding::Changed(cluster)) if engaged_here(&ctx, &endpoint, &cluster) => {
                ctx.clusters.touch(&cluster);
            }
            Some(Binding::Last(cluster)) => {
                tracing::info!(%cluster, endpoint = endpoint.url(), "cluster has no bound binding left; disengaging it");
                disengage(&ctx, &endpoint, &cluster);
            }
            Some(Binding::Changed(_)) | None => {}
        }
    }
    ctx.clusters
        .remove_where(|cluster| cluster.endpoint().instance() == endpoint.instance());
}

/// Disengages `cluster` if it is still engaged through `endpoint` (not a newer one).
fn disengage(ctx: &ProviderContext, endpoint: &Endpoint, cluster: &ClusterId) {
    if engaged_here(ctx, endpoint, cluster) {
        ctx.clusters.remove(cluster);
    }
}

fn engaged_here(ctx: &ProviderContext, endpoint: &Endpoint, cluster: &ClusterId) -> bool {
    ctx.clusters
        .get(cluster)
        .is_some_and(|c| c.endpoint().instance() == endpoint.instance())
}

/// An APIBinding: (logical cluster, binding name).
type BindingName = (ClusterId, String);

/// What one watch event says about a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    name: BindingName,
    /// kcp reports it `Bound` and it is not being deleted: requests for the export's resources
    /// are served in its cluster.
    bound: bool,
    /// Changes with every write of the binding (spec or status).
    resource_version: Option<String>,
}

fn observe(endpoint: &Endpoint, binding: &Tolerant<APIBinding>) -> Option<Observed> {
    use kube::Resource as _;
    let meta = binding.meta();
    let Some(cluster) = endpoint.cluster_of(meta) else {
        tracing::warn!(endpoint = endpoint.url(), binding = ?meta.name, "APIBinding without kcp.io/cluster annotation; ignored");
        return None;
    };
    let bound = match binding {
        // A binding being deleted is unbinding: kcp is removing its resources.
        Tolerant::Valid(binding) => binding.is_bound() && meta.deletion_timestamp.is_none(),
        Tolerant::Malformed(malformed) => {
            tracing::warn!(
                endpoint = endpoint.url(), %cluster, binding = ?meta.name, error = %malformed.error,
                "APIBinding cannot be read; its cluster is served only while another binding is bound"
            );
            false
        }
    };
    Some(Observed {
        name: (cluster, binding.name_any()),
        bound,
        resource_version: meta.resource_version.clone(),
    })
}

/// A change in whether a cluster has bound bindings.
#[derive(Debug, PartialEq, Eq)]
enum Binding {
    /// Its first bound binding: engage.
    First(ClusterId),
    /// One of its bound bindings changed while it stays engaged.
    Changed(ClusterId),
    /// Its last bound binding went (deleted, or no longer bound): disengage.
    Last(ClusterId),
}

/// Bound bindings per cluster (with the resourceVersion last seen), deciding engagement.
#[derive(Default, Debug)]
struct BoundClusters {
    bindings: HashMap<ClusterId, HashMap<String, Option<String>>>,
}

impl BoundClusters {
    /// Files what a watch event says about a binding.
    fn observe(&mut self, observed: Observed) -> Option<Binding> {
        if !observed.bound {
            return self.remove(&observed.name);
        }
        let (cluster, name) = observed.name;
        let names = self.bindings.entry(cluster.clone()).or_default();
        let first = names.is_empty();
        match names.insert(name, observed.resource_version.clone()) {
            _ if first => Some(Binding::First(cluster)),
            Some(seen) if seen != observed.resource_version => Some(Binding::Changed(cluster)),
            // Another binding of an engaged cluster became bound.
            None => Some(Binding::Changed(cluster)),
            Some(_) => None,
        }
    }

    fn remove(&mut self, (cluster, name): &BindingName) -> Option<Binding> {
        let names = self.bindings.get_mut(cluster)?;
        names.remove(name)?;
        if names.is_empty() {
            self.bindings.remove(cluster);
            return Some(Binding::Last(cluster.clone()));
        }
        None
    }

    /// After a relist: drops bindings not seen bound again; returns clusters left without any.
    fn retain(&mut self, seen: &HashSet<BindingName>) -> Vec<ClusterId> {
        let mut emptied = Vec::new();
        self.bindings.retain(|cluster, names| {
            names.retain(|name, _| seen.contains(&(cluster.clone(), name.clone())));
            if names.is_empty() {
                emptied.push(cluster.clone());
            }
            !names.is_empty()
        });
        emptied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(cluster: &str, binding: &str) -> BindingName {
        (ClusterId::new(cluster), binding.to_owned())
    }

    fn seen(cluster: &str, binding: &str, bound: bool, rv: &str) -> Observed {
        Observed {
            name: name(cluster, binding),
            bound,
            resource_version: Some(rv.to_owned()),
        }
    }

    #[test]
    fn engaged_with_the_first_bound_binding_and_disengaged_with_the_last() {
        let mut bound = BoundClusters::default();
        let a = || ClusterId::new("a");
        assert_eq!(
            bound.observe(seen("a", "kube-bind.io", true, "1")),
            Some(Binding::First(a()))
        );
        assert_eq!(
            bound.observe(seen("a", "kube-bind.io", true, "1")),
            None,
            "the same object seen again is no change"
        );
        assert_eq!(
            bound.observe(seen("a", "other", true, "5")),
            Some(Binding::Changed(a()))
        );
        assert_eq!(bound.remove(&name("a", "kube-bind.io")), None);
        assert_eq!(bound.remove(&name("a", "missing")), None);
        assert_eq!(bound.remove(&name("a", "other")), Some(Binding::Last(a())));
        assert_eq!(bound.remove(&name("a", "other")), None, "already gone");
    }

    #[test]
    fn a_binding_that_is_not_bound_engages_nothing() {
        let mut bound = BoundClusters::default();
        assert_eq!(bound.observe(seen("a", "kube-bind.io", false, "1")), None);
        assert_eq!(bound.observe(seen("a", "kube-bind.io", false, "2")), None);
        assert_eq!(
            bound.observe(seen("a", "kube-bind.io", true, "3")),
            Some(Binding::First(ClusterId::new("a")))
        );
        assert_eq!(
            bound.observe(seen("a", "kube-bind.io", false, "4")),
            Some(Binding::Last(ClusterId::new("a"))),
            "a binding that falls back out of Bound disengages its cluster"
        );
    }

    #[test]
    fn a_change_of_a_bound_binding_is_reported_once() {
        let mut bound = BoundClusters::default();
        bound.observe(seen("a", "kube-bind.io", true, "1"));
        assert_eq!(
            bound.observe(seen("a", "kube-bind.io", true, "2")),
            Some(Binding::Changed(ClusterId::new("a"))),
            "e.g. a claim accepted"
        );
        assert_eq!(bound.observe(seen("a", "kube-bind.io", true, "2")), None);
    }

    #[test]
    fn a_relist_drops_bindings_that_vanished_meanwhile() {
        let mut bound = BoundClusters::default();
        bound.observe(seen("a", "x", true, "1"));
        bound.observe(seen("b", "x", true, "1"));
        bound.observe(seen("b", "y", true, "1"));
        let relisted: HashSet<_> = [name("b", "y")].into_iter().collect();
        assert_eq!(bound.retain(&relisted), vec![ClusterId::new("a")]);
        assert_eq!(
            bound.remove(&name("b", "y")),
            Some(Binding::Last(ClusterId::new("b")))
        );
    }
}

/// The binding watch against a small fake virtual workspace whose watches the test breaks.
#[cfg(test)]
mod watch_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;

    use super::*;
    use crate::provider::{Clusters, Endpoints};
    use crate::readiness::Readiness;

    /// Counts LISTs and WATCHes; the first watch fails with a 500, later ones stay open.
    #[derive(Clone, Default)]
    struct FakeVirtualWorkspace {
        lists: Arc<AtomicUsize>,
        watches: Arc<AtomicUsize>,
    }

    async fn serve(State(vw): State<FakeVirtualWorkspace>, request: Request) -> Response {
        let query = request.uri().query().unwrap_or_default();
        let response = Response::builder().header("content-type", "application/json");
        if !query.contains("watch=true") {
            vw.lists.fetch_add(1, Ordering::SeqCst);
            let list = serde_json::json!({
                "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIBindingList",
                "metadata": {"resourceVersion": "10"},
                "items": [{
                    "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIBinding",
                    "metadata": {"name": "kube-bind.io", "resourceVersion": "9",
                                 "annotations": {KCP_ANNOTATION: "c1"}},
                    "spec": {"reference": {"export": {"path": "root:kube-bind", "name": "kube-bind.io"}}},
                    "status": {"phase": "Bound"},
                }],
            });
            return response.body(Body::from(list.to_string())).unwrap();
        }
        if vw.watches.fetch_add(1, Ordering::SeqCst) == 0 {
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "virtual workspace briefly unavailable", "reason": "InternalError", "code": 500});
            return response
                .status(500)
                .body(Body::from(status.to_string()))
                .unwrap();
        }
        // Resumed: a quiet watch that sends nothing.
        let pending = futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
        response.body(Body::from_stream(pending)).unwrap()
    }

    const KCP_ANNOTATION: &str = crate::provider::KCP_CLUSTER_ANNOTATION;

    #[tokio::test]
    async fn readiness_recovers_when_the_binding_watch_resumes_without_a_relist() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let vw = FakeVirtualWorkspace::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(serve).with_state(vw.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let readiness = Readiness::default();
        let shutdown = CancellationToken::new();
        let ctx = ProviderContext {
            clusters: Clusters::default(),
            endpoints: Endpoints::default(),
            readiness: readiness.register("provider", "starting"),
            shutdown: shutdown.clone(),
        };
        let health = Health::new(ctx.readiness.clone());
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let endpoint = Arc::new(Endpoint::new(
            url.clone(),
            EndpointKind::VirtualWorkspace,
            client,
            shutdown.child_token(),
        ));
        tokio::spawn(engage_bound_clusters(ctx.clone(), health, endpoint));

        let failure = || readiness.report()[0].failure.clone();
        let mut saw_failure = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match failure() {
                Some(reason) if reason.contains("cannot watch APIBindings") => saw_failure = true,
                None if saw_failure => break,
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "readiness never recovered: {:?}, {} watches",
                failure(),
                vw.watches.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ctx.clusters.contains(&ClusterId::new("c1")));
        assert_eq!(vw.lists.load(Ordering::SeqCst), 1, "no relist happened");
        assert_eq!(vw.watches.load(Ordering::SeqCst), 2);
        shutdown.cancel();
        server.abort();
    }
}
