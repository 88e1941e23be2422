//! Turns [`Flags`] into [`Options`], collecting every bad value instead of stopping at the first.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use axum::http::Uri;
use base64::Engine as _;

use super::flags::{Flags, PROVIDER_VALUES};
use super::{
    ConsumerScope, CookieKeys, Isolation, LeaderElection, LogFormat, MetricsEndpoint, Oidc,
    Options, ProviderKind, RateLimit, SchemaSource, SessionStore, TlsFiles, TrustedProxies,
    parse_go_duration,
};

/// Where a pod finds its own namespace.
const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
const MAX_WORKERS: usize = 1024;

/// One refused flag value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    pub flag: &'static str,
    pub message: String,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid flag --{}: {}", self.flag, self.message)
    }
}

/// Every refused flag value of one command line; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFlags(pub Vec<FlagError>);

impl fmt::Display for InvalidFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidFlags {}

impl InvalidFlags {
    /// The flags that were refused, in command-line order of checking.
    pub fn flags(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.flag).collect()
    }
}

/// Collects errors; a refused value is replaced by a fallback that never leaves this module,
/// because `validate` returns `Err` whenever anything was collected.
#[derive(Default)]
struct Collector {
    errors: Vec<FlagError>,
}

impl Collector {
    fn check<T>(&mut self, flag: &'static str, result: Result<T, String>, fallback: T) -> T {
        result.unwrap_or_else(|message| {
            self.errors.push(FlagError { flag, message });
            fallback
        })
    }
}

