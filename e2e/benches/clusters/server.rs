//! A synthetic kcp on plain HTTP: the home workspace's APIExportEndpointSlice (and the
//! `apis.kcp.io/v1alpha2` discovery by which the provider tells kcp ≥ 0.28), and behind each
//! virtual-workspace (VW) URL it lists (one per shard), wildcard LIST/WATCH of APIBindings,
//! ConfigMaps and Namespaces.
//!
//! Shards are path prefixes of the one listener: shard 0 is served where kcp serves an APIExport
//! VW (`/services/apiexport/<export cluster>/<export>`), shard `s` ≥ 1 under `/shards/<s>` in
//! front of that; each serves its own share of the clusters (see [`Fixture`]).
//!
//! LISTs are served from the [`Fixture`]'s pre-rendered pages; a WATCH sends a BOOKMARK every
//! second and stays open until its `timeoutSeconds`. Open watches are counted per shard and
//! resource while their response streams live, and any request that is not a wildcard one is
//! counted too, on every shard: a per-cluster request here would mean a cost growing with
//! clusters.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::fixture::{Fixture, Listing, ShardListings, logical_cluster_id};

/// The home workspace, where the APIExport and its endpoint slice live.
pub const HOME_WORKSPACE: &str = "root:bench";
/// The endpoint slice (and APIExport) name.
pub const SLICE: &str = "kube-bind.io";
/// How often an open watch sends a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);
/// Watch length when the client does not say (the apiserver's default is 30–60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// What each shard's virtual workspace serves list/watch for (the slice is watched apart, on
/// the home workspace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Bindings,
    ConfigMaps,
    Namespaces,
}

impl Resource {
    pub const ALL: [Self; 3] = [Self::Bindings, Self::ConfigMaps, Self::Namespaces];

    pub fn label(self) -> &'static str {
        match self {
            Self::Bindings => "apibindings",
            Self::ConfigMaps => "configmaps",
            Self::Namespaces => "namespaces",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn listing(self, shard: &ShardListings) -> &Listing {
        match self {
            Self::Bindings => &shard.bindings,
            Self::ConfigMaps => &shard.config_maps,
            Self::Namespaces => &shard.namespaces,
        }
    }
}

/// Request counters, live.
struct Counters {
    /// Open watches of the slice, on the home workspace.
    slice_watches: AtomicUsize,
    /// Per shard, open watches of each [`Resource`].
    shard_watches: Vec<[AtomicUsize; 3]>,
    /// Requests to one cluster (`/clusters/<id>/…`) rather than `/clusters/*`, on any shard.
    per_cluster: AtomicUsize,
    /// Requests to a path this server does not serve.
    unexpected: AtomicUsize,
}

/// Which counter an open watch counts in.
#[derive(Debug, Clone, Copy)]
enum Watched {
    /// The slice, on the home workspace.
    Slice,
    /// A resource on one shard.
    Shard(usize, Resource),
}

impl Counters {
    /// The open-watch counter of `watched`; `None` for a shard this server does not have.
    fn open_watches(&self, watched: Watched) -> Option<&AtomicUsize> {
        match watched {
            Watched::Slice => Some(&self.slice_watches),
            Watched::Shard(shard, resource) => self
                .shard_watches
                .get(shard)
                .map(|open| &open[resource.index()]),
        }
    }

