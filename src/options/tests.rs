use std::io::Write;

use super::*;

const EMBEDDED: &[&str] = &["kube-bind-backend", "--oidc-type", "embedded"];

fn parse(extra: &[&str]) -> Result<Options, OptionsError> {
    Options::from_args(EMBEDDED.iter().chain(extra))
}

fn refused(extra: &[&str]) -> InvalidFlags {
    match parse(extra) {
        Err(OptionsError::Invalid(invalid)) => invalid,
        other => panic!("expected invalid flags for {extra:?}, got {other:?}"),
    }
}

#[test]
fn upstream_defaults() {
    let opts = parse(&[]).unwrap();
    assert_eq!(opts.provider, ProviderKind::Kubernetes);
    assert_eq!(opts.namespace_prefix, "cluster");
    assert_eq!(opts.pretty_name, "Backend");
    assert_eq!(opts.consumer_scope, ConsumerScope::Namespaced);
    assert_eq!(opts.cluster_scoped_isolation, Isolation::Prefixed);
    assert_eq!(opts.schema_source, SchemaSource::CustomResourceDefinitions);
    assert_eq!(opts.token_expiry, Duration::from_secs(3600));
    assert_eq!(opts.request_ttl, Duration::from_secs(600));
    assert_eq!(opts.listen_address, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(opts.session_store, SessionStore::Memory);
    assert_eq!(opts.metrics, MetricsEndpoint::MainListener);
    assert_eq!(opts.log_format, LogFormat::Text);
    assert!(opts.warnings.is_empty(), "{:?}", opts.warnings);
}

#[test]
fn kcp_provider_with_both_slice_spellings() {
    for flag in [
        "--apiexport-endpointslice-name",
        "--apiexport-endpoint-slice-name",
    ] {
        let opts = parse(&["--multicluster-runtime-provider", "kcp", flag, "my-slice"]).unwrap();
        assert_eq!(
            opts.provider,
            ProviderKind::Kcp {
                endpoint_slice: "my-slice".into()
            }
        );
    }
    let opts = parse(&["--multicluster-runtime-provider=kcp"]).unwrap();
    assert_eq!(
        opts.provider,
        ProviderKind::Kcp {
            endpoint_slice: "kube-bind.io".into()
        }
    );
}

#[test]
fn provider_aliases() {
    for alias in ["kubernetes", "", "single"] {
        let opts = parse(&["--multicluster-runtime-provider", alias]).unwrap();
        assert_eq!(opts.provider, ProviderKind::Kubernetes, "{alias:?}");
    }
}

#[test]
fn case_insensitive_scope_and_isolation() {
    let opts = parse(&[
        "--consumer-scope=cluster",
        "--cluster-scoped-isolation=NONE",
    ])
    .unwrap();
    assert_eq!(opts.consumer_scope, ConsumerScope::Cluster);
    assert_eq!(opts.cluster_scoped_isolation, Isolation::None);
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let invalid = refused(&[
        "--multicluster-runtime-provider=kcp",
        "--apiexport-endpointslice-name=",
        "--consumer-scope=everywhere",
        "--cluster-scoped-isolation=walls",
        "--token-expiry=soon",
        "--request-ttl=0",
        "--cookie-signing-key=c2hvcnQ=",
        "--cookie-encryption-key=c2hvcnQ=",
        "--external-address=http://insecure.example.com",
        "--tls-cert-file=/tmp/cert.pem",
        "--schema-source=Widgets",
        "--workers=0",
        "--session-store=redis",
        "--log-format=xml",
        "--namespace-prefix=Bad_Prefix",
        "--pretty-name=",
    ]);
    let mut flags = invalid.flags();
    flags.sort_unstable();
    assert_eq!(
        flags,
        [
            "apiexport-endpointslice-name",
            "cluster-scoped-isolation",
            "consumer-scope",
            "cookie-encryption-key",
            "cookie-signing-key",
            "external-address",
            "log-format",
            "namespace-prefix",
            "pretty-name",
            "request-ttl",
            "schema-source",
            "session-store",
            "tls-cert-file",
            "token-expiry",
            "workers",
        ]
    );
    // One line per flag, each naming it.
    let text = invalid.to_string();
    assert_eq!(text.lines().count(), flags.len());
    for line in text.lines() {
        assert!(line.starts_with("invalid flag --"), "{line}");
    }
    assert!(text.contains("use namespaced or cluster"), "{text}");
    assert!(text.contains("use prefixed, namespaced or none"), "{text}");
}

#[test]
fn unknown_provider_names_the_allowed_values() {
    let text = refused(&["--multicluster-runtime-provider=kind"]).to_string();
    assert!(text.contains("--multicluster-runtime-provider"), "{text}");
    assert!(text.contains("\"kcp\""), "{text}");
}

#[test]
fn tls_key_without_cert() {
    let invalid = refused(&["--tls-key-file=/tmp/key.pem"]);
    assert_eq!(invalid.flags(), ["tls-cert-file"]);
}

#[test]
fn external_oidc_requires_its_settings() {
    let err = Options::from_args(["kube-bind-backend"]).unwrap_err();
    let OptionsError::Invalid(invalid) = err else {
        panic!("{err:?}")
    };
    let mut flags = invalid.flags();
    flags.sort_unstable();
    assert_eq!(
        flags,
        [
            "oidc-callback-url",
            "oidc-issuer-client-id",
            "oidc-issuer-client-secret",
            "oidc-issuer-url"
        ]
    );

    let ok = Options::from_args([
        "kube-bind-backend",
        "--oidc-issuer-url=https://idp.example.com",
        "--oidc-issuer-client-id=kube-bind",
        "--oidc-issuer-client-secret=s3cret",
        "--oidc-callback-url=https://bind.example.com/api/callback",
    ])
    .unwrap();
    assert!(matches!(ok.oidc, Oidc::External { .. }));
}

#[test]
fn embedded_issuer_must_be_served_under_oidc() {
    assert_eq!(
        refused(&["--oidc-issuer-url=http://127.0.0.1:8080/"]).flags(),
        ["oidc-issuer-url"]
    );
    let opts = parse(&["--oidc-issuer-url=http://127.0.0.1:8080/oidc"]).unwrap();
    assert_eq!(
        opts.oidc,
        Oidc::Embedded {
            issuer_url: Some("http://127.0.0.1:8080/oidc".into()),
            callback_url: None,
            client_id: "kube-bind".into(),
            client_secret: "kube-bind-embedded-development-secret".into(),
            signing_key_file: None,
        }
    );
}

#[test]
fn auth_rate_limit_is_a_count_and_zero_disables_it() {
    let opts = parse(&[]).unwrap();
    assert_eq!(opts.auth_rate_limit.per_second.map(|n| n.get()), Some(20));
    assert_eq!(opts.auth_rate_limit.burst.get(), 40);
    let off = parse(&["--auth-rate-limit=0"]).unwrap();
    assert_eq!(off.auth_rate_limit.per_second, None);
    assert_eq!(
        refused(&["--auth-rate-limit=fast", "--auth-rate-burst=0"]).flags(),
        ["auth-rate-limit", "auth-rate-burst"]
    );
}

#[test]
fn trusted_proxies_are_ips_or_cidrs_and_none_by_default() {
    assert!(parse(&[]).unwrap().trusted_proxies.is_empty());
    let opts = parse(&[
        "--trusted-proxies=127.0.0.1,10.0.0.0/8",
        "--trusted-proxies",
        "fd00::/8",
    ])
    .unwrap();
    for (ip, want) in [
        ("127.0.0.1", true),
        ("10.9.9.9", true),
        ("fd00::5", true),
        ("127.0.0.2", false),
    ] {
        assert_eq!(
            opts.trusted_proxies.contains(ip.parse().unwrap()),
            want,
            "{ip}"
        );
    }
    let invalid = refused(&["--trusted-proxies=127.0.0.1,proxy.local,10.0.0.0/40"]);
    assert_eq!(invalid.flags(), ["trusted-proxies"]);
    let message = invalid.to_string();
    assert!(
        message.contains("\"proxy.local\"") && message.contains("\"10.0.0.0/40\""),
        "{message}"
    );
}

#[test]
fn good_cookie_keys_and_files_are_accepted() {
    let mut ca = tempfile();
    ca.1.write_all(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        .unwrap();
    let signing = "A".repeat(43) + "="; // 32 zero bytes
    let opts = parse(&[
        &format!("--cookie-signing-key={signing}"),
        "--cookie-encryption-key=MDEyMzQ1Njc4OWFiY2RlZg==", // 16 bytes
        &format!("--external-ca-file={}", ca.0.display()),
        "--external-address=https://provider.example.com:6443/",
        "--session-store=redis",
        "--redis-url=redis://127.0.0.1:6379",
        "--token-expiry=1h30m",
        "--request-ttl=24h",
        "--metrics-bind-address=127.0.0.1:9090",
        "--allowed-redirect-hosts=app.example.com,Other.Example.com",
    ])
    .unwrap();
    assert_eq!(opts.cookie_keys.signing.as_ref().map(Vec::len), Some(32));
    assert_eq!(opts.cookie_keys.encryption.as_ref().map(Vec::len), Some(16));
    assert!(opts.external_ca.is_some());
    assert_eq!(
        opts.external_address.as_deref(),
        Some("https://provider.example.com:6443")
    );
    assert_eq!(
        opts.session_store,
        SessionStore::Redis {
            url: "redis://127.0.0.1:6379".into()
        }
    );
    assert_eq!(opts.token_expiry, Duration::from_secs(5400));
    assert_eq!(opts.request_ttl, Duration::from_secs(86_400));
    assert_eq!(
        opts.allowed_redirect_hosts,
        ["app.example.com", "other.example.com"]
    );
    std::fs::remove_file(&ca.0).unwrap();
}

#[test]
fn cookie_keys_are_never_printed() {
    let keys = CookieKeys {
        signing: Some(vec![7; 32]),
        encryption: None,
    };
    assert!(!format!("{keys:?}").contains('7'));
}

#[test]
fn upstream_compatibility_flags_warn() {
    let opts = parse(&[
        "--listen-ip=127.0.0.1",
        "--listen-port=9443",
        "--logging-format=json",
        "--frontend=http://localhost:3000",
        "--oidc-authorize-url=http://x",
        "--testing-auto-select=cowboys.wildwest.dev",
        "-v=4",
    ])
    .unwrap();
    assert_eq!(opts.listen_address, "127.0.0.1:9443".parse().unwrap());
    assert_eq!(opts.log_format, LogFormat::Json);
    assert_eq!(opts.warnings.len(), 6, "{:?}", opts.warnings);
    let opts = parse(&["-v", "2", "--listen-address=:8443"]).unwrap();
    assert_eq!(opts.listen_address, "0.0.0.0:8443".parse().unwrap());
}

#[test]
fn help_lists_every_flag() {
    use clap::CommandFactory;
    let help = Flags::command().render_long_help().to_string();
    for flag in [
        "--kubeconfig",
        "--multicluster-runtime-provider",
        "--apiexport-endpointslice-name",
        "--namespace-prefix",
        "--pretty-name",
        "--consumer-scope",
        "--cluster-scoped-isolation",
        "--external-address",
        "--external-ca-file",
        "--external-server-name",
        "--schema-source",
        "--token-expiry",
        "--oidc-type",
        "--oidc-issuer-url",
        "--oidc-issuer-client-id",
        "--oidc-issuer-client-secret",
        "--oidc-callback-url",
        "--oidc-ca-file",
        "--cookie-signing-key",
        "--cookie-encryption-key",
        "--session-store",
        "--redis-url",
        "--listen-address",
        "--tls-cert-file",
        "--tls-key-file",
        "--workers",
        "--leader-elect",
        "--leader-election-namespace",
        "--metrics-bind-address",
        "--jwt-signing-key-file",
        "--allowed-redirect-hosts",
        "--trusted-proxies",
        "--log-format",
        "--version",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn syntax_errors_and_refusals_exit_2() {
    let err = Options::from_args(["kube-bind-backend", "--no-such-flag"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let err = parse(&["--workers=many"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let err = Options::from_args(["kube-bind-backend", "--version"]).unwrap_err();
    assert_eq!(err.exit_code(), 0);
}

/// A unique file under the system temp dir (removed by the test).
fn tempfile() -> (std::path::PathBuf, std::fs::File) {
    let path = std::env::temp_dir().join(format!(
        "kube-bind-opts-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}
