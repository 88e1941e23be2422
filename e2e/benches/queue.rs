//! Work-queue throughput: add + process with a no-op handler, against a plain
//! `Mutex<VecDeque<K>> + HashSet<K>` queue in the same process, at 1 and at 10,000 clusters.
//!
//! Prints figures; asserts nothing about time. Run with
//! `cargo bench -p kube-bind-e2e --bench queue`.

use kube_bind_backend::runtime::queue::{Backoff, FairKey, Outcome, WorkQueue, run_workers};
use std::{
    collections::{HashSet, VecDeque},
    convert::Infallible,
    future::{Ready, ready},
    num::NonZeroUsize,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Keys added (and so processed) per measured run.
const OPS: usize = 2_000_000;
/// Worker tasks, on a runtime with as many threads (this machine has 2 cores).
const WORKERS: usize = 2;
/// Measured runs per queue and scenario; the median is reported.
const RUNS: usize = 3;
/// The producer yields this often, so workers share its thread as a controller's would.
const YIELD_EVERY: usize = 256;

/// A key shaped like the backend's (cluster, kind, namespace, name), with shared strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ObjectKey {
    cluster: Arc<str>,
    kind: &'static str,
    namespace: Arc<str>,
    name: Arc<str>,
}

impl FairKey for ObjectKey {
    type Group = Arc<str>;
    fn group(&self) -> &Arc<str> {
        &self.cluster
    }
}

/// `OPS` distinct keys spread round-robin over `clusters` clusters, one namespace each.
fn keys(clusters: usize) -> Vec<ObjectKey> {
    let cluster_names: Vec<(Arc<str>, Arc<str>)> = (0..clusters)
        .map(|c| {
            (
                Arc::from(format!("cluster-{c:05}")),
                Arc::from(format!("ns-{c}")),
            )
        })
        .collect();
    (0..OPS)
        .map(|i| {
            let (cluster, namespace) = &cluster_names[i % clusters];
            ObjectKey {
                cluster: Arc::clone(cluster),
                kind: "APIServiceExport",
                namespace: Arc::clone(namespace),
                name: Arc::from(format!("object-{i}")),
            }
        })
        .collect()
}

/// The floor: a FIFO that deduplicates queued keys and nothing else (no exclusivity, no
/// backoff, no fairness, no metrics), with the usual `Notify` hand-off to parked workers.
struct BaselineQueue {
    state: Mutex<BaselineState>,
    wake: Notify,
    closed: AtomicBool,
}

#[derive(Default)]
struct BaselineState {
    queue: VecDeque<ObjectKey>,
    queued: HashSet<ObjectKey>,
}

