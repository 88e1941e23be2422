//! Status conditions in the cluster-api style kube-bind uses, and the rules for updating them.
//!
//! The rules are pure functions over a condition list and the current time so reconcilers and
//! tests agree on them:
//! - a condition's `lastTransitionTime` moves only when its status, severity, reason or message
//!   change, and is always UTC truncated to whole seconds;
//! - the list is kept sorted with `Ready` first, then by type;
//! - [`set_summary`] derives `Ready` from the other conditions, the worst one winning.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::strict::check_fields;

/// The summary condition type every kind carries.
pub const READY: &str = "Ready";

open_enum! {
    plain_schema;
    /// Whether a condition holds.
    pub enum ConditionStatus {
        True => "True",
        False => "False",
        UnknownStatus => "Unknown",
    }
}

open_enum! {
    plain_schema;
    /// How bad a `False` condition is; empty for `True` and `Unknown` conditions.
    #[derive(Default)]
    pub enum ConditionSeverity {
        Error => "Error",
        Warning => "Warning",
        Info => "Info",
        #[default]
        None => "",
    }
}

impl ConditionSeverity {
    fn is_none(&self) -> bool {
        *self == Self::None
    }
}

/// One observation about an object's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What is observed, e.g. `Ready` or `Connected`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "ConditionSeverity::is_none")]
    pub severity: ConditionSeverity,
    /// When the status, severity, reason or message last changed.
    pub last_transition_time: Time,
    /// A CamelCase machine-readable cause.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

check_fields!(Condition { status => "status", severity => "severity" });

/// The part of a condition a reconciler decides; the transition time is filled in by [`set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionChange {
    pub type_: String,
    pub status: ConditionStatus,
    pub severity: ConditionSeverity,
    pub reason: String,
    pub message: String,
}

impl ConditionChange {
    /// `type_` is `True`: reason, severity and message are cleared.
    pub fn true_(type_: impl Into<String>) -> Self {
        Self {
            type_: type_.into(),
            status: ConditionStatus::True,
            severity: ConditionSeverity::None,
            reason: String::new(),
            message: String::new(),
        }
    }