    fn new(shards: usize) -> Self {
        Self {
            slice_watches: AtomicUsize::new(0),
            shard_watches: (0..shards).map(|_| Default::default()).collect(),
            per_cluster: AtomicUsize::new(0),
            unexpected: AtomicUsize::new(0),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Open watches of the slice, on the home workspace.
    pub slice_watches: usize,
    /// Per shard, open watches of each [`Resource`] (indexed as [`Resource::ALL`]).
    pub shard_watches: Vec<[usize; 3]>,
    pub per_cluster: usize,
    pub unexpected: usize,
}

impl Traffic {
    /// Open watches of `resource` on `shard`.
    pub fn open(&self, shard: usize, resource: Resource) -> usize {
        self.shard_watches
            .get(shard)
            .map_or(0, |open| open[resource.index()])
    }

    pub fn open_total(&self) -> usize {
        self.slice_watches + self.shard_watches.iter().flatten().sum::<usize>()
    }

    /// The larger of each figure.
    pub fn max(self, other: &Self) -> Self {
        let shards = self.shard_watches.len().max(other.shard_watches.len());
        let open = |t: &Self, shard: usize| t.shard_watches.get(shard).copied().unwrap_or_default();
        Self {
            slice_watches: self.slice_watches.max(other.slice_watches),
            shard_watches: (0..shards)
                .map(|s| {
                    let (a, b) = (open(&self, s), open(other, s));
                    std::array::from_fn(|r| a[r].max(b[r]))
                })
                .collect(),
            per_cluster: self.per_cluster.max(other.per_cluster),
            unexpected: self.unexpected.max(other.unexpected),
        }
    }
}

/// A running synthetic kcp; stops when dropped.
pub struct SyntheticKcp {
    address: SocketAddr,
    state: Arc<ServerState>,
    task: JoinHandle<()>,
}

impl Drop for SyntheticKcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SyntheticKcp {
    /// Serves `fixture` on a free port of 127.0.0.1.
    pub async fn start(fixture: Fixture) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let export_cluster = logical_cluster_id(usize::MAX);
        let vw_urls: Vec<String> = (0..fixture.shards.len())
            .map(|shard| {
                let prefix = match shard {
                    0 => String::new(),
                    s => format!("/shards/{s}"),
                };
                format!("http://{address}{prefix}/services/apiexport/{export_cluster}/{SLICE}")
            })
            .collect();
        let state = Arc::new(ServerState {
            slices: slice_listing(&vw_urls),
            counters: Counters::new(fixture.shards.len()),
            fixture,
            export_cluster,
        });
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("synthetic kcp stopped: {err}");
            }
        });
        Ok(Self {
            address,
            state,
            task,
        })
    }

    /// The home workspace URL (what the backend's kubeconfig would point at).
    pub fn home_url(&self) -> String {
        format!("http://{}/clusters/{HOME_WORKSPACE}", self.address)
    }

    pub fn traffic(&self) -> Traffic {
        let c = &self.state.counters;
        Traffic {
            slice_watches: c.slice_watches.load(Ordering::SeqCst),
            shard_watches: c
                .shard_watches
                .iter()
                .map(|open| std::array::from_fn(|r| open[r].load(Ordering::SeqCst)))
                .collect(),
            per_cluster: c.per_cluster.load(Ordering::SeqCst),
            unexpected: c.unexpected.load(Ordering::SeqCst),
        }
    }

    /// Waits until no watch is open (the last client's connections were noticed closed).
    pub async fn wait_idle(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.traffic().open_total() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

struct ServerState {
    fixture: Fixture,
    slices: Listing,
    export_cluster: String,
    counters: Counters,
}

fn slice_listing(vw_urls: &[String]) -> Listing {
    let endpoints: Vec<_> = vw_urls.iter().map(|url| json!({ "url": url })).collect();
    let slice = json!({
        "apiVersion": "apis.kcp.io/v1alpha1",
        "kind": "APIExportEndpointSlice",
        "metadata": {
            "name": SLICE,
            "uid": "00000000-0000-4000-8000-000000000000",
            "resourceVersion": "1",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "annotations": { "kcp.io/cluster": HOME_WORKSPACE },
        },
        "spec": { "export": { "path": HOME_WORKSPACE, "name": SLICE } },
        "status": { "endpoints": endpoints },
    });
    Listing::render(
        "apis.kcp.io/v1alpha1",
        "APIExportEndpointSlice",
        "1",
        &[slice],
    )
}

fn router(state: Arc<ServerState>) -> Router {
    const VW: &str = "/services/apiexport/{export_cluster}/{export}/clusters/{cluster}";
    let mut router = Router::new()
        .route(
            "/clusters/{workspace}/apis/apis.kcp.io/v1alpha1/apiexportendpointslices",
            get(slices),
        )
        .route(
            "/clusters/{workspace}/apis/apis.kcp.io/v1alpha2",
            get(kcp_apis),
        );
    // Shard 0 where kcp serves the VW; the others behind a `/shards/{shard}` prefix.
    for prefix in ["", "/shards/{shard}"] {
        router = router
            .route(
                &format!("{prefix}{VW}/apis/apis.kcp.io/v1alpha1/apibindings"),
                get(bindings),
            )
            .route(&format!("{prefix}{VW}/api/v1/configmaps"), get(config_maps))
            .route(&format!("{prefix}{VW}/api/v1/namespaces"), get(namespaces));
    }
    router.fallback(unexpected).with_state(state)
}

/// The list/watch query parameters that matter here.
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    watch: bool,
    limit: Option<usize>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
    #[serde(rename = "timeoutSeconds")]
    timeout_seconds: Option<u64>,
    #[serde(rename = "fieldSelector")]
    field_selector: Option<String>,
}

/// `[/shards/<shard>]/services/apiexport/<export cluster>/<export>/clusters/<cluster>`.
#[derive(Debug, Deserialize)]
struct VwPath {
    /// 0 when the path has no `/shards/<shard>` prefix.
    #[serde(default)]
    shard: usize,
    export_cluster: String,
    export: String,
    cluster: String,
}

async fn slices(
    State(state): State<Arc<ServerState>>,
    Path(workspace): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let wanted = format!("metadata.name={SLICE}");
    if workspace != HOME_WORKSPACE || query.field_selector.as_deref().is_some_and(|s| s != wanted) {
        state.counters.unexpected.fetch_add(1, Ordering::SeqCst);
        return status(
            StatusCode::NOT_FOUND,
            "only the kube-bind.io slice of the home workspace is served",
        );
    }
    list_or_watch(&state, Watched::Slice, &state.slices, &query)
}

