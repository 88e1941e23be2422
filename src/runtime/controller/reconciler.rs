//! What a controller implements: reconcile one object of its primary kind.

use std::future::Future;
use std::sync::Arc;

use super::Action;
use crate::provider::Cluster;
use crate::runtime::cache::CachedResource;
use crate::runtime::object::{Malformed, ObjectKey};

/// One reconcile of one object: where it lives and what the cache holds of it.
#[derive(Debug)]
pub struct Request<K> {
    /// The engaged cluster of the object, for clients.
    pub cluster: Cluster,
    pub key: ObjectKey,
    /// The object as cached; `None` once it is deleted (its dependents may still need work).
    pub object: Option<Arc<K>>,
}

/// The logic of one controller: make the world match one object of its primary kind.
///
/// The reconciler itself is the controller's context: it holds the caches it declared (see
/// [`super::ControllerBuilder::reads`]) and its options, as kube-rs passes `Arc<Ctx>`.
pub trait Reconciler: Send + Sync + 'static {
    /// The primary kind; its events enqueue its own keys.
    type Object: CachedResource;
    /// Anything failing a reconcile. A [`kube::Error`] anywhere in its `source()` chain is
    /// looked at: 409 (a precondition failed, someone wrote first) runs the key again at once
    /// and 403 (e.g. a kcp permission claim not accepted yet) waits for a change, neither
    /// counting as a failure; everything else retries with backoff.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Name in logs, metrics and work keys, e.g. `clusterbinding`.
    const NAME: &'static str;

    /// Makes the world match `request.object` (or its absence). Must be idempotent. Malformed
    /// objects go to [`Reconciler::report_malformed`] instead.
    fn reconcile(
        self: Arc<Self>,
        request: Request<Self::Object>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send + 'static;

    /// Tells the owner of `key` that its object cannot be read (e.g. an enum field holds a type
    /// the schema of an older apiserver let through). Only that object is affected; the default
    /// logs it. Kinds with status conditions should write one (see
    /// `controllers::status::report_on_conditions`).
    fn report_malformed(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
        malformed: Arc<Malformed>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send + 'static {
        let _ = cluster;
        async move {
            tracing::warn!(
                controller = Self::NAME, object = %key, error = %malformed.error,
                "object cannot be decoded; fix or delete it"
            );
            Ok(Action::Done)
        }
    }
}
