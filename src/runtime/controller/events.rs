//! Events for reconciles that fail: `kubectl describe` (or `kubectl events`) on the object shows
//! why kube-bind makes no progress with it, also where its kind has no condition for the cause.
//!
//! Repeats of one failure become one event with a growing `count`, as client-go's recorder
//! does, but keyed by the message too: a failure whose cause changes gets a new event instead of
//! a stale message with a higher count (kube-runtime's `Recorder` keeps the first message).
//! Series updates are written at most every [`SERIES_WRITE_INTERVAL`], so a key retried with a
//! fast backoff cannot flood the API server.
//!
//! Core `v1` Events, counted with `count`/`lastTimestamp` as client-go's recorder writes them:
//! kcp serves core events but not `events.k8s.io`, and the `events.k8s.io/v1` API shows core
//! events as well.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::provider::{Cluster, ClusterId};

/// The reporting controller of every event the backend writes.
pub const REPORTING_CONTROLLER: &str = "kube-bind.io/backend";
/// A failure not seen again for this long starts a new event (client-go uses 6 minutes too).
const SERIES_TTL: Duration = Duration::from_secs(6 * 60);
/// At most one series update per failure in this interval; the count still grows meanwhile.
const SERIES_WRITE_INTERVAL: Duration = Duration::from_secs(30);
/// How long writing one event may take; it must not hold anything up.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Event messages are kept to 1 kB, as the events API requires of notes.
const NOTE_LIMIT: usize = 1024;

/// Why a reconcile failed, as the event's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Reason {
    /// Any failure retried with backoff.
    ReconcileFailed,
    /// 403: the backend may not do what the object needs (in kcp usually a permission claim of
    /// the kube-bind.io APIBinding that is not accepted).
    Forbidden,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::ReconcileFailed => "ReconcileFailed",
            Self::Forbidden => "Forbidden",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    cluster: ClusterId,
    /// The object's uid: a recreated object with the same name starts afresh.
    uid: String,
    reason: Reason,
    note: String,
}

#[derive(Debug, Clone)]
struct Series {
    /// Name and namespace of the event written for the first occurrence.
    name: String,
    namespace: String,
    count: i32,
    last_observed: Instant,
    /// When the API server last got an update; `None` until the first one is written.
    last_written: Option<Instant>,
}

/// What to write for one more occurrence of a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    /// A new event.
    Create,
    /// The existing event's series, with this count.
    Series(i32),
    /// Nothing now: the last write was too recent.
    Skip,
}

/// Writes the failure events of every controller of one manager.
#[derive(Debug, Clone)]
pub struct EventRecorder {
    /// The `reportingInstance` of the events: which replica wrote them.
    instance: String,
    series: Arc<DashMap<SeriesKey, Series>>,
}

impl EventRecorder {
    /// A recorder whose events name `instance` (e.g. the leader election identity) as the
    /// replica that wrote them.
    pub fn new(instance: impl Into<String>) -> Self {
        let mut instance = instance.into();
        truncate(&mut instance, 128);
        Self {
            instance,
            series: Arc::default(),
        }
    }

