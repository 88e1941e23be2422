//! Leader election for the reconcilers over a `coordination.k8s.io/v1` Lease, timed as
//! client-go's (15 s lease, 10 s renew deadline, 2 s retry period), with a watch on the Lease so
//! a follower takes a released Lease at once. Only reconcilers wait for the lease; provider,
//! caches and HTTP run on every replica, so a new leader starts with warm caches.
//!
//! Writes are optimistic (at the observed `resourceVersion`): a 409 means someone else won.
//! When to write is decided by the pure [`decision::Candidate`]; this file does the I/O.

mod decision;

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::watch_object;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use decision::{Candidate, LeaseView, Step, Timing};

/// Seconds a lease is valid after its last observed renewal: a crashed leader is replaced
/// within this.
pub const LEASE_DURATION_SECONDS: u64 = Timing::DEFAULT.lease_duration.as_secs();
/// How long a leader that cannot renew still leads; it steps down this long after its last
/// successful renewal, `LEASE_DURATION_SECONDS` minus this before anyone may take over.
pub const RENEW_DEADLINE: Duration = Timing::DEFAULT.renew_deadline;

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

    /// Whether this replica leads right now.
    pub fn is_leading(&self) -> bool {
        match self {
            Self::Always => true,
            Self::Elected(election) => election.is_leading(),
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
///
/// On shutdown a follower stops competing, but a leader keeps renewing until
/// [`Leadership::release`] (called once its reconcilers drained), so nobody else reconciles
/// while they still run. Dropping it without release stops renewing at once and leaves the
/// Lease to expire, as a crash would.
pub struct LeaseElection {
    namespace: String,
    name: String,
    state: watch::Receiver<bool>,
    release: CancellationToken,
    task: JoinHandle<()>,
}

impl Drop for LeaseElection {
    fn drop(&mut self) {
        self.task.abort();
    }
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
        let (namespace, name) = (namespace.into(), name.into());
        let (sender, state) = watch::channel(false);
        let release = CancellationToken::new();
        let campaign = Campaign {
            api: Api::namespaced(client, &namespace),
            lease_name: format!("{namespace}/{name}"),
            namespace: namespace.clone(),
            name: name.clone(),
            candidate: Candidate::new(identity, Timing::DEFAULT),
            lease: None,
            leading: sender,
        };
        let task = tokio::spawn(campaign.run(shutdown.clone(), release.clone()));
        Self {
            namespace,
            name,
            state,
            release,
            task,
        }
    }

    /// Whether this replica leads right now.
    pub fn is_leading(&self) -> bool {
        *self.state.borrow()
    }

    /// Whether this replica leads, as it changes (e.g. for tests and status pages).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.state.clone()
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

    async fn release(mut self) {
        self.release.cancel();
        if let Err(err) = (&mut self.task).await {
            tracing::warn!(error = %err, "the leader-election task ended abnormally; the Lease expires on its own");
        }
    }
}

/// Why one call on the Lease failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("the API server did not answer in time")]
    TimedOut,
    #[error("another replica changed the Lease first")]
    Conflict,
    #[error(transparent)]
    Api(kube::Error),
}

impl From<kube::Error> for AttemptError {
    fn from(err: kube::Error) -> Self {
        match &err {
            // 409: changed or created since we read it; 404: deleted since we read it.
            kube::Error::Api(status) if status.code == 409 || status.code == 404 => Self::Conflict,
            _ => Self::Api(err),
        }
    }
}

/// The I/O around one [`Candidate`].
struct Campaign {
    api: Api<Lease>,
    /// `namespace/name`, for logs.
    lease_name: String,
    namespace: String,
    name: String,
    candidate: Candidate,
    /// The Lease as last read or written: what our next write is based on.
    lease: Option<Lease>,
    leading: watch::Sender<bool>,
}

