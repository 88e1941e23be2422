//! Leader election against a real kube-apiserver: a leader cut off from the apiserver steps down
//! before its follower takes over; a released Lease is taken at once (through the follower's
//! watch), a crashed leader's once it expires.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_bind_backend::runtime::leader::{LEASE_DURATION_SECONDS, Leadership, LeaseElection};
use kube_bind_e2e::harness::tcp_proxy::TcpProxy;
use kube_bind_e2e::harness::{Check, Env, EnvSpec, wait_for};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);
const LEASE_DURATION: Duration = Duration::from_secs(LEASE_DURATION_SECONDS);

/// The plain cluster's kubeconfig, as a client config.
async fn given_a_cluster() -> anyhow::Result<(&'static Env, kube::Config)> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    Ok((env, config_from(&plain.kubeconfig).await?))
}

async fn config_from(kubeconfig: &Path) -> anyhow::Result<kube::Config> {
    kube_bind_e2e::install_crypto_provider();
    let file = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let options = kube::config::KubeConfigOptions::default();
    Ok(kube::Config::from_custom_kubeconfig(file, &options).await?)
}

/// The address the apiserver listens on (what a proxy forwards to).
async fn upstream_of(config: &kube::Config) -> anyhow::Result<SocketAddr> {
    let url = &config.cluster_url;
    let host = url.host().unwrap_or("127.0.0.1");
    let port = url.port_u16().unwrap_or(443);
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{url} resolves to no address"))
}

/// A client for the apiserver of `config` that goes through `proxy`.
fn client_through(config: &kube::Config, proxy: &TcpProxy) -> anyhow::Result<Client> {
    let mut config = config.clone();
    // The serving certificate names 127.0.0.1, which the proxy listens on too.
    config.cluster_url = format!("https://{}", proxy.address()).parse()?;
    Ok(Client::try_from(config)?)
}

/// When `leading` (subscribed before) first equals `value`.
async fn when(
    mut leading: watch::Receiver<bool>,
    value: bool,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    tokio::time::timeout(timeout, leading.wait_for(|l| *l == value))
        .await
        .map_err(|_| anyhow::anyhow!("leadership was not {value} within {timeout:?}"))??;
    Ok(Instant::now())
}

/// Waits until Lease `default/name` is written again (a renewal): a follower that started before
/// has its watch up and saw the leader renew.
async fn a_renewal_seen(leases: &Api<Lease>, name: &str, env: &Env) -> anyhow::Result<()> {
    let before = leases.get(name).await?.metadata.resource_version;
    wait_for(
        format!("Lease default/{name} to be renewed"),
        env.patience(),
        || async {
            match leases.get(name).await {
                Ok(lease) if lease.metadata.resource_version != before => Check::Done(()),
                Ok(_) => Check::Pending("not renewed yet".into()),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

async fn holder_of(leases: &Api<Lease>, name: &str) -> anyhow::Result<Option<String>> {
    Ok(leases
        .get(name)
        .await?
        .spec
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

#[tokio::test]
async fn a_partitioned_leader_steps_down_before_the_follower_takes_over() -> anyhow::Result<()> {
    let (env, config) = given_a_cluster().await?;
    let lease = env.unique("partition");
    let proxy = TcpProxy::start(upstream_of(&config).await?).await?;
    let direct = Client::try_from(config.clone())?;
    let leases: Api<Lease> = Api::namespaced(direct.clone(), "default");
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();

    // Given a leader that reaches the apiserver through the proxy, and a follower that does not.
    let leader = LeaseElection::start(
        client_through(&config, &proxy)?,
        "default",
        &lease,
        "leader",
        &shutdown,
    );
    when(leader.subscribe(), true, env.patience()).await?;
    let follower = LeaseElection::start(direct, "default", &lease, "follower", &shutdown);
    a_renewal_seen(&leases, &lease, env).await?;
    assert!(leader.is_leading() && !follower.is_leading());

    // When the network between the leader and the apiserver is cut,
    let cut = Instant::now();
    proxy.partition();

    // then the leader stops leading before the follower starts.
    let patience = 2 * LEASE_DURATION + env.patience();
    let (stepped_down, took_over) = tokio::join!(
        when(leader.subscribe(), false, patience),
        when(follower.subscribe(), true, patience),
    );
    let (stepped_down, took_over) = (stepped_down?, took_over?);
    eprintln!(
        "partition: leader stepped down {} ms after the cut, follower took over {} ms after the cut",
        (stepped_down - cut).as_millis(),
        (took_over - cut).as_millis()
    );
    let margin = took_over.saturating_duration_since(stepped_down);
    eprintln!(
        "partition: leader stepped down {} ms before the follower took over",
        margin.as_millis()
    );
    assert!(
        took_over > stepped_down,
        "the follower took over {} ms before the partitioned leader stepped down",
        stepped_down
            .saturating_duration_since(took_over)
            .as_millis()
    );
    assert_eq!(
        holder_of(&leases, &lease).await?.as_deref(),
        Some("follower")
    );
    Ok(())
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_a_crashed_leaders_once_it_expires()
-> anyhow::Result<()> {
    let (env, config) = given_a_cluster().await?;
    let lease = env.unique("handover");
    let client = Client::try_from(config)?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();

    // Given a leader and a follower watching the Lease,
    let first = LeaseElection::start(client.clone(), "default", &lease, "first", &shutdown);
    when(first.subscribe(), true, env.patience()).await?;
    let second = LeaseElection::start(client.clone(), "default", &lease, "second", &shutdown);
    a_renewal_seen(&leases, &lease, env).await?;

    // when the leader shuts down gracefully,
    let releasing = Instant::now();
    Leadership::Elected(first).release().await;
    let released = Instant::now();
    // then the Lease is free (or already taken) and the follower leads well before it would
    // have expired.
    let holder = holder_of(&leases, &lease).await?;
    assert!(
        holder.is_none() || holder.as_deref() == Some("second"),
        "after release the Lease is held by {holder:?}"
    );
    let took_over = when(second.subscribe(), true, 2 * LEASE_DURATION).await?;
    eprintln!(
        "graceful hand-over: follower leads {} ms after the leader began releasing ({} ms after the release was written)",
        (took_over - releasing).as_millis(),
        took_over.saturating_duration_since(released).as_millis()
    );
    assert!(
        took_over - releasing < LEASE_DURATION / 2,
        "a released Lease must be taken through the watch, not after it expires"
    );

    // Given a new follower, when the leader crashes (stops without releasing),
    let third = LeaseElection::start(client, "default", &lease, "third", &shutdown);
    a_renewal_seen(&leases, &lease, env).await?;
    let crashed = Instant::now();
    drop(second);
    // then the follower takes over once the Lease expired.
    let took_over = when(third.subscribe(), true, 2 * LEASE_DURATION + env.patience()).await?;
    eprintln!(
        "crash hand-over: follower leads {} ms after the leader crashed (lease duration {} ms)",
        (took_over - crashed).as_millis(),
        LEASE_DURATION.as_millis()
    );
    assert_eq!(holder_of(&leases, &lease).await?.as_deref(), Some("third"));
    Ok(())
}
