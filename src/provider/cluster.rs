//! A logical cluster and the endpoint it is reached through.
//!
//! Clients are cheap views: every cluster of an endpoint shares the endpoint's one HTTP stack
//! (connection pool, TLS, credentials) and only adds its path prefix, so an engaged cluster costs
//! a few hundred bytes however many there are.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;
use tokio_util::sync::CancellationToken;

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

    /// A client whose requests reach every cluster behind this endpoint at once.
    pub fn wildcard_client(&self) -> kube::Client {
        match self.kind {
            EndpointKind::Direct => self.client.clone(),
            EndpointKind::VirtualWorkspace => self.prefixed("/clusters/*".to_owned()),
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
            EndpointKind::Direct => self.client.clone(),
            EndpointKind::VirtualWorkspace => self.prefixed(format!("/clusters/{id}")),
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

    fn prefixed(&self, prefix: String) -> kube::Client {
        let service = PathPrefix {
            prefix: Arc::from(prefix),
            inner: self.client.clone(),
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
            }),
        }
    }

    pub fn id(&self) -> &ClusterId {
        &self.inner.id
    }

    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.inner.endpoint
    }

    /// A client scoped to this cluster. Cheap; build one per unit of work and drop it.
    pub fn client(&self) -> kube::Client {
        self.inner.endpoint.cluster_client(&self.inner.id)
    }

    /// Cancelled when the cluster is disengaged; work for it should stop.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }
}

/// Prepends a path to every request before handing it to the endpoint's shared client.
#[derive(Clone)]
struct PathPrefix {
    prefix: Arc<str>,
    inner: kube::Client,
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
        let client = self.inner.clone();
        Box::pin(async move {
            parts.uri = joined
                .parse()
                .map_err(|e: http::uri::InvalidUri| kube::Error::Service(e.into()))?;
            client.send(Request::from_parts(parts, body)).await
        })
    }
}

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

    #[tokio::test]
    async fn each_opened_endpoint_is_a_new_instance() {
        let (a, b) = (
            endpoint(EndpointKind::Direct),
            endpoint(EndpointKind::Direct),
        );
        assert_ne!(a.instance(), b.instance());
    }
}