impl Campaign {
    /// Competes until `release`, or until `shutdown` while not leading; then steps down and,
    /// if it led, releases the Lease.
    async fn run(mut self, shutdown: CancellationToken, release: CancellationToken) {
        let identity = self.candidate.identity().to_owned();
        tracing::info!(lease = %self.lease_name, %identity, "competing for leadership");
        let mut changes = watch_object(self.api.clone(), &self.name)
            .default_backoff()
            .boxed();
        loop {
            let now = Instant::now();
            self.publish(now);
            if release.is_cancelled()
                || (shutdown.is_cancelled() && !self.candidate.is_leading(now))
            {
                break;
            }
            match self.candidate.next_step(now) {
                Step::Create => self.write(true, now).await,
                Step::Update => self.write(false, now).await,
                Step::Wait(until) => {
                    let timer = async {
                        match until {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = release.cancelled() => {}
                        () = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
                        () = timer => {}
                        Some(change) = changes.next() => match change {
                            Ok(lease) => self.observe(lease),
                            Err(err) => tracing::warn!(
                                lease = %self.lease_name, error = %err,
                                "cannot watch the leader-election Lease; retrying (check that RBAC allows list and watch on leases)"
                            ),
                        },
                    }
                }
            }
        }
        self.step_down().await;
    }

    /// Publishes whether we lead, logging a change once.
    fn publish(&self, now: Instant) {
        let leading = self.candidate.is_leading(now);
        let changed = self.leading.send_if_modified(|current| {
            let changed = *current != leading;
            *current = leading;
            changed
        });
        if changed {
            let holder = self.lease.as_ref().and_then(|l| view(l).holder);
            tracing::info!(lease = %self.lease_name, identity = self.candidate.identity(), leading, ?holder, "leadership changed");
        }
    }

    fn observe(&mut self, lease: Option<Lease>) {
        self.candidate
            .observe(lease.as_ref().map(view), Instant::now());
        self.lease = lease;
    }

    /// Creates (`create`) or updates the Lease to be held by us; `sent` is when we decided to.
    async fn write(&mut self, create: bool, sent: Instant) {
        let base = match (&self.lease, create) {
            (_, true) => None,
            (Some(lease), false) => Some(lease),
            // NOTE: an update always carries the version it is based on; without one, read first.
            (None, false) => return self.read().await,
        };
        let claim = claimed(&self.namespace, &self.name, base, self.candidate.identity());
        let deadline = self.candidate.attempt_deadline(sent);
        let written = tokio::time::timeout_at(deadline, async {
            if create {
                self.api.create(&PostParams::default(), &claim).await
            } else {
                self.api
                    .replace(&self.name, &PostParams::default(), &claim)
                    .await
            }
        })
        .await
        .map_err(|_| AttemptError::TimedOut)
        .and_then(|written| written.map_err(AttemptError::from));
        match written {
            Ok(lease) => {
                self.candidate.written(view(&lease), sent);
                self.lease = Some(lease);
            }
            Err(AttemptError::Conflict) => {
                tracing::debug!(lease = %self.lease_name, "the Lease changed before our write; reading it again");
                self.read().await;
            }
            Err(err) => self.failed(&err),
        }
    }

    /// Reads the Lease after a conflict (the watch may lag behind).
    async fn read(&mut self) {
        let deadline = self.candidate.attempt_deadline(Instant::now());
        let read = tokio::time::timeout_at(deadline, self.api.get_opt(&self.name))
            .await
            .map_err(|_| AttemptError::TimedOut)
            .and_then(|read| read.map_err(AttemptError::Api));
        match read {
            Ok(lease) => self.observe(lease),
            Err(err) => self.failed(&err),
        }
    }

    fn failed(&mut self, err: &AttemptError) {
        tracing::warn!(
            lease = %self.lease_name, error = %err,
            "cannot write the leader-election Lease; retrying (check that the API server is reachable and RBAC allows create and update on leases)"
        );
        self.candidate.failed(Instant::now());
    }

    /// Publishes "not leading", then clears the holder if we led, so a follower takes over at
    /// once (client-go's ReleaseOnCancel).
    async fn step_down(mut self) {
        let led = self.candidate.is_leading(Instant::now());
        self.leading.send_replace(false);
        let Some(lease) = self.lease.take().filter(|_| led) else {
            return;
        };
        let timeout = Timing::DEFAULT.request_timeout;
        let released = tokio::time::timeout(
            timeout,
            self.api
                .replace(&self.name, &PostParams::default(), &released(lease)),
        )
        .await;
        match released {
            Ok(Ok(_)) => tracing::info!(lease = %self.lease_name, "leadership released"),
            Ok(Err(err)) => tracing::warn!(
                lease = %self.lease_name, error = %err,
                "releasing the Lease failed; another replica takes over once it expires"
            ),
            Err(_) => tracing::warn!(
                lease = %self.lease_name,
                "releasing the Lease timed out; another replica takes over once it expires"
            ),
        }
    }
}

/// What the decision needs of a Lease. A missing duration counts as zero, as in client-go.
fn view(lease: &Lease) -> LeaseView {
    let spec = lease.spec.as_ref();
    LeaseView {
        holder: spec
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty()),
        duration: Duration::from_secs(
            spec.and_then(|s| s.lease_duration_seconds)
                .and_then(|d| u64::try_from(d).ok())
                .unwrap_or(0),
        ),
        version: lease.metadata.resource_version.clone().unwrap_or_default(),
    }
}

