//! Builds the backend's pieces from [`Options`] and runs them until shutdown.
//!
//! Ownership: every long-running task is spawned here, holds a child of the one shutdown token,
//! and is awaited by [`RunningBackend::wait`]; nothing outlives it.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::controllers::{self, ControllerOptions};
use crate::http::{self, AppState, ServeError};
use crate::metrics::MetricsRegistry;
use crate::options::{MetricsEndpoint, Options, ProviderKind};
use crate::provider::kcp::KcpProvider;
use crate::provider::kubernetes::KubernetesProvider;
use crate::provider::{Clusters, Endpoints, Provider, ProviderContext};
use crate::provision::{ProvisionSettings, Provisioner};
use crate::readiness::{Readiness, ReadinessCheck};
use crate::runtime::leader::{self, Leadership, LeaseElection};
use crate::runtime::{Caches, EventRecorder, Manager};

/// How often cache sync is re-checked for `/readyz`.
const CACHE_SYNC_POLL: Duration = Duration::from_millis(500);

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
    #[error("cannot set up the controllers: {0}; this is a bug, please report it")]
    Controllers(crate::runtime::caches::CacheError),
    #[error("cannot set up login: {0}")]
    Login(#[from] crate::auth::setup::SetupError),
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

    /// Waits until every task ended. The first failing (or panicking) task stops all the others.
    pub async fn wait(mut self) -> Result<(), RunError> {
        let mut outcome = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            let result = match joined {
                Ok(result) => result.map_err(RunError::Serve),
                Err(err) => Err(RunError::Panicked(err.to_string())),
            };
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

/// Why a running backend stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Serve(ServeError),
    #[error(
        "a backend task failed unexpectedly ({0}); this is a bug, please report it with the logs"
    )]
    Panicked(String),
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
    let client = kube::Client::try_from(kube_config.clone()).map_err(StartError::Client)?;

    // Bind before anything else runs, so a taken port is the first thing reported.
    let server = http::Server::bind(options.listen_address, options.tls.as_ref()).await?;
    let metrics_server = match options.metrics {
        MetricsEndpoint::Separate(address) => Some(http::Server::bind(address, None).await?),
        _ => None,
    };

    let mut registry = Registry::with_prefix("kube_bind");
    let readiness = Readiness::default();
    let clusters = Clusters::default();
    let endpoints = Endpoints::default();
    let caches = Caches::new(&endpoints);
    caches.register_metrics(&mut registry);
    let workers = NonZeroUsize::new(options.workers).unwrap_or(NonZeroUsize::MIN);
    // One name for this replica, in its Lease and in the events it writes.
    let identity = leader::identity();
    let mut manager = Manager::new(
        &clusters,
        &caches,
        per_cluster_worker_cap(&options.provider, workers),
        &mut registry,
    )
    .with_events(EventRecorder::new(identity.clone()));
    controllers::register_all(&mut manager, &ControllerOptions::from_options(&options))
        .map_err(StartError::Controllers)?;
    register_build_info(&mut registry);
    let http_metrics = http::HttpMetrics::default();
    http_metrics.register(&mut registry);
    let metrics = MetricsRegistry::new(registry);
    let login = crate::auth::setup::build(&options, server.local_addr(), options.tls.is_some())?;
    let provisioner = Provisioner::new(ProvisionSettings::from_options(
        &options,
        ProvisionSettings::provider_ca_of(&kube_config),
    ));

    let provider: Box<dyn Provider> = match &options.provider {
        ProviderKind::Kubernetes => Box::new(KubernetesProvider::new(client.clone(), cluster_url)),
        ProviderKind::Kcp { endpoint_slice } => Box::new(KcpProvider::new(
            client.clone(),
            kube_config,
            endpoint_slice,
        )),
    };
    let provider_ctx = ProviderContext {
        clusters: clusters.clone(),
        endpoints,
        readiness: readiness.register("provider", "starting"),
        shutdown: shutdown.child_token(),
    };
    let leadership = match &options.leader_election {
        None => Leadership::Always,
        Some(election) => Leadership::Elected(LeaseElection::start(
            client,
            &election.namespace,
            &election.lease_name,
            identity,
            &shutdown,
        )),
    };

    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        provider.run(provider_ctx).await;
        Ok(())
    });
    tasks.spawn(report_cache_sync(
        caches.clone(),
        readiness.register("caches", "starting"),
        shutdown.child_token(),
    ));
    let reconcile_shutdown = shutdown.child_token();
    tasks.spawn(async move {
        manager.run(workers, leadership, reconcile_shutdown).await;
        caches.join().await;
        Ok(())
    });

    let main_metrics = (options.metrics == MetricsEndpoint::MainListener).then(|| metrics.clone());
    let state = AppState::new(
        &options.pretty_name,
        clusters,
        readiness,
        options.tls.is_some(),
    )
    .with_metrics(http_metrics)
    .with_trusted_proxies(options.trusted_proxies.clone())
    .with_login(http::Login {
        auth: login.auth,
        provisioner,
        rate_limit: http::LoginRateLimit::new(
            options.auth_rate_limit,
            options.trusted_proxies.clone(),
        ),
        embedded_issuer: login.embedded_issuer,
    });
    let address = server.local_addr();
    tasks.spawn(server.serve(http::router(state, main_metrics), shutdown.child_token()));
    let metrics_address = metrics_server.as_ref().map(http::Server::local_addr);
    if let Some(metrics_server) = metrics_server {
        tasks.spawn(metrics_server.serve(http::metrics_router(metrics), shutdown.child_token()));
    }
    tracing::info!(%address, provider = ?options.provider, "kube-bind backend serving");
    Ok(RunningBackend {
        address,
        metrics_address,
        tasks,
        shutdown,
    })
}

/// With kcp, one logical cluster gets at most half the workers (at least one), so the keys of a
/// cluster or shard that stopped answering leave the other half to everyone else. The kubernetes
/// provider's one cluster gets them all.
fn per_cluster_worker_cap(provider: &ProviderKind, workers: NonZeroUsize) -> Option<NonZeroUsize> {
    match provider {
        ProviderKind::Kubernetes => None,
        ProviderKind::Kcp { .. } => NonZeroUsize::new(workers.get().div_ceil(2)),
    }
}

/// Keeps the "caches" readiness check in step with the caches' first LISTs.
async fn report_cache_sync(
    caches: Caches,
    check: ReadinessCheck,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    loop {
        let unsynced = caches.unsynced();
        if unsynced.is_empty() {
            check.ready();
        } else {
            check.not_ready(format!(
                "waiting for the first list of {}",
                unsynced.join(", ")
            ));
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(CACHE_SYNC_POLL) => {}
        }
    }
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