    /// Records one more failure of the object `regarding` in `cluster`, in the background: an
    /// event that cannot be written (e.g. events not permitted) is logged and forgotten.
    pub(super) fn failed(
        &self,
        cluster: &Cluster,
        regarding: ObjectReference,
        reason: Reason,
        message: &str,
    ) {
        let Some(uid) = regarding.uid.clone() else {
            return;
        };
        let mut note = message.to_owned();
        truncate(&mut note, NOTE_LIMIT);
        let key = SeriesKey {
            cluster: cluster.id().clone(),
            uid,
            reason,
            note,
        };
        let now = Instant::now();
        self.forget_older_than(now);
        let (write, series) = self.observe(&key, &regarding, now);
        if write == Write::Skip {
            return;
        }
        let event = self.event(&key, &regarding, &series, write.clone());
        let api = Api::<Event>::namespaced(cluster.client(), &series.namespace);
        let cancelled = cluster.cancellation().clone();
        let recorder = self.clone();
        tokio::spawn(async move {
            let written = tokio::select! {
                () = cancelled.cancelled() => return,
                written = tokio::time::timeout(WRITE_DEADLINE, write_event(&api, &event, &write)) => written,
            };
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    // The next occurrence tries again with a new event.
                    recorder.series.remove(&key);
                    tracing::debug!(%error, event = ?event.metadata.name, "cannot write the event");
                }
                Err(_) => {
                    recorder.series.remove(&key);
                    tracing::debug!(event = ?event.metadata.name, "writing the event timed out");
                }
            }
        });
    }

    /// Counts one occurrence of `key` and decides what to write; returns the series as it is
    /// now.
    fn observe(
        &self,
        key: &SeriesKey,
        regarding: &ObjectReference,
        now: Instant,
    ) -> (Write, Series) {
        let mut entry = self.series.entry(key.clone()).or_insert_with(|| Series {
            name: event_name(regarding),
            namespace: regarding
                .namespace
                .clone()
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            count: 0,
            last_observed: now,
            last_written: None,
        });
        let series = entry.value_mut();
        series.count = series.count.saturating_add(1);
        series.last_observed = now;
        let write = match series.last_written {
            None => Write::Create,
            Some(at) if now.duration_since(at) < SERIES_WRITE_INTERVAL => Write::Skip,
            Some(_) => Write::Series(series.count),
        };
        if write != Write::Skip {
            series.last_written = Some(now);
        }
        (write, series.clone())
    }

    fn forget_older_than(&self, now: Instant) {
        self.series
            .retain(|_, s| now.duration_since(s.last_observed) < SERIES_TTL);
    }

    fn event(
        &self,
        key: &SeriesKey,
        regarding: &ObjectReference,
        series: &Series,
        write: Write,
    ) -> Event {
        let now = Time(Timestamp::now());
        let count = match write {
            Write::Series(count) => count,
            Write::Create | Write::Skip => 1,
        };
        Event {
            metadata: ObjectMeta {
                name: Some(series.name.clone()),
                namespace: Some(series.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: regarding.clone(),
            type_: Some("Warning".to_owned()),
            reason: Some(key.reason.as_str().to_owned()),
            action: Some("Reconcile".to_owned()),
            message: Some(key.note.clone()),
            count: Some(count),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(REPORTING_CONTROLLER.to_owned()),
                host: None,
            }),
            reporting_component: Some(REPORTING_CONTROLLER.to_owned()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

async fn write_event(api: &Api<Event>, event: &Event, write: &Write) -> Result<(), kube::Error> {
    match write {
        Write::Create => api.create(&PostParams::default(), event).await.map(drop),
        Write::Series(_) => {
            let name = event.metadata.name.as_deref().unwrap_or_default();
            let patch = serde_json::json!({
                "count": event.count,
                "lastTimestamp": event.last_timestamp,
            });
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                // Events expire (an hour by default): start the series again.
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    api.create(&PostParams::default(), event).await.map(drop)
                }
                other => other.map(drop),
            }
        }
        Write::Skip => Ok(()),
    }
}

/// `<object name>.<hex nanoseconds>`, as client-go names events.
fn event_name(regarding: &ObjectReference) -> String {
    let mut name = regarding
        .name
        .clone()
        .unwrap_or_else(|| "object".to_owned());
    // Room for the suffix within the 253 characters of a name.
    truncate(&mut name, 200);
    format!("{name}.{:x}", Timestamp::now().as_nanosecond())
}

/// Cuts `text` to at most `limit` bytes at a character boundary.
fn truncate(text: &mut String, limit: usize) {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regarding(uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("kube-bind.io/v1alpha2".into()),
            kind: Some("APIServiceNamespace".into()),
            namespace: Some("cluster-a".into()),
            name: Some("default".into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    fn key(uid: &str, note: &str) -> SeriesKey {
        SeriesKey {
            cluster: ClusterId::single(),
            uid: uid.into(),
            reason: Reason::ReconcileFailed,
            note: note.into(),
        }
    }

    #[test]
    fn repeats_become_a_series_written_at_most_every_interval() {
        let recorder = EventRecorder::new("replica-1");
        let t0 = Instant::now();
        let first = key("u1", "namespace name too long");
        let (write, series) = recorder.observe(&first, &regarding("u1"), t0);
        assert_eq!(write, Write::Create);
        assert_eq!(series.namespace, "cluster-a");
        assert!(series.name.starts_with("default."), "{}", series.name);

        let soon = t0 + Duration::from_secs(1);
        assert_eq!(
            recorder.observe(&first, &regarding("u1"), soon).0,
            Write::Skip
        );
        let later = t0 + SERIES_WRITE_INTERVAL + Duration::from_secs(1);
        let (write, again) = recorder.observe(&first, &regarding("u1"), later);
        assert_eq!(write, Write::Series(3), "three occurrences so far");
        assert_eq!(again.name, series.name, "the same event is updated");
    }

    #[test]
    fn a_changed_message_or_a_recreated_object_starts_a_new_event() {
        let recorder = EventRecorder::new("replica-1");
        let now = Instant::now();
        assert_eq!(
            recorder.observe(&key("u1", "a"), &regarding("u1"), now).0,
            Write::Create
        );
        assert_eq!(
            recorder.observe(&key("u1", "b"), &regarding("u1"), now).0,
            Write::Create
        );
        assert_eq!(
            recorder.observe(&key("u2", "a"), &regarding("u2"), now).0,
            Write::Create
        );
    }

    #[test]
    fn a_failure_not_seen_for_the_ttl_is_forgotten() {
        let recorder = EventRecorder::new("replica-1");
        let t0 = Instant::now();
        recorder.observe(&key("u1", "a"), &regarding("u1"), t0);
        recorder.forget_older_than(t0 + SERIES_TTL + Duration::from_secs(1));
        assert!(recorder.series.is_empty());
        let (write, series) = recorder.observe(&key("u1", "a"), &regarding("u1"), t0);
        assert_eq!((write, series.count), (Write::Create, 1));
    }

    #[test]
    fn the_event_is_what_the_events_api_requires() {
        let recorder = EventRecorder::new("x".repeat(300));
        let long = "é".repeat(1000);
        let mut note = long.clone();
        truncate(&mut note, NOTE_LIMIT);
        let key = SeriesKey {
            note,
            ..key("u1", "")
        };
        let (write, series) = recorder.observe(&key, &regarding("u1"), Instant::now());
        let event = recorder.event(&key, &regarding("u1"), &series, write);
        assert!(
            event
                .message
                .as_ref()
                .is_some_and(|n| n.len() <= NOTE_LIMIT)
        );
        assert!(
            event
                .reporting_instance
                .as_ref()
                .is_some_and(|i| i.len() <= 128)
        );
        assert_eq!(event.reason.as_deref(), Some("ReconcileFailed"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.count, Some(1));
        assert!(event.action.is_some() && event.first_timestamp.is_some());
        assert_eq!(event.involved_object.uid.as_deref(), Some("u1"));
    }
}
