//! Bind-time provisioning (reference §3.1, upstream's `HandleResources`): what `POST /api/bind`
//! makes in the consumer's provider cluster before it answers, and the kubeconfig it hands out.
//!
//! In order: the cluster namespace of the identity, its ClusterBinding `cluster`, the
//! ServiceAccount `kube-binder`, the global ClusterRole `kube-binder` and the cluster
//! namespace's RoleBinding to it, the ServiceAccount's token Secret, and the kubeconfig Secret.
//! The RoleBinding is the ClusterBinding controller's (reference §3.2 step 2); writing the same
//! object here makes the kubeconfig usable the moment the bind answers.
//!
//! Pure parts: [`objects`] (what is written), [`server_url`] (the kubeconfig's server),
//! [`kubeconfig`] (its YAML). I/O: [`steps`].

mod error;
pub mod kubeconfig;
mod lock;
pub mod objects;
pub mod server_url;
pub mod steps;

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

pub use error::ProvisionError;

use crate::provider::{Cluster, ClusterId};
use kubeconfig::KubeconfigInputs;
use lock::IdentityLocks;
use steps::Steps;

/// Who a cluster namespace belongs to: `<oidc sub>#<cluster id>`, exactly upstream's string, so
/// namespaces the Go backend made are found again (`alice#` with the kubernetes provider).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Identity(String);