impl BaselineQueue {
    fn new() -> Self {
        Self {
            state: Mutex::default(),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BaselineState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, key: ObjectKey) {
        let mut state = self.lock();
        if state.queued.insert(key.clone()) {
            state.queue.push_back(key);
            drop(state);
            self.wake.notify_one();
        }
    }

    async fn next(&self) -> Option<ObjectKey> {
        loop {
            {
                let mut state = self.lock();
                if let Some(key) = state.queue.pop_front() {
                    state.queued.remove(&key);
                    return Some(key);
                }
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            // `notify_one` leaves a permit when nobody waits, so no add is missed here.
            self.wake.notified().await;
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }
}

/// Counts processed keys and signals when all `OPS` are done.
#[derive(Clone)]
struct Completion {
    processed: Arc<AtomicUsize>,
    all_done: Arc<Notify>,
}

impl Completion {
    fn new() -> Self {
        Self {
            processed: Arc::new(AtomicUsize::new(0)),
            all_done: Arc::new(Notify::new()),
        }
    }

    /// The no-op handler's only work.
    fn processed_one(&self) {
        if self.processed.fetch_add(1, Ordering::Relaxed) + 1 == OPS {
            self.all_done.notify_one();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("cannot build the tokio runtime: {error}"),
    }
}

/// Adds every key from a producer task while `WORKERS` workers process them; returns the
/// time until the last key was processed.
fn measure_work_queue(keys: Vec<ObjectKey>) -> Duration {
    runtime().block_on(async move {
        let queue: WorkQueue<ObjectKey> = WorkQueue::new("bench", Backoff::default());
        let completion = Completion::new();
        let cancel = CancellationToken::new();
        let workers = NonZeroUsize::new(WORKERS).unwrap_or(NonZeroUsize::MIN);
        let handler = {
            let completion = completion.clone();
            move |_key: &ObjectKey| -> Ready<Result<Outcome, Infallible>> {
                completion.processed_one();
                ready(Ok(Outcome::Done))
            }
        };
        let pool = run_workers(queue.clone(), workers, cancel.clone(), handler);
        let all_done = completion.all_done.notified();

        let start = Instant::now();
        let producer = tokio::spawn({
            let queue = queue.clone();
            async move {
                for (i, key) in keys.into_iter().enumerate() {
                    queue.add(key);
                    if i % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        });
        all_done.await;
        let elapsed = start.elapsed();

        if let Err(error) = producer.await {
            panic!("producer failed: {error}");
        }
        cancel.cancel();
        queue.shutdown();
        pool.join().await;
        elapsed
    })
}

/// The same harness over [`BaselineQueue`].
fn measure_baseline(keys: Vec<ObjectKey>) -> Duration {
    runtime().block_on(async move {
        let queue = Arc::new(BaselineQueue::new());
        let completion = Completion::new();
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (queue, completion) = (Arc::clone(&queue), completion.clone());
                tokio::spawn(async move {
                    while let Some(key) = queue.next().await {
                        std::hint::black_box(&key);
                        completion.processed_one();
                    }
                })
            })
            .collect();
        let all_done = completion.all_done.notified();

        let start = Instant::now();
        let producer = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move {
                for (i, key) in keys.into_iter().enumerate() {
                    queue.add(key);
                    if i % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        });
        all_done.await;
        let elapsed = start.elapsed();

        if let Err(error) = producer.await {
            panic!("producer failed: {error}");
        }
        queue.close();
        for worker in workers {
            if let Err(error) = worker.await {
                panic!("baseline worker failed: {error}");
            }
        }
        elapsed
    })
}

fn ops_per_sec(elapsed: Duration) -> f64 {
    OPS as f64 / elapsed.as_secs_f64()
}

/// Median and best of a set of runs: the median is the figure, the best shows what the code
/// does when the shared machine leaves it alone.
struct Summary {
    median: Duration,
    best: Duration,
}

fn summarize(mut runs: Vec<Duration>) -> Summary {
    runs.sort_unstable();
    Summary {
        median: runs.get(runs.len() / 2).copied().unwrap_or_default(),
        best: runs.first().copied().unwrap_or_default(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (a filter, `--list`) is not supported.
    println!(
        "work queue vs Mutex<VecDeque>+HashSet baseline: {OPS} distinct keys added by one \
         producer task and processed by {WORKERS} workers (no-op handler), tokio runtime with \
         {WORKERS} threads, {RUNS} interleaved runs each"
    );
    println!(
        "{:>9}  {:>14}  {:>14}  {:>6}    {:>14}  {:>14}  {:>6}",
        "clusters", "queue ops/s", "baseline ops/s", "ratio", "best: queue", "baseline", "ratio"
    );
    for clusters in [1, 10_000] {
        let mut queue_runs = Vec::with_capacity(RUNS);
        let mut baseline_runs = Vec::with_capacity(RUNS);
        // Interleaved, so drift on a shared machine hits both alike.
        for _ in 0..RUNS {
            queue_runs.push(measure_work_queue(keys(clusters)));
            baseline_runs.push(measure_baseline(keys(clusters)));
        }
        let queue = summarize(queue_runs);
        let baseline = summarize(baseline_runs);
        let (queue_median, baseline_median) =
            (ops_per_sec(queue.median), ops_per_sec(baseline.median));
        let (queue_best, baseline_best) = (ops_per_sec(queue.best), ops_per_sec(baseline.best));
        println!(
            "{clusters:>9}  {queue_median:>14.0}  {baseline_median:>14.0}  {:>5.2}x    \
             {queue_best:>14.0}  {baseline_best:>14.0}  {:>5.2}x",
            queue_median / baseline_median,
            queue_best / baseline_best,
        );
    }
    println!("(medians first; targets: queue >= 1000000 ops/s and ratio >= 0.50x)");
}