    /// `type_` is `False` for `reason`, with `severity` and a message for people.
    pub fn false_(
        type_: impl Into<String>,
        reason: impl Into<String>,
        severity: ConditionSeverity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status: ConditionStatus::False,
            severity,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// `type_` is `Unknown` for `reason`; unknown conditions carry no severity.
    pub fn unknown(
        type_: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status: ConditionStatus::UnknownStatus,
            severity: ConditionSeverity::None,
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn same_state(&self, existing: &Condition) -> bool {
        self.type_ == existing.type_
            && self.status == existing.status
            && self.severity == existing.severity
            && self.reason == existing.reason
            && self.message == existing.message
    }

    fn at(self, time: Time) -> Condition {
        Condition {
            type_: self.type_,
            status: self.status,
            severity: self.severity,
            last_transition_time: time,
            reason: self.reason,
            message: self.message,
        }
    }
}

/// Objects whose status carries a condition list.
pub trait HasConditions {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
}

/// Implements [`HasConditions`] for kinds whose `status: Option<_>` has a `conditions` list.
macro_rules! conditions_in_status {
    ($($kind:ty),+ $(,)?) => {$(
        impl $crate::conditions::HasConditions for $kind {
            fn conditions(&self) -> &[$crate::conditions::Condition] {
                self.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default()
            }
            fn conditions_mut(&mut self) -> &mut Vec<$crate::conditions::Condition> {
                &mut self.status.get_or_insert_with(Default::default).conditions
            }
        }
    )+};
}
pub(crate) use conditions_in_status;

/// `now` in UTC truncated to whole seconds, as transition times are stored.
pub fn truncate_to_seconds(now: &Time) -> Time {
    Timestamp::from_second(now.0.as_second())
        .map(Time)
        .unwrap_or_else(|_| now.clone())
}

/// The condition of `type_`, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether `type_` is present and `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Whether `type_` is present and `False`.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == ConditionStatus::False)
}

/// Adds or updates a condition, keeping its transition time unless its state changed.
pub fn set(conditions: &mut Vec<Condition>, change: ConditionChange, now: &Time) {
    match conditions.iter_mut().find(|c| c.type_ == change.type_) {
        Some(existing) if change.same_state(existing) => {}
        Some(existing) => *existing = change.at(truncate_to_seconds(now)),
        None => conditions.push(change.at(truncate_to_seconds(now))),
    }
    sort(conditions);
}

/// Marks `type_` as `True`.
pub fn mark_true(conditions: &mut Vec<Condition>, type_: &str, now: &Time) {
    set(conditions, ConditionChange::true_(type_), now);
}

/// Marks `type_` as `False`.
pub fn mark_false(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    severity: ConditionSeverity,
    message: impl Into<String>,
    now: &Time,
) {
    set(
        conditions,
        ConditionChange::false_(type_, reason, severity, message),
        now,
    );
}

/// Marks `type_` as `Unknown`.
pub fn mark_unknown(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: impl Into<String>,
    now: &Time,
) {
    set(
        conditions,
        ConditionChange::unknown(type_, reason, message),
        now,
    );
}

/// Removes `type_`.
pub fn delete(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// Sorts `Ready` first, then by type.
pub fn sort(conditions: &mut [Condition]) {
    conditions.sort_by(|a, b| order_key(&a.type_).cmp(&order_key(&b.type_)));
}

fn order_key(type_: &str) -> (bool, &str) {
    (type_ != READY, type_)
}

/// Recomputes `Ready` from every other condition; leaves the list alone when there are none.
pub fn set_summary(conditions: &mut Vec<Condition>, now: &Time) {
    if let Some(ready) = summary(conditions) {
        set(conditions, ready, now);
    }
}

/// What `Ready` should be given the other conditions, or `None` when there are no others.
///
/// All `True` gives `True`. Otherwise the worst group wins, in the order False/Error,
/// False/Warning, False/Info, True, Unknown (a `False` without a known severity ranks last),
/// and `Ready` copies status, severity, reason and message of the first condition, by type,
/// in that group.
pub fn summary(conditions: &[Condition]) -> Option<ConditionChange> {
    let worst = conditions
        .iter()
        .filter(|c| c.type_ != READY)
        .min_by(|a, b| {
            merge_priority(a)
                .cmp(&merge_priority(b))
                .then_with(|| order_key(&a.type_).cmp(&order_key(&b.type_)))
        })?;
    let ready = match worst.status {
        ConditionStatus::True => ConditionChange::true_(READY),
        ConditionStatus::False => ConditionChange::false_(
            READY,
            worst.reason.clone(),
            worst.severity.clone(),
            worst.message.clone(),
        ),
        ConditionStatus::UnknownStatus => {
            ConditionChange::unknown(READY, worst.reason.clone(), worst.message.clone())
        }
        // A status we cannot interpret is reported as Unknown, keeping its reason and message.
        ConditionStatus::Unknown(_) => {
            ConditionChange::unknown(READY, worst.reason.clone(), worst.message.clone())
        }
    };
    Some(ready)
}

/// Lower is worse. Status and severity combinations upstream does not rank come last.
fn merge_priority(condition: &Condition) -> u8 {
    match (&condition.status, &condition.severity) {
        (ConditionStatus::False, ConditionSeverity::Error) => 0,
        (ConditionStatus::False, ConditionSeverity::Warning) => 1,
        (ConditionStatus::False, ConditionSeverity::Info) => 2,
        (ConditionStatus::True, _) => 3,
        (ConditionStatus::UnknownStatus, _) => 4,
        _ => 99,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn cond(
        type_: &str,
        status: ConditionStatus,
        severity: ConditionSeverity,
        reason: &str,
        t: i64,
    ) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status,
            severity,
            last_transition_time: time(t),
            reason: reason.to_owned(),
            message: format!("{type_} message"),
        }
    }

    use ConditionSeverity as Sev;
    use ConditionStatus as St;

    #[test]
    fn transition_time_is_truncated_to_seconds() {
        let now = Time(Timestamp::from_millisecond(10_999).unwrap());
        let mut list = Vec::new();
        mark_true(&mut list, "Connected", &now);
        assert_eq!(list[0].last_transition_time, time(10));
    }

    #[test]
    fn transition_time_moves_only_on_state_change() {
        struct Case {
            name: &'static str,
            change: ConditionChange,
            want_time: i64,
        }
        let existing = || vec![cond("Connected", St::False, Sev::Error, "Broken", 1)];
        let mut same = ConditionChange::false_("Connected", "Broken", Sev::Error, "");
        same.message = "Connected message".into();
        let cases = [
            Case {
                name: "identical",
                change: same.clone(),
                want_time: 1,
            },
            Case {
                name: "status",
                change: ConditionChange::true_("Connected"),
                want_time: 50,
            },
            Case {
                name: "severity",
                change: ConditionChange {
                    severity: Sev::Warning,
                    ..same.clone()
                },
                want_time: 50,
            },
            Case {
                name: "reason",
                change: ConditionChange {
                    reason: "Other".into(),
                    ..same.clone()
                },
                want_time: 50,
            },
            Case {
                name: "message",
                change: ConditionChange {
                    message: "new".into(),
                    ..same.clone()
                },
                want_time: 50,
            },
        ];
        for case in cases {
            let mut list = existing();
            set(&mut list, case.change.clone(), &time(50));
            assert_eq!(list.len(), 1, "{}", case.name);
            assert_eq!(
                list[0].last_transition_time,
                time(case.want_time),
                "{}",
                case.name
            );
            assert_eq!(list[0].status, case.change.status, "{}", case.name);
            assert_eq!(list[0].message, case.change.message, "{}", case.name);
        }
    }

    #[test]
    fn mark_true_clears_reason_and_severity() {
        let mut list = vec![cond("Connected", St::False, Sev::Error, "Broken", 1)];
        mark_true(&mut list, "Connected", &time(2));
        assert_eq!(list[0].status, St::True);
        assert_eq!(list[0].severity, Sev::None);
        assert!(list[0].reason.is_empty() && list[0].message.is_empty());
    }

    #[test]
    fn mark_false_sets_reason_severity_and_message() {
        let mut list = Vec::new();
        mark_false(
            &mut list,
            "Connected",
            "NoSecret",
            Sev::Warning,
            "secret x is missing",
            &time(3),
        );
        assert_eq!(
            list,
            vec![Condition {
                type_: "Connected".into(),
                status: St::False,
                severity: Sev::Warning,
                last_transition_time: time(3),
                reason: "NoSecret".into(),
                message: "secret x is missing".into(),
            }]
        );
    }

    #[test]
    fn sorted_ready_first_then_alphabetically() {
        let mut list = Vec::new();
        for t in ["Zeta", "Ready", "Alpha", "Connected"] {
            mark_true(&mut list, t, &time(1));
        }
        let types: Vec<_> = list.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Alpha", "Connected", "Zeta"]);
    }

    #[test]
    fn delete_removes_only_that_type() {
        let mut list = vec![
            cond("A", St::True, Sev::None, "", 1),
            cond("B", St::True, Sev::None, "", 1),
        ];
        delete(&mut list, "A");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].type_, "B");
    }

    #[test]
    fn summary_table() {
        struct Case {
            name: &'static str,
            input: Vec<Condition>,
            want: Option<(St, Sev, &'static str)>,
        }
        let cases = vec![
            Case {
                name: "no conditions",
                input: vec![],
                want: None,
            },
            Case {
                name: "only ready is ignored",
                input: vec![cond(READY, St::False, Sev::Error, "X", 1)],
                want: None,
            },
            Case {
                name: "all true",
                input: vec![
                    cond("A", St::True, Sev::None, "", 1),
                    cond("B", St::True, Sev::None, "", 1),
                ],
                want: Some((St::True, Sev::None, "")),
            },
            Case {
                name: "error beats warning",
                input: vec![
                    cond("A", St::False, Sev::Warning, "W", 1),
                    cond("B", St::False, Sev::Error, "E", 1),
                ],
                want: Some((St::False, Sev::Error, "E")),
            },
            Case {
                name: "warning beats info",
                input: vec![
                    cond("A", St::False, Sev::Info, "I", 1),
                    cond("B", St::False, Sev::Warning, "W", 1),
                ],
                want: Some((St::False, Sev::Warning, "W")),
            },
            Case {
                name: "info beats true",
                input: vec![
                    cond("A", St::True, Sev::None, "", 1),
                    cond("B", St::False, Sev::Info, "I", 1),
                ],
                want: Some((St::False, Sev::Info, "I")),
            },
            Case {
                name: "true beats unknown",
                input: vec![
                    cond("A", St::UnknownStatus, Sev::None, "U", 1),
                    cond("B", St::True, Sev::None, "", 1),
                ],
                want: Some((St::True, Sev::None, "")),
            },
            Case {
                name: "all unknown",
                input: vec![
                    cond("B", St::UnknownStatus, Sev::None, "U2", 1),
                    cond("A", St::UnknownStatus, Sev::None, "U1", 1),
                ],
                want: Some((St::UnknownStatus, Sev::None, "U1")),
            },
            Case {
                name: "false without severity ranks after unknown",
                input: vec![
                    cond("A", St::False, Sev::None, "F", 1),
                    cond("B", St::UnknownStatus, Sev::None, "U", 1),
                ],
                want: Some((St::UnknownStatus, Sev::None, "U")),
            },
            Case {
                name: "ties broken by type",
                input: vec![
                    cond("Zed", St::False, Sev::Error, "Z", 1),
                    cond("Abc", St::False, Sev::Error, "A", 1),
                ],
                want: Some((St::False, Sev::Error, "A")),
            },
            Case {
                name: "existing ready is not an input",
                input: vec![
                    cond(READY, St::False, Sev::Error, "Old", 1),
                    cond("A", St::True, Sev::None, "", 1),
                ],
                want: Some((St::True, Sev::None, "")),
            },
        ];
        for case in cases {
            let got = summary(&case.input).map(|c| (c.status, c.severity, c.reason.clone()));
            let want = case.want.map(|(s, v, r)| (s, v, r.to_owned()));
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn summary_copies_message_of_worst() {
        let input = vec![cond("A", St::False, Sev::Error, "E", 1)];
        let ready = summary(&input).unwrap();
        assert_eq!(ready.message, "A message");
    }

    #[test]
    fn set_summary_writes_ready_first_and_keeps_time_when_unchanged() {
        let mut list = vec![
            cond("B", St::True, Sev::None, "", 1),
            cond("A", St::True, Sev::None, "", 1),
        ];
        set_summary(&mut list, &time(5));
        assert_eq!(list[0].type_, READY);
        assert_eq!(list[0].last_transition_time, time(5));
        set_summary(&mut list, &time(9));
        assert_eq!(list[0].last_transition_time, time(5));
    }

    #[test]
    fn unknown_severity_round_trips() {
        let json = serde_json::json!({
            "type": "A", "status": "Maybe", "severity": "Fatal",
            "lastTransitionTime": "2024-01-01T00:00:00Z"
        });
        let c: Condition = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(c.status, St::Unknown("Maybe".into()));
        assert_eq!(serde_json::to_value(&c).unwrap(), json);
    }
}
