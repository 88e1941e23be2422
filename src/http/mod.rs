//! The HTTP API (routes and JSON shapes as upstream kube-bind) on one listener.
//!
//! Handlers read shared state (engaged clusters, caches); they never reconcile.

mod authn;
mod client_ip;
mod consumer;
mod error;
mod login;
mod observe;
mod params;
mod rate_limit;
mod routes;
mod scheme;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use tokio_util::sync::CancellationToken;

pub use consumer::BIND_BODY_LIMIT;
pub use error::ApiError;
pub use observe::HttpMetrics;
pub use params::QueryParams;
pub use rate_limit::LoginRateLimit;
pub use routes::{metrics_router, router};
pub use scheme::Scheme;

use crate::auth::Auth;
use crate::provision::Provisioner;

use crate::options::{TlsFiles, TrustedProxies};
use crate::provider::Clusters;
use crate::readiness::Readiness;

/// How long in-flight requests may finish after shutdown was asked for.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    pretty_name: String,
    clusters: Clusters,
    readiness: Readiness,
    tls: bool,
    /// Peers whose `X-Forwarded-Proto` names the scheme (`--trusted-proxies`).
    trusted_proxies: TrustedProxies,
    login: Option<Login>,
    metrics: HttpMetrics,
}

/// What the login and bind routes need; without it they answer 503.
pub struct Login {
    pub auth: Auth,
    pub provisioner: Provisioner,
    pub rate_limit: LoginRateLimit,
    /// The embedded issuer's routes, served under `/oidc` (`--oidc-type embedded`).
    pub embedded_issuer: Option<axum::Router>,
}

impl AppState {
    pub fn new(
        pretty_name: impl Into<String>,
        clusters: Clusters,
        readiness: Readiness,
        tls: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Shared {
                pretty_name: pretty_name.into(),
                clusters,
                readiness,
                tls,
                trusted_proxies: TrustedProxies::default(),
                login: None,
                metrics: HttpMetrics::default(),
            }),
        }
    }

    /// Serves the login and bind routes with `login`. Call before the state is shared.
    pub fn with_login(mut self, login: Login) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.inner) {
            shared.login = Some(login);
        }
        self
    }

    /// Believes `X-Forwarded-Proto` from `proxies`. Call before the state is shared.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.inner) {
            shared.trusted_proxies = proxies;
        }
        self
    }

    /// Counts requests into `metrics` (registered by the caller).
    pub fn with_metrics(mut self, metrics: HttpMetrics) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.inner) {
            shared.metrics = metrics;
        }
        self
    }

    fn login(&self) -> Result<&Login, ApiError> {
        self.inner.login.as_ref().ok_or_else(|| {
            ApiError::unavailable(
                "login is not configured on this backend; start it with the --oidc-* flags",
            )
        })
    }

    pub(crate) fn auth(&self) -> Result<&Auth, ApiError> {
        self.login().map(|l| &l.auth)
    }

    pub(crate) fn provisioner(&self) -> Result<&Provisioner, ApiError> {
        self.login().map(|l| &l.provisioner)
    }

    pub(crate) fn metrics(&self) -> &HttpMetrics {
        &self.inner.metrics
    }

    fn rate_limit(&self) -> LoginRateLimit {
        self.inner
            .login
            .as_ref()
            .map(|l| l.rate_limit.clone())
            .unwrap_or_else(LoginRateLimit::disabled)
    }

    fn embedded_issuer(&self) -> Option<axum::Router> {
        self.inner.login.as_ref()?.embedded_issuer.clone()
    }

    pub fn pretty_name(&self) -> &str {
        &self.inner.pretty_name
    }

    pub fn clusters(&self) -> &Clusters {
        &self.inner.clusters
    }

    pub fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }

    /// The scheme of our own listener; a request's may differ behind a proxy (see [`Scheme`]).
    fn listener_scheme(&self) -> Scheme {
        if self.inner.tls {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }

    fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }
}

/// Errors starting or running the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {error}; pick a free address with --listen-address")]
    Bind {
        address: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot load the TLS certificate/key ({cert}, {key}): {error}")]
    Tls {
        cert: String,
        key: String,
        error: std::io::Error,
    },
    #[error("HTTP server on {address} failed: {error}")]
    Serve {
        address: SocketAddr,
        error: std::io::Error,
    },
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: std::net::TcpListener,
    address: SocketAddr,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl Server {
    /// Binds `address` now, so a taken port is reported before anything else starts.
    pub async fn bind(address: SocketAddr, tls: Option<&TlsFiles>) -> Result<Self, ServeError> {
        let listener = std::net::TcpListener::bind(address)
            .map_err(|error| ServeError::Bind { address, error })?;
        listener
            .set_nonblocking(true)
            .map_err(|error| ServeError::Bind { address, error })?;
        let address = listener
            .local_addr()
            .map_err(|error| ServeError::Bind { address, error })?;
        let tls = match tls {
            None => None,
            Some(files) => Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                    .await
                    .map_err(|error| ServeError::Tls {
                        cert: files.cert.display().to_string(),
                        key: files.key.display().to_string(),
                        error,
                    })?,
            ),
        };
        Ok(Self {
            listener,
            address,
            tls,
        })
    }

    /// The address actually bound (resolves port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves `router` until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn serve(
        self,
        router: axum::Router,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        let handle = Handle::new();
        let watcher = handle.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            watcher.graceful_shutdown(Some(GRACEFUL_SHUTDOWN));
        });
        let address = self.address;
        // Connection info gives the login rate limit its client address.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let result = match self.tls {
            None => {
                axum_server::from_tcp(self.listener)
                    .map_err(|error| ServeError::Serve { address, error })?
                    .handle(handle)
                    .serve(service)
                    .await
            }
            Some(config) => {
                axum_server::from_tcp_rustls(self.listener, config)
                    .map_err(|error| ServeError::Serve { address, error })?
                    .handle(handle)
                    .serve(service)
                    .await
            }
        };
        result.map_err(|error| ServeError::Serve { address, error })
    }
}

#[cfg(test)]
mod tests;
