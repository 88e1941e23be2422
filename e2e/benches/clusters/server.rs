//! A synthetic kcp on plain HTTP: the home workspace's APIExportEndpointSlice, and behind the one
//! virtual-workspace (VW) URL it lists, wildcard LIST/WATCH of APIBindings, ConfigMaps and
//! Namespaces.
//!
//! LISTs are served from the [`Fixture`]'s pre-rendered pages; a WATCH sends a BOOKMARK every
//! second and stays open until its `timeoutSeconds`. Open watches are counted per resource
//! while their response streams live, and any request that is not a wildcard one is counted
//! too: a per-cluster request here would mean a cost growing with clusters.

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

use super::fixture::{Fixture, Listing, logical_cluster_id};

/// The home workspace, where the APIExport and its endpoint slice live.
pub const HOME_WORKSPACE: &str = "root:bench";
/// The endpoint slice (and APIExport) name.
pub const SLICE: &str = "kube-bind.io";
/// How often an open watch sends a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);
/// Watch length when the client does not say (the apiserver's default is 30–60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// What the synthetic kcp serves list/watch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `apiexportendpointslices` in the home workspace.
    Slices,
    /// `apibindings` through the VW.
    Bindings,
    /// `configmaps` through the VW.
    ConfigMaps,
    /// `namespaces` through the VW.
    Namespaces,
}

impl Resource {
    pub const ALL: [Self; 4] = [
        Self::Slices,
        Self::Bindings,
        Self::ConfigMaps,
        Self::Namespaces,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Slices => "slices",
            Self::Bindings => "apibindings",
            Self::ConfigMaps => "configmaps",
            Self::Namespaces => "namespaces",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Request counters, live.
#[derive(Default)]
struct Counters {
    open_watches: [AtomicUsize; 4],
    lists: [AtomicUsize; 4],
    /// Requests to one cluster (`/clusters/<id>/…`) rather than `/clusters/*`.
    per_cluster: AtomicUsize,
    /// Requests to a path this server does not serve.
    unexpected: AtomicUsize,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub open_watches: [usize; 4],
    pub lists: [usize; 4],
    pub per_cluster: usize,
    pub unexpected: usize,
}

impl Traffic {
    pub fn open(&self, resource: Resource) -> usize {
        self.open_watches[resource.index()]
    }

    pub fn open_total(&self) -> usize {
        self.open_watches.iter().sum()
    }

    /// The larger of each figure.
    pub fn max(self, other: Self) -> Self {
        let pairwise = |a: [usize; 4], b: [usize; 4]| std::array::from_fn(|i| a[i].max(b[i]));
        Self {
            open_watches: pairwise(self.open_watches, other.open_watches),
            lists: pairwise(self.lists, other.lists),
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
        let vw_url = format!("http://{address}/services/apiexport/{export_cluster}/{SLICE}");
        let state = Arc::new(ServerState {
            slices: slice_listing(&vw_url),
            fixture,
            export_cluster,
            counters: Counters::default(),
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
        let load = |a: &[AtomicUsize; 4]| std::array::from_fn(|i| a[i].load(Ordering::SeqCst));
        Traffic {
            open_watches: load(&c.open_watches),
            lists: load(&c.lists),
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

fn slice_listing(vw_url: &str) -> Listing {
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
        "status": { "endpoints": [{ "url": vw_url }] },
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
    Router::new()
        .route(
            "/clusters/{workspace}/apis/apis.kcp.io/v1alpha1/apiexportendpointslices",
            get(slices),
        )
        .route(
            &format!("{VW}/apis/apis.kcp.io/v1alpha1/apibindings"),
            get(bindings),
        )
        .route(&format!("{VW}/api/v1/configmaps"), get(config_maps))
        .route(&format!("{VW}/api/v1/namespaces"), get(namespaces))
        .fallback(unexpected)
        .with_state(state)
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

/// `/services/apiexport/<export cluster>/<export>/clusters/<cluster>`.
#[derive(Debug, Deserialize)]
struct VwPath {
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
    list_or_watch(&state, Resource::Slices, &state.slices, &query)
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
    let listing = match resource {
        Resource::Slices => &state.slices,
        Resource::Bindings => &state.fixture.bindings,
        Resource::ConfigMaps => &state.fixture.config_maps,
        Resource::Namespaces => &state.fixture.namespaces,
    };
    list_or_watch(state, resource, listing, query)
}

fn list_or_watch(
    state: &Arc<ServerState>,
    resource: Resource,
    listing: &Listing,
    query: &ListQuery,
) -> Response {
    if query.watch {
        let timeout = query
            .timeout_seconds
            .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
        let open = OpenWatch::new(state, resource);
        return json_response(watch_body(listing.bookmark(), timeout, open));
    }
    state.counters.lists[resource.index()].fetch_add(1, Ordering::SeqCst);
    match listing.page(query.limit, query.continue_token.as_deref()) {
        Some(page) => json_response(Body::from(page)),
        None => status(
            StatusCode::GONE,
            "the continue token is not one this server gave out",
        ),
    }
}

/// Counts one open watch of `resource` for as long as its response stream lives.
struct OpenWatch {
    state: Arc<ServerState>,
    resource: Resource,
}

impl OpenWatch {
    fn new(state: &Arc<ServerState>, resource: Resource) -> Self {
        state.counters.open_watches[resource.index()].fetch_add(1, Ordering::SeqCst);
        Self {
            state: state.clone(),
            resource,
        }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.state.counters.open_watches[self.resource.index()].fetch_sub(1, Ordering::SeqCst);
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
