//! A logical cluster and the endpoint it is reached through.
//!
//! Clients are cheap views: every cluster of an endpoint shares the endpoint's one HTTP stack
//! (connection pool, TLS, credentials) and only adds its path prefix, so an engaged cluster costs
//! a few hundred bytes however many there are. A cluster builds its client once, on first use
//! (every `kube::Client` owns a request-buffer task).
//!
//! Every request but a watch has a deadline ([`REQUEST_TIMEOUT`]): a cluster or shard that
//! stopped answering fails its callers instead of holding them. Watches are bounded by the
//! kubeconfig's read timeout instead, since a quiet watch legitimately reads nothing for minutes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a request other than a watch may take, response headers included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Annotation kcp puts on every object served through a wildcard (`/clusters/*`) request.
pub const KCP_CLUSTER_ANNOTATION: &str = "kcp.io/cluster";

/// The name of a logical cluster: a kcp logical cluster id, or `""` for the one cluster of the
/// kubernetes provider.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(Arc<str>);

impl ClusterId {
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::from(id.as_ref()))
    }

    /// The single cluster of the kubernetes provider.
    pub fn single() -> Self {
        Self::new("")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// How clusters are laid out behind an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// A plain apiserver that is itself the (single) cluster.
    Direct,
    /// A kcp APIExport virtual workspace: `/clusters/<id>` for one cluster, `/clusters/*` for all.
    VirtualWorkspace,
}

/// Distinguishes successive endpoints of one URL (closed, then opened again).
static NEXT_ENDPOINT_ID: AtomicU64 = AtomicU64::new(1);

/// One URL the provider connects to, with the HTTP stack all its clusters share.
pub struct Endpoint {
    instance: u64,
    url: String,
    kind: EndpointKind,
    client: kube::Client,
    cancel: CancellationToken,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Endpoint {
    /// `client` must already target `url` (its base URI is joined with every request path).
    pub fn new(
        url: impl Into<String>,
        kind: EndpointKind,
        client: kube::Client,
        cancel: CancellationToken,
    ) -> Self {
        let instance = NEXT_ENDPOINT_ID.fetch_add(1, Ordering::Relaxed);
        Self {
            instance,
            url: url.into(),
            kind,
            client,
            cancel,
        }
    }

    /// Unique per opened endpoint, even when a URL is closed and opened again.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(super) fn url_string(&self) -> &String {
        &self.url
    }

    pub fn kind(&self) -> EndpointKind {
        self.kind
    }

    /// Cancelled when the endpoint leaves the provider (e.g. its URL left the endpoint slice).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// A client whose requests reach every cluster behind this endpoint at once. Builds a new
    /// client: take one per watch, not per request.
    pub fn wildcard_client(&self) -> kube::Client {
        self.prefixed(self.wildcard_prefix(), None)
    }

    /// A [`Self::wildcard_client`] whose successful (2xx) responses are counted in the returned
    /// receiver: whoever saw its watch fail can tell when it resumed, even without a new LIST.
    pub fn observed_wildcard_client(&self) -> (kube::Client, watch::Receiver<u64>) {
        let (successes, observer) = watch::channel(0);
        let client = self.prefixed(self.wildcard_prefix(), Some(Arc::new(successes)));
        (client, observer)
    }

    fn wildcard_prefix(&self) -> String {
        match self.kind {
            EndpointKind::Direct => String::new(),
            EndpointKind::VirtualWorkspace => "/clusters/*".to_owned(),
        }
    }

    /// The cluster an object from [`Self::wildcard_client`] belongs to.
    pub fn cluster_of(&self, meta: &kube::api::ObjectMeta) -> Option<ClusterId> {
        match self.kind {
            EndpointKind::Direct => Some(ClusterId::single()),
            EndpointKind::VirtualWorkspace => meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(KCP_CLUSTER_ANNOTATION))
                .map(ClusterId::new),
        }
    }

    fn cluster_client(&self, id: &ClusterId) -> kube::Client {
        match self.kind {
            EndpointKind::Direct => self.prefixed(String::new(), None),
            EndpointKind::VirtualWorkspace => self.prefixed(format!("/clusters/{id}"), None),
        }
    }

    /// The URL a cluster is reached at (what consumer kubeconfigs are derived from).
    pub fn cluster_url(&self, id: &ClusterId) -> String {
        match self.kind {
            EndpointKind::Direct => self.url.clone(),
            EndpointKind::VirtualWorkspace => {
                format!("{}/clusters/{id}", self.url.trim_end_matches('/'))
            }
        }
    }

    fn prefixed(&self, prefix: String, successes: Option<Arc<watch::Sender<u64>>>) -> kube::Client {
        let service = PathPrefix {
            prefix: Arc::from(prefix),
            inner: self.client.clone(),
            successes,
        };
        kube::Client::new(service, self.client.default_namespace())
    }
}

/// An engaged logical cluster.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<ClusterInner>,
}

struct ClusterInner {
    id: ClusterId,
    endpoint: Arc<Endpoint>,
    cancel: CancellationToken,
    /// Built on first use, then shared by every caller.
    client: OnceLock<kube::Client>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.inner.id)
            .field("endpoint", &self.inner.endpoint.url)
            .finish()
    }
}

impl Cluster {
    pub fn new(id: ClusterId, endpoint: Arc<Endpoint>) -> Self {
        let cancel = endpoint.cancel.child_token();
        Self {
            inner: Arc::new(ClusterInner {
                id,
                endpoint,
                cancel,
                client: OnceLock::new(),
            }),
        }
    }

