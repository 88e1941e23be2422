//! Reconcile counts (by result) and durations, per controller.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ResultLabels {
    pub(super) controller: &'static str,
    pub(super) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ControllerLabels {
    pub(super) controller: &'static str,
}

/// Per-controller reconcile metrics.
#[derive(Clone)]
pub(super) struct ReconcileMetrics {
    pub(super) total: Family<ResultLabels, Counter>,
    pub(super) duration: Family<ControllerLabels, Histogram>,
}

impl ReconcileMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            total: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        };
        registry.register(
            "reconcile",
            "Reconciles by controller and result",
            metrics.total.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in reconcile, by controller",
            metrics.duration.clone(),
        );
        metrics
    }
}
