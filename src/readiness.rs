//! Named readiness checks behind `/readyz`: components report whether they can do their job
//! (e.g. "the endpoint slice exists"), the HTTP layer shows the verdict.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Shared set of readiness checks.
#[derive(Clone, Default, Debug)]
pub struct Readiness {
    // `None` = ready; `Some(reason)` = not ready and why.
    checks: Arc<Mutex<BTreeMap<&'static str, Option<String>>>>,
}

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: &'static str,
    pub failure: Option<String>,
}

impl Readiness {
    /// Registers a check that starts out not ready for `reason`.
    pub fn register(&self, name: &'static str, reason: impl Into<String>) -> ReadinessCheck {
        self.lock().insert(name, Some(reason.into()));
        ReadinessCheck {
            readiness: self.clone(),
            name,
        }
    }

    /// All checks, by name.
    pub fn report(&self) -> Vec<CheckResult> {
        self.lock()
            .iter()
            .map(|(name, failure)| CheckResult {
                name,
                failure: failure.clone(),
            })
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.lock().values().all(Option::is_none)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Option<String>>> {
        self.checks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The handle a component updates its own check through.
#[derive(Clone, Debug)]
pub struct ReadinessCheck {
    readiness: Readiness,
    name: &'static str,
}

impl ReadinessCheck {
    pub fn ready(&self) {
        self.set(None);
    }

    pub fn not_ready(&self, reason: impl Into<String>) {
        self.set(Some(reason.into()));
    }

    fn set(&self, value: Option<String>) {
        let mut checks = self.readiness.lock();
        let previous = checks.insert(self.name, value.clone());
        match (previous, &value) {
            (Some(before), _) if before == value => {}
            (_, None) => tracing::info!(check = self.name, "ready"),
            // Losing readiness is worth a warning; still getting there is not.
            (Some(None), Some(reason)) => {
                tracing::warn!(check = self.name, reason = %reason, "not ready")
            }
            (_, Some(reason)) => {
                tracing::info!(check = self.name, reason = %reason, "not ready yet")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is() {
        let readiness = Readiness::default();
        assert!(readiness.is_ready());
        let provider = readiness.register("provider", "starting");
        let caches = readiness.register("caches", "syncing");
        assert!(!readiness.is_ready());
        provider.ready();
        assert!(!readiness.is_ready());
        caches.ready();
        assert!(readiness.is_ready());
        provider.not_ready("endpoint slice kube-bind.io not found");
        let report = readiness.report();
        assert_eq!(report[1].name, "provider");
        assert_eq!(
            report[1].failure.as_deref(),
            Some("endpoint slice kube-bind.io not found")
        );
    }
}
