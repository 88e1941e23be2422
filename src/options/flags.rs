//! The raw command line, as typed. Names and defaults follow upstream kube-bind's backend so its
//! manifests keep working; values are checked in `validate.rs`, not here, so that every bad value
//! can be reported at once.

use clap::Parser;

use crate::version;

/// Upstream's provider spellings; `single` is our alias for the one-cluster provider.
pub const PROVIDER_VALUES: &[&str] = &["kubernetes", "kcp", "single", ""];

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-bind-backend",
    version = version::LONG,
    about = "kube-bind backend: lets consumers bind to this service provider's Kubernetes APIs",
    long_about = "kube-bind backend: serves the kube-bind HTTP API and runs the controllers that \
                  provision and keep consistent what consumers bind. Runs against one Kubernetes \
                  cluster (--multicluster-runtime-provider kubernetes) or every kcp logical cluster \
                  bound to an APIExport (--multicluster-runtime-provider kcp)."
)]
pub struct Flags {
    /// Path to a kubeconfig. Without it: $KUBECONFIG, ~/.kube/config, then in-cluster config.
    /// With kcp it points at the workspace that owns the APIExport.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub kubeconfig: String,

    /// Multicluster provider: kubernetes (one cluster; "" and single are aliases) or kcp.
    #[arg(long, value_name = "NAME", default_value = "kubernetes")]
    pub multicluster_runtime_provider: String,

