//! Prometheus metrics of the stand-in: virtual-workspace watches, so tests can assert how many
//! watches a client keeps open per export and resource.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub export: String,
    /// `configmaps`, `apibindings.apis.kcp.io`, … (kube's group-resource notation).
    pub resource: String,
}

pub struct Metrics {
    registry: Registry,
    pub open_watches: Family<WatchLabels, Gauge>,
    pub watch_requests: Family<WatchLabels, Counter>,
    pub member_watch_restarts: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let open_watches = Family::<WatchLabels, Gauge>::default();
        let watch_requests = Family::<WatchLabels, Counter>::default();
        let member_watch_restarts = Counter::default();
        registry.register(
            "kcp_sim_vw_open_watches",
            "Open virtual-workspace watches",
            open_watches.clone(),
        );
        registry.register(
            "kcp_sim_vw_watch_requests",
            "Virtual-workspace watch requests",
            watch_requests.clone(),
        );
        registry.register(
            "kcp_sim_member_watch_restarts",
            "Member watches of merged watches reopened after an error or a 410",
            member_watch_restarts.clone(),
        );
        Self {
            registry,
            open_watches,
            watch_requests,
            member_watch_restarts,
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Counts a watch as open until the guard drops.
    pub fn watch_opened(&self, labels: WatchLabels) -> OpenWatch {
        self.watch_requests.get_or_create(&labels).inc();
        let gauge = self.open_watches.get_or_create(&labels).clone();
        gauge.inc();
        OpenWatch { gauge }
    }
}

/// Decrements the open-watch gauge when the watch ends, however it ends.
pub struct OpenWatch {
    gauge: Gauge,
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_watches_go_up_and_down() {
        let m = Metrics::default();
        let labels = WatchLabels {
            export: "kube-bind.io".into(),
            resource: "apibindings.apis.kcp.io".into(),
        };
        let guard = m.watch_opened(labels.clone());
        assert!(m.encode().contains(
            r#"kcp_sim_vw_open_watches{export="kube-bind.io",resource="apibindings.apis.kcp.io"} 1"#
        ));
        drop(guard);
        let text = m.encode();
        assert!(text.contains(
            r#"kcp_sim_vw_open_watches{export="kube-bind.io",resource="apibindings.apis.kcp.io"} 0"#
        ));
        assert!(text.contains(r#"kcp_sim_vw_watch_requests_total{export="kube-bind.io",resource="apibindings.apis.kcp.io"} 1"#));
    }
}
