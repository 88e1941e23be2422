//! The multicluster work queue: deduplicating, one worker per key at a time, per-key
//! exponential backoff, delayed adds, and round-robin fairness across logical clusters.
//!
//! It is client-go's `workqueue` (rate-limited, delaying) with kube-rs' scheduling rule: a key
//! has at most one pending run, and the earliest requested time wins.
//!
//! Life of a key (its `Phase`; a key without state is `Idle`):
//!
//! ```text
//! phase       add              add_after(d)            next()         lease released
//! Idle        -> Queued        -> Waiting              -              -
//! Waiting     -> Queued        -> Waiting if earlier   -              -
//!             (its timer firing: -> Queued)
//! Queued      (deduplicated)   (deduplicated)          -> Processing  -
//! Processing  rerun = now      rerun = earliest        -              -> Queued if the rerun or
//!                                                                        backoff is due now,
//!                                                                        Waiting if later,
//!                                                                        else Idle
//! ```
//!
//! * Dedup: an add of a `Queued` key does nothing; an add of a `Waiting` key makes it ready
//!   now (as client-go: a change beats a pending retry or requeue-after); `add_after` only ever
//!   moves a key's next run earlier.
//! * Exclusivity: only [`WorkQueue::next`] turns `Queued` into `Processing`, and only the
//!   [`Lease`] it returns turns `Processing` into anything else. Adds during processing are
//!   folded into one rerun, queued when the lease is released: exactly once, however many adds
//!   came in meanwhile.
//! * Backoff: a failed lease waits `5 ms * 2^failures` (capped at 1000 s) unless a rerun is due
//!   earlier; a successful one resets the count.
//! * Fairness: ready keys wait in one lane per group (logical cluster) and lanes take turns;
//!   optionally at most N keys of one group are processed at once
//!   ([`WorkQueue::with_group_limit`]), so one unresponsive cluster cannot hold every worker.
//!
//! Cost per processed key: three sharded-map operations (add, take, release), two short
//! critical sections on the ready queue, three clock reads (two under [`run_workers`], whose
//! release and next take share one). Counters are relaxed atomics striped per thread; depth
//! and the in-flight gauges are computed when scraped.

mod backoff;
mod fair;
mod metrics;
mod stripe;
mod workers;

pub use self::{
    backoff::Backoff,
    metrics::QueueMetrics,
    workers::{Outcome, Workers, run_workers},
};

use self::{
    fair::FairQueue,
    metrics::{QueueProbe, QueueSample, QueueStats},
    stripe::Striped,
};
use dashmap::{DashMap, Entry};
use std::{
    cmp::Ordering,
    collections::BinaryHeap,
    fmt,
    hash::Hash,
    pin::pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, Weak,
        atomic::{self, AtomicBool, AtomicU64, AtomicUsize},
    },
    time::Duration,
};
use tokio::{sync::Notify, time::Instant};

/// A key that belongs to a fairness group: for the backend, the logical cluster of a
/// (cluster, kind, namespace, name) key.
pub trait FairKey {
    /// What the queue is fair across.
    type Group: Clone + Eq + Hash + Send + Sync + 'static;

    fn group(&self) -> &Self::Group;
}

/// Everything the queue needs of a key; implemented for every type that qualifies.
pub trait QueueKey: FairKey + Clone + Eq + Hash + Send + Sync + 'static {}

impl<K: FairKey + Clone + Eq + Hash + Send + Sync + 'static> QueueKey for K {}

/// Errors of the work queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "work queue {queue:?} still had {in_flight} key(s) in processing after waiting {waited:?} \
         for them at shutdown; their handlers are stuck or slower than the shutdown timeout"
    )]
    DrainTimedOut {
        queue: String,
        in_flight: usize,
        waited: Duration,
    },
}

/// Where a key is in its life (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing pending; the entry only exists to remember `failures`.
    Idle,
    /// Will become ready at `at`; `timers` holds an entry for exactly `at`.
    Waiting { at: Instant },
    /// In the ready queue (exactly once), ready since `since`.
    Queued { since: Instant },
    /// Leased to a worker since `started`; `rerun` is the earliest run requested meanwhile.
    Processing {
        started: Instant,
        rerun: Option<Instant>,
    },
}

