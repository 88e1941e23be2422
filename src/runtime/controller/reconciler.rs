//! What a controller implements: reconcile one object of its primary kind.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::Action;
use crate::provider::Cluster;
use crate::runtime::cache::CachedResource;
use crate::runtime::object::{Malformed, ObjectKey};

/// The logic of one controller: make the world match one object of its primary kind.
pub trait Reconciler: Send + Sync + 'static {
    /// The primary kind; its events enqueue its own keys.
    type Object: CachedResource;
    type Error: fmt::Display + Send + 'static;

    /// Name in logs, metrics and work keys, e.g. `clusterbinding`.
    const NAME: &'static str;

    /// Reconciles `key` in `cluster`. The object may be absent (deleted): read it from the
    /// cache and decide. Must be idempotent. Malformed objects go to
    /// [`Reconciler::report_malformed`] instead.
    fn reconcile(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
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
