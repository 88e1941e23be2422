//! The error of one reconcile, naming the object it concerns.

use super::member_api::MemberError;

#[derive(Debug, thiserror::Error)]
#[error("{kind} {workspace}/{name}: {source}")]
pub struct ReconcileError {
    pub kind: &'static str,
    pub workspace: String,
    pub name: String,
    #[source]
    pub source: MemberError,
}

/// What a reconcile asks for next: nothing, or another look after a delay.
pub type Outcome = Result<Option<std::time::Duration>, ReconcileError>;