/// Per-key state.
#[derive(Clone, Copy, Debug)]
struct KeyState {
    phase: Phase,
    /// Consecutive failed leases; reset by a successful one or by `forget`.
    failures: u32,
}

impl KeyState {
    /// An entry that carries no information can go, so the map holds only live keys.
    fn is_removable(&self) -> bool {
        self.phase == Phase::Idle && self.failures == 0
    }
}

/// A pending delayed run. Ordered so that `BinaryHeap` pops the earliest first.
struct Timer<K> {
    at: Instant,
    key: K,
}

impl<K> PartialEq for Timer<K> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl<K> Eq for Timer<K> {}

impl<K> PartialOrd for Timer<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Timer<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

/// Hashes keys and groups: seeded per process like std's, several times cheaper than SipHash on
/// (cluster, kind, namespace, name) strings, which the queue hashes on every add and release.
type KeyHasher = foldhash::quality::RandomState;

/// Lease counts of one thread. Both only grow: a lease taken on one thread may be released on
/// another, and monotonic counters keep the sum over threads meaningful (see
/// [`Shared::in_flight`]).
#[derive(Debug, Default)]
struct LeaseCounts {
    taken: AtomicU64,
    released: AtomicU64,
}

/// What the caller must do after a key's state changed, once the map's lock is released.
enum Then<K> {
    Nothing,
    /// The key became `Queued`: put it in the ready queue.
    Ready(K),
    /// The key became `Waiting { at }`: arm a timer.
    Wait(K, Instant),
}

/// `u64::MAX` in [`Shared::next_timer`]: no timer is armed.
const NO_TIMER: u64 = u64::MAX;

/// Stale timers are only swept from heaps at least this large (see [`Shared::arm_timer`]).
const MIN_TIMERS_TO_COMPACT: usize = 1024;

/// How far ahead `add_after` can schedule; later requests are clamped (like kube-rs does, to
/// keep `Instant` arithmetic from overflowing).
const MAX_DELAY: Duration = Duration::from_secs(60 * 60 * 24 * 365);

/// How a lease ends.
#[derive(Clone, Copy, Debug)]
enum Release {
    /// Success: reset backoff; run again only if something was added meanwhile.
    Done,
    /// Success, and run again after the delay at the latest.
    After(Duration),
    /// Failure (or the lease was dropped without a verdict): back off.
    Retry,
    /// Not processed after all: ready again now, backoff untouched.
    GiveBack,
}

/// The state shared by a queue's handles.
struct Shared<K: QueueKey> {
    name: String,
    backoff: Backoff,
    /// NOTE: `keys` is canonical for a key's phase; `ready` and `timers` follow it. A key is in
    /// `ready` iff it is `Queued`, and a `Waiting { at }` key has a timer for `at` (both pushed
    /// right after the transition, outside the shard lock). `timers` may hold stale entries
    /// (the key moved on); they are skipped when they fire, so they last at most as long as
    /// the longest delay asked for (the backoff cap, or `add_after`).
    keys: DashMap<K, KeyState, KeyHasher>,
    ready: Mutex<FairQueue<K::Group, K>>,
    timers: Mutex<BinaryHeap<Timer<K>>>,
    /// The earliest timer, as nanoseconds since `epoch` ([`NO_TIMER`] if none), so `next` can
    /// skip the timer lock when nothing is due. Written under the `timers` lock.
    next_timer: AtomicU64,
    /// When `timers` grows to this many entries, the stale ones are dropped (see
    /// [`Shared::arm_timer`]). Written under the `timers` lock.
    compact_timers_at: AtomicUsize,
    epoch: Instant,
    /// Wakes workers parked in `next` (new ready key, earlier timer, shutdown).
    wake: Notify,
    /// Workers parked (or about to park) in `next`; adds skip `wake` when there are none.
    parked: AtomicUsize,
    /// Leases handed out and released, counted per thread; see [`Shared::in_flight`].
    leases: Striped<LeaseCounts>,
    /// Signalled when the last lease is released after shutdown.
    drained: Notify,
    shutting_down: AtomicBool,
    stats: QueueStats,
}

