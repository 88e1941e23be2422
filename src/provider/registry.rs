//! Live sets of engaged clusters and open endpoints, shared by the runtime and the HTTP layer.
//!
//! Providers write them; everybody else reads them, or is told about changes through listeners
//! registered before the provider starts (so no change can be missed).

use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use dashmap::DashMap;

use super::{Cluster, ClusterId, Endpoint};

/// Something a [`Registry`] holds: identified, and with work to cancel when it leaves.
pub trait Member: Clone + Send + Sync + 'static {
    type Id: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static;
    fn id(&self) -> &Self::Id;
    /// Stops everything running on behalf of this member.
    fn cancel(&self);
}

impl Member for Cluster {
    type Id = ClusterId;
    fn id(&self) -> &ClusterId {
        Cluster::id(self)
    }
    fn cancel(&self) {
        self.cancellation().cancel();
    }
}

impl Member for Arc<Endpoint> {
    type Id = String;
    fn id(&self) -> &String {
        self.url_string()
    }
    fn cancel(&self) {
        self.cancellation().cancel();
    }
}

/// A change of a registry.
#[derive(Debug, Clone)]
pub enum Change<T> {
    Added(T),
    /// Still there, but what it stands on changed (e.g. its kcp binding): redo its work.
    Touched(T),
    Removed(T),
}

type Listener<T> = Box<dyn Fn(&Change<T>) + Send + Sync>;

/// A concurrent set of members with change listeners.
pub struct Registry<T: Member> {
    members: Arc<DashMap<T::Id, T>>,
    // Listeners run synchronously on the writer's task; they must be quick (enqueue, spawn, drop).
    listeners: Arc<RwLock<Vec<Listener<T>>>>,
}

impl<T: Member> Clone for Registry<T> {
    fn clone(&self) -> Self {
        Self {
            members: self.members.clone(),
            listeners: self.listeners.clone(),
        }
    }
}

impl<T: Member> Default for Registry<T> {
    fn default() -> Self {
        Self {
            members: Arc::default(),
            listeners: Arc::default(),
        }
    }
}

impl<T: Member> fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("members", &self.members.len())
            .finish()
    }
}

impl<T: Member> Registry<T> {
    /// Calls `listener` for every later change.
    pub fn on_change(&self, listener: impl Fn(&Change<T>) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(listener));
    }

    /// Adds `member`, replacing (cancelling and announcing the removal of) an older one with its id.
    pub fn insert(&self, member: T) {
        if let Some(previous) = self.members.insert(member.id().clone(), member.clone()) {
            previous.cancel();
            self.notify(&Change::Removed(previous));
        }
        self.notify(&Change::Added(member));
    }

    /// Announces that member `id` changed in place (see [`Change::Touched`]).
    pub fn touch(&self, id: &T::Id) {
        if let Some(member) = self.get(id) {
            self.notify(&Change::Touched(member));
        }
    }

    /// Removes and cancels the member `id`. Returns it if it was present.
    pub fn remove(&self, id: &T::Id) -> Option<T> {
        let (_, member) = self.members.remove(id)?;
        member.cancel();
        self.notify(&Change::Removed(member.clone()));
        Some(member)
    }

    /// Removes every member `reject` selects.
    pub fn remove_where(&self, reject: impl Fn(&T) -> bool) {
        let doomed: Vec<T::Id> = self
            .members
            .iter()
            .filter(|e| reject(e.value()))
            .map(|e| e.key().clone())
            .collect();
        for id in doomed {
            self.remove(&id);
        }
    }

    pub fn get(&self, id: &T::Id) -> Option<T> {
        self.members.get(id).map(|m| m.value().clone())
    }

    pub fn contains(&self, id: &T::Id) -> bool {
        self.members.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A snapshot of the members.
    pub fn all(&self) -> Vec<T> {
        self.members.iter().map(|e| e.value().clone()).collect()
    }

    fn notify(&self, change: &Change<T>) {
        let listeners: RwLockReadGuard<'_, Vec<Listener<T>>> =
            self.listeners.read().unwrap_or_else(|p| p.into_inner());
        for listener in listeners.iter() {
            listener(change);
        }
    }
}

/// Engaged logical clusters by id.
pub type Clusters = Registry<Cluster>;

/// Open endpoints (apiserver or virtual-workspace URLs) by URL.
pub type Endpoints = Registry<Arc<Endpoint>>;

/// The alias under which the kubernetes provider's unnamed cluster is also reachable.
pub const DEFAULT_CLUSTER_ALIAS: &str = "default";

impl Registry<Cluster> {
    /// Resolves a `cluster_id` given by a user: an engaged id, or `""`/`default` for the
    /// kubernetes provider's single cluster.
    pub fn resolve(&self, requested: &str) -> Option<Cluster> {
        let requested = requested.trim();
        self.get(&ClusterId::new(requested)).or_else(|| {
            (requested == DEFAULT_CLUSTER_ALIAS)
                .then(|| self.get(&ClusterId::single()))
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Debug)]
    struct Probe {
        id: u32,
        cancelled: Arc<Mutex<bool>>,
    }

    impl Member for Probe {
        type Id = u32;
        fn id(&self) -> &u32 {
            &self.id
        }
        fn cancel(&self) {
            *self.cancelled.lock().unwrap() = true;
        }
    }

    fn probe(id: u32) -> Probe {
        Probe {
            id,
            cancelled: Arc::default(),
        }
    }

    #[test]
    fn listeners_see_every_change_and_replaced_members_are_cancelled() {
        let registry = Registry::<Probe>::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        registry.on_change(move |change| {
            log.lock().unwrap().push(match change {
                Change::Added(p) => format!("+{}", p.id),
                Change::Touched(p) => format!("~{}", p.id),
                Change::Removed(p) => format!("-{}", p.id),
            })
        });
        let first = probe(1);
        registry.insert(first.clone());
        registry.insert(probe(2));
        registry.insert(probe(1));
        registry.touch(&2);
        registry.touch(&7);
        assert!(
            *first.cancelled.lock().unwrap(),
            "replaced member is cancelled"
        );
        assert!(registry.remove(&2).is_some());
        assert!(registry.remove(&2).is_none());
        registry.remove_where(|p| p.id == 1);
        assert!(registry.is_empty());
        assert_eq!(
            *seen.lock().unwrap(),
            ["+1", "+2", "-1", "+1", "~2", "-2", "-1"]
        );
    }
}
