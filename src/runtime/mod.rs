//! Generic multicluster machinery (caches, work queue, controller plumbing, leader election);
//! no kube-bind logic.

pub mod cache;
pub mod caches;
pub mod controller;
pub mod leader;
pub mod object;
pub mod queue;
pub mod status;

pub use cache::{Cache, CacheEvent, CachedResource, OWNER_INDEX};
pub use caches::Caches;
pub use controller::{
    Action, ControllerBuilder, EventRecorder, Manager, Reconciler, Request, WorkKey,
};
pub use leader::{Leadership, LeaseElection};
pub use object::{Entry, Malformed, ObjectKey, Tolerant, is_namespaced};
