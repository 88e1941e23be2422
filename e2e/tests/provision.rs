//! Bind-time provisioning on a real kube-apiserver (kubernetes provider): what `POST /api/bind`
//! makes for a consumer, made twice, for two consumers, from a legacy namespace and by two binds
//! at once, and the kubeconfig it hands out used with kubectl. The kcp counterpart is
//! `provision_kcp.rs` (one test world per test binary).

mod controller_support;
mod provision_support;

use controller_support::given_a_provider_cluster;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_bind_backend::provider::{ClusterId, EndpointKind};
use kube_bind_backend::provision::ProvisionSettings;
use provision_support::ProviderCluster;

/// The plain provider cluster as the kubernetes provider reaches it: its kubeconfig's server,
/// the one cluster `""`, the kubeconfig's CA.
async fn given_a_plain_provider() -> anyhow::Result<ProviderCluster> {
    let (env, plain) = given_a_provider_cluster().await?;
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&plain.kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let url = config.cluster_url.to_string();
    let ca = ProvisionSettings::provider_ca_of(&config);
    assert!(ca.is_some(), "the kubeconfig names a CA");
    let client = kube::Client::try_from(config)?;
    Ok(ProviderCluster::new(
        env,
        (&url, EndpointKind::Direct, client.clone()),
        ClusterId::single(),
        client,
        ca,
        url.clone(),
    ))
}

#[tokio::test]
async fn given_two_consumers_when_they_bind_then_each_gets_one_namespace_and_a_scoped_kubeconfig()
-> anyhow::Result<()> {
    // No backend runs: the bind alone must make a kubeconfig that works.
    let provider = given_a_plain_provider().await?;
    provision_support::given_two_consumers_when_they_bind_then_each_gets_one_namespace_and_a_scoped_kubeconfig(&provider).await
}

#[tokio::test]
async fn given_a_namespace_with_the_legacy_annotation_when_its_consumer_binds_then_it_is_migrated_and_reused()
-> anyhow::Result<()> {
    let provider = given_a_plain_provider().await?;
    provision_support::given_a_namespace_with_the_legacy_annotation_when_its_consumer_binds_then_it_is_migrated_and_reused(&provider).await
}

#[tokio::test]
async fn given_one_consumer_when_it_binds_twice_at_once_then_one_namespace_is_made()
-> anyhow::Result<()> {
    let provider = given_a_plain_provider().await?;
    provision_support::given_one_consumer_when_it_binds_twice_at_once_then_one_namespace_is_made(
        &provider,
    )
    .await
}