/// Discovery of `apis.kcp.io/v1alpha2` in the home workspace: APIExports are served, as in kcp
/// 0.28 and later, so the provider's version check passes.
async fn kcp_apis(
    State(state): State<Arc<ServerState>>,
    Path(workspace): Path<String>,
) -> Response {
    if workspace != HOME_WORKSPACE {
        state.counters.unexpected.fetch_add(1, Ordering::SeqCst);
        return status(StatusCode::NOT_FOUND, "only the home workspace is served");
    }
    let resources = json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apis.kcp.io/v1alpha2",
        "resources": [{
            "name": "apiexports",
            "singularName": "apiexport",
            "namespaced": false,
            "kind": "APIExport",
            "verbs": ["get", "list", "watch"],
        }],
    });
    json_response(Body::from(resources.to_string()))
}

async fn bindings(
    State(state): State<Arc<ServerState>>,
    Path(vw): Path<VwPath>,
    Query(query): Query<ListQuery>,
) -> Response {
    serve_vw(&state, Resource::Bindings, &vw, &query)
}

async fn config_maps(
    State(state): State<Arc<ServerState>>,
    Path(vw): Path<VwPath>,
    Query(query): Query<ListQuery>,
) -> Response {
    serve_vw(&state, Resource::ConfigMaps, &vw, &query)
}

async fn namespaces(
    State(state): State<Arc<ServerState>>,
    Path(vw): Path<VwPath>,
    Query(query): Query<ListQuery>,
) -> Response {
    serve_vw(&state, Resource::Namespaces, &vw, &query)
}

async fn unexpected(State(state): State<Arc<ServerState>>) -> Response {
    state.counters.unexpected.fetch_add(1, Ordering::SeqCst);
    status(
        StatusCode::NOT_FOUND,
        "the synthetic kcp does not serve this path",
    )
}

fn serve_vw(
    state: &Arc<ServerState>,
    resource: Resource,
    vw: &VwPath,
    query: &ListQuery,
) -> Response {
    let Some(shard) = state.fixture.shards.get(vw.shard) else {
        state.counters.unexpected.fetch_add(1, Ordering::SeqCst);
        return status(StatusCode::NOT_FOUND, "no such shard");
    };
    if vw.export_cluster != state.export_cluster || vw.export != SLICE {
        state.counters.unexpected.fetch_add(1, Ordering::SeqCst);
        return status(StatusCode::NOT_FOUND, "no such APIExport virtual workspace");
    }
    if vw.cluster != "*" {
        state.counters.per_cluster.fetch_add(1, Ordering::SeqCst);
        return status(
            StatusCode::NOT_FOUND,
            "the synthetic kcp serves wildcard requests only",
        );
    }
    let watched = Watched::Shard(vw.shard, resource);
    list_or_watch(state, watched, resource.listing(shard), query)
}

/// Serves `listing`; a watch is counted as `watched` while it lives.
fn list_or_watch(
    state: &Arc<ServerState>,
    watched: Watched,
    listing: &Listing,
    query: &ListQuery,
) -> Response {
    if query.watch {
        let timeout = query
            .timeout_seconds
            .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
        let open = OpenWatch::new(state, watched);
        return json_response(watch_body(listing.bookmark(), timeout, open));
    }
    match listing.page(query.limit, query.continue_token.as_deref()) {
        Some(page) => json_response(Body::from(page)),
        None => status(
            StatusCode::GONE,
            "the continue token is not one this server gave out",
        ),
    }
}

/// Counts one open watch in its [`Watched`] counter for as long as its response stream lives.
struct OpenWatch {
    state: Arc<ServerState>,
    watched: Watched,
}

impl OpenWatch {
    fn new(state: &Arc<ServerState>, watched: Watched) -> Self {
        if let Some(open) = state.counters.open_watches(watched) {
            open.fetch_add(1, Ordering::SeqCst);
        }
        Self {
            state: state.clone(),
            watched,
        }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        if let Some(open) = self.state.counters.open_watches(self.watched) {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A BOOKMARK every [`BOOKMARK_EVERY`] until `timeout`; the stream holds `open` until dropped
/// (at its end, or when hyper notices the client went away).
fn watch_body(bookmark: Bytes, timeout: Duration, open: OpenWatch) -> Body {
    let deadline = Instant::now() + timeout;
    let bookmarks = futures::stream::unfold(open, move |open| {
        let bookmark = bookmark.clone();
        async move {
            let next = Instant::now() + BOOKMARK_EVERY;
            if next > deadline {
                tokio::time::sleep_until(deadline).await;
                return None;
            }
            tokio::time::sleep_until(next).await;
            Some((Ok::<_, Infallible>(bookmark), open))
        }
    });
    Body::from_stream(bookmarks)
}

fn json_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A Kubernetes `Status` error.
fn status(code: StatusCode, message: &str) -> Response {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