impl Flags {
    /// Validates every value; see the module docs.
    pub fn validate(self) -> Result<Options, InvalidFlags> {
        let mut c = Collector::default();
        let mut warnings = Vec::new();

        let provider = c.check(
            "multicluster-runtime-provider",
            provider(
                &self.multicluster_runtime_provider,
                &self.apiexport_endpointslice_name,
            ),
            ProviderKind::Kubernetes,
        );
        if matches!(provider, ProviderKind::Kcp { .. })
            && self.apiexport_endpointslice_name.is_empty()
        {
            c.errors.push(FlagError {
                flag: "apiexport-endpointslice-name",
                message:
                    "must not be empty with --multicluster-runtime-provider kcp; use the name \
                          of the APIExportEndpointSlice to serve, e.g. kube-bind.io"
                        .into(),
            });
        }
        let namespace_prefix = c.check(
            "namespace-prefix",
            namespace_prefix(&self.namespace_prefix),
            String::new(),
        );
        let pretty_name = c.check(
            "pretty-name",
            non_empty(
                &self.pretty_name,
                "the name consumers see, e.g. \"ACME Databases\"",
            ),
            String::new(),
        );
        let consumer_scope = c.check(
            "consumer-scope",
            consumer_scope(&self.consumer_scope),
            ConsumerScope::Namespaced,
        );
        let cluster_scoped_isolation = c.check(
            "cluster-scoped-isolation",
            isolation(&self.cluster_scoped_isolation),
            Isolation::Prefixed,
        );
        let external_address = c.check(
            "external-address",
            external_address(&self.external_address),
            None,
        );
        let external_ca = c.check(
            "external-ca-file",
            optional_path(&self.external_ca_file)
                .map(read_pem_certificates)
                .transpose(),
            None,
        );
        let schema_source = c.check(
            "schema-source",
            schema_source(&self.schema_source),
            SchemaSource::CustomResourceDefinitions,
        );
        let token_expiry = c.check(
            "token-expiry",
            positive_duration(&self.token_expiry),
            std::time::Duration::ZERO,
        );
        let request_ttl = c.check(
            "request-ttl",
            positive_duration(&self.request_ttl),
            std::time::Duration::ZERO,
        );
        let listen_address = c.check(
            if self.listen_ip.is_empty() {
                "listen-address"
            } else {
                "listen-ip"
            },
            listen_address(
                &self.listen_address,
                &self.listen_ip,
                self.listen_port,
                &mut warnings,
            ),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        );
        let tls = c.check(
            "tls-cert-file",
            tls_files(&self.tls_cert_file, &self.tls_key_file),
            None,
        );
        let oidc = self.oidc(&mut c);
        let cookie_keys = CookieKeys {
            signing: c.check(
                "cookie-signing-key",
                base64_key(&self.cookie_signing_key, &[32, 64]),
                None,
            ),
            encryption: c.check(
                "cookie-encryption-key",
                base64_key(&self.cookie_encryption_key, &[16, 24, 32]),
                None,
            ),
        };
        let session_store = c.check(
            "session-store",
            session_store(&self.session_store, &self.redis_url, &mut warnings),
            SessionStore::Memory,
        );
        let workers = c.check("workers", workers(&self.workers), 1);
        let leader_election = self.leader_elect.then(|| LeaderElection {
            namespace: leader_election_namespace(&self.leader_election_namespace),
            lease_name: self.leader_election_id.clone(),
        });
        if self.leader_elect {
            c.check(
                "leader-election-id",
                dns_subdomain(&self.leader_election_id),
                String::new(),
            );
        }
        let metrics = c.check(
            "metrics-bind-address",
            metrics_endpoint(&self.metrics_bind_address),
            MetricsEndpoint::MainListener,
        );
        let jwt_signing_key_file = c.check(
            "jwt-signing-key-file",
            optional_path(&self.jwt_signing_key_file)
                .map(readable_file)
                .transpose(),
            None,
        );
        let allowed_redirect_hosts = c.check(
            "allowed-redirect-hosts",
            redirect_hosts(&self.allowed_redirect_hosts),
            Vec::new(),
        );
        let auth_rate_limit = RateLimit {
            per_second: c.check(
                "auth-rate-limit",
                count(&self.auth_rate_limit).map(std::num::NonZeroU32::new),
                None,
            ),
            burst: c.check(
                "auth-rate-burst",
                count(&self.auth_rate_burst).and_then(|n| {
                    std::num::NonZeroU32::new(n)
                        .ok_or_else(|| "must be at least 1 (default 40)".to_owned())
                }),
                std::num::NonZeroU32::MIN,
            ),
        };
        let trusted_proxies = c.check(
            "trusted-proxies",
            TrustedProxies::parse(&self.trusted_proxies),
            TrustedProxies::default(),
        );
        let log_format = c.check(
            "log-format",
            log_format(
                &self.log_format,
                self.logging_format.as_deref(),
                &mut warnings,
            ),
            LogFormat::Text,
        );
        self.warn_ignored(&mut warnings);

        if !c.errors.is_empty() {
            return Err(InvalidFlags(c.errors));
        }
        Ok(Options {
            kubeconfig: optional_path(&self.kubeconfig),
            provider,
            namespace_prefix,
            pretty_name,
            consumer_scope,
            cluster_scoped_isolation,
            external_address,
            external_ca,
            external_server_name: Some(self.external_server_name).filter(|s| !s.is_empty()),
            schema_source,
            token_expiry,
            request_ttl,
            oidc,
            cookie_keys,
            session_store,
            listen_address,
            tls,
            workers,
            leader_election,
            metrics,
            jwt_signing_key_file,
            allowed_redirect_hosts,
            auth_rate_limit,
            trusted_proxies,
            log_format,
            warnings,
        })
    }

