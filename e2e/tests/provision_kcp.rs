//! Bind-time provisioning on real kcp: a provider workspace bound to `kube-bind.io`, written
//! through the APIExport virtual workspace as the backend writes; the kubeconfig handed out
//! targets the workspace itself (`<vw host>/clusters/<id>`), never the virtual workspace, and
//! works there with the `kube-binder` token. Same scenarios as `provision.rs`.

mod provision_support;

use kube_bind_backend::provider::{ClusterId, EndpointKind};
use kube_bind_e2e::harness::topology::{KubeBindTopology, setup_kube_bind};
use kube_bind_e2e::harness::{Env, EnvSpec};
use provision_support::ProviderCluster;
use tokio::sync::OnceCell;

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a"]);
/// Set up once: tests run at once, and kcp refuses concurrent writes of one APIBinding.
static TOPOLOGY: OnceCell<KubeBindTopology> = OnceCell::const_new();

/// The provider workspace as the kcp provider reaches it: its cluster behind the `kube-bind.io`
/// virtual workspace, with the front's CA.
async fn given_a_provider_workspace() -> anyhow::Result<(ProviderCluster, KubeBindTopology)> {
    let env = Env::shared(&SPEC)?;
    let topology = TOPOLOGY
        .get_or_try_init(|| setup_kube_bind(env, "kube-bind", &["provider-a"], None))
        .await?
        .clone();
    let workspace = &topology.providers[0];
    let vw = env
        .client_for(&topology.endpoint_url, &env.admin_token)
        .await?;
    let uri: http::Uri = topology.endpoint_url.parse()?;
    let host = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    );
    let provider = ProviderCluster::new(
        env,
        (&topology.endpoint_url, EndpointKind::VirtualWorkspace, vw),
        ClusterId::new(&workspace.id),
        workspace.client().await?,
        Some(env.ca_pem.clone().into_bytes()),
        format!("{host}/clusters/{}", workspace.id),
    );
    Ok((provider, topology))
}

#[tokio::test]
async fn given_two_consumers_when_they_bind_then_each_gets_one_namespace_and_a_scoped_kubeconfig()
-> anyhow::Result<()> {
    // No backend runs: the bind alone must make a kubeconfig that works.
    let (provider, _) = given_a_provider_workspace().await?;
    provision_support::given_two_consumers_when_they_bind_then_each_gets_one_namespace_and_a_scoped_kubeconfig(&provider).await
}

#[tokio::test]
async fn given_a_namespace_with_the_legacy_annotation_when_its_consumer_binds_then_it_is_migrated_and_reused()
-> anyhow::Result<()> {
    let (provider, _) = given_a_provider_workspace().await?;
    provision_support::given_a_namespace_with_the_legacy_annotation_when_its_consumer_binds_then_it_is_migrated_and_reused(&provider).await
}

#[tokio::test]
async fn given_one_consumer_when_it_binds_twice_at_once_then_one_namespace_is_made()
-> anyhow::Result<()> {
    let (provider, _) = given_a_provider_workspace().await?;
    provision_support::given_one_consumer_when_it_binds_twice_at_once_then_one_namespace_is_made(
        &provider,
    )
    .await
}
