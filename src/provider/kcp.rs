//! The `kcp` provider: every logical cluster bound to our APIExport, reached through the
//! APIExport virtual workspace (VW) URLs of its endpoint slice.
//!
//! Same contract as kcp-dev/multicluster-provider's apiexport provider:
//! - the kubeconfig points at the backend's home workspace, where the APIExport and its
//!   `APIExportEndpointSlice` live; the slice is watched by name;
//! - every URL in `status.endpoints[].url` is opened as one [`Endpoint`]; URLs leaving the slice
//!   are closed (their clusters disengaged);
//! - on each endpoint, APIBindings are watched through `<url>/clusters/*/…/apibindings`; the
//!   `kcp.io/cluster` annotation names the logical cluster, engaged with its first binding and
//!   disengaged with its last.
//!
//! A missing slice (not created yet, or deleted and recreated, as kcp does) is waited for and
//! reported in `/readyz`; nothing here ends the process.

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
                    Some(Err(err)) => health.slice(Some(format!(
                        "cannot watch APIExportEndpointSlice {} in the home workspace: {err}; \
                         check that --kubeconfig points at the kcp workspace owning the APIExport",
                        self.slice
                    ))),
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
            health.slice(Some(format!(
                "APIExportEndpointSlice {} lists no endpoints yet; waiting for kcp to fill status.endpoints",
                self.slice
            )));
        } else {
            health.slice(None);
        }
    }

    fn slice_missing(&self, ctx: &ProviderContext, health: &Health, open: &mut OpenEndpoints) {
        if !open.is_empty() {
            tracing::warn!(slice = %self.slice, "APIExportEndpointSlice is gone; closing its virtual workspaces");
        }
        open.close_all(ctx, health);
        health.slice(Some(format!(
            "APIExportEndpointSlice {} not found in the home workspace; waiting for it \
             (kcp creates it with the APIExport; check --apiexport-endpointslice-name)",
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
/// a cluster is engaged while at least one of its bindings exists.
async fn engage_bound_clusters(ctx: ProviderContext, health: Health, endpoint: Arc<Endpoint>) {
    let bindings: Api<Tolerant<APIBinding>> = Api::all(endpoint.wildcard_client());
    let mut events = pin!(watcher::watcher(bindings, watcher::Config::default()).default_backoff());
    let cancel: CancellationToken = endpoint.cancellation().clone();
    let mut bound = BoundClusters::default();
    let mut relisted: Option<HashSet<BindingName>> = None;
    loop {
        let event = tokio::select! {
            () = cancel.cancelled() => break,
            event = events.next() => event,
        };
        let change = match event {
            None => break,
            Some(Ok(Event::Init)) => {
                relisted = Some(HashSet::new());
                continue;
            }
            Some(Ok(Event::InitApply(binding))) => {
                let Some(name) = binding_name(&endpoint, &binding) else {
                    continue;
                };
                relisted
                    .get_or_insert_with(HashSet::new)
                    .insert(name.clone());
                bound.add(name)
            }
            Some(Ok(Event::Apply(binding))) => match binding_name(&endpoint, &binding) {
                Some(name) => bound.add(name),
                None => continue,
            },
            Some(Ok(Event::Delete(binding))) => match binding_name(&endpoint, &binding) {
                Some(name) => bound.remove(&name),
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
                ctx.clusters.insert(Cluster::new(cluster, endpoint.clone()));
            }
            Some(Binding::Last(cluster)) => disengage(&ctx, &endpoint, &cluster),
            None => {}
        }
    }
    ctx.clusters
        .remove_where(|cluster| cluster.endpoint().instance() == endpoint.instance());
}

/// Disengages `cluster` if it is still engaged through `endpoint` (not a newer one).
fn disengage(ctx: &ProviderContext, endpoint: &Endpoint, cluster: &ClusterId) {
    if ctx
        .clusters
        .get(cluster)
        .is_some_and(|c| c.endpoint().instance() == endpoint.instance())
    {
        ctx.clusters.remove(cluster);
    }
}

/// An APIBinding: (logical cluster, binding name).
type BindingName = (ClusterId, String);

fn binding_name(endpoint: &Endpoint, binding: &Tolerant<APIBinding>) -> Option<BindingName> {
    use kube::Resource as _;
    let meta = binding.meta();
    match endpoint.cluster_of(meta) {
        Some(cluster) => Some((cluster, binding.name_any())),
        None => {
            tracing::warn!(endpoint = endpoint.url(), binding = ?meta.name, "APIBinding without kcp.io/cluster annotation; ignored");
            None
        }
    }
}

/// A change in whether a cluster has bindings.
#[derive(Debug, PartialEq, Eq)]
enum Binding {
    First(ClusterId),
    Last(ClusterId),
}

/// Bindings per cluster, deciding engagement.
#[derive(Default, Debug)]
struct BoundClusters {
    bindings: HashMap<ClusterId, HashSet<String>>,
}

impl BoundClusters {
    fn add(&mut self, (cluster, name): BindingName) -> Option<Binding> {
        let names = self.bindings.entry(cluster.clone()).or_default();
        let first = names.is_empty();
        names.insert(name);
        first.then_some(Binding::First(cluster))
    }

    fn remove(&mut self, (cluster, name): &BindingName) -> Option<Binding> {
        let names = self.bindings.get_mut(cluster)?;
        if !names.remove(name) {
            return None;
        }
        if names.is_empty() {
            self.bindings.remove(cluster);
            return Some(Binding::Last(cluster.clone()));
        }
        None
    }

    /// After a relist: drops bindings not seen again; returns clusters left without any.
    fn retain(&mut self, seen: &HashSet<BindingName>) -> Vec<ClusterId> {
        let mut emptied = Vec::new();
        self.bindings.retain(|cluster, names| {
            names.retain(|name| seen.contains(&(cluster.clone(), name.clone())));
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

    #[test]
    fn engaged_with_the_first_binding_and_disengaged_with_the_last() {
        let mut bound = BoundClusters::default();
        assert_eq!(
            bound.add(name("a", "kube-bind.io")),
            Some(Binding::First(ClusterId::new("a")))
        );
        assert_eq!(
            bound.add(name("a", "kube-bind.io")),
            None,
            "an update is not a new binding"
        );
        assert_eq!(bound.add(name("a", "other")), None);
        assert_eq!(bound.remove(&name("a", "kube-bind.io")), None);
        assert_eq!(bound.remove(&name("a", "missing")), None);
        assert_eq!(
            bound.remove(&name("a", "other")),
            Some(Binding::Last(ClusterId::new("a")))
        );
        assert_eq!(bound.remove(&name("a", "other")), None, "already gone");
    }

    #[test]
    fn a_relist_drops_bindings_that_vanished_meanwhile() {
        let mut bound = BoundClusters::default();
        bound.add(name("a", "x"));
        bound.add(name("b", "x"));
        bound.add(name("b", "y"));
        let seen: HashSet<_> = [name("b", "y")].into_iter().collect();
        assert_eq!(bound.retain(&seen), vec![ClusterId::new("a")]);
        assert_eq!(
            bound.remove(&name("b", "y")),
            Some(Binding::Last(ClusterId::new("b")))
        );
    }
}