    fn oidc(&self, c: &mut Collector) -> Oidc {
        let ca_file = c.check(
            "oidc-ca-file",
            optional_path(&self.oidc_ca_file)
                .map(readable_file)
                .transpose(),
            None,
        );
        match self.oidc_type.to_ascii_lowercase().as_str() {
            "embedded" => Oidc::Embedded {
                issuer_url: c.check(
                    "oidc-issuer-url",
                    embedded_issuer(&self.oidc_issuer_url),
                    None,
                ),
                callback_url: c.check(
                    "oidc-callback-url",
                    optional_http_url(&self.oidc_callback_url),
                    None,
                ),
                client_id: or_default(&self.oidc_issuer_client_id, EMBEDDED_CLIENT_ID),
                client_secret: or_default(&self.oidc_issuer_client_secret, EMBEDDED_CLIENT_SECRET),
                signing_key_file: c.check(
                    "oidc-signing-key-file",
                    optional_path(&self.oidc_signing_key_file)
                        .map(readable_file)
                        .transpose(),
                    None,
                ),
            },
            "external" => {
                let required = "is required with --oidc-type external";
                Oidc::External {
                    issuer_url: c.check(
                        "oidc-issuer-url",
                        required_http_url(&self.oidc_issuer_url, required),
                        String::new(),
                    ),
                    client_id: c.check(
                        "oidc-issuer-client-id",
                        non_empty(
                            &self.oidc_issuer_client_id,
                            "the client id registered at the issuer",
                        ),
                        String::new(),
                    ),
                    client_secret: c.check(
                        "oidc-issuer-client-secret",
                        non_empty(
                            &self.oidc_issuer_client_secret,
                            "the client secret registered at the issuer",
                        ),
                        String::new(),
                    ),
                    callback_url: c.check(
                        "oidc-callback-url",
                        required_http_url(&self.oidc_callback_url, required),
                        String::new(),
                    ),
                    ca_file,
                }
            }
            other => {
                c.errors.push(FlagError {
                    flag: "oidc-type",
                    message: format!("unknown type {other:?}; use external or embedded"),
                });
                Oidc::Embedded {
                    issuer_url: None,
                    callback_url: None,
                    client_id: String::new(),
                    client_secret: String::new(),
                    signing_key_file: None,
                }
            }
        }
    }

    fn warn_ignored(&self, warnings: &mut Vec<String>) {
        let ignored = [
            (
                "frontend",
                self.frontend.is_some(),
                "the web UI is built in",
            ),
            (
                "oidc-authorize-url",
                self.oidc_authorize_url.is_some(),
                "it comes from OIDC discovery",
            ),
            (
                "testing-auto-select",
                self.testing_auto_select.is_some(),
                "it has no effect",
            ),
            (
                "v",
                self.verbosity.is_some(),
                "set RUST_LOG (e.g. RUST_LOG=debug) for verbosity",
            ),
        ];
        for (flag, given, why) in ignored {
            if given {
                warnings.push(format!(
                    "flag --{flag} is accepted for upstream compatibility and ignored: {why}"
                ));
            }
        }
    }
}

/// The embedded issuer's client credentials when none are given: the same in every process, so
/// replicas and restarts agree, and printed at start, so nobody mistakes them for secrets.
pub const EMBEDDED_CLIENT_ID: &str = "kube-bind";
pub const EMBEDDED_CLIENT_SECRET: &str = "kube-bind-embedded-development-secret";

fn or_default(value: &str, default: &str) -> String {
    if value.is_empty() { default } else { value }.to_owned()
}

/// A non-negative whole number.
fn count(value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number"))
}

fn provider(value: &str, slice: &str) -> Result<ProviderKind, String> {
    match value {
        "kubernetes" | "" | "single" => Ok(ProviderKind::Kubernetes),
        "kcp" => Ok(ProviderKind::Kcp {
            endpoint_slice: slice.to_owned(),
        }),
        other => Err(format!(
            "unknown provider {other:?}; use one of {}",
            PROVIDER_VALUES
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn non_empty(value: &str, hint: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(format!("must not be empty; set it to {hint}"))
    } else {
        Ok(value.to_owned())
    }
}

/// A generateName prefix: lowercase DNS label characters, leaving room for the random suffix.
fn namespace_prefix(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 57
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a namespace name prefix; use up to 57 lowercase letters, digits and '-', \
             starting with a letter or digit (default: cluster)"
        ))
    }
}

fn consumer_scope(value: &str) -> Result<ConsumerScope, String> {
    match value.to_ascii_lowercase().as_str() {
        "namespaced" => Ok(ConsumerScope::Namespaced),
        "cluster" => Ok(ConsumerScope::Cluster),
        _ => Err(format!(
            "{value:?} is not a scope; use namespaced or cluster"
        )),
    }
}

