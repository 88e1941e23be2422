//! Prometheus metrics of work queues: client-go's `workqueue_*` set, one series per queue,
//! labelled `name`.
//!
//! The hot path only bumps relaxed atomics ([`QueueStats`]); depth and the in-flight gauges
//! are computed when scraped, from the queue itself.

use super::stripe::Striped;
use prometheus_client::{
    collector::Collector,
    encoding::NoLabelSet,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};
use std::{
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Upper bounds of the latency buckets in nanoseconds: client-go's
/// `ExponentialBuckets(10e-9, 10, 10)`, i.e. 10 ns to 10 s.
const BUCKET_BOUNDS_NANOS: [u64; 10] = [
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
];

/// A latency histogram with lock-free observation (prometheus-client's `Histogram` takes a
/// mutex per observation, which would serialise every worker on it).
#[derive(Debug, Default)]
pub(super) struct LatencyHistogram {
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKET_BOUNDS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub(super) fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKET_BOUNDS_NANOS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        let mut count = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            count += n;
            let bound = BUCKET_BOUNDS_NANOS
                .get(i)
                .map_or(f64::INFINITY, |&nanos| nanos as f64 / 1e9);
            buckets.push((bound, n));
        }
        HistogramSnapshot {
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count,
            buckets,
        }
    }
}

/// The counters of one thread (one stripe of [`QueueStats`]).
#[derive(Debug, Default)]
pub(super) struct StatsStripe {
    /// Adds that changed a key's schedule (deduplicated adds are not counted).
    pub(super) adds: AtomicU64,
    /// Delayed re-adds: `add_after`, failed and abandoned leases, `requeue_after`.
    pub(super) retries: AtomicU64,
    /// Time from a key becoming ready to it being handed out.
    pub(super) queue_duration: LatencyHistogram,
    /// Time from a key being handed out to its lease being released.
    pub(super) work_duration: LatencyHistogram,
}

/// Counters a queue bumps as it works, striped per thread so workers do not contend on them.
pub(super) type QueueStats = Striped<StatsStripe>;

impl QueueStats {
    pub(super) fn adds(&self) -> u64 {
        self.iter().map(|s| s.adds.load(Ordering::Relaxed)).sum()
    }

    pub(super) fn retries(&self) -> u64 {
        self.iter().map(|s| s.retries.load(Ordering::Relaxed)).sum()
    }

    pub(super) fn queue_duration(&self) -> HistogramSnapshot {
        HistogramSnapshot::sum(self.iter().map(|s| s.queue_duration.snapshot()))
    }

    pub(super) fn work_duration(&self) -> HistogramSnapshot {
        HistogramSnapshot::sum(self.iter().map(|s| s.work_duration.snapshot()))
    }
}

#[derive(Debug)]
pub(super) struct HistogramSnapshot {
    sum_seconds: f64,
    count: u64,
    /// (upper bound in seconds, count in this bucket alone)
    buckets: Vec<(f64, u64)>,
}

impl HistogramSnapshot {
    /// Adds up snapshots of histograms with the same buckets.
    fn sum(snapshots: impl Iterator<Item = HistogramSnapshot>) -> HistogramSnapshot {
        let mut total = LatencyHistogram::default().snapshot();
        for snapshot in snapshots {
            total.sum_seconds += snapshot.sum_seconds;
            total.count += snapshot.count;
            for (bucket, (_, n)) in total.buckets.iter_mut().zip(snapshot.buckets) {
                bucket.1 += n;
            }
        }
        total
    }
}

/// One queue's values at scrape time.
#[derive(Debug)]
pub(super) struct QueueSample {
    pub(super) name: String,
    pub(super) depth: usize,
    pub(super) adds: u64,
    pub(super) retries: u64,
    pub(super) queue_duration: HistogramSnapshot,
    pub(super) work_duration: HistogramSnapshot,
    pub(super) unfinished_work: Duration,
    pub(super) longest_running: Duration,
}

/// What the metrics collector reads from a queue; implemented by the queue for every key type.
pub(super) trait QueueProbe: Send + Sync + 'static {
    fn sample(&self) -> QueueSample;
}