/// A deduplicating, fair, rate-limited work queue of keys. Cheap to clone; clones share the
/// queue.
pub struct WorkQueue<K: QueueKey> {
    shared: Arc<Shared<K>>,
}

impl<K: QueueKey> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: QueueKey> fmt::Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.shared.name)
            .field("ready", &self.len())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl<K: QueueKey> WorkQueue<K> {
    /// A queue called `name` (the `name` label of its metrics) that backs off failed keys by
    /// `backoff`.
    pub fn new(name: impl Into<String>, backoff: Backoff) -> Self {
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                backoff,
                keys: DashMap::with_hasher(KeyHasher::default()),
                ready: Mutex::new(FairQueue::default()),
                timers: Mutex::new(BinaryHeap::new()),
                next_timer: AtomicU64::new(NO_TIMER),
                compact_timers_at: AtomicUsize::new(MIN_TIMERS_TO_COMPACT),
                epoch: Instant::now(),
                wake: Notify::new(),
                parked: AtomicUsize::new(0),
                leases: Striped::default(),
                drained: Notify::new(),
                shutting_down: AtomicBool::new(false),
                stats: QueueStats::default(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Processes at most `limit` keys of one group (logical cluster) at once; the group's other
    /// ready keys wait while the other groups go on. `None` (the default): no cap.
    #[must_use]
    pub fn with_group_limit(self, limit: Option<std::num::NonZeroUsize>) -> Self {
        self.shared
            .lock_ready()
            .set_limit(limit.map(std::num::NonZeroUsize::get));
        self
    }

    /// Makes `key` ready now. A key that is already queued stays queued once; a key that waits
    /// on a delay (`add_after`, backoff) becomes ready now, as in client-go; a key in
    /// processing is run once more after its lease is released. Ignored after shutdown.
    pub fn add(&self, key: K) {
        self.shared.schedule(key, None);
    }

    /// Makes `key` ready after `delay`, unless it is due earlier already (the earliest request
    /// wins). Delayed keys do not hold up other keys. Ignored after shutdown.
    pub fn add_after(&self, key: K, delay: Duration) {
        let now = Instant::now();
        let retries = &self.shared.stats.local().retries;
        retries.fetch_add(1, atomic::Ordering::Relaxed);
        self.shared.schedule(key, Some(now + delay.min(MAX_DELAY)));
    }

    /// Waits for a ready key and leases it; `None` once the queue is shut down.
    ///
    /// Cancel-safe: dropping the future never loses a key.
    pub async fn next(&self) -> Option<Lease<'_, K>> {
        // Cooperative like tokio's own channels: a consumer that always finds a key ready
        // still yields to its thread's other tasks now and then.
        tokio::task::coop::consume_budget().await;
        let shared = &*self.shared;
        loop {
            if shared.is_shutting_down() {
                return None;
            }
            if let Some(lease) = self.shared.take_ready(Instant::now()) {
                return Some(lease);
            }

            // Park: register for a wake-up first, then look again, so an add that lands in
            // between is not missed (it sees `parked > 0` and wakes us).
            let mut woken = pin!(shared.wake.notified());
            woken.as_mut().enable();
            let _parked = Parked::new(&shared.parked);
            if shared.is_shutting_down() {
                return None;
            }
            if let Some(lease) = self.shared.take_ready(Instant::now()) {
                return Some(lease);
            }
            match shared.earliest_timer() {
                Some(at) => {
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => woken.await,
            }
        }
    }

    /// Leases a ready key if there is one now, without waiting; `None` after shutdown.
    pub fn try_next(&self) -> Option<Lease<'_, K>> {
        if self.shared.is_shutting_down() {
            return None;
        }
        self.shared.take_ready(Instant::now())
    }

    /// Resets `key`'s backoff (client-go's `Forget`); a lease that ends in `done` does this.
    pub fn forget(&self, key: &K) {
        self.shared.keys.remove_if_mut(key, |_, state| {
            state.failures = 0;
            state.is_removable()
        });
    }

    /// Consecutive failures of `key` so far (client-go's `NumRequeues`).
    pub fn failures(&self, key: &K) -> u32 {
        self.shared.keys.get(key).map_or(0, |state| state.failures)
    }

    /// Keys ready to be handed out now (the depth metric).
    pub fn len(&self) -> usize {
        self.shared.lock_ready().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Leases handed out and not yet released.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// Stops handing out keys: parked and future `next` calls return `None`, adds are ignored.
    /// Leases already out can still be released.
    pub fn shutdown(&self) {
        self.shared
            .shutting_down
            .store(true, atomic::Ordering::SeqCst);
        self.shared.wake.notify_waiters();
    }

    pub fn is_shutdown(&self) -> bool {
        self.shared.is_shutting_down()
    }

    /// Graceful shutdown: [`shutdown`](Self::shutdown), then wait up to `timeout` for every
    /// lease to be released.
    pub async fn drain(&self, timeout: Duration) -> Result<(), QueueError> {
        self.shutdown();
        let shared = &*self.shared;
        let all_released = async {
            loop {
                let mut released = pin!(shared.drained.notified());
                released.as_mut().enable();
                if shared.in_flight() == 0 {
                    return;
                }
                released.await;
            }
        };
        tokio::time::timeout(timeout, all_released)
            .await
            .map_err(|_elapsed| QueueError::DrainTimedOut {
                queue: shared.name.clone(),
                in_flight: self.in_flight(),
                waited: timeout,
            })
    }

    /// The metrics view of this queue, held weakly so metrics never keep a queue alive.
    fn probe(&self) -> Weak<dyn QueueProbe> {
        let shared: Arc<dyn QueueProbe> = self.shared.clone();
        Arc::downgrade(&shared)
    }

    #[cfg(test)]
    fn phase(&self, key: &K) -> Option<Phase> {
        self.shared.keys.get(key).map(|state| state.phase)
    }
}

impl<K: QueueKey> Shared<K> {
    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(atomic::Ordering::Acquire)
    }

    /// Leases handed out and not yet released.
    ///
    /// Never too low: every release counted here was preceded by its take, and releases are
    /// read before takes, so a concurrent take/release pair can only add to the figure. That
    /// is what `drain` needs (it must not return while a lease is out).
    fn in_flight(&self) -> usize {
        let released: u64 = self
            .leases
            .iter()
            .map(|c| c.released.load(atomic::Ordering::SeqCst))
            .sum();
        let taken: u64 = self
            .leases
            .iter()
            .map(|c| c.taken.load(atomic::Ordering::SeqCst))
            .sum();
        usize::try_from(taken.saturating_sub(released)).unwrap_or(usize::MAX)
    }

    fn lock_ready(&self) -> MutexGuard<'_, FairQueue<K::Group, K>> {
        // The ready queue runs no user code but `Hash`/`Eq` of the group, and stays consistent
        // if one of those panics, so a poisoned lock is still usable.
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_timers(&self) -> MutexGuard<'_, BinaryHeap<Timer<K>>> {
        self.timers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tick(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NO_TIMER - 1)
    }

    /// Leases the next ready key, if any, as of `now`.
    fn take_ready(&self, now: Instant) -> Option<Lease<'_, K>> {
        self.fire_due_timers(now);
        loop {
            let key = self.lock_ready().pop()?;
            let since = {
                let Some(mut state) = self.keys.get_mut(&key) else {
                    debug_assert!(false, "a ready key has no state");
                    self.lock_ready().finished(key.group());
                    continue;
                };
                let Phase::Queued { since } = state.phase else {
                    debug_assert!(false, "a ready key is {:?}", state.phase);
                    drop(state);
                    self.lock_ready().finished(key.group());
                    continue;
                };
                state.phase = Phase::Processing {
                    started: now,
                    rerun: None,
                };
                since
            };
            self.leases
                .local()
                .taken
                .fetch_add(1, atomic::Ordering::SeqCst);
            let lease = Lease {
                shared: self,
                key,
                started: now,
                released: false,
            };
            // Pairs with `drain` (SeqCst both sides): either it sees this lease as taken and
            // waits for it, or we see the shutdown and hand the key back.
            if self.shutting_down.load(atomic::Ordering::SeqCst) {
                lease.give_back();
                return None;
            }
            self.stats
                .local()
                .queue_duration
                .observe(now.saturating_duration_since(since));
            return Some(lease);
        }
    }

    /// Requests a run of `key` at `run_at` (`None`: now); the earliest request wins.
    fn schedule(&self, key: K, run_at: Option<Instant>) {
        if self.is_shutting_down() {
            return;
        }
        // Where `key` goes next if nothing runs it earlier.
        let target = |run_at: Instant, now: Instant| {
            if run_at <= now {
                Phase::Queued { since: now }
            } else {
                Phase::Waiting { at: run_at }
            }
        };
        let then = match self.keys.entry(key) {
            Entry::Vacant(vacant) => {
                let now = Instant::now();
                let phase = target(run_at.unwrap_or(now), now);
                let key = vacant.key().clone();
                vacant.insert(KeyState { phase, failures: 0 });
                Then::for_phase(key, phase)
            }
            Entry::Occupied(mut occupied) => {
                let state = occupied.get_mut();
                // Deduplicated without reading the clock: the common case of a resync.
                if let Phase::Queued { .. } = state.phase {
                    return;
                }
                let now = Instant::now();
                let run_at = run_at.unwrap_or(now);
                match state.phase {
                    // Deduplicated: the key runs at `run_at` or earlier already.
                    Phase::Queued { .. } => return,
                    Phase::Waiting { at } if at <= run_at => return,
                    Phase::Processing {
                        rerun: Some(at), ..
                    } if at <= run_at => return,
                    Phase::Idle | Phase::Waiting { .. } => {
                        state.phase = target(run_at, now);
                        let phase = state.phase;
                        Then::for_phase(occupied.into_key(), phase)
                    }
                    Phase::Processing { started, .. } => {
                        // Queued (or timed) when the lease is released.
                        state.phase = Phase::Processing {
                            started,
                            rerun: Some(run_at),
                        };
                        Then::Nothing
                    }
                }
            }
        };
        self.stats
            .local()
            .adds
            .fetch_add(1, atomic::Ordering::Relaxed);
        self.carry_out(then);
    }

    fn carry_out(&self, then: Then<K>) {
        match then {
            Then::Nothing => {}
            Then::Ready(key) => {
                self.lock_ready().push(key);
                self.wake_one();
            }
            Then::Wait(key, at) => self.arm_timer(key, at),
        }
    }

    /// Wakes one parked worker, if any.
    fn wake_one(&self) {
        // The push happened under the ready lock, which a parking worker takes after raising
        // `parked`: either it saw the key, or we see it parked.
        if self.parked.load(atomic::Ordering::SeqCst) > 0 {
            self.wake.notify_one();
        }
    }

    /// Arms a timer for `key` at `at`.
    ///
    /// A key that keeps being made ready before its timer fires (a failing key that events keep
    /// adding) leaves one stale timer behind each time, for up to the backoff cap. Whenever the
    /// heap has doubled since the last sweep, the stale ones are dropped, so the heap stays
    /// within twice the live timers (amortised O(1) per timer).
    fn arm_timer(&self, key: K, at: Instant) {
        let tick = self.tick(at);
        let earlier = {
            let mut timers = self.lock_timers();
            timers.push(Timer { at, key });
            if timers.len() >= self.compact_timers_at.load(atomic::Ordering::Relaxed) {
                // Lock order timers → keys is safe: no one takes `timers` under a key's lock.
                // A live timer matches its key's phase; of equal ones, one is enough.
                let mut live = std::collections::HashSet::with_hasher(KeyHasher::default());
                timers.retain(|timer| {
                    self.keys
                        .get(&timer.key)
                        .is_some_and(|state| state.phase == Phase::Waiting { at: timer.at })
                        && live.insert(timer.key.clone())
                });
                self.compact_timers_at.store(
                    (timers.len() * 2).max(MIN_TIMERS_TO_COMPACT),
                    atomic::Ordering::Relaxed,
                );
                let next = timers.peek().map_or(NO_TIMER, |timer| self.tick(timer.at));
                self.next_timer.store(next, atomic::Ordering::SeqCst);
            }
            let earlier = tick < self.next_timer.load(atomic::Ordering::SeqCst);
            if earlier {
                self.next_timer.store(tick, atomic::Ordering::SeqCst);
            }
            earlier
        };
        // Parked workers sleep until the earliest timer they saw: make them look again.
        if earlier && self.parked.load(atomic::Ordering::SeqCst) > 0 {
            self.wake.notify_waiters();
        }
    }

    fn earliest_timer(&self) -> Option<Instant> {
        self.lock_timers().peek().map(|timer| timer.at)
    }

    /// Moves keys whose timer is due into the ready queue.
    fn fire_due_timers(&self, now: Instant) {
        let next_timer = self.next_timer.load(atomic::Ordering::SeqCst);
        // The common case, no timers, skips the clock arithmetic too.
        if next_timer == NO_TIMER || self.tick(now) < next_timer {
            return;
        }
        let mut due = Vec::new();
        {
            let mut timers = self.lock_timers();
            while let Some(timer) = timers.peek_mut() {
                if timer.at > now {
                    break;
                }
                due.push(std::collections::binary_heap::PeekMut::pop(timer).key);
            }
            let next = timers.peek().map_or(NO_TIMER, |timer| self.tick(timer.at));
            self.next_timer.store(next, atomic::Ordering::SeqCst);
        }
        for key in due {
            let fired = {
                let Some(mut state) = self.keys.get_mut(&key) else {
                    continue;
                };
                match state.phase {
                    // A timer for a key that moved on since is stale: skip it.
                    Phase::Waiting { at } if at <= now => {
                        state.phase = Phase::Queued { since: now };
                        true
                    }
                    _ => false,
                }
            };
            if fired {
                self.carry_out(Then::Ready(key));
            }
        }
    }

    /// Ends a lease: decides the key's next phase from `how` and any rerun requested during
    /// processing. Returns the delay until that run, if one is scheduled.
    fn release(&self, key: &K, started: Instant, how: Release, now: Instant) -> Option<Duration> {
        self.stats
            .local()
            .work_duration
            .observe(now.saturating_duration_since(started));
        if matches!(how, Release::After(_) | Release::Retry) {
            self.stats
                .local()
                .retries
                .fetch_add(1, atomic::Ordering::Relaxed);
        }

        let mut then = Then::Nothing;
        let mut delay = None;
        self.keys.remove_if_mut(key, |key, state| {
            let Phase::Processing { rerun, .. } = state.phase else {
                debug_assert!(false, "a leased key is {:?}", state.phase);
                return false;
            };
            let requested = match how {
                Release::Done => {
                    state.failures = 0;
                    None
                }
                Release::After(after) => {
                    state.failures = 0;
                    Some(now + after.min(MAX_DELAY))
                }
                Release::Retry => {
                    let backoff = self.backoff.delay(state.failures).min(MAX_DELAY);
                    state.failures = state.failures.saturating_add(1);
                    Some(now + backoff)
                }
                Release::GiveBack => Some(now),
            };
            // The earliest of the rerun asked for during processing and the one asked for now.
            let run_at = match (rerun, requested) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            state.phase = match run_at {
                None => Phase::Idle,
                Some(at) if at <= now => {
                    then = Then::Ready(key.clone());
                    Phase::Queued { since: now }
                }
                Some(at) => {
                    then = Then::Wait(key.clone(), at);
                    Phase::Waiting { at }
                }
            };
            delay = run_at.map(|at| at.saturating_duration_since(now));
            state.is_removable()
        });
        // Before the key's own rerun is queued, so its group's cap counts it out already.
        if self.lock_ready().finished(key.group()) {
            self.wake_one();
        }
        self.carry_out(then);

        self.leases
            .local()
            .released
            .fetch_add(1, atomic::Ordering::SeqCst);
        // SeqCst pairs with `drain`: it sets `shutting_down` before counting leases, so either
        // it sees this release or we see the shutdown. The last release sees zero.
        if self.shutting_down.load(atomic::Ordering::SeqCst) && self.in_flight() == 0 {
            self.drained.notify_waiters();
        }
        delay
    }
}