impl Identity {
    pub fn new(subject: &str, cluster: &ClusterId) -> Self {
        Self(format!("{subject}#{cluster}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The flags provisioning depends on, and the provider's CA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvisionSettings {
    pub namespace_prefix: String,
    pub pretty_name: String,
    pub external_address: Option<String>,
    pub external_ca: Option<Vec<u8>>,
    pub external_server_name: Option<String>,
    /// CA (PEM) of the provider's rest config, used when --external-ca-file is not given.
    pub provider_ca: Option<Vec<u8>>,
}

impl ProvisionSettings {
    /// Empty flag values count as not given.
    pub fn from_options(options: &crate::options::Options, provider_ca: Option<Vec<u8>>) -> Self {
        let given = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Self {
            namespace_prefix: options.namespace_prefix.clone(),
            pretty_name: options.pretty_name.clone(),
            external_address: given(&options.external_address),
            external_ca: options.external_ca.clone().filter(|ca| !ca.is_empty()),
            external_server_name: given(&options.external_server_name),
            provider_ca: provider_ca.filter(|ca| !ca.is_empty()),
        }
    }

    /// The CA of `config` (what `provider_ca` should be) as PEM, if it names one.
    pub fn provider_ca_of(config: &kube::Config) -> Option<Vec<u8>> {
        config
            .root_cert
            .as_deref()
            .filter(|certs| !certs.is_empty())
            .map(pem_certificates)
    }

    /// The CA written into kubeconfigs: `--external-ca-file`, else the provider's.
    fn kubeconfig_ca(&self) -> Option<&[u8]> {
        self.external_ca.as_deref().or(self.provider_ca.as_deref())
    }
}

/// DER certificates as one PEM bundle.
fn pem_certificates(der: &[Vec<u8>]) -> Vec<u8> {
    let mut pem = String::new();
    for cert in der {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert);
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

/// What a bind got: the cluster namespace, and the kubeconfig stored in Secret `secret_name`
/// there.
#[derive(Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub namespace: String,
    /// YAML; holds the ServiceAccount token.
    pub kubeconfig: Vec<u8>,
    pub secret_name: String,
}

impl fmt::Debug for Provisioned {
    // The kubeconfig holds a token: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioned")
            .field("namespace", &self.namespace)
            .field("secret_name", &self.secret_name)
            .field(
                "kubeconfig",
                &format_args!("<{} bytes>", self.kubeconfig.len()),
            )
            .finish()
    }
}

/// Provisions consumers' access. Cheap to clone; clones share the per-identity locks.
#[derive(Clone)]
pub struct Provisioner {
    settings: Arc<ProvisionSettings>,
    /// Binds of one identity in this process run one after another, so they never create two
    /// namespaces.
    locks: IdentityLocks,
}

impl Provisioner {
    pub fn new(settings: ProvisionSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            locks: IdentityLocks::default(),
        }
    }

    /// Makes (or finds) everything `identity` needs in `cluster` and returns its kubeconfig.
    /// Idempotent: a second call returns the same namespace, Secret and kubeconfig.
    #[tracing::instrument(
        name = "provision",
        skip_all,
        fields(cluster = %cluster.id(), identity = %identity, namespace = tracing::field::Empty)
    )]
    pub async fn provision(
        &self,
        cluster: &Cluster,
        identity: &Identity,
    ) -> Result<Provisioned, ProvisionError> {
        // Computed first, so a bad endpoint URL writes nothing.
        let endpoint = cluster.endpoint();
        let server = server_url::kubeconfig_server(
            endpoint.kind(),
            &endpoint.cluster_url(cluster.id()),
            self.settings.external_address.as_deref(),
        )
        .map_err(|source| ProvisionError::ServerUrl {
            cluster: cluster.id().clone(),
            source,
        })?;

        let _serial = self.locks.lock(cluster.id(), identity).await;
        let steps = Steps::new(cluster);
        let settings = &self.settings;
        let namespace = steps
            .cluster_namespace(&settings.namespace_prefix, identity)
            .await?;
        tracing::Span::current().record("namespace", namespace.as_str());
        let secret_name = steps
            .cluster_binding(&namespace, &settings.pretty_name)
            .await?;
        steps.service_account(&namespace).await?;
        steps.binder_cluster_role().await?;
        steps.binder_role_binding(&namespace).await?;
        let token = steps.token(&namespace).await?;
        let kubeconfig = kubeconfig::render(KubeconfigInputs {
            server: &server,
            ca_pem: settings.kubeconfig_ca(),
            tls_server_name: settings.external_server_name.as_deref(),
            namespace: &namespace,
            token: &token,
        })?;
        steps
            .store_kubeconfig(&namespace, &secret_name, &kubeconfig)
            .await?;
        Ok(Provisioned {
            namespace,
            kubeconfig,
            secret_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_subject_hash_cluster() {
        assert_eq!(
            Identity::new("alice", &ClusterId::single()).as_str(),
            "alice#"
        );
        assert_eq!(
            Identity::new("CgRhbGljZRIFbG9jYWw", &ClusterId::new("2ocmmccjkme8bof4")).to_string(),
            "CgRhbGljZRIFbG9jYWw#2ocmmccjkme8bof4"
        );
    }

    #[test]
    fn the_external_ca_wins_over_the_providers() {
        let mut settings = ProvisionSettings {
            provider_ca: Some(b"provider".to_vec()),
            ..Default::default()
        };
        assert_eq!(settings.kubeconfig_ca(), Some(&b"provider"[..]));
        settings.external_ca = Some(b"external".to_vec());
        assert_eq!(settings.kubeconfig_ca(), Some(&b"external"[..]));
    }

    #[test]
    fn settings_from_options_treat_empty_values_as_not_given() {
        let mut options =
            crate::options::Options::from_args(["kube-bind-backend", "--oidc-type=embedded"])
                .unwrap();
        options.external_address = Some(String::new());
        options.external_server_name = Some("kcp.internal".into());
        let settings = ProvisionSettings::from_options(&options, Some(Vec::new()));
        assert_eq!(settings.external_address, None);
        assert_eq!(
            settings.external_server_name.as_deref(),
            Some("kcp.internal")
        );
        assert_eq!(settings.provider_ca, None);
        assert_eq!(settings.namespace_prefix, options.namespace_prefix);
    }

    #[test]
    fn der_certificates_become_pem_that_decodes_back() {
        let der = vec![vec![7u8; 100], vec![9u8; 3]];
        let pem = String::from_utf8(pem_certificates(&der)).unwrap();
        let blocks: Vec<Vec<u8>> = pem
            .split("-----END CERTIFICATE-----\n")
            .filter(|b| !b.is_empty())
            .map(|b| {
                let body: String = b
                    .trim_start_matches("-----BEGIN CERTIFICATE-----\n")
                    .lines()
                    .inspect(|l| assert!(l.len() <= 64))
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap()
            })
            .collect();
        assert_eq!(blocks, der);
    }
}
