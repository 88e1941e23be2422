//! The kubeconfig handed to a consumer (reference §3.1 step 6): one cluster, context and user,
//! all named `default`, rendered as YAML with keys in the order Go's `clientcmd.Write` uses.

use base64::Engine as _;
use serde::Serialize;

/// The one name of the cluster, context and user, and the current context.
pub const DEFAULT_NAME: &str = "default";

/// What goes into a consumer kubeconfig.
#[derive(Clone, Copy)]
pub struct KubeconfigInputs<'a> {
    pub server: &'a str,
    /// PEM; written base64-encoded as `certificate-authority-data`, left out when `None`.
    pub ca_pem: Option<&'a [u8]>,
    pub tls_server_name: Option<&'a str>,
    /// The cluster namespace: the context's namespace.
    pub namespace: &'a str,
    /// The `kube-binder` ServiceAccount token.
    pub token: &'a str,
}

/// The kubeconfig could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the consumer kubeconfig as YAML: {0}; this is a bug, please report it")]
pub struct RenderError(#[from] serde_saphyr::SerializeError);

#[derive(Serialize)]
struct Config<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    clusters: [Named<'a, Cluster<'a>>; 1],
    contexts: [Named<'a, Context<'a>>; 1],
    #[serde(rename = "current-context")]
    current_context: &'static str,
    kind: &'static str,
    preferences: Empty,
    users: [NamedUser<'a>; 1],
}

#[derive(Serialize)]
struct Named<'a, T> {
    #[serde(flatten)]
    item: T,
    name: &'a str,
}

#[derive(Serialize)]
struct Cluster<'a> {
    cluster: ClusterFields<'a>,
}

#[derive(Serialize)]
struct ClusterFields<'a> {
    #[serde(
        rename = "certificate-authority-data",
        skip_serializing_if = "Option::is_none"
    )]
    certificate_authority_data: Option<String>,
    server: &'a str,
    #[serde(rename = "tls-server-name", skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextFields<'a>,
}

#[derive(Serialize)]
struct ContextFields<'a> {
    cluster: &'static str,
    namespace: &'a str,
    user: &'static str,
}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'static str,
    user: UserFields<'a>,
}

#[derive(Serialize)]
struct UserFields<'a> {
    token: &'a str,
}

/// Serializes as `{}`.
#[derive(Serialize)]
struct Empty {}

/// The kubeconfig YAML for `inputs`.
pub fn render(inputs: KubeconfigInputs<'_>) -> Result<Vec<u8>, RenderError> {
    let config = Config {
        api_version: "v1",
        clusters: [Named {
            item: Cluster {
                cluster: ClusterFields {
                    certificate_authority_data: inputs
                        .ca_pem
                        .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
                    server: inputs.server,
                    tls_server_name: inputs.tls_server_name,
                },
            },
            name: DEFAULT_NAME,
        }],
        contexts: [Named {
            item: Context {
                context: ContextFields {
                    cluster: DEFAULT_NAME,
                    namespace: inputs.namespace,
                    user: DEFAULT_NAME,
                },
            },
            name: DEFAULT_NAME,
        }],
        current_context: DEFAULT_NAME,
        kind: "Config",
        preferences: Empty {},
        users: [NamedUser {
            name: DEFAULT_NAME,
            user: UserFields {
                token: inputs.token,
            },
        }],
    };
    // Plain scalars, one line each, as Go writes them: no folded `>-` blocks for long values.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    Ok(serde_saphyr::to_string_with_options(&config, options)?.into_bytes())
}

#[cfg(test)]
mod tests {
    use kube::config::Kubeconfig;

    use super::*;

    /// A CA long enough that a YAML writer might be tempted to fold it.
    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrM3Mtc2Vy\ndmVyLWNhQDE3MDAwMDAwMDAwHhcNMjMxMTE0MjIxMzIwWhcNMzMxMTExMjIxMzIw\nWjAjMSEwHwYDVQQDDBhrM3Mtc2VydmVyLWNhQDE3MDAwMDAwMDAwWTATBgcqhkjO\n-----END CERTIFICATE-----\n";