    /// kcp only: name of the APIExportEndpointSlice (in the kubeconfig's workspace) to serve.
    #[arg(
        long = "apiexport-endpointslice-name",
        alias = "apiexport-endpoint-slice-name",
        value_name = "NAME",
        default_value = "kube-bind.io"
    )]
    pub apiexport_endpointslice_name: String,

    /// Prefix of the generated per-consumer cluster namespaces.
    #[arg(long, value_name = "PREFIX", default_value = "cluster")]
    pub namespace_prefix: String,

    /// Provider name shown to consumers.
    #[arg(long, value_name = "NAME", default_value = "Backend")]
    pub pretty_name: String,

    /// How consumers access the provider cluster: namespaced or cluster (case-insensitive).
    #[arg(long, value_name = "SCOPE", default_value = "Namespaced")]
    pub consumer_scope: String,

    /// How cluster-scoped objects of different consumers are isolated: prefixed, namespaced or none.
    #[arg(long, value_name = "MODE", default_value = "Prefixed")]
    pub cluster_scoped_isolation: String,

    /// Server URL written into consumer kubeconfigs (https://host:port). Default: the provider's.
    #[arg(long, value_name = "URL", default_value = "")]
    pub external_address: String,

    /// CA bundle written into consumer kubeconfigs. Default: the provider's CA.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub external_ca_file: String,

    /// TLS server name (SNI) written into consumer kubeconfigs.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub external_server_name: String,

    /// Source of exportable schemas, Kind.version.group or an alias: customresourcedefinitions,
    /// apiresourceschemas.
    #[arg(
        long,
        value_name = "SOURCE",
        default_value = "CustomResourceDefinition.v1.apiextensions.k8s.io"
    )]
    pub schema_source: String,

    /// Lifetime of a login session (Go duration, e.g. 1h, 30m).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub token_expiry: String,

    /// How long an APIServiceExportRequest is kept after its creation, whatever its phase
    /// (Go duration). Upstream deletes them after 10m; what they made stays.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub request_ttl: String,

    /// OIDC provider type: external or embedded (an in-process development issuer under /oidc).
    #[arg(long, value_name = "TYPE", default_value = "external")]
    pub oidc_type: String,

    /// OIDC issuer URL. Embedded: defaults to http(s)://<listen-address>/oidc.
    #[arg(long, value_name = "URL", default_value = "")]
    pub oidc_issuer_url: String,

    /// OIDC client id. Embedded issuer: default kube-bind (a development default; replicas must agree).
    #[arg(long, value_name = "ID", default_value = "")]
    pub oidc_issuer_client_id: String,

    /// OIDC client secret. Embedded issuer: default a printed development secret; set your own.
    #[arg(
        long,
        value_name = "SECRET",
        default_value = "",
        hide_default_value = true
    )]
    pub oidc_issuer_client_secret: String,

    /// Redirect URL registered at the issuer, normally <public URL>/api/callback.
    #[arg(long, value_name = "URL", default_value = "")]
    pub oidc_callback_url: String,

    /// Embedded issuer only: RSA private key (PEM) signing its ID tokens; share it between
    /// replicas. Default: the --jwt-signing-key-file key, else one generated at start.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub oidc_signing_key_file: String,

    /// CA bundle to trust for the OIDC issuer's TLS certificate.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub oidc_ca_file: String,

    /// Cookie signing key, base64 of 32 or 64 bytes (or from the environment, out of `ps`'s sight).
    /// Default: random at start.
    #[arg(
        long,
        value_name = "BASE64",
        env = "KUBE_BIND_COOKIE_SIGNING_KEY",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub cookie_signing_key: String,

    /// Cookie encryption key, base64 of 16, 24 or 32 bytes (AES), or from the environment.
    /// Default: random at start.
    #[arg(
        long,
        value_name = "BASE64",
        env = "KUBE_BIND_COOKIE_ENCRYPTION_KEY",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub cookie_encryption_key: String,

    /// Where login sessions are kept: memory, cookie or redis.
    #[arg(long, value_name = "STORE", default_value = "memory")]
    pub session_store: String,

    /// Redis URL for --session-store redis (redis:// or rediss://).
    #[arg(long, value_name = "URL", default_value = "")]
    pub redis_url: String,

    /// Address to serve HTTP(S) on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub listen_address: String,

    /// Deprecated: use --listen-address.
    #[arg(long, value_name = "IP", default_value = "", hide = true)]
    pub listen_ip: String,

    /// Deprecated: use --listen-address.
    #[arg(long, value_name = "PORT", default_value_t = 0, hide = true)]
    pub listen_port: u32,

    /// Serving certificate (PEM). Needs --tls-key-file.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub tls_cert_file: String,

    /// Serving key (PEM). Needs --tls-cert-file.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub tls_key_file: String,

    /// Number of reconcile workers.
    #[arg(long, value_name = "N", default_value = "4")]
    pub workers: String,

    /// Run the reconcilers only while holding a coordination.k8s.io Lease.
    #[arg(long, default_value_t = false)]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease. Default: the pod's namespace, else "default".
    #[arg(long, value_name = "NAMESPACE", default_value = "")]
    pub leader_election_namespace: String,

    /// Name of the leader-election Lease.
    #[arg(long, value_name = "NAME", default_value = "kube-bind-backend")]
    pub leader_election_id: String,

    /// Serve /metrics on its own address instead of the main listener; "0" disables it.
    #[arg(long, value_name = "HOST:PORT", default_value = "")]
    pub metrics_bind_address: String,

    /// RSA private key (PEM) signing the backend's bearer tokens; share it between replicas.
    /// Default: a key generated at start.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub jwt_signing_key_file: String,

    /// Extra hosts (comma-separated) allowed as login redirect targets besides loopback.
    #[arg(long, value_name = "HOSTS", value_delimiter = ',')]
    pub allowed_redirect_hosts: Vec<String>,

    /// Login routes (/api/authorize, /api/callback, /oidc/*): requests per second per client IP; 0 disables the limit.
    #[arg(long, value_name = "N", default_value = "20")]
    pub auth_rate_limit: String,

    /// Login routes: burst of requests per client IP above the rate.
    #[arg(long, value_name = "N", default_value = "40")]
    pub auth_rate_burst: String,

    /// Proxies (comma-separated IPs or CIDRs, e.g. 127.0.0.1,10.0.0.0/8) in front of the backend:
    /// for a request from one of them the login rate limit counts the client named in
    /// X-Forwarded-For (its rightmost address that is not itself a trusted proxy), and
    /// X-Forwarded-Proto sets the scheme of login URLs and cookies. Default: none.
    #[arg(long, value_name = "ADDRESSES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: String,

    /// Deprecated: use --log-format.
    #[arg(long, value_name = "FORMAT", hide = true)]
    pub logging_format: Option<String>,

    /// Accepted for upstream compatibility and ignored: the web UI is built in.
    #[arg(long, value_name = "URL", hide = true)]
    pub frontend: Option<String>,

    /// Accepted for upstream compatibility and ignored: the authorize URL comes from discovery.
    #[arg(long, value_name = "URL", hide = true)]
    pub oidc_authorize_url: Option<String>,

    /// Accepted for upstream compatibility and ignored.
    #[arg(long, value_name = "RESOURCE", hide = true)]
    pub testing_auto_select: Option<String>,

    /// Accepted for upstream compatibility and ignored: use RUST_LOG for verbosity.
    #[arg(short = 'v', long = "v", value_name = "LEVEL", hide = true)]
    pub verbosity: Option<String>,
}