/// The `workqueue_*` metrics of every queue attached to it.
///
/// Register it once per registry ([`QueueMetrics::register`]) and [`attach`](Self::attach)
/// each queue: every metric is then one family with one series per queue, so the exposition
/// has a single `# TYPE` line per metric however many queues there are.
#[derive(Clone, Debug, Default)]
pub struct QueueMetrics {
    queues: Arc<Mutex<Vec<Weak<dyn QueueProbe>>>>,
}

impl std::fmt::Debug for dyn QueueProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueProbe")
    }
}

impl QueueMetrics {
    /// Registers the `workqueue_*` families into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register_collector(Box::new(metrics.clone()));
        metrics
    }

    /// Exposes `queue` under its name. A queue dropped later disappears from the output.
    pub fn attach<K: super::QueueKey>(&self, queue: &super::WorkQueue<K>) {
        let probe: Weak<dyn QueueProbe> = queue.probe();
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(probe);
    }

    /// The live queues, forgetting dropped ones.
    fn live_queues(&self) -> Vec<Arc<dyn QueueProbe>> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        queues.retain(|queue| queue.strong_count() > 0);
        queues.iter().filter_map(Weak::upgrade).collect()
    }
}

impl Collector for QueueMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let samples: Vec<QueueSample> = self.live_queues().iter().map(|q| q.sample()).collect();
        if samples.is_empty() {
            return Ok(());
        }
        let label = |sample: &QueueSample| [("name", sample.name.clone())];

        let mut family = encoder.encode_descriptor(
            "workqueue_depth",
            "Current depth of workqueue (keys ready to be handed out)",
            None,
            MetricType::Gauge,
        )?;
        for sample in &samples {
            let depth = i64::try_from(sample.depth).unwrap_or(i64::MAX);
            ConstGauge::new(depth).encode(family.encode_family(&label(sample))?)?;
        }

        let mut family = encoder.encode_descriptor(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            None,
            MetricType::Counter,
        )?;
        for sample in &samples {
            ConstCounter::new(sample.adds).encode(family.encode_family(&label(sample))?)?;
        }

        let mut family = encoder.encode_descriptor(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            None,
            MetricType::Counter,
        )?;
        for sample in &samples {
            ConstCounter::new(sample.retries).encode(family.encode_family(&label(sample))?)?;
        }

        let mut family = encoder.encode_descriptor(
            "workqueue_queue_duration",
            "How long in seconds an item stays in workqueue before being requested",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for sample in &samples {
            let h = &sample.queue_duration;
            family
                .encode_family(&label(sample))?
                .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;
        }

        let mut family = encoder.encode_descriptor(
            "workqueue_work_duration",
            "How long in seconds processing an item from workqueue takes",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for sample in &samples {
            let h = &sample.work_duration;
            family
                .encode_family(&label(sample))?
                .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;
        }

        let mut family = encoder.encode_descriptor(
            "workqueue_unfinished_work",
            "How many seconds of work has been done that is in progress and hasn't been \
             observed by work_duration. Large values indicate stuck threads.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for sample in &samples {
            let seconds = sample.unfinished_work.as_secs_f64();
            ConstGauge::new(seconds).encode(family.encode_family(&label(sample))?)?;
        }

        let mut family = encoder.encode_descriptor(
            "workqueue_longest_running_processor",
            "How many seconds has the longest running processor for workqueue been running.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for sample in &samples {
            let seconds = sample.longest_running.as_secs_f64();
            ConstGauge::new(seconds).encode(family.encode_family(&label(sample))?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{BUCKET_BOUNDS_NANOS, LatencyHistogram};
    use std::time::Duration;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_nanos(10)); // le 1e-8
        histogram.observe(Duration::from_nanos(11)); // le 1e-7
        histogram.observe(Duration::from_millis(3)); // le 1e-2
        histogram.observe(Duration::from_secs(11)); // +Inf

        let snapshot = histogram.snapshot();
        let counts: Vec<u64> = snapshot.buckets.iter().map(|&(_, n)| n).collect();
        assert_eq!(counts, [1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.buckets.len(), BUCKET_BOUNDS_NANOS.len() + 1);
        assert_eq!(snapshot.buckets[0].0, 1e-8);
        assert!(snapshot.buckets[10].0.is_infinite());
        assert!((snapshot.sum_seconds - 11.003_000_021).abs() < 1e-9);
    }
}