impl<K> Then<K> {
    fn for_phase(key: K, phase: Phase) -> Self {
        match phase {
            Phase::Queued { .. } => Then::Ready(key),
            Phase::Waiting { at } => Then::Wait(key, at),
            Phase::Idle | Phase::Processing { .. } => Then::Nothing,
        }
    }
}

impl<K: QueueKey> QueueProbe for Shared<K> {
    fn sample(&self) -> QueueSample {
        let now = Instant::now();
        let mut unfinished_work = Duration::ZERO;
        let mut longest_running = Duration::ZERO;
        // A scan of the live keys, once per scrape, instead of bookkeeping on every lease.
        for entry in self.keys.iter() {
            if let Phase::Processing { started, .. } = entry.phase {
                let running = now.saturating_duration_since(started);
                unfinished_work += running;
                longest_running = longest_running.max(running);
            }
        }
        QueueSample {
            name: self.name.clone(),
            depth: self.lock_ready().len(),
            adds: self.stats.adds(),
            retries: self.stats.retries(),
            queue_duration: self.stats.queue_duration(),
            work_duration: self.stats.work_duration(),
            unfinished_work,
            longest_running,
        }
    }
}

/// Counts a worker as parked while it exists (also when `next` is dropped while waiting).
struct Parked<'a>(&'a AtomicUsize);

