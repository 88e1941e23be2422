//! Leader election for the reconcilers (a coordination.k8s.io Lease, through
//! `kube-lease-manager`). Only reconcilers wait for the lease; provider, caches and HTTP run on
//! every replica, so a new leader starts with warm caches.

use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Seconds a lease is valid after its last renewal: a crashed leader is replaced within this.
pub const LEASE_DURATION_SECONDS: u64 = 15;
/// Seconds before expiry at which the holder renews.
const LEASE_GRACE_SECONDS: u64 = 5;
/// Pause between attempts to create or reach the Lease.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// Whether this replica may reconcile.
pub enum Leadership {
    /// No election: always the leader (single replica, or `--leader-elect=false`).
    Always,
    /// Leader while holding a Lease.
    Elected(LeaseElection),
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Always => f.write_str("Always"),
            Self::Elected(e) => write!(f, "Elected({}/{})", e.namespace, e.name),
        }
    }
}

impl Leadership {
    /// Returns once this replica leads.
    pub async fn acquired(&mut self) {
        match self {
            Self::Always => {}
            Self::Elected(election) => election.wait_for(true).await,
        }
    }

    /// Returns once this replica stopped leading (never for [`Leadership::Always`]).
    pub async fn lost(&mut self) {
        match self {
            Self::Always => std::future::pending().await,
            Self::Elected(election) => election.wait_for(false).await,
        }
    }

    /// Gives the lease up, so another replica takes over at once instead of after expiry.
    pub async fn release(self) {
        if let Self::Elected(election) = self {
            election.release().await;
        }
    }
}

/// A running election for one Lease.
pub struct LeaseElection {
    namespace: String,
    name: String,
    state: watch::Receiver<bool>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl LeaseElection {
    /// Starts competing for Lease `namespace/name` as `identity`. Errors reaching the API server
    /// are retried until `shutdown`; they never stop the process.
    pub fn start(
        client: kube::Client,
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
        shutdown: &CancellationToken,
    ) -> Self {
        let (namespace, name, identity) = (namespace.into(), name.into(), identity.into());
        let (sender, state) = watch::channel(false);
        let stop = shutdown.child_token();
        let task = tokio::spawn(compete(
            client,
            namespace.clone(),
            name.clone(),
            identity,
            sender,
            stop.clone(),
        ));
        Self {
            namespace,
            name,
            state,
            stop,
            task,
        }
    }

    async fn wait_for(&mut self, leading: bool) {
        if self
            .state
            .wait_for(|is_leader| *is_leader == leading)
            .await
            .is_err()
        {
            // The election task ended (shutdown): never leading again.
            if leading {
                std::future::pending::<()>().await;
            }
        }
    }

    async fn release(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Keeps competing for the lease, publishing whether we hold it, until `stop`.
async fn compete(
    client: kube::Client,
    namespace: String,
    name: String,
    identity: String,
    sender: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let manager = loop {
        let built = LeaseManagerBuilder::new(client.clone(), &name)
            .with_namespace(&namespace)
            .with_identity(&identity)
            .with_duration(LEASE_DURATION_SECONDS)
            .with_grace(LEASE_GRACE_SECONDS)
            .build()
            .await;
        match built {
            Ok(manager) => break manager,
            Err(err) => tracing::warn!(
                lease = %format!("{namespace}/{name}"), error = %err,
                "cannot set up the leader-election Lease; retrying (check --leader-election-namespace and RBAC for leases)"
            ),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY_INTERVAL) => {}
        }
    };
    tracing::info!(lease = %format!("{namespace}/{name}"), %identity, "competing for leadership");
    let (mut leading, task) = manager.watch().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = leading.changed() => {
                if changed.is_err() {
                    break;
                }
                let is_leader = *leading.borrow_and_update();
                tracing::info!(%identity, is_leader, "leadership changed");
                sender.send_replace(is_leader);
            }
        }
    }
    sender.send_replace(false);
    // Dropping the receiver makes the manager release the lease and end.
    drop(leading);
    match task.await {
        Ok(Ok(_)) => tracing::info!(%identity, "leadership released"),
        Ok(Err(err)) => {
            tracing::warn!(%identity, error = %err, "releasing the lease failed; it expires on its own")
        }
        Err(err) => tracing::warn!(%identity, error = %err, "lease task ended abnormally"),
    }
}

/// A replica identity: host name plus process id and start time, unique across restarts.
pub fn identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kube-bind-backend".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{host}_{}_{started:x}", std::process::id())
}