fn isolation(value: &str) -> Result<Isolation, String> {
    match value.to_ascii_lowercase().as_str() {
        "prefixed" => Ok(Isolation::Prefixed),
        "namespaced" => Ok(Isolation::Namespaced),
        "none" => Ok(Isolation::None),
        _ => Err(format!(
            "{value:?} is not an isolation mode; use prefixed, namespaced or none"
        )),
    }
}

fn external_address(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let uri: Uri = value
        .parse()
        .map_err(|_| format!("{value:?} is not a URL; use https://host:port"))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "{value:?} must be an https:// URL with a host, e.g. https://api.example.com:6443"
        ));
    }
    Ok(Some(value.trim_end_matches('/').to_owned()))
}

fn schema_source(value: &str) -> Result<SchemaSource, String> {
    match value {
        "CustomResourceDefinition.v1.apiextensions.k8s.io" | "customresourcedefinitions" => {
            Ok(SchemaSource::CustomResourceDefinitions)
        }
        "APIResourceSchema.v1alpha1.apis.kcp.io" | "apiresourceschemas" => {
            Ok(SchemaSource::ApiResourceSchemas)
        }
        other => Err(format!(
            "unknown schema source {other:?}; use customresourcedefinitions, apiresourceschemas, \
             CustomResourceDefinition.v1.apiextensions.k8s.io or APIResourceSchema.v1alpha1.apis.kcp.io"
        )),
    }
}

fn positive_duration(value: &str) -> Result<std::time::Duration, String> {
    match parse_go_duration(value) {
        Ok(d) if d.is_zero() => Err(format!("{value:?} must be longer than zero, e.g. 1h")),
        Ok(d) => Ok(d),
        Err(reason) => Err(format!("{reason}; use a Go duration such as 30m or 1h")),
    }
}

fn listen_address(
    address: &str,
    legacy_ip: &str,
    legacy_port: u32,
    warnings: &mut Vec<String>,
) -> Result<SocketAddr, String> {
    if !legacy_ip.is_empty() {
        warnings
            .push("flags --listen-ip/--listen-port are deprecated: use --listen-address".into());
        let ip: IpAddr = legacy_ip.parse().map_err(|_| {
            format!("{legacy_ip:?} is not an IP address; use --listen-address HOST:PORT instead")
        })?;
        let port = u16::try_from(legacy_port)
            .map_err(|_| format!("--listen-port {legacy_port} is not a port; use 0-65535"))?;
        return Ok(SocketAddr::new(ip, port));
    }
    parse_socket_address(address).ok_or_else(|| {
        format!("{address:?} is not HOST:PORT; use e.g. 127.0.0.1:8080, :8080 or localhost:8080")
    })
}

/// Accepts `ip:port`, Go's `:port` (all interfaces) and `localhost:port`.
fn parse_socket_address(value: &str) -> Option<SocketAddr> {
    if let Ok(addr) = value.parse() {
        return Some(addr);
    }
    let (host, port) = value.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    match host {
        "" => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        "localhost" => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        _ => None,
    }
}

fn tls_files(cert: &str, key: &str) -> Result<Option<TlsFiles>, String> {
    match (optional_path(cert), optional_path(key)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err("is set but --tls-key-file is not; give both or neither".into()),
        (None, Some(_)) => Err("is not set but --tls-key-file is; give both or neither".into()),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: readable_file(cert)?,
            key: readable_file(key)?,
        })),
    }
}

fn embedded_issuer(value: &str) -> Result<Option<String>, String> {
    let Some(url) = optional_http_url(value)? else {
        return Ok(None);
    };
    let path_ok = url
        .parse::<Uri>()
        .map(|u| u.path().trim_end_matches('/') == "/oidc")
        .unwrap_or(false);
    if path_ok {
        Ok(Some(url.trim_end_matches('/').to_owned()))
    } else {
        Err(format!(
            "{value:?} must end in /oidc with --oidc-type embedded (the issuer is served there), \
             e.g. http://127.0.0.1:8080/oidc"
        ))
    }
}