impl<'a> Parked<'a> {
    fn new(parked: &'a AtomicUsize) -> Self {
        parked.fetch_add(1, atomic::Ordering::SeqCst);
        Self(parked)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, atomic::Ordering::SeqCst);
    }
}

/// The right to process one key. While it exists no other worker gets the key.
///
/// End it with [`done`](Self::done), [`retry`](Self::retry) or
/// [`requeue_after`](Self::requeue_after). A lease dropped without one of those (a panicking
/// or cancelled handler) counts as a failure, so the key is retried with backoff: nothing is
/// lost and a handler that always panics cannot spin.
#[must_use = "a dropped lease counts as a failed try of its key"]
pub struct Lease<'q, K: QueueKey> {
    shared: &'q Shared<K>,
    key: K,
    started: Instant,
    released: bool,
}

impl<K: QueueKey + fmt::Debug> fmt::Debug for Lease<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl<K: QueueKey> Lease<'_, K> {
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Success: resets the key's backoff; the key runs again only if it was added meanwhile.
    pub fn done(self) {
        self.release(Release::Done);
    }

    /// Success, and run the key again after `delay` at the latest (a reconciler's
    /// "requeue after"). Resets the backoff.
    pub fn requeue_after(self, delay: Duration) {
        self.release(Release::After(delay));
    }

    /// Failure: the key runs again after its backoff, or sooner if it was added meanwhile.
    /// Returns how long until that run.
    pub fn retry(self) -> Duration {
        self.release(Release::Retry).unwrap_or(Duration::ZERO)
    }

    /// Returns the key unprocessed (a worker stopping between taking and running it).
    fn give_back(self) {
        self.release(Release::GiveBack);
    }

    fn release(mut self, how: Release) -> Option<Duration> {
        self.released = true;
        self.shared
            .release(&self.key, self.started, how, Instant::now())
    }
}

impl<'q, K: QueueKey> Lease<'q, K> {
    /// Ends this lease and leases the next ready key, if any: a worker loop's fast path, with
    /// one clock read for both (it is a third of the queue's own cost per key). Returns the
    /// delay until this key's next run, as [`retry`](Self::retry) does.
    fn finish_and_take(mut self, how: Release) -> (Option<Duration>, Option<Lease<'q, K>>) {
        let shared = self.shared;
        let now = Instant::now();
        self.released = true;
        let delay = shared.release(&self.key, self.started, how, now);
        drop(self);
        let next = if shared.is_shutting_down() {
            None
        } else {
            shared.take_ready(now)
        };
        (delay, next)
    }
}

impl<K: QueueKey> Drop for Lease<'_, K> {
    fn drop(&mut self) {
        if !self.released {
            self.shared
                .release(&self.key, self.started, Release::Retry, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
