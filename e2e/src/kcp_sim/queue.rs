//! A small work queue for the stand-in's controllers: a key queued twice is queued once, and a
//! failed key is retried after a delay.

use std::{collections::HashSet, hash::Hash, sync::Mutex, time::Duration};

use tokio::sync::mpsc;

pub struct Queue<K> {
    tx: mpsc::UnboundedSender<K>,
    pending: Mutex<HashSet<K>>,
}

impl<K: Clone + Eq + Hash + Send + 'static> Queue<K> {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<K>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                pending: Mutex::default(),
            },
            rx,
        )
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<K>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add(&self, key: K) {
        if self.pending().insert(key.clone()) {
            // The receiver lives as long as the stand-in; a closed channel means shutdown.
            let _ = self.tx.send(key);
        }
    }

    /// Marks `key` as taken by a worker, so a change during processing queues it again.
    pub fn take(&self, key: &K) {
        self.pending().remove(key);
    }

    pub fn add_after(self: &std::sync::Arc<Self>, key: K, delay: Duration)
    where
        Self: Send + Sync,
    {
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_until_taken() {
        let (q, mut rx) = Queue::new();
        q.add(1);
        q.add(1);
        assert_eq!(rx.recv().await, Some(1));
        assert!(rx.try_recv().is_err());
        q.take(&1);
        q.add(1);
        assert_eq!(rx.recv().await, Some(1));
    }
}
