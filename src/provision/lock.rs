//! One lock per (cluster, identity) being provisioned, forgotten when nobody holds or waits
//! for it.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::Identity;
use crate::provider::ClusterId;

type Key = (ClusterId, Identity);

/// The locks of the identities being provisioned. Cheap to clone; clones share the locks.
#[derive(Clone, Default)]
pub(super) struct IdentityLocks {
    locks: Arc<DashMap<Key, Arc<Mutex<()>>>>,
}

impl IdentityLocks {
    /// Waits until no other bind of `identity` in `cluster` runs, and holds that until dropped.
    pub(super) async fn lock(&self, cluster: &ClusterId, identity: &Identity) -> IdentityLock {
        let key = (cluster.clone(), identity.clone());
        let mutex = self.locks.entry(key.clone()).or_default().clone();
        let guard = mutex.clone().lock_owned().await;
        IdentityLock {
            locks: self.clone(),
            key,
            guard: Some(guard),
            mutex: Some(mutex),
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }
}

/// Held while one identity is provisioned.
pub(super) struct IdentityLock {
    locks: IdentityLocks,
    key: Key,
    guard: Option<OwnedMutexGuard<()>>,
    mutex: Option<Arc<Mutex<()>>>,
}

impl Drop for IdentityLock {
    fn drop(&mut self) {
        self.guard.take();
        self.mutex.take();
        // NOTE: the map's own reference is the only one left exactly when nobody holds or waits;
        // new references are taken under the same shard lock, so none appears while this runs.
        self.locks
            .locks
            .remove_if(&self.key, |_, mutex| Arc::strong_count(mutex) == 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_of_one_identity_take_turns_and_leave_no_lock_behind() {
        let locks = IdentityLocks::default();
        let cluster = ClusterId::single();
        let alice = Identity::new("alice", &cluster);
        let first = locks.lock(&cluster, &alice).await;
        let waiting = {
            let (locks, cluster, alice) = (locks.clone(), cluster.clone(), alice.clone());
            tokio::spawn(async move {
                let _second = locks.lock(&cluster, &alice).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the second bind waits for the first"
        );
        let bob = Identity::new("bob", &cluster);
        drop(locks.lock(&cluster, &bob).await);
        drop(first);
        waiting.await.unwrap();
        assert!(locks.is_empty());
    }
}
