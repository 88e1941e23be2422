//! What the provisioning tests share: a provider cluster reached as the backend reaches it
//! (a backend-less [`Cluster`]), the scenarios run on a plain apiserver and on kcp, and
//! kubectl runs with the kubeconfig a bind hands out.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube_bind_apis::ClusterBinding;
use kube_bind_apis::keys::{IDENTITY_ANNOTATION, LEGACY_IDENTITY_ANNOTATION};
use kube_bind_backend::provider::{Cluster, ClusterId, Endpoint, EndpointKind};
use kube_bind_backend::provision::{Identity, ProvisionSettings, Provisioned, Provisioner};
use kube_bind_e2e::harness::Env;
use kube_bind_e2e::harness::kubectl::{KubectlOutput, kubectl};
use tokio_util::sync::CancellationToken;

/// The namespace prefix the scenarios provision with (a trailing `-`, as kcp setups use).
pub const PREFIX: &str = "kube-bind-";

/// A provider cluster as bind-time provisioning sees it.
pub struct ProviderCluster {
    pub env: &'static Env,
    /// What the backend writes through (kcp: the APIExport virtual workspace).
    pub cluster: Cluster,
    /// An admin client of the same cluster, to look at what was written.
    pub admin: kube::Client,
    pub provisioner: Provisioner,
    /// The `server` every kubeconfig handed out must have.
    pub server: String,
}

impl ProviderCluster {
    /// The cluster `id` behind an endpoint of `kind` at `url`, reached with `client`.
    pub fn new(
        env: &'static Env,
        (url, kind, client): (&str, EndpointKind, kube::Client),
        id: ClusterId,
        admin: kube::Client,
        provider_ca: Option<Vec<u8>>,
        server: String,
    ) -> Self {
        let endpoint = Arc::new(Endpoint::new(url, kind, client, CancellationToken::new()));
        let settings = ProvisionSettings {
            namespace_prefix: PREFIX.to_owned(),
            pretty_name: "Wild West".to_owned(),
            provider_ca,
            ..Default::default()
        };
        Self {
            env,
            cluster: Cluster::new(id, endpoint),
            admin,
            provisioner: Provisioner::new(settings),
            server,
        }
    }

    /// An identity unique to this run: `<name>-<pid>-<n>#<cluster id>`.
    pub fn identity(&self, name: &str) -> Identity {
        Identity::new(&self.env.unique(name), self.cluster.id())
    }

    pub async fn bind(&self, identity: &Identity) -> anyhow::Result<Provisioned> {
        Ok(self.provisioner.provision(&self.cluster, identity).await?)
    }

    /// Writes a handed-out kubeconfig to a file for kubectl.
    pub fn kubeconfig_file(&self, provisioned: &Provisioned) -> anyhow::Result<PathBuf> {
        let dir = self.env.log_dir.join("kubeconfigs");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("provisioned-{}.yaml", provisioned.namespace));
        std::fs::write(&file, &provisioned.kubeconfig)?;
        Ok(file)
    }

    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> anyhow::Result<KubectlOutput> {
        Ok(kubectl(kubeconfig, args, &self.env.log_dir)?)
    }
}

