//! What a candidate for a Lease does next, given the Lease as it last saw it and its own
//! monotonic clock: pure, so every case is a table test. The I/O lives in `leader.rs`.
//!
//! Safety rests on two clocks that never meet: the leader counts from when it *sent* its last
//! successful write and stops leading `renew_deadline` later; a follower counts from when it
//! *observed* the last change of the Lease and takes it only `lease_duration` later. The write is
//! observed after it is sent, so the leader always steps down `lease_duration - renew_deadline`
//! before anyone can take over. Neither uses the timestamps written in the Lease.

use std::time::Duration;

use tokio::time::Instant;

/// The timing of client-go's leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long followers wait after the last observed change before taking the Lease.
    pub lease_duration: Duration,
    /// How long after its last successful write a leader still leads; shorter than
    /// `lease_duration`, so it stops before anyone else may start.
    pub renew_deadline: Duration,
    /// Pause between renewals, and between attempts after a failure.
    pub retry_period: Duration,
    /// Longest a follower waits for one API call (a leader waits at most until its deadline).
    pub request_timeout: Duration,
}

impl Timing {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub const DEFAULT: Timing = Timing {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    };
}

/// The parts of a Lease that decide who may hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseView {
    /// `None` (or empty in the object) when released.
    pub holder: Option<String>,
    pub duration: Duration,
    /// `metadata.resourceVersion`: any write changes it, so it tells a renewal from no change.
    pub version: String,
}

/// The Lease as this candidate last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Not listed yet: wait for the watch to tell.
    Unknown,
    /// There is no Lease.
    Absent,
    /// The Lease, unchanged since `since` (local time of first sight of this version).
    Present { lease: LeaseView, since: Instant },
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create the Lease, held by us.
    Create,
    /// Update the Lease (at the observed version) to be held by us: acquire or renew.
    Update,
    /// Nothing before this time, unless the Lease changes (`None`: only a change matters).
    Wait(Option<Instant>),
}

/// One candidate's view of the election. NOTE: `renewed` is canonical for leadership: this
/// replica leads exactly while `now < renewed + renew_deadline`.
#[derive(Clone, Debug)]
pub struct Candidate {
    identity: String,
    timing: Timing,
    observed: Observed,
    /// When the last successful write of ours was sent, while we may still lead.
    renewed: Option<Instant>,
    /// After a failed attempt, no new attempt before this.
    retry_at: Option<Instant>,
}

