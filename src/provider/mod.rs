//! Who the logical clusters are, and clients for them.
//!
//! A provider opens one [`Endpoint`] per URL it serves and engages and disengages the clusters
//! behind them in the shared [`Clusters`] registry; caches watch each endpoint once per resource
//! type, reconcilers and HTTP handlers get per-cluster clients from [`Cluster`].

mod cluster;
pub mod kcp;
pub mod kubernetes;
mod registry;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use cluster::{Cluster, ClusterId, Endpoint, EndpointKind, KCP_CLUSTER_ANNOTATION};
pub use registry::{Change, Clusters, DEFAULT_CLUSTER_ALIAS, Endpoints, Member, Registry};

use crate::readiness::ReadinessCheck;

/// What a provider reports into while it runs.
#[derive(Clone, Debug)]
pub struct ProviderContext {
    pub clusters: Clusters,
    pub endpoints: Endpoints,
    /// "provider" in `/readyz`: ready while the provider can see its clusters.
    pub readiness: ReadinessCheck,
    pub shutdown: CancellationToken,
}

/// A source of logical clusters.
pub trait Provider: Send + 'static {
    /// Opens endpoints and engages clusters until `ctx.shutdown`, surviving every error the
    /// network or the API server can cause (reporting them in `ctx.readiness`).
    fn run(self: Box<Self>, ctx: ProviderContext) -> BoxFuture<'static, ()>;
}
