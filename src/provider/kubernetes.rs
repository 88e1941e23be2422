//! The `kubernetes` provider: the kubeconfig's cluster as one logical cluster named `""` (also
//! reachable as `default`), so every code path is the same as with kcp.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Cluster, ClusterId, Endpoint, EndpointKind, Provider, ProviderContext};

/// How often an unreachable apiserver is probed again.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Serves one plain cluster.
pub struct KubernetesProvider {
    client: kube::Client,
    url: String,
}

impl KubernetesProvider {
    /// `url` names the apiserver `client` talks to (for logs and kubeconfigs).
    pub fn new(client: kube::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

impl Provider for KubernetesProvider {
    fn run(self: Box<Self>, ctx: ProviderContext) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // The cluster is engaged at once: it exists whether or not the apiserver answers right
            // now, and caches retry on their own. Readiness tells whether it answers.
            let endpoint = Arc::new(Endpoint::new(
                self.url.clone(),
                EndpointKind::Direct,
                self.client.clone(),
                ctx.shutdown.child_token(),
            ));
            ctx.endpoints.insert(endpoint.clone());
            ctx.clusters
                .insert(Cluster::new(ClusterId::single(), endpoint));
            loop {
                match self.client.apiserver_version().await {
                    Ok(version) => {
                        tracing::info!(url = %self.url, version = %version.git_version, "connected to the provider cluster");
                        ctx.readiness.ready();
                        break;
                    }
                    Err(err) => ctx.readiness.not_ready(format!(
                        "the provider cluster at {} does not answer: {err}; check --kubeconfig",
                        self.url
                    )),
                }
                tokio::select! {
                    () = ctx.shutdown.cancelled() => return,
                    () = tokio::time::sleep(PROBE_INTERVAL) => {}
                }
            }
            ctx.shutdown.cancelled().await;
        })
    }
}