    pub fn id(&self) -> &ClusterId {
        &self.inner.id
    }

    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.inner.endpoint
    }

    /// A client scoped to this cluster. Cheap: a clone of the cluster's one client.
    pub fn client(&self) -> kube::Client {
        self.inner
            .client
            .get_or_init(|| self.inner.endpoint.cluster_client(&self.inner.id))
            .clone()
    }

    /// Cancelled when the cluster is disengaged; work for it should stop.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }
}

/// Prepends a path to every request before handing it to the endpoint's shared client, puts a
/// deadline on every request but a watch, and counts successful responses if asked to.
#[derive(Clone)]
struct PathPrefix {
    prefix: Arc<str>,
    inner: kube::Client,
    successes: Option<Arc<watch::Sender<u64>>>,
}

impl tower::Service<Request<Body>> for PathPrefix {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner client buffers requests itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let joined = format!("{}{}", self.prefix, path_and_query);
        let deadline = (!is_watch(parts.uri.query())).then_some(REQUEST_TIMEOUT);
        let client = self.inner.clone();
        let successes = self.successes.clone();
        Box::pin(async move {
            parts.uri = joined
                .parse()
                .map_err(|e: http::uri::InvalidUri| kube::Error::Service(e.into()))?;
            let sent = client.send(Request::from_parts(parts, body));
            let response = match deadline {
                Some(deadline) => tokio::time::timeout(deadline, sent)
                    .await
                    .map_err(|_| kube::Error::Service(Box::new(TimedOut(deadline))))?,
                None => sent.await,
            };
            if let Some(successes) = successes
                && response.as_ref().is_ok_and(|r| r.status().is_success())
            {
                successes.send_modify(|n| *n = n.wrapping_add(1));
            }
            response
        })
    }
}

/// Whether a request's query asks for a watch (`watch=true`, `watch=1`).
fn is_watch(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| matches!(pair, "watch=true" | "watch=1"))
    })
}

/// A request that got no response within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the API server did not answer within {0:?}; it may be overloaded or hung, retrying")]
struct TimedOut(Duration);

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(kind: EndpointKind) -> Endpoint {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("https://kcp.example:6443".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        Endpoint::new(
            "https://kcp.example:6443/services/apiexport/root/kube-bind.io",
            kind,
            client,
            CancellationToken::new(),
        )
    }

    #[tokio::test]
    async fn virtual_workspace_clusters_live_under_clusters_id() {
        let vw = endpoint(EndpointKind::VirtualWorkspace);
        assert_eq!(
            vw.cluster_url(&ClusterId::new("2ocmmccjkme8bof4")),
            "https://kcp.example:6443/services/apiexport/root/kube-bind.io/clusters/2ocmmccjkme8bof4"
        );
        let mut meta = kube::api::ObjectMeta::default();
        assert_eq!(vw.cluster_of(&meta), None, "no annotation, no cluster");
        meta.annotations = Some([(KCP_CLUSTER_ANNOTATION.to_owned(), "abc".to_owned())].into());
        assert_eq!(vw.cluster_of(&meta), Some(ClusterId::new("abc")));
    }

    #[tokio::test]
    async fn a_direct_endpoint_is_its_one_cluster() {
        let direct = endpoint(EndpointKind::Direct);
        assert_eq!(direct.cluster_url(&ClusterId::single()), direct.url());
        assert_eq!(
            direct.cluster_of(&kube::api::ObjectMeta::default()),
            Some(ClusterId::single())
        );
    }

    #[test]
    fn only_watches_go_without_a_deadline() {
        assert!(is_watch(Some("watch=true&resourceVersion=5")));
        assert!(is_watch(Some("labelSelector=a&watch=1")));
        assert!(!is_watch(Some("limit=500")));
        assert!(!is_watch(Some("watch=false")));
        assert!(!is_watch(None));
    }

    /// A server that accepts connections and never answers (a hung apiserver).
    async fn silent_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (address, task)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_to_a_hung_server_fails_after_its_deadline() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (address, server) = silent_server().await;
        let url = format!("http://{address}");
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let endpoint = Arc::new(Endpoint::new(
            url,
            EndpointKind::VirtualWorkspace,
            client,
            CancellationToken::new(),
        ));
        let cluster = Cluster::new(ClusterId::new("a"), endpoint);
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(cluster.client(), "default");
        let started = tokio::time::Instant::now();
        let err = api.get("x").await.unwrap_err();
        assert!(err.to_string().contains("did not answer"), "{err}");
        assert!(started.elapsed() >= REQUEST_TIMEOUT);
        server.abort();
    }

    #[tokio::test]
    async fn a_cluster_builds_its_client_once() {
        let endpoint = Arc::new(endpoint(EndpointKind::VirtualWorkspace));
        let cluster = Cluster::new(ClusterId::new("a"), endpoint);
        let metrics = tokio::runtime::Handle::current().metrics();
        let _first = cluster.client();
        let tasks = metrics.num_alive_tasks();
        let clients: Vec<kube::Client> = (0..100).map(|_| cluster.client()).collect();
        assert_eq!(
            metrics.num_alive_tasks(),
            tasks,
            "no request-buffer task per call ({} clients)",
            clients.len()
        );
    }

    #[tokio::test]
    async fn each_opened_endpoint_is_a_new_instance() {
        let (a, b) = (
            endpoint(EndpointKind::Direct),
            endpoint(EndpointKind::Direct),
        );
        assert_ne!(a.instance(), b.instance());
    }
}