    fn inputs<'a>() -> KubeconfigInputs<'a> {
        KubeconfigInputs {
            server: "https://kcp.example:6443/clusters/2ocmmccjkme8bof4",
            ca_pem: Some(CA.as_bytes()),
            tls_server_name: Some("kcp.internal"),
            namespace: "kube-bind-x7k2p",
            token: "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1iaW5kLXg3azJwOmt1YmUtYmluZGVyIn0.c2lnbmF0dXJl",
        }
    }

    #[test]
    fn renders_one_default_cluster_context_and_user_that_kube_reads_back() {
        let bytes = render(inputs()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let parsed = Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("default"));
        assert_eq!(parsed.clusters.len(), 1);
        assert_eq!(parsed.contexts.len(), 1);
        assert_eq!(parsed.auth_infos.len(), 1);

        let cluster = &parsed.clusters[0];
        assert_eq!(cluster.name, "default");
        let cluster = cluster.cluster.as_ref().unwrap();
        assert_eq!(
            cluster.server.as_deref(),
            Some("https://kcp.example:6443/clusters/2ocmmccjkme8bof4")
        );
        let ca = base64::engine::general_purpose::STANDARD
            .decode(cluster.certificate_authority_data.as_deref().unwrap())
            .unwrap();
        assert_eq!(ca, CA.as_bytes());
        assert_eq!(cluster.tls_server_name.as_deref(), Some("kcp.internal"));

        let context = &parsed.contexts[0];
        assert_eq!(context.name, "default");
        let context = context.context.as_ref().unwrap();
        assert_eq!(context.cluster, "default");
        assert_eq!(context.user.as_deref(), Some("default"));
        assert_eq!(context.namespace.as_deref(), Some("kube-bind-x7k2p"));

        assert_eq!(parsed.auth_infos[0].name, "default");
        // kube keeps the token secret; read it as plain YAML.
        let raw: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(raw["users"][0]["user"]["token"], inputs().token);
    }

    #[test]
    fn optional_fields_are_left_out_not_empty() {
        let text = String::from_utf8(
            render(KubeconfigInputs {
                ca_pem: None,
                tls_server_name: None,
                ..inputs()
            })
            .unwrap(),
        )
        .unwrap();
        assert!(!text.contains("certificate-authority-data"), "{text}");
        assert!(!text.contains("tls-server-name"), "{text}");
        assert!(text.contains("preferences: {}"), "{text}");
        let parsed = Kubeconfig::from_yaml(&text).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate_authority_data, None);
        assert_eq!(cluster.tls_server_name, None);
    }

    #[test]
    fn keys_come_in_go_clientcmd_order() {
        let text = String::from_utf8(render(inputs()).unwrap()).unwrap();
        let position = |key: &str| {
            text.find(key)
                .unwrap_or_else(|| panic!("{key} missing in {text}"))
        };
        let order = [
            "apiVersion: v1",
            "clusters:",
            "certificate-authority-data:",
            "server:",
            "tls-server-name:",
            "contexts:",
            "current-context: default",
            "kind: Config",
            "preferences:",
            "users:",
            "token:",
        ];
        for pair in order.windows(2) {
            assert!(position(pair[0]) < position(pair[1]), "{pair:?} in {text}");
        }
    }

    #[test]
    fn long_values_stay_on_one_line() {
        let text = String::from_utf8(render(inputs()).unwrap()).unwrap();
        assert!(!text.contains(">-") && !text.contains('|'), "{text}");
        assert!(
            text.lines()
                .any(|l| l.trim() == format!("token: {}", inputs().token)),
            "{text}"
        );
    }

    #[test]
    fn same_inputs_render_the_same_bytes() {
        assert_eq!(render(inputs()).unwrap(), render(inputs()).unwrap());
    }
}