/// The `server` of a handed-out kubeconfig.
pub fn server_of(provisioned: &Provisioned) -> anyhow::Result<String> {
    let raw: serde_json::Value =
        serde_saphyr::from_slice(&provisioned.kubeconfig).map_err(|e| anyhow::anyhow!("{e}"))?;
    raw["clusters"][0]["cluster"]["server"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the kubeconfig has no server"))
}

/// Scenario: a consumer binds twice and gets the same namespace, Secret and kubeconfig; another
/// consumer gets a namespace of its own; the kubeconfig reaches the consumer's namespace only.
pub async fn given_two_consumers_when_they_bind_then_each_gets_one_namespace_and_a_scoped_kubeconfig(
    provider: &ProviderCluster,
) -> anyhow::Result<()> {
    let alice = provider.identity("alice");
    let bob = provider.identity("bob");

    // When alice binds twice.
    let first = provider.bind(&alice).await?;
    let second = provider.bind(&alice).await?;

    // Then she gets the same namespace, Secret and kubeconfig, pointing at the expected server.
    assert_eq!(first.namespace, second.namespace);
    assert_eq!(first.secret_name, "kubeconfig");
    assert_eq!(second.secret_name, first.secret_name);
    assert_eq!(server_of(&first)?, provider.server);
    assert_eq!(second.kubeconfig, first.kubeconfig);
    assert!(first.namespace.starts_with(PREFIX), "{}", first.namespace);
    assert_namespace_of(provider, &first.namespace, &alice).await?;
    let secret = Api::<Secret>::namespaced(provider.admin.clone(), &first.namespace)
        .get(&first.secret_name)
        .await?;
    assert_eq!(
        secret
            .data
            .unwrap_or_default()
            .get("kubeconfig")
            .map(|b| &b.0),
        Some(&first.kubeconfig),
        "the Secret holds the kubeconfig handed out"
    );
    let binding = Api::<ClusterBinding>::namespaced(provider.admin.clone(), &first.namespace)
        .get("cluster")
        .await?;
    assert_eq!(binding.spec.kubeconfig_secret_ref.name, "kubeconfig");
    assert_eq!(binding.spec.provider_pretty_name, "Wild West");

    // When bob binds, then he gets another namespace.
    let other = provider.bind(&bob).await?;
    assert_ne!(other.namespace, first.namespace);

    // Then alice's kubeconfig may create export requests in her namespace as soon as the bind
    // answered, as upstream's CLI does at once (no controller runs here) ...
    let kubeconfig = provider.kubeconfig_file(&first)?;
    let can_create = provider.kubectl(
        &kubeconfig,
        &[
            "auth",
            "can-i",
            "create",
            "apiserviceexportrequests.kube-bind.io",
            "-n",
            &first.namespace,
        ],
    )?;
    assert_eq!(can_create.stdout.trim(), "yes", "{can_create:?}");
    // ... reads with its token really work there ...
    let read = provider.kubectl(&kubeconfig, &["get", "clusterbindings", "-o", "name"])?;
    assert!(read.success && read.stdout.contains("cluster"), "{read:?}");
    // ... and bob's namespace is closed to it.
    let can_i = provider.kubectl(
        &kubeconfig,
        &["auth", "can-i", "get", "secrets", "-n", &other.namespace],
    )?;
    // kcp adds the reason ("no - access denied").
    assert!(
        !can_i.success && can_i.stdout.starts_with("no"),
        "{can_i:?}"
    );
    let get = provider.kubectl(&kubeconfig, &["get", "secrets", "-n", &other.namespace])?;
    assert!(!get.success && get.stderr.contains("Forbidden"), "{get:?}");
    Ok(())
}

/// Scenario: a namespace the Go backend's predecessor annotated with the legacy key is the
/// consumer's namespace: reused, its annotation moved to the current key.
pub async fn given_a_namespace_with_the_legacy_annotation_when_its_consumer_binds_then_it_is_migrated_and_reused(
    provider: &ProviderCluster,
) -> anyhow::Result<()> {
    let carol = provider.identity("carol");
    let name = provider.env.unique("legacy");
    let legacy: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "annotations": {LEGACY_IDENTITY_ANNOTATION: carol.as_str()}},
    }))?;
    Api::<Namespace>::all(provider.admin.clone())
        .create(&PostParams::default(), &legacy)
        .await?;

    let provisioned = provider.bind(&carol).await?;

    assert_eq!(provisioned.namespace, name);
    let annotations = assert_namespace_of(provider, &name, &carol).await?;
    assert!(
        !annotations.contains_key(LEGACY_IDENTITY_ANNOTATION),
        "legacy key removed: {annotations:?}"
    );
    assert_eq!(server_of(&provisioned)?, provider.server);
    Ok(())
}

/// Scenario: two binds of one consumer at once share one namespace.
pub async fn given_one_consumer_when_it_binds_twice_at_once_then_one_namespace_is_made(
    provider: &ProviderCluster,
) -> anyhow::Result<()> {
    let dave = provider.identity("dave");
    let (a, b) = tokio::join!(provider.bind(&dave), provider.bind(&dave));
    let (a, b) = (a?, b?);
    assert_eq!(a.namespace, b.namespace);
    let all = Api::<Namespace>::all(provider.admin.clone())
        .list(&ListParams::default())
        .await?;
    let dave_namespaces: Vec<_> = all
        .items
        .iter()
        .filter(|ns| {
            ns.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(IDENTITY_ANNOTATION))
                .map(String::as_str)
                == Some(dave.as_str())
        })
        .collect();
    assert_eq!(dave_namespaces.len(), 1, "{dave_namespaces:?}");
    Ok(())
}

/// Asserts `name` carries `identity` under the current key; returns its annotations.
async fn assert_namespace_of(
    provider: &ProviderCluster,
    name: &str,
    identity: &Identity,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let namespace = Api::<Namespace>::all(provider.admin.clone())
        .get(name)
        .await?;
    let annotations = namespace.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get(IDENTITY_ANNOTATION).map(String::as_str),
        Some(identity.as_str()),
        "{annotations:?}"
    );
    Ok(annotations)
}
