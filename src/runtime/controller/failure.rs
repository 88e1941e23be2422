//! How a failed reconcile is followed up: what the error says decides between running again at
//! once, waiting for a change, and backing off.

use std::error::Error;
use std::time::Duration;

use super::Action;

/// How long a key refused with 403 waits before it is tried again anyway. In kcp a refusal
/// usually means a permission claim is not accepted yet, and the binding's change re-runs the
/// cluster's keys sooner (see `Change::Touched`); without kcp it is RBAC being fixed.
pub const FORBIDDEN_RETRY: Duration = Duration::from_secs(60);

/// What a failed reconcile leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Followup {
    /// 409: someone else wrote first (a resourceVersion precondition failed). Not a failure:
    /// the key runs again at once, on the newer object.
    Conflict,
    /// 403: not allowed (yet). Not a failure: waits for a change, or [`FORBIDDEN_RETRY`].
    Forbidden,
    /// Anything else: a failure, retried with backoff.
    Failure,
}

impl Followup {
    /// Reads the first [`kube::Error`] in `error`'s `source()` chain.
    pub(super) fn of(error: &(dyn Error + 'static)) -> Self {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(kube::Error::Api(status)) = error.downcast_ref::<kube::Error>() {
                return match status.code {
                    409 => Self::Conflict,
                    403 => Self::Forbidden,
                    _ => Self::Failure,
                };
            }
            current = error.source();
        }
        Self::Failure
    }

    /// The action that replaces the error, for the outcomes that are not failures.
    pub(super) fn action(self) -> Option<Action> {
        match self {
            Self::Conflict => Some(Action::RequeueAfter(Duration::ZERO)),
            Self::Forbidden => Some(Action::RequeueAfter(FORBIDDEN_RETRY)),
            Self::Failure => None,
        }
    }

    /// The `result` label of the reconcile metric.
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Forbidden => "forbidden",
            Self::Failure => "error",
        }
    }
}

/// `error` as a sentence for logs and events: an API server refusal in its chain is shown by
/// the API server's message, not by the debug dump of its whole `Status`.
pub(super) fn describe(error: &(dyn Error + 'static)) -> String {
    let text = error.to_string();
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(kube @ kube::Error::Api(status)) = error.downcast_ref::<kube::Error>() {
            let dump = kube.to_string();
            return if text.contains(&dump) {
                text.replace(&dump, &status.message)
            } else {
                format!("{text}: {}", status.message)
            };
        }
        current = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("refused", "Refused")
                .with_code(code)
                .boxed(),
        )
    }

    /// A controller's own error wrapping a kube error, as `thiserror`'s `#[source]` does.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot update the export: {0}")]
    struct Wrapped(#[source] kube::Error);

    #[test]
    fn the_kube_error_anywhere_in_the_chain_decides() {
        assert_eq!(Followup::of(&api_error(409)), Followup::Conflict);
        assert_eq!(Followup::of(&api_error(403)), Followup::Forbidden);
        assert_eq!(Followup::of(&api_error(500)), Followup::Failure);
        assert_eq!(Followup::of(&Wrapped(api_error(409))), Followup::Conflict);
        assert_eq!(Followup::of(&Wrapped(api_error(422))), Followup::Failure);
        let io = std::io::Error::other("connection reset");
        assert_eq!(Followup::of(&io), Followup::Failure);
    }

    #[test]
    fn an_api_refusal_is_described_by_its_message() {
        let refused = || {
            kube::Error::Api(
                kube::core::Status::failure(
                    "name too long: must be no more than 63 characters",
                    "Invalid",
                )
                .with_code(422)
                .boxed(),
            )
        };
        assert_eq!(
            describe(&Wrapped(refused())),
            "cannot update the export: name too long: must be no more than 63 characters"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("cannot create the namespace")]
        struct Opaque(#[source] kube::Error);
        assert_eq!(
            describe(&Opaque(refused())),
            "cannot create the namespace: name too long: must be no more than 63 characters"
        );
        let io = std::io::Error::other("connection reset");
        assert_eq!(describe(&io), "connection reset");
    }

    #[test]
    fn only_failures_keep_their_error() {
        assert_eq!(
            Followup::Conflict.action(),
            Some(Action::RequeueAfter(Duration::ZERO))
        );
        assert_eq!(
            Followup::Forbidden.action(),
            Some(Action::RequeueAfter(FORBIDDEN_RETRY))
        );
        assert_eq!(Followup::Failure.action(), None);
    }
}
