//! The ClusterBinding `Healthy` condition, judged from the konnector's heartbeat (reference §3.2
//! step 1), and when that judgement next changes on its own.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube_bind_apis::clusterbinding::CONDITION_HEALTHY;
use kube_bind_apis::conditions::ConditionChange;
use kube_bind_apis::{ClusterBindingStatus, ConditionSeverity};

use crate::options::{format_go_duration, parse_go_duration};

/// Reason: the konnector has not reported yet.
pub const REASON_FIRST_HEARTBEAT_PENDING: &str = "FirstHeartbeatPending";
/// Reason: a heartbeat came but no (usable) interval with it.
pub const REASON_HEARTBEAT_INTERVAL_MISSING: &str = "HeartbeatIntervalMissing";
/// Reason: no heartbeat within twice the interval.
pub const REASON_HEARTBEAT_TIMEOUT: &str = "HeartbeatTimeout";
/// Reason: the heartbeat is stamped too far in the future.
pub const REASON_HEARTBEAT_TIME_DRIFT: &str = "HeartbeatTimeDrift";

/// How far in the future a heartbeat may be stamped before the clocks are deemed off.
pub const MAX_CLOCK_DRIFT: Duration = Duration::from_secs(10);

/// The `Healthy` condition and when to look again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub condition: ConditionChange,
    /// The first instant at which [`health`] gives a different answer if the konnector writes
    /// nothing new; `None` when only a new heartbeat can change it (which is a watch event).
    pub recheck_at: Option<Timestamp>,
}

/// Judges the konnector's heartbeat as of `now`.
///
/// - no `lastHeartbeatTime`: False/Info `FirstHeartbeatPending`;
/// - no interval, a zero one, or one that does not parse as a Go duration: False/Info
///   `HeartbeatIntervalMissing` (upstream cannot even decode an unparsable one);
/// - more than 2×interval since the heartbeat: False/Error `HeartbeatTimeout`;
/// - heartbeat more than 10 s in the future: False/Warning `HeartbeatTimeDrift`;
/// - otherwise True.
///
/// Upstream bug (reference §3.2 step 1): it tests `now - heartbeat < 10s`, which marks every
/// fresh heartbeat as drift. We implement what its message says: the consumer's clock is more
/// than 10 s ahead of ours.
pub fn health(status: Option<&ClusterBindingStatus>, now: Timestamp) -> Health {
    let Some(last) = status
        .and_then(|s| s.last_heartbeat_time.as_ref())
        .map(|t| t.0)
    else {
        return Health {
            condition: ConditionChange::false_(
                CONDITION_HEALTHY,
                REASON_FIRST_HEARTBEAT_PENDING,
                ConditionSeverity::Info,
                "Waiting for first heartbeat",
            ),
            recheck_at: None,
        };
    };
    let interval = status
        .and_then(|s| parse_go_duration(&s.heartbeat_interval).ok())
        .filter(|d| !d.is_zero())
        .and_then(|d| SignedDuration::try_from(d).ok().map(|signed| (d, signed)));
    let Some((interval, signed_interval)) = interval else {
        return Health {
            condition: ConditionChange::false_(
                CONDITION_HEALTHY,
                REASON_HEARTBEAT_INTERVAL_MISSING,
                ConditionSeverity::Info,
                "Waiting for consumer cluster reporting its heartbeat interval",
            ),
            recheck_at: None,
        };
    };

    let ago = now.duration_since(last);
    let timeout = signed_interval.saturating_mul(2);
    if ago > timeout {
        return Health {
            condition: ConditionChange::false_(
                CONDITION_HEALTHY,
                REASON_HEARTBEAT_TIMEOUT,
                ConditionSeverity::Error,
                // The message names the heartbeat time, not its age, so it does not change on
                // every reconcile.
                format!(
                    "Heartbeat timeout: expected heartbeat within {}, but last one has been at {}",
                    format_go_duration(interval),
                    go_time_string(last),
                ),
            ),
            recheck_at: None,
        };
    }

    let max_drift = SignedDuration::try_from(MAX_CLOCK_DRIFT).unwrap_or(SignedDuration::MAX);
    // Strictly after `timeout` has passed, the heartbeat times out.
    let times_out_after = last.saturating_add(timeout).ok();
    let times_out_at =
        times_out_after.and_then(|t| t.checked_add(SignedDuration::from_nanos(1)).ok());
    if ago < -max_drift {
        return Health {
            condition: ConditionChange::false_(
                CONDITION_HEALTHY,
                REASON_HEARTBEAT_TIME_DRIFT,
                ConditionSeverity::Warning,
                "Clocks of consumer cluster and service account cluster seem to be off by more than 10s",
            ),
            // Once our clock is within 10 s of the stamp, the same heartbeat counts as healthy.
            recheck_at: last.checked_sub(max_drift).ok(),
        };
    }

    Health {
        condition: ConditionChange::true_(CONDITION_HEALTHY),
        recheck_at: times_out_at,
    }
}

