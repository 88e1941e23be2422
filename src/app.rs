//! Builds the backend's pieces from [`Options`] and runs them until shutdown.
//!
//! Ownership: every long-running task is spawned here, holds a child of the one shutdown token,
//! and is awaited by [`RunningBackend::wait`]; nothing outlives it.

use std::net::SocketAddr;
use std::path::Path;

use prometheus_client::registry::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http::{self, AppState, ServeError};
use crate::metrics::MetricsRegistry;
use crate::options::{MetricsEndpoint, Options, ProviderKind};
use crate::provider::kubernetes::KubernetesProvider;
use crate::provider::{Clusters, Endpoints, Provider, ProviderContext};
use crate::readiness::Readiness;

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read kubeconfig {path}: {error}; check --kubeconfig")]
    Kubeconfig {
        path: String,
        error: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig found ({0}); pass --kubeconfig or run inside a pod")]
    NoKubeconfig(kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client from the kubeconfig: {0}")]
    Client(kube::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("--multicluster-runtime-provider kcp is not available in this build yet")]
    ProviderUnavailable,
}

/// A started backend.
pub struct RunningBackend {
    address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    tasks: JoinSet<Result<(), ServeError>>,
    shutdown: CancellationToken,
}

impl RunningBackend {
    /// The address the HTTP API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The address of the separate metrics listener, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// Waits until every task ended. The first failing task stops all the others.
    pub async fn wait(mut self) -> Result<(), ServeError> {
        let mut outcome = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.unwrap_or_else(|panic| {
                tracing::error!(error = %panic, "a backend task panicked");
                Ok(())
            });
            if let Err(err) = result {
                self.shutdown.cancel();
                if outcome.is_ok() {
                    outcome = Err(err);
                }
            }
        }
        outcome
    }
}

/// Starts everything `options` asks for; runs until `shutdown` is cancelled.
pub async fn start(
    options: Options,
    shutdown: CancellationToken,
) -> Result<RunningBackend, StartError> {
    // kube and the TLS listener both use rustls with ring; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let kube_config = load_kube_config(options.kubeconfig.as_deref()).await?;
    let cluster_url = kube_config.cluster_url.to_string();
    let client = kube::Client::try_from(kube_config).map_err(StartError::Client)?;

    let mut registry = Registry::with_prefix("kube_bind");
    let readiness = Readiness::default();
    let clusters = Clusters::default();
    let endpoints = Endpoints::default();

    let provider: Box<dyn Provider> = match &options.provider {
        ProviderKind::Kubernetes => Box::new(KubernetesProvider::new(client, cluster_url)),
        ProviderKind::Kcp { .. } => return Err(StartError::ProviderUnavailable),
    };
    let provider_ctx = ProviderContext {
        clusters: clusters.clone(),
        endpoints,
        readiness: readiness.register("provider", "starting"),
        shutdown: shutdown.child_token(),
    };

    let server = http::Server::bind(options.listen_address, options.tls.as_ref()).await?;
    let metrics_server = match options.metrics {
        MetricsEndpoint::Separate(address) => Some(http::Server::bind(address, None).await?),
        _ => None,
    };
    register_build_info(&mut registry);
    let metrics = MetricsRegistry::new(registry);

    let mut tasks = JoinSet::new();
    let provider_shutdown = provider_ctx.shutdown.clone();
    tasks.spawn(async move {
        provider.run(provider_ctx).await;
        drop(provider_shutdown);
        Ok(())
    });

    let main_metrics = (options.metrics == MetricsEndpoint::MainListener).then(|| metrics.clone());
    let state = AppState::new(
        &options.pretty_name,
        clusters,
        readiness.clone(),
        options.tls.is_some(),
    );
    let address = server.local_addr();
    tasks.spawn(server.serve(http::router(state, main_metrics), shutdown.child_token()));
    let metrics_address = metrics_server.as_ref().map(http::Server::local_addr);
    if let Some(metrics_server) = metrics_server {
        let router = http::metrics_router(metrics);
        tasks.spawn(metrics_server.serve(router, shutdown.child_token()));
    }
    tracing::info!(%address, provider = ?options.provider, "kube-bind backend serving");
    Ok(RunningBackend {
        address,
        metrics_address,
        tasks,
        shutdown,
    })
}

async fn load_kube_config(path: Option<&Path>) -> Result<kube::Config, StartError> {
    match path {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|error| {
                StartError::Kubeconfig {
                    path: path.display().to_string(),
                    error,
                }
            })?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|error| StartError::Kubeconfig {
                path: path.display().to_string(),
                error,
            })
        }
        None => kube::Config::infer()
            .await
            .map_err(StartError::NoKubeconfig),
    }
}

/// `kube_bind_build_info{version, commit} 1`, so dashboards can tell builds apart.
fn register_build_info(registry: &mut Registry) {
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    let info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    info.get_or_create(&vec![
        ("version", crate::version::VERSION),
        ("commit", crate::version::GIT_COMMIT),
    ])
    .set(1);
    registry.register("build_info", "Build identity of this backend", info);
}
