//! A fixed pool of tokio tasks that take keys from a [`WorkQueue`] and run a handler on them.

use super::{Lease, QueueKey, Release, WorkQueue};
use futures::FutureExt;
use std::{fmt, num::NonZeroUsize, panic::AssertUnwindSafe, sync::Arc, time::Duration};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a successful handler wants next for its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing until the key is added again.
    Done,
    /// Run again after this long at the latest (periodic resync, waiting on something).
    RequeueAfter(Duration),
}

/// The tasks started by [`run_workers`].
#[derive(Debug)]
pub struct Workers {
    tasks: JoinSet<()>,
}

impl Workers {
    /// Waits until every worker has stopped (queue shut down or token cancelled).
    pub async fn join(mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                // Handler panics are caught per key, so this is a runtime shutting down.
                tracing::warn!(%error, "work queue worker ended abnormally");
            }
        }
    }
}

/// Spawns `workers` tasks that each loop: take a key from `queue`, run `handler` on it, then
/// release the key according to the result: `Ok` ends it as [`Outcome`] says, `Err` (and a
/// panic) retries it with backoff.
///
/// The handler gets the key by reference (as kube-rs' runner does) and returns a `'static`
/// future: clone what the future needs, nothing is cloned for a handler that needs nothing.
///
/// A worker stops taking keys once `cancel` is cancelled or the queue is shut down; a handler
/// already running is left to finish, so cancel, then [`WorkQueue::drain`] with a timeout, is a
/// graceful stop. Must be called within a tokio runtime.
pub fn run_workers<K, H, Fut, E>(
    queue: WorkQueue<K>,
    workers: NonZeroUsize,
    cancel: CancellationToken,
    handler: H,
) -> Workers
where
    K: QueueKey + fmt::Debug,
    H: Fn(&K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    let handler = Arc::new(handler);
    let mut tasks = JoinSet::new();
    for _ in 0..workers.get() {
        tasks.spawn(work(queue.clone(), cancel.clone(), Arc::clone(&handler)));
    }
    Workers { tasks }
}