/// A UTC instant as Go's `time.Time.String` prints it (`2006-01-02 15:04:05.999999999 +0000 UTC`).
fn go_time_string(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.f +0000 UTC").to_string()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube_bind_apis::ConditionStatus;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn status(last: Option<i64>, interval: &str) -> ClusterBindingStatus {
        ClusterBindingStatus {
            last_heartbeat_time: last.map(|s| Time(at(s))),
            heartbeat_interval: interval.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn health_table() {
        // (case, last heartbeat relative to NOW, interval, status, severity, reason, recheck)
        type Case = (
            &'static str,
            Option<i64>,
            &'static str,
            ConditionStatus,
            ConditionSeverity,
            &'static str,
            Option<i64>,
        );
        use ConditionSeverity as Sev;
        use ConditionStatus as St;
        let cases: &[Case] = &[
            (
                "never",
                None,
                "5m0s",
                St::False,
                Sev::Info,
                REASON_FIRST_HEARTBEAT_PENDING,
                None,
            ),
            (
                "no interval",
                Some(-5),
                "",
                St::False,
                Sev::Info,
                REASON_HEARTBEAT_INTERVAL_MISSING,
                None,
            ),
            (
                "zero interval",
                Some(-5),
                "0s",
                St::False,
                Sev::Info,
                REASON_HEARTBEAT_INTERVAL_MISSING,
                None,
            ),
            (
                "garbage interval",
                Some(-5),
                "soon",
                St::False,
                Sev::Info,
                REASON_HEARTBEAT_INTERVAL_MISSING,
                None,
            ),
            ("fresh", Some(0), "5m0s", St::True, Sev::None, "", Some(600)),
            (
                "fresh, the upstream bug called it drift",
                Some(-3),
                "5m0s",
                St::True,
                Sev::None,
                "",
                Some(597),
            ),
            (
                "one interval old",
                Some(-300),
                "5m0s",
                St::True,
                Sev::None,
                "",
                Some(300),
            ),
            (
                "exactly two intervals old",
                Some(-600),
                "5m0s",
                St::True,
                Sev::None,
                "",
                Some(0),
            ),
            (
                "past two intervals",
                Some(-601),
                "5m0s",
                St::False,
                Sev::Error,
                REASON_HEARTBEAT_TIMEOUT,
                None,
            ),
            (
                "10 s ahead is tolerated",
                Some(10),
                "5m0s",
                St::True,
                Sev::None,
                "",
                Some(610),
            ),
            (
                "11 s ahead",
                Some(11),
                "5m0s",
                St::False,
                Sev::Warning,
                REASON_HEARTBEAT_TIME_DRIFT,
                Some(1),
            ),
            (
                "an hour ahead",
                Some(3600),
                "1m",
                St::False,
                Sev::Warning,
                REASON_HEARTBEAT_TIME_DRIFT,
                Some(3590),
            ),
        ];
        for (name, last, interval, want_status, want_sev, want_reason, want_recheck) in cases {
            let s = status(last.map(|d| NOW + d), interval);
            let got = health(Some(&s), at(NOW));
            assert_eq!(got.condition.type_, "Healthy", "{name}");
            assert_eq!(&got.condition.status, want_status, "{name}");
            assert_eq!(&got.condition.severity, want_sev, "{name}");
            assert_eq!(got.condition.reason, *want_reason, "{name}");
            // A timed-out heartbeat flips one nanosecond after the deadline.
            let got_recheck = got.recheck_at.map(|t| {
                let d = t.duration_since(at(NOW));
                if want_status == &St::True {
                    d - SignedDuration::from_nanos(1)
                } else {
                    d
                }
            });
            assert_eq!(
                got_recheck,
                want_recheck.map(SignedDuration::from_secs),
                "{name}"
            );
        }
    }

    #[test]
    fn no_status_is_first_heartbeat_pending() {
        let got = health(None, at(NOW));
        assert_eq!(got.condition.reason, REASON_FIRST_HEARTBEAT_PENDING);
        assert_eq!(got.condition.message, "Waiting for first heartbeat");
    }

    #[test]
    fn messages_match_upstream() {
        let timeout = health(Some(&status(Some(NOW - 3600), "5m0s")), at(NOW));
        assert_eq!(
            timeout.condition.message,
            "Heartbeat timeout: expected heartbeat within 5m0s, but last one has been at \
             2023-11-14 21:13:20 +0000 UTC"
        );
        let missing = health(Some(&status(Some(NOW), "")), at(NOW));
        assert_eq!(
            missing.condition.message,
            "Waiting for consumer cluster reporting its heartbeat interval"
        );
        let drift = health(Some(&status(Some(NOW + 60), "5m0s")), at(NOW));
        assert_eq!(
            drift.condition.message,
            "Clocks of consumer cluster and service account cluster seem to be off by more than 10s"
        );
        let healthy = health(Some(&status(Some(NOW), "5m0s")), at(NOW));
        assert!(healthy.condition.message.is_empty() && healthy.condition.reason.is_empty());
    }

    #[test]
    fn timeout_message_is_stable_as_time_passes() {
        let s = status(Some(NOW - 3600), "1m");
        assert_eq!(health(Some(&s), at(NOW)), health(Some(&s), at(NOW + 600)));
    }

    #[test]
    fn go_time_string_keeps_fractions_only_when_present() {
        assert_eq!(go_time_string(at(0)), "1970-01-01 00:00:00 +0000 UTC");
        let t = Timestamp::from_millisecond(1_500).unwrap();
        assert_eq!(go_time_string(t), "1970-01-01 00:00:01.5 +0000 UTC");
    }
}