fn optional_http_url(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let uri: Uri = value
        .parse()
        .map_err(|_| format!("{value:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => {
            Ok(Some(value.to_owned()))
        }
        _ => Err(format!(
            "{value:?} must be an http:// or https:// URL with a host"
        )),
    }
}

fn required_http_url(value: &str, missing: &str) -> Result<String, String> {
    optional_http_url(value)?.ok_or_else(|| missing.to_owned())
}

fn base64_key(value: &str, lengths: &[usize]) -> Result<Option<Vec<u8>>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let allowed = one_of(lengths);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| format!("is not valid base64; use base64 of {allowed} random bytes (e.g. `openssl rand -base64 32`)"))?;
    if lengths.contains(&bytes.len()) {
        Ok(Some(bytes))
    } else {
        Err(format!(
            "decodes to {} bytes; it must be {allowed} bytes",
            bytes.len()
        ))
    }
}

/// "16, 24 or 32"
fn one_of(lengths: &[usize]) -> String {
    let texts: Vec<String> = lengths.iter().map(ToString::to_string).collect();
    match texts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => texts.join(""),
    }
}

fn session_store(
    store: &str,
    redis_url: &str,
    warnings: &mut Vec<String>,
) -> Result<SessionStore, String> {
    let parsed = match store.to_ascii_lowercase().as_str() {
        "memory" => SessionStore::Memory,
        "cookie" => SessionStore::Cookie,
        "redis" => {
            if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
                return Err(format!(
                    "redis needs --redis-url redis://host:port (or rediss://), got {redis_url:?}"
                ));
            }
            return Ok(SessionStore::Redis {
                url: redis_url.to_owned(),
            });
        }
        other => {
            return Err(format!(
                "unknown session store {other:?}; use memory, cookie or redis"
            ));
        }
    };
    if !redis_url.is_empty() {
        warnings.push(format!(
            "--redis-url is ignored with --session-store {store}"
        ));
    }
    Ok(parsed)
}

fn workers(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{value:?} is not a worker count; use a number from 1 to {MAX_WORKERS}"
        )),
    }
}

fn leader_election_namespace(value: &str) -> String {
    if !value.is_empty() {
        return value.to_owned();
    }
    std::fs::read_to_string(POD_NAMESPACE_FILE)
        .map(|ns| ns.trim().to_owned())
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

fn dns_subdomain(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a valid Lease name; use lowercase letters, digits, '-' and '.'"
        ))
    }
}

fn metrics_endpoint(value: &str) -> Result<MetricsEndpoint, String> {
    match value {
        "" => Ok(MetricsEndpoint::MainListener),
        "0" => Ok(MetricsEndpoint::Disabled),
        other => parse_socket_address(other)
            .map(MetricsEndpoint::Separate)
            .ok_or_else(|| {
                format!("{other:?} is not HOST:PORT; use e.g. 127.0.0.1:9090, or 0 to disable")
            }),
    }
}

fn redirect_hosts(values: &[String]) -> Result<Vec<String>, String> {
    values
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .map(|host| {
            let plain = host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'));
            if plain {
                Ok(host.to_ascii_lowercase())
            } else {
                Err(format!("{host:?} is not a host name; list bare hosts like app.example.com, without scheme or path"))
            }
        })
        .collect()
}

fn log_format(
    value: &str,
    deprecated: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<LogFormat, String> {
    let chosen = match deprecated {
        Some(old) => {
            warnings.push("flag --logging-format is deprecated: use --log-format".into());
            if value == "text" { old } else { value }
        }
        None => value,
    };
    match chosen.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown format {other:?}; use text or json")),
    }
}

fn optional_path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

fn readable_file(path: PathBuf) -> Result<PathBuf, String> {
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn read_pem_certificates(path: PathBuf) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        Ok(bytes)
    } else {
        Err(format!(
            "{} holds no PEM certificate; give a CA bundle in PEM format",
            path.display()
        ))
    }
}
