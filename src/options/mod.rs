//! Command-line flags (upstream's names and defaults) and their validation into [`Options`].
//!
//! Parsing is clap's job; validation is ours and happens before anything connects anywhere. Every
//! bad value is reported at once, one line per flag naming the allowed values ([`InvalidFlags`]).

mod duration;
mod flags;
mod proxies;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use duration::{format_go_duration, parse_go_duration};
pub use flags::Flags;
pub use proxies::{IpBlock, TrustedProxies};
pub use validate::{EMBEDDED_CLIENT_ID, EMBEDDED_CLIENT_SECRET, FlagError, InvalidFlags};

/// Which multicluster provider yields the logical clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// The kubeconfig's cluster as one synthetic logical cluster.
    Kubernetes,
    /// Every logical cluster bound to the APIExport behind this endpoint slice.
    Kcp { endpoint_slice: String },
}

/// How consumers reach the provider cluster (`--consumer-scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerScope {
    Namespaced,
    Cluster,
}

/// How cluster-scoped objects of different consumers are kept apart (`--cluster-scoped-isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    Prefixed,
    Namespaced,
    None,
}

/// Where exportable schemas come from (`--schema-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaSource {
    CustomResourceDefinitions,
    ApiResourceSchemas,
}

impl SchemaSource {
    /// The upstream `Kind.version.group` spelling.
    pub fn as_kind_version_group(self) -> &'static str {
        match self {
            Self::CustomResourceDefinitions => "CustomResourceDefinition.v1.apiextensions.k8s.io",
            Self::ApiResourceSchemas => "APIResourceSchema.v1alpha1.apis.kcp.io",
        }
    }
}

/// OIDC identity provider settings (`--oidc-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oidc {
    /// An in-process development issuer served under `/oidc` on our own listener.
    Embedded {
        issuer_url: Option<String>,
        callback_url: Option<String>,
        client_id: String,
        client_secret: String,
        /// `--oidc-signing-key-file`; without it the bearer-token key signs ID tokens too.
        signing_key_file: Option<PathBuf>,
    },
    /// A real identity provider.
    External {
        issuer_url: String,
        client_id: String,
        client_secret: String,
        callback_url: String,
        ca_file: Option<PathBuf>,
    },
}

/// Where login sessions live (`--session-store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStore {
    /// In this process only (single replica).
    Memory,
    /// Sealed into an encrypted, signed cookie, so any replica can finish any login.
    Cookie,
    /// Server-side in Redis, shared by all replicas.
    Redis { url: String },
}

/// Key material for signed and encrypted cookies. `None` fields are generated at start.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CookieKeys {
    pub signing: Option<Vec<u8>>,
    pub encryption: Option<Vec<u8>>,
}

impl std::fmt::Debug for CookieKeys {
    // Keys are secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieKeys")
            .field("signing", &self.signing.as_ref().map(|_| "<set>"))
            .field("encryption", &self.encryption.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Serving certificate and key (`--tls-cert-file`, `--tls-key-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Per-client-IP request limit of the login routes (`--auth-rate-limit`, `--auth-rate-burst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second; `None` disables the limit.
    pub per_second: Option<std::num::NonZeroU32>,
    pub burst: std::num::NonZeroU32,
}

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where `/metrics` is served (`--metrics-bind-address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsEndpoint {
    /// On the main listener.
    MainListener,
    /// On a listener of its own.
    Separate(SocketAddr),
    /// Not served (`0`, as controller-runtime spells it).
    Disabled,
}

/// Leader election for the reconcilers (`--leader-elect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
}

/// The validated configuration the backend runs with.
#[derive(Debug, Clone)]
pub struct Options {
    pub kubeconfig: Option<PathBuf>,
    pub provider: ProviderKind,
    pub namespace_prefix: String,
    pub pretty_name: String,
    pub consumer_scope: ConsumerScope,
    pub cluster_scoped_isolation: Isolation,
    pub external_address: Option<String>,
    /// PEM bytes of `--external-ca-file`, read during validation.
    pub external_ca: Option<Vec<u8>>,
    pub external_server_name: Option<String>,
    pub schema_source: SchemaSource,
    pub token_expiry: Duration,
    /// Age at which an APIServiceExportRequest is deleted (`--request-ttl`).
    pub request_ttl: Duration,
    pub oidc: Oidc,
    pub cookie_keys: CookieKeys,
    pub session_store: SessionStore,
    pub listen_address: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub workers: usize,
    pub leader_election: Option<LeaderElection>,
    pub metrics: MetricsEndpoint,
    pub jwt_signing_key_file: Option<PathBuf>,
    pub allowed_redirect_hosts: Vec<String>,
    pub auth_rate_limit: RateLimit,
    /// Peers whose `X-Forwarded-For` names the client and `X-Forwarded-Proto` the scheme
    /// (`--trusted-proxies`).
    pub trusted_proxies: TrustedProxies,
    pub log_format: LogFormat,
    /// Deprecation and "ignored flag" notices, logged once logging is set up.
    pub warnings: Vec<String>,
}

impl Options {
    /// Parses `args` (program name first) and validates them.
    ///
    /// Returns clap's error for syntax problems (unknown flag, `--help`, `--version`) and
    /// [`InvalidFlags`] for values that parse but are not allowed.
    pub fn from_args<I, T>(args: I) -> Result<Self, OptionsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let flags = Flags::try_parse_from(args).map_err(OptionsError::Syntax)?;
        flags.validate().map_err(OptionsError::Invalid)
    }
}

/// Why the command line was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(transparent)]
    Syntax(clap::Error),
    #[error(transparent)]
    Invalid(InvalidFlags),
}

impl OptionsError {
    /// Exit code for the process: 0 for `--help`/`--version`, 2 for anything refused.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Syntax(err) => err.exit_code(),
            Self::Invalid(_) => 2,
        }
    }
}

#[cfg(test)]
mod tests;
