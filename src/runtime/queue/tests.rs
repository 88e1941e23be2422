//! Tests of the work queue's contract: dedup, exclusivity, reruns, backoff, delays, fairness,
//! shutdown, metrics, plus a stress test and a model-based property test.

use super::{Backoff, FairKey, Lease, Phase, QueueError, QueueMetrics, WorkQueue};
use proptest::prelude::*;
use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// (cluster, name): the smallest key that has a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    cluster: u32,
    name: u32,
}

impl FairKey for Key {
    type Group = u32;
    fn group(&self) -> &u32 {
        &self.cluster
    }
}

fn key(cluster: u32, name: u32) -> Key {
    Key { cluster, name }
}

fn queue() -> WorkQueue<Key> {
    WorkQueue::new("test", Backoff::default())
}

fn take(queue: &WorkQueue<Key>) -> Lease<'_, Key> {
    match queue.try_next() {
        Some(lease) => lease,
        None => panic!("expected a ready key; {queue:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_key_added_while_queued_is_queued_once() {
    let queue = queue();
    for _ in 0..5 {
        queue.add(key(0, 1));
    }
    queue.add(key(0, 2));
    assert_eq!(queue.len(), 2);

    let first = take(&queue);
    let second = take(&queue);
    assert_eq!(
        HashSet::from([*first.key(), *second.key()]),
        HashSet::from([key(0, 1), key(0, 2)])
    );
    assert!(queue.try_next().is_none());
    first.done();
    second.done();
    assert!(queue.try_next().is_none());
    assert!(queue.shared.keys.is_empty(), "finished keys leave no state");
}

#[tokio::test(start_paused = true)]
async fn adds_during_processing_rerun_the_key_exactly_once_after_release() {
    let queue = queue();
    queue.add(key(0, 1));
    let lease = take(&queue);
    for _ in 0..10 {
        queue.add(key(0, 1));
    }
    assert!(queue.try_next().is_none(), "never handed out twice at once");
    assert_eq!(queue.len(), 0);

    lease.done();
    let rerun = take(&queue);
    assert_eq!(*rerun.key(), key(0, 1));
    assert!(queue.try_next().is_none(), "ten adds, one rerun");
    rerun.done();
    assert!(queue.try_next().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_key_without_adds_during_processing_is_not_rerun() {
    let queue = queue();
    queue.add(key(0, 1));
    take(&queue).done();
    assert!(queue.try_next().is_none());
    assert_eq!(queue.phase(&key(0, 1)), None);
}

#[tokio::test(start_paused = true)]
async fn failed_keys_back_off_from_5ms_doubling_to_1000s_and_success_resets() {
    let queue = queue();
    let k = key(0, 1);
    queue.add(k);

    let mut delays = Vec::new();
    for _ in 0..20 {
        let lease = queue.next().await.expect("queue is open");
        let started = Instant::now();
        delays.push(lease.retry());
        // Not ready before its backoff ends, ready right after.
        assert!(queue.try_next().is_none());
        let lease = queue.next().await.expect("queue is open");
        assert_eq!(started.elapsed(), *delays.last().expect("pushed above"));
        // Put the key back in the state the loop expects: ready, failures kept.
        drop(lease);
        queue.add(k);
    }
    // Each round failed twice (retry, then the dropped lease), so the delays are every other
    // step of the sequence.
    let want: Vec<Duration> = (0..20u32)
        .map(|round| {
            let step = Duration::from_millis(5).saturating_mul(1 << (2 * round).min(31));
            step.min(Duration::from_secs(1000))
        })
        .collect();
    assert_eq!(delays, want);
    assert_eq!(queue.failures(&k), 40);

    take(&queue).done();
    assert_eq!(queue.failures(&k), 0, "success forgets the failures");
    queue.add(k);
    assert_eq!(take(&queue).retry(), Duration::from_millis(5));
}

#[tokio::test(start_paused = true)]
async fn forget_resets_the_backoff() {
    let queue = queue();
    let k = key(0, 1);
    queue.add(k);
    assert_eq!(take(&queue).retry(), Duration::from_millis(5));
    queue.add(k);
    assert_eq!(take(&queue).retry(), Duration::from_millis(10));
    assert_eq!(queue.failures(&k), 2);
    queue.forget(&k);
    assert_eq!(queue.failures(&k), 0);
    queue.add(k);
    assert_eq!(take(&queue).retry(), Duration::from_millis(5));
}

#[tokio::test(start_paused = true)]
async fn an_add_during_a_failed_processing_reruns_now_not_after_the_backoff() {
    let queue = queue();
    let k = key(0, 1);
    queue.add(k);
    let lease = take(&queue);
    queue.add(k);
    assert_eq!(lease.retry(), Duration::ZERO);
    let rerun = take(&queue);
    assert_eq!(*rerun.key(), k);
    assert_eq!(queue.failures(&k), 1, "the failure still counts");
    rerun.done();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_lease_counts_as_a_failure() {
    let queue = queue();
    let k = key(0, 1);
    queue.add(k);
    drop(take(&queue));
    assert_eq!(queue.failures(&k), 1);
    assert_eq!(queue.in_flight(), 0);
    assert!(matches!(queue.phase(&k), Some(Phase::Waiting { .. })));
}

#[tokio::test(start_paused = true)]
async fn delayed_keys_do_not_hold_up_ready_ones() {
    let queue = queue();
    queue.add_after(key(0, 1), Duration::from_secs(10));
    queue.add(key(0, 2));
    let start = Instant::now();

    let lease = queue.next().await.expect("open");
    assert_eq!(*lease.key(), key(0, 2));
    assert_eq!(start.elapsed(), Duration::ZERO);
    lease.done();

    let lease = queue.next().await.expect("open");
    assert_eq!(*lease.key(), key(0, 1));
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn an_add_makes_a_delayed_key_ready_now() {
    let queue = queue();
    queue.add_after(key(0, 1), Duration::from_secs(10));
    assert!(queue.try_next().is_none());
    queue.add(key(0, 1));
    take(&queue).done();

    // The old timer is stale now: it must not run the key again.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(queue.try_next().is_none());
}

#[tokio::test(start_paused = true)]
async fn the_earliest_requested_run_wins() {
    let queue = queue();
    let start = Instant::now();
    queue.add_after(key(0, 1), Duration::from_secs(10));
    queue.add_after(key(0, 1), Duration::from_secs(3));
    queue.add_after(key(0, 1), Duration::from_secs(20));

    let lease = queue.next().await.expect("open");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    lease.done();
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(queue.try_next().is_none(), "one run for three requests");
}

#[tokio::test(start_paused = true)]
async fn add_after_during_processing_schedules_after_release() {
    let queue = queue();
    queue.add(key(0, 1));
    let lease = take(&queue);
    queue.add_after(key(0, 1), Duration::from_secs(5));
    let start = Instant::now();
    lease.done();
    assert!(queue.try_next().is_none());

    let lease = queue.next().await.expect("open");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    // requeue_after: the earlier of the two requests wins.
    queue.add_after(key(0, 1), Duration::from_secs(2));
    lease.requeue_after(Duration::from_secs(60));
    let _lease = queue.next().await.expect("open");
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_parked_worker_wakes_for_an_earlier_timer() {
    let queue = queue();
    queue.add_after(key(0, 1), Duration::from_secs(100));
    let start = Instant::now();
    let worker = tokio::spawn({
        let queue = queue.clone();
        async move { queue.next().await.map(|lease| *lease.key()) }
    });
    tokio::task::yield_now().await;
    queue.add_after(key(0, 2), Duration::from_secs(1));
    assert_eq!(worker.await.ok().flatten(), Some(key(0, 2)));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_flooding_cluster_cannot_starve_a_quiet_one() {
    let queue = queue();
    for name in 0..100_000 {
        queue.add(key(1, name));
    }
    for _ in 0..1_000 {
        take(&queue).done();
    }
    queue.add(key(2, 0));
    // Two groups have ready keys: the quiet one's key comes within two `next` calls.
    let handed: Vec<Key> = (0..2).map(|_| *take(&queue).key()).collect();
    assert!(handed.contains(&key(2, 0)), "{handed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_new_cluster_is_served_within_one_round_of_all_clusters() {
    let queue = queue();
    let clusters = 100;
    for name in 0..1_000 {
        for cluster in 0..clusters {
            queue.add(key(cluster, name));
        }
    }
    queue.add(key(clusters, 0));
    let position = (0..=clusters as usize)
        .position(|_| *take(&queue).key() == key(clusters, 0))
        .expect("served within #groups calls");
    assert_eq!(position, clusters as usize, "joins the end of the round");
}

#[tokio::test(start_paused = true)]
async fn a_hung_cluster_holds_at_most_its_share_of_the_workers() {
    use super::{Outcome, run_workers};
    let queue = queue().with_group_limit(std::num::NonZeroUsize::new(1));
    let done = Arc::new(AtomicUsize::new(0));
    let cancel = tokio_util::sync::CancellationToken::new();
    let workers = run_workers(
        queue.clone(),
        std::num::NonZeroUsize::new(2).unwrap(),
        cancel.clone(),
        {
            let done = Arc::clone(&done);
            move |key: &Key| {
                let (hung, done) = (key.cluster == 0, Arc::clone(&done));
                async move {
                    if hung {
                        // Cluster 0 stopped answering: its reconciles never return.
                        std::future::pending::<()>().await;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(Outcome::Done)
                }
            }
        },
    );
    for name in 0..10 {
        queue.add(key(0, name));
    }
    for name in 0..10 {
        queue.add(key(1, name));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        done.load(Ordering::SeqCst),
        10,
        "cluster 1 got the other worker"
    );
    assert_eq!(queue.in_flight(), 1, "cluster 0 holds one worker, not two");
    assert_eq!(queue.len(), 9, "cluster 0's other keys wait, still ready");
    cancel.cancel();
    queue.shutdown();
    drop(workers);
}

#[tokio::test(start_paused = true)]
async fn stale_timers_of_a_key_made_ready_again_and_again_do_not_pile_up() {
    let queue = queue();
    for _ in 0..10_000 {
        // A failing key: backoff arms a timer, then an event makes it ready at once.
        queue.add(key(0, 1));
        take(&queue).retry();
        queue.add(key(0, 1));
        take(&queue).done();
    }
    let timers = queue.shared.lock_timers().len();
    assert!(
        timers <= 2 * super::MIN_TIMERS_TO_COMPACT,
        "{timers} timers kept"
    );
    // Live timers survive the sweeps.
    queue.add_after(key(0, 2), Duration::from_secs(5));
    for name in 3..3000 {
        queue.add(key(1, name));
        take(&queue).retry();
        queue.add(key(1, name));
        take(&queue).done();
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(take(&queue).key(), &key(0, 2), "the live timer still fired");
}

#[tokio::test(start_paused = true)]
async fn shutdown_wakes_parked_workers_and_refuses_new_work() {
    let queue = queue();
    let parked = tokio::spawn({
        let queue = queue.clone();
        async move { queue.next().await.is_none() }
    });
    tokio::task::yield_now().await;
    queue.shutdown();
    assert!(parked.await.unwrap_or(false), "next returns None");
    queue.add(key(0, 1));
    assert!(queue.try_next().is_none());
    assert!(queue.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn drain_waits_for_leases_to_be_released() {
    let queue = queue();
    queue.add(key(0, 1));
    let leased = queue.clone();
    let lease_holder = tokio::spawn(async move {
        let lease = leased.next().await.expect("open");
        tokio::time::sleep(Duration::from_secs(3)).await;
        lease.done();
    });
    tokio::task::yield_now().await;
    assert_eq!(queue.in_flight(), 1);

    let start = Instant::now();
    let drained = queue.drain(Duration::from_secs(10)).await;
    assert!(drained.is_ok(), "{drained:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(queue.in_flight(), 0);
    assert!(lease_holder.await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn drain_gives_up_after_its_timeout() {
    let queue = queue();
    queue.add(key(0, 1));
    let _stuck = take(&queue);
    match queue.drain(Duration::from_secs(2)).await {
        Err(QueueError::DrainTimedOut { in_flight, .. }) => assert_eq!(in_flight, 1),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_expose_the_workqueue_set_per_queue() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = QueueMetrics::register(&mut registry);
    let first = queue();
    let second: WorkQueue<Key> = WorkQueue::new("second", Backoff::default());
    metrics.attach(&first);
    metrics.attach(&second);

    first.add(key(0, 1));
    first.add(key(0, 1));
    first.add(key(0, 2));
    first.add(key(0, 3));
    let lease = take(&first);
    tokio::time::advance(Duration::from_secs(2)).await;
    lease.retry();
    let _running = take(&first);
    tokio::time::advance(Duration::from_secs(3)).await;

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    for line in [
        r#"workqueue_depth{name="test"} 1"#,
        r#"workqueue_depth{name="second"} 0"#,
        r#"workqueue_adds_total{name="test"} 3"#,
        r#"workqueue_retries_total{name="test"} 1"#,
        r#"workqueue_queue_duration_seconds_count{name="test"} 2"#,
        r#"workqueue_work_duration_seconds_count{name="test"} 1"#,
        r#"workqueue_work_duration_seconds_sum{name="test"} 2.0"#,
        r#"workqueue_unfinished_work_seconds{name="test"} 3.0"#,
        r#"workqueue_longest_running_processor_seconds{name="test"} 3.0"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(text.matches("# TYPE workqueue_depth gauge").count(), 1);

    drop(second);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    assert!(
        !text.contains(r#"name="second""#),
        "dropped queues disappear"
    );
}

/// Many workers and adders on a few hot keys: no key is ever processed by two workers at
/// once, and every add is seen by a processing that starts after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stress_no_concurrent_processing_and_no_lost_adds() {
    const KEYS: u32 = 32;
    const ADDERS: u64 = 4;
    const ADDS_PER_ADDER: u64 = 20_000;
    const WORKERS: usize = 8;

    struct Tracked {
        busy: AtomicBool,
        /// Bumped before every add of the key.
        version: AtomicU64,
        /// Highest `version` read at the start of a processing.
        seen: AtomicU64,
    }
    let tracked: Arc<Vec<Tracked>> = Arc::new(
        (0..KEYS)
            .map(|_| Tracked {
                busy: AtomicBool::new(false),
                version: AtomicU64::new(0),
                seen: AtomicU64::new(0),
            })
            .collect(),
    );
    let overlaps = Arc::new(AtomicUsize::new(0));
    let processed = Arc::new(AtomicUsize::new(0));
    let queue = queue();

    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (queue, tracked) = (queue.clone(), Arc::clone(&tracked));
        let (overlaps, processed) = (Arc::clone(&overlaps), Arc::clone(&processed));
        workers.push(tokio::spawn(async move {
            while let Some(lease) = queue.next().await {
                let t = &tracked[lease.key().name as usize];
                if t.busy.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                t.seen
                    .fetch_max(t.version.load(Ordering::SeqCst), Ordering::SeqCst);
                tokio::task::yield_now().await;
                t.busy.store(false, Ordering::SeqCst);
                processed.fetch_add(1, Ordering::SeqCst);
                lease.done();
            }
        }));
    }

    let mut adders = Vec::new();
    for adder in 0..ADDERS {
        let (queue, tracked) = (queue.clone(), Arc::clone(&tracked));
        adders.push(tokio::spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (adder + 1);
            for i in 0..ADDS_PER_ADDER {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let name = (rng % u64::from(KEYS)) as u32;
                tracked[name as usize]
                    .version
                    .fetch_add(1, Ordering::SeqCst);
                queue.add(key(name % 4, name));
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for adder in adders {
        assert!(adder.await.is_ok());
    }

    // Every key's last add must be observed by some processing, eventually.
    let all_seen = || {
        tracked
            .iter()
            .all(|t| t.seen.load(Ordering::SeqCst) == t.version.load(Ordering::SeqCst))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !all_seen() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(all_seen(), "an add was never followed by a processing");
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "a key was processed twice at once"
    );
    let processed = processed.load(Ordering::SeqCst);
    assert!(
        processed as u64 <= ADDERS * ADDS_PER_ADDER,
        "{processed} > adds"
    );

    assert!(queue.drain(Duration::from_secs(10)).await.is_ok());
    for worker in workers {
        assert!(worker.await.is_ok());
    }
}

/// Operations of the model-based property test.
#[derive(Clone, Debug)]
enum Op {
    Add(Key),
    Next,
    Done(usize),
    Retry(usize),
    Drop(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let key = (0..3u32, 0..4u32).prop_map(|(cluster, name)| key(cluster, name));
    prop_oneof![
        3 => key.prop_map(Op::Add),
        3 => Just(Op::Next),
        2 => any::<usize>().prop_map(Op::Done),
        1 => any::<usize>().prop_map(Op::Retry),
        1 => any::<usize>().prop_map(Op::Drop),
    ]
}

/// What the queue should hold, ignoring order. Time stands still, so backoffs never expire.
#[derive(Debug, Default)]
struct Model {
    ready: HashSet<Key>,
    leased: HashSet<Key>,
    /// Leased keys added again meanwhile.
    dirty: HashSet<Key>,
    /// Keys waiting on a backoff.
    waiting: HashSet<Key>,
}

impl Model {
    fn add(&mut self, key: Key) {
        if self.leased.contains(&key) {
            self.dirty.insert(key);
        } else {
            self.waiting.remove(&key);
            self.ready.insert(key);
        }
    }

    fn release(&mut self, key: Key, failed: bool) {
        self.leased.remove(&key);
        if self.dirty.remove(&key) {
            self.ready.insert(key);
        } else if failed {
            self.waiting.insert(key);
        }
    }
}

proptest! {
    #[test]
    fn the_queue_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..200)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let _clock = runtime.enter();
        let queue = queue();
        let mut leases: Vec<Lease<'_, Key>> = Vec::new();
        let mut model = Model::default();

        for op in ops {
            match op {
                Op::Add(key) => {
                    queue.add(key);
                    model.add(key);
                }
                Op::Next => match queue.try_next() {
                    Some(lease) => {
                        let key = *lease.key();
                        prop_assert!(model.ready.remove(&key), "{key:?} handed out but not ready");
                        prop_assert!(model.leased.insert(key), "{key:?} leased twice");
                        leases.push(lease);
                    }
                    None => prop_assert!(model.ready.is_empty(), "ready keys not handed out"),
                },
                Op::Done(i) | Op::Retry(i) | Op::Drop(i) if !leases.is_empty() => {
                    let lease = leases.swap_remove(i % leases.len());
                    let key = *lease.key();
                    match op {
                        Op::Done(_) => lease.done(),
                        Op::Retry(_) => {
                            lease.retry();
                        }
                        _ => drop(lease),
                    }
                    model.release(key, !matches!(op, Op::Done(_)));
                }
                Op::Done(_) | Op::Retry(_) | Op::Drop(_) => {}
            }
            prop_assert_eq!(queue.len(), model.ready.len());
            prop_assert_eq!(queue.in_flight(), model.leased.len());
        }
    }
}