impl Candidate {
    pub fn new(identity: impl Into<String>, timing: Timing) -> Self {
        Self {
            identity: identity.into(),
            timing,
            observed: Observed::Unknown,
            renewed: None,
            retry_at: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether this replica leads at `now`.
    pub fn is_leading(&self, now: Instant) -> bool {
        self.leads_until().is_some_and(|until| now < until)
    }

    /// When leadership ends unless renewed.
    pub fn leads_until(&self) -> Option<Instant> {
        self.renewed.map(|r| r + self.timing.renew_deadline)
    }

    /// The latest an API call started at `now` may take: a leader must know the outcome before
    /// it stops leading.
    pub fn attempt_deadline(&self, now: Instant) -> Instant {
        let timeout = now + self.timing.request_timeout;
        match self.leads_until() {
            Some(until) if self.is_leading(now) => timeout.min(until),
            _ => timeout,
        }
    }

    /// Records the Lease as seen at `now` (from the watch or a read; `None` when absent).
    pub fn observe(&mut self, lease: Option<LeaseView>, now: Instant) {
        self.observed = match lease {
            None => Observed::Absent,
            Some(lease) => {
                let since = match &self.observed {
                    Observed::Present { lease: seen, since } if seen.version == lease.version => {
                        *since
                    }
                    _ => now,
                };
                Observed::Present { lease, since }
            }
        };
        // Someone else holds it, released it or deleted it: whatever we thought, we do not lead.
        if !self.holds_observed() {
            self.renewed = None;
        }
    }

    /// Our write sent at `sent` succeeded and produced `lease`.
    pub fn written(&mut self, lease: LeaseView, sent: Instant) {
        self.observed = Observed::Present { lease, since: sent };
        self.renewed = Some(sent);
        self.retry_at = None;
    }

    /// An attempt failed at `now` (unreachable, refused, timed out): retry after a pause.
    pub fn failed(&mut self, now: Instant) {
        self.retry_at = Some(now + self.timing.retry_period);
    }

    /// What to do at `now`.
    pub fn next_step(&self, now: Instant) -> Step {
        let (step, at) = match &self.observed {
            Observed::Unknown => return self.wait_at_most(None, now),
            Observed::Absent => (Step::Create, now),
            Observed::Present { lease, since } => match &lease.holder {
                // Ours: renew every retry period (at once if we no longer lead: nobody took it).
                Some(_) if self.holds_observed() => match self.renewed {
                    Some(renewed) if self.is_leading(now) => {
                        (Step::Update, renewed + self.timing.retry_period)
                    }
                    _ => (Step::Update, now),
                },
                // Someone else's: it is free once it went unrenewed for its duration.
                Some(_) => (Step::Update, *since + lease.duration),
                None => (Step::Update, now),
            },
        };
        let at = self.retry_at.map_or(at, |retry_at| at.max(retry_at));
        if at <= now {
            step
        } else {
            self.wait_at_most(Some(at), now)
        }
    }

    /// Waits until `at`, but wakes a leader when its leadership ends, to publish it.
    fn wait_at_most(&self, at: Option<Instant>, now: Instant) -> Step {
        let until = self.leads_until().filter(|_| self.is_leading(now));
        Step::Wait(match (at, until) {
            (Some(at), Some(until)) => Some(at.min(until)),
            (at, until) => at.or(until),
        })
    }

    fn holds_observed(&self) -> bool {
        matches!(&self.observed, Observed::Present { lease, .. }
            if lease.holder.as_deref() == Some(self.identity.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me";
    const T: Timing = Timing::DEFAULT;

    fn lease(holder: Option<&str>, version: &str) -> LeaseView {
        LeaseView {
            holder: holder.map(str::to_owned),
            duration: T.lease_duration,
            version: version.to_owned(),
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A candidate that saw `seen` at `t0` (and, if `leading`, wrote it at `t0`).
    fn candidate(t0: Instant, seen: Option<Option<LeaseView>>, leading: bool) -> Candidate {
        let mut c = Candidate::new(ME, T);
        if let Some(seen) = seen {
            if leading {
                c.written(seen.unwrap_or_else(|| lease(Some(ME), "1")), t0);
            } else {
                c.observe(seen, t0);
            }
        }
        c
    }

    #[test]
    fn next_steps() {
        let t0 = Instant::now();
        struct Case {
            name: &'static str,
            seen: Option<Option<LeaseView>>,
            leading: bool,
            after: Duration,
            want: Step,
        }
        let cases = [
            Case {
                name: "nothing listed yet: wait for the watch",
                seen: None,
                leading: false,
                after: secs(0),
                want: Step::Wait(None),
            },
            Case {
                name: "no Lease: create it",
                seen: Some(None),
                leading: false,
                after: secs(0),
                want: Step::Create,
            },
            Case {
                name: "released: take it at once",
                seen: Some(Some(lease(None, "1"))),
                leading: false,
                after: secs(0),
                want: Step::Update,
            },
            Case {
                name: "held by another: wait until it expires by our clock",
                seen: Some(Some(lease(Some("other"), "1"))),
                leading: false,
                after: secs(3),
                want: Step::Wait(Some(t0 + T.lease_duration)),
            },
            Case {
                name: "held by another and unrenewed for its duration: take it",
                seen: Some(Some(lease(Some("other"), "1"))),
                leading: false,
                after: T.lease_duration,
                want: Step::Update,
            },
            Case {
                name: "leading: renew after the retry period",
                seen: Some(Some(lease(Some(ME), "1"))),
                leading: true,
                after: secs(1),
                want: Step::Wait(Some(t0 + T.retry_period)),
            },
            Case {
                name: "leading and the retry period passed: renew",
                seen: Some(Some(lease(Some(ME), "1"))),
                leading: true,
                after: T.retry_period,
                want: Step::Update,
            },
            Case {
                name: "ours but no longer leading (e.g. after a restart): renew at once",
                seen: Some(Some(lease(Some(ME), "1"))),
                leading: false,
                after: secs(0),
                want: Step::Update,
            },
        ];
        for case in cases {
            let c = candidate(t0, case.seen, case.leading);
            assert_eq!(c.next_step(t0 + case.after), case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_leader_that_cannot_renew_stops_leading_before_followers_may_take_over() {
        let t0 = Instant::now();
        let mut leader = candidate(t0, Some(Some(lease(Some(ME), "1"))), true);
        let mut follower = Candidate::new("other", T);
        // The follower sees the write no earlier than it was sent.
        follower.observe(Some(lease(Some(ME), "1")), t0);

        // Renewals fail from the first retry on; the leader keeps trying.
        let mut now = t0 + T.retry_period;
        while leader.is_leading(now) {
            assert_eq!(leader.next_step(now), Step::Update);
            let deadline = leader.attempt_deadline(now);
            assert!(
                deadline <= t0 + T.renew_deadline,
                "no attempt outlives leadership"
            );
            now = deadline;
            leader.failed(now);
            if let Step::Wait(Some(at)) = leader.next_step(now) {
                if leader.is_leading(now) {
                    assert!(at <= t0 + T.renew_deadline, "wakes up to step down");
                }
                now = at;
            }
        }
        assert_eq!(leader.leads_until(), Some(t0 + T.renew_deadline));
        assert!(!leader.is_leading(t0 + T.renew_deadline));
        // The follower waits for the whole lease duration from what it saw.
        assert_eq!(
            follower.next_step(t0 + T.renew_deadline),
            Step::Wait(Some(t0 + T.lease_duration))
        );
        assert_eq!(follower.next_step(t0 + T.lease_duration), Step::Update);
    }

    #[test]
    fn a_renewal_seen_by_a_follower_restarts_its_wait_and_a_repeat_does_not() {
        let t0 = Instant::now();
        let mut follower = candidate(t0, Some(Some(lease(Some("other"), "1"))), false);
        follower.observe(Some(lease(Some("other"), "1")), t0 + secs(10));
        assert_eq!(
            follower.next_step(t0 + secs(10)),
            Step::Wait(Some(t0 + T.lease_duration)),
            "the same version (e.g. a relist) is no renewal"
        );
        follower.observe(Some(lease(Some("other"), "2")), t0 + secs(10));
        assert_eq!(
            follower.next_step(t0 + secs(10)),
            Step::Wait(Some(t0 + secs(10) + T.lease_duration))
        );
    }

    #[test]
    fn seeing_another_holder_or_no_lease_ends_leadership_at_once() {
        let t0 = Instant::now();
        let mut leader = candidate(t0, Some(Some(lease(Some(ME), "1"))), true);
        leader.observe(Some(lease(Some("other"), "2")), t0 + secs(1));
        assert!(!leader.is_leading(t0 + secs(1)));

        let mut leader = candidate(t0, Some(Some(lease(Some(ME), "1"))), true);
        leader.observe(None, t0 + secs(1));
        assert!(!leader.is_leading(t0 + secs(1)));
        assert_eq!(leader.next_step(t0 + secs(1)), Step::Create);

        let mut leader = candidate(t0, Some(Some(lease(Some(ME), "1"))), true);
        leader.observe(Some(lease(Some(ME), "1")), t0 + secs(1));
        assert!(leader.is_leading(t0 + secs(1)), "our own write, seen again");
    }

    #[test]
    fn failures_pause_attempts_for_the_retry_period() {
        let t0 = Instant::now();
        let mut c = candidate(t0, Some(None), false);
        c.failed(t0);
        assert_eq!(c.next_step(t0), Step::Wait(Some(t0 + T.retry_period)));
        assert_eq!(c.next_step(t0 + T.retry_period), Step::Create);
        c.written(lease(Some(ME), "1"), t0 + T.retry_period);
        assert!(c.is_leading(t0 + T.retry_period));
    }

    #[test]
    fn losing_a_race_for_a_released_lease_waits_for_the_winner_to_expire() {
        let t0 = Instant::now();
        let mut c = candidate(t0, Some(Some(lease(None, "1"))), false);
        assert_eq!(c.next_step(t0), Step::Update);
        // The update was refused (409); reading the Lease again shows the winner.
        c.observe(Some(lease(Some("other"), "2")), t0 + secs(1));
        assert_eq!(
            c.next_step(t0 + secs(1)),
            Step::Wait(Some(t0 + secs(1) + T.lease_duration))
        );
    }

    #[test]
    fn attempts_of_a_follower_are_bounded_by_the_request_timeout() {
        let t0 = Instant::now();
        let c = candidate(t0, Some(None), false);
        assert_eq!(c.attempt_deadline(t0), t0 + T.request_timeout);
        let leader = candidate(t0, Some(Some(lease(Some(ME), "1"))), true);
        let late = t0 + T.renew_deadline - secs(1);
        assert_eq!(leader.attempt_deadline(late), t0 + T.renew_deadline);
    }
}