/// `previous` (or a new Lease `name`) held by `identity`, renewed now, as client-go writes it:
/// the acquire time and transition count change only when the holder does.
fn claimed(namespace: &str, name: &str, previous: Option<&Lease>, identity: &str) -> Lease {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let mut lease = previous.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let old = lease.spec.take();
    let ours = old
        .as_ref()
        .is_some_and(|s| s.holder_identity.as_deref() == Some(identity));
    let transitions = match &old {
        None => 0,
        Some(old) if ours => old.lease_transitions.unwrap_or(0),
        Some(old) => old.lease_transitions.unwrap_or(0).saturating_add(1),
    };
    let old = old.unwrap_or_default();
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(seconds(Timing::DEFAULT.lease_duration)),
        acquire_time: if ours {
            old.acquire_time
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..old
    });
    lease
}

/// `lease` with no holder and a one-second duration, as client-go releases it.
fn released(mut lease: Lease) -> Lease {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let old = lease.spec.take().unwrap_or_default();
    lease.spec = Some(LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        ..old
    });
    lease
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, transitions: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("l".into()),
                namespace: Some("ns".into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                acquire_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn claims_count_transitions_and_keep_the_version_they_are_based_on() {
        let new = claimed("ns", "l", None, "me");
        assert_eq!(new.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(new.spec.as_ref().unwrap().lease_transitions, Some(0));

        let taken = claimed("ns", "l", Some(&held_by("other", 3)), "me");
        let spec = taken.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_ne!(
            spec.acquire_time,
            Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
        );
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("7"));

        let renewed = claimed("ns", "l", Some(&held_by("me", 3)), "me");
        let spec = renewed.spec.as_ref().unwrap();
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(
            spec.acquire_time,
            Some(MicroTime(k8s_openapi::jiff::Timestamp::UNIX_EPOCH))
        );
    }

    #[test]
    fn a_released_lease_has_no_holder_and_reads_as_free() {
        let released = released(held_by("me", 3));
        assert_eq!(view(&released).holder, None);
        assert_eq!(released.spec.as_ref().unwrap().lease_transitions, Some(3));
        let mut empty = held_by("", 0);
        empty.spec.as_mut().unwrap().lease_duration_seconds = None;
        assert_eq!(
            view(&empty),
            LeaseView {
                holder: None,
                duration: Duration::ZERO,
                version: "7".into()
            }
        );
    }
}