async fn work<K, H, Fut, E>(queue: WorkQueue<K>, cancel: CancellationToken, handler: Arc<H>)
where
    K: QueueKey + fmt::Debug,
    H: Fn(&K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    // The key leased together with the release of the previous one, if any.
    let mut taken: Option<Lease<'_, K>> = None;
    loop {
        let lease = match taken.take() {
            Some(lease) => lease,
            None => tokio::select! {
                // A ready key is taken without registering on the token; the token only
                // matters to a parked worker.
                biased;
                lease = queue.next() => match lease {
                    Some(lease) => lease,
                    None => break,
                },
                () = cancel.cancelled() => break,
            },
        };
        if cancel.is_cancelled() {
            // Cancelled while taking the key: it is not ours to run any more.
            lease.give_back();
            break;
        }
        // The handler is called inside the guarded future so a panic while building its
        // future is caught too.
        let result = AssertUnwindSafe(async { handler(lease.key()).await })
            .catch_unwind()
            .await;
        let how = match &result {
            Ok(Ok(Outcome::Done)) => Release::Done,
            Ok(Ok(Outcome::RequeueAfter(delay))) => Release::After(*delay),
            Ok(Err(_)) | Err(_) => Release::Retry,
        };
        let failed = matches!(how, Release::Retry).then(|| lease.key().clone());
        let (retry_in, next) = lease.finish_and_take(how);
        taken = next;
        if let Some(key) = failed {
            let retry_in = retry_in.unwrap_or_default();
            match result {
                Ok(Err(error)) => {
                    tracing::warn!(queue = queue.name(), ?key, %error, ?retry_in, "handler failed");
                }
                _ => tracing::error!(queue = queue.name(), ?key, ?retry_in, "handler panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Outcome, run_workers};
    use crate::runtime::queue::{Backoff, FairKey, WorkQueue};
    use std::{
        num::NonZeroUsize,
        sync::{
            Arc, Mutex,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };
    use tokio_util::sync::CancellationToken;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    struct Key(u32);

    impl FairKey for Key {
        type Group = ();
        fn group(&self) -> &() {
            &()
        }
    }

    fn two() -> NonZeroUsize {
        NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN)
    }

    #[tokio::test(start_paused = true)]
    async fn failures_and_panics_are_retried_with_backoff_successes_are_not() {
        let queue = WorkQueue::new("test", Backoff::default());
        let runs = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let workers = run_workers(queue.clone(), two(), cancel.clone(), {
            let runs = Arc::clone(&runs);
            move |key: &Key| {
                let key = *key;
                let runs = Arc::clone(&runs);
                async move {
                    let attempt = {
                        let mut runs = runs.lock().unwrap_or_else(|e| e.into_inner());
                        runs.push(key.0);
                        runs.iter().filter(|&&k| k == key.0).count()
                    };
                    match (key.0, attempt) {
                        (1, 1) => Err("first try fails"),
                        (2, 1) => panic!("first try panics"),
                        _ => Ok(Outcome::Done),
                    }
                }
            }
        });
        queue.add(Key(1));
        queue.add(Key(2));
        queue.add(Key(3));
        tokio::time::sleep(Duration::from_secs(1)).await;

        let mut seen = runs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        seen.sort_unstable();
        assert_eq!(seen, [1, 1, 2, 2, 3]);
        assert_eq!(queue.failures(&Key(1)), 0, "success resets the backoff");
        assert_eq!(queue.in_flight(), 0);

        cancel.cancel();
        workers.join().await;
    }

    #[tokio::test(start_paused = true)]
    async fn requeue_after_runs_the_key_again_later() {
        let queue = WorkQueue::new("test", Backoff::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let workers = run_workers(queue.clone(), two(), cancel.clone(), {
            let runs = Arc::clone(&runs);
            move |_key: &Key| {
                let runs = Arc::clone(&runs);
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(Outcome::RequeueAfter(Duration::from_secs(10)))
                }
            }
        });
        queue.add(Key(1));
        tokio::time::sleep(Duration::from_secs(25)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "at 0 s, 10 s and 20 s");
        cancel.cancel();
        workers.join().await;
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_stops_parked_workers_and_lets_running_handlers_finish() {
        let queue = WorkQueue::new("test", Backoff::default());
        let finished = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let workers = run_workers(queue.clone(), two(), cancel.clone(), {
            let finished = Arc::clone(&finished);
            move |_key: &Key| {
                let finished = Arc::clone(&finished);
                async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(Outcome::Done)
                }
            }
        });
        queue.add(Key(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(queue.in_flight(), 1);

        cancel.cancel();
        queue.add(Key(2));
        workers.join().await;
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the running handler finished"
        );
        assert_eq!(queue.len(), 1, "no new key was taken after cancellation");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn busy_workers_stop_at_cancellation_and_lose_no_key() {
        const KEYS: usize = 10_000;
        let queue = WorkQueue::new("test", Backoff::default());
        for i in 0..KEYS {
            queue.add(Key(u32::try_from(i).unwrap_or(u32::MAX)));
        }
        let processed = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let workers = run_workers(queue.clone(), two(), cancel.clone(), {
            let (processed, cancel) = (Arc::clone(&processed), cancel.clone());
            move |_key: &Key| {
                if processed.fetch_add(1, Ordering::SeqCst) == 100 {
                    cancel.cancel();
                }
                async { Ok::<_, String>(Outcome::Done) }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), workers.join())
            .await
            .expect("workers stop after cancellation");
        let processed = processed.load(Ordering::SeqCst);
        // The key that cancelled, plus at most one the other worker had already started.
        assert!(
            processed <= 101 + 1,
            "{processed} keys run: kept working after cancellation"
        );
        assert_eq!(queue.in_flight(), 0);
        assert_eq!(queue.len() + processed, KEYS, "keys given back, none lost");
    }

    #[tokio::test]
    async fn workers_stop_when_the_queue_shuts_down() {
        let queue: WorkQueue<Key> = WorkQueue::new("test", Backoff::default());
        let workers = run_workers(
            queue.clone(),
            two(),
            CancellationToken::new(),
            |_key: &Key| async { Ok::<_, String>(Outcome::Done) },
        );
        queue.shutdown();
        tokio::time::timeout(Duration::from_secs(10), workers.join())
            .await
            .expect("workers stop after shutdown");
    }
}
