//! The Prometheus registry every component registers its metrics into, served at `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// A registry frozen after start-up: metrics are registered while the process is being built,
/// then only their values change.
#[derive(Clone, Debug)]
pub struct MetricsRegistry(Arc<Registry>);

impl MetricsRegistry {
    pub fn new(registry: Registry) -> Self {
        Self(Arc::new(registry))
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.0)?;
        Ok(out)
    }
}
