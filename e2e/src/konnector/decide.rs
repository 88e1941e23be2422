//! What the simulated konnector writes, as pure functions of what it read and what it observed
//! on the (absent) consumer side. Each follows the upstream konnector reconcile step it names.
//!
//! NOTE: every function merges by condition type: conditions the konnector does not own (the
//! backend's `Healthy`, `ProviderInSync`, …) are kept as they were read.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinitionNames, CustomResourceDefinitionStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_bind_apis::conditions::{self, Condition, ConditionChange, ConditionSeverity, READY};
use kube_bind_apis::v1alpha2::apiserviceexport::{CONDITION_CONNECTED, CONDITION_CONSUMER_IN_SYNC};
use kube_bind_apis::v1alpha2::boundschema::CrdNames;
use kube_bind_apis::v1alpha2::clusterbinding::{CONDITION_SECRET_VALID, CONDITION_VALID_VERSION};
use kube_bind_apis::{BoundSchemaStatus, ClusterBindingStatus, ConditionStatus, LocalSecretKeyRef};

/// Whether `lastHeartbeatTime` is refreshed now: when it is missing or older than half the
/// interval (upstream `ensureHeartbeat`).
pub fn heartbeat_due(last: Option<&Time>, interval: Duration, now: &Time) -> bool {
    let Some(last) = last else { return true };
    let half = k8s_openapi::jiff::SignedDuration::try_from(interval / 2).unwrap_or_default();
    match last.0.checked_add(half) {
        Ok(due) => now.0 > due,
        Err(_) => false,
    }
}

/// `SecretValid` from the provider Secret the ClusterBinding names (upstream
/// `ensureConsumerSecret`, without the copy to the consumer, which the simulator has not).
pub fn secret_valid(
    secret: Option<&Secret>,
    namespace: &str,
    reference: &LocalSecretKeyRef,
) -> ConditionChange {
    let name = &reference.name;
    let key = reference.key.as_str();
    match secret {
        None => ConditionChange::false_(
            CONDITION_SECRET_VALID,
            "ProviderSecretNotFound",
            ConditionSeverity::Warning,
            format!("Provider secret {namespace}/{name} not found"),
        ),
        Some(s) if !s.data.as_ref().is_some_and(|d| d.contains_key(key)) => {
            ConditionChange::false_(
                CONDITION_SECRET_VALID,
                "ProviderSecretInvalid",
                ConditionSeverity::Warning,
                format!("Provider secret {namespace}/{name} is missing {key:?} string key."),
            )
        }
        Some(_) => ConditionChange::true_(CONDITION_SECRET_VALID),
    }
}

/// `ValidVersion` and the reported `konnectorVersion`: an empty version is reported as
/// `unknown` with `ValidVersion=False/ParseError` (upstream `ensureKonnectorVersion`).
pub fn valid_version(version: &str) -> (String, ConditionChange) {
    if version.is_empty() {
        let change = ConditionChange::false_(
            CONDITION_VALID_VERSION,
            "ParseError",
            ConditionSeverity::Warning,
            "Konnector binary version string \"\" cannot be parsed",
        );
        return ("unknown".to_owned(), change);
    }
    (
        version.to_owned(),
        ConditionChange::true_(CONDITION_VALID_VERSION),
    )
}

/// The ClusterBinding status after one konnector reconcile: heartbeat, `heartbeatInterval` as a
/// Go duration, version, `SecretValid`, `ValidVersion`, then `Ready` over every condition.
pub fn cluster_binding_status(
    current: &ClusterBindingStatus,
    secret_valid: ConditionChange,
    version: &str,
    interval: Duration,
    now: &Time,
) -> ClusterBindingStatus {
    let mut status = current.clone();
    status.heartbeat_interval = kube_bind_backend::options::format_go_duration(interval);
    if heartbeat_due(current.last_heartbeat_time.as_ref(), interval, now) {
        status.last_heartbeat_time = Some(conditions::truncate_to_seconds(now));
    }
    let (reported, valid_version) = valid_version(version);
    status.konnector_version = reported;
    conditions::set(&mut status.conditions, secret_valid, now);
    conditions::set(&mut status.conditions, valid_version, now);
    conditions::set_summary(&mut status.conditions, now);
    status
}

/// What the konnector sees on the consumer for one APIServiceExport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// The consumer's APIServiceBinding of the export's name.
    pub binding: ConsumerBinding,
    /// Whether every BoundSchema of the export had its status written (upstream `allValid`).
    pub bound_schemas_valid: bool,
}

/// The consumer's APIServiceBinding, as far as the export's conditions depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerBinding {
    /// No APIServiceBinding of that name exists on the consumer.
    Missing,
    /// It exists; `schema_in_sync` says whether it carries `SchemaInSync=True` (upstream only
    /// ever marks it True, so `false` means the condition is absent).
    Present { schema_in_sync: bool },
}

impl ExportReport {
    /// A bound consumer whose schemas are installed and in sync.
    pub fn in_sync() -> Self {
        ExportReport {
            binding: ConsumerBinding::Present {
                schema_in_sync: true,
            },
            bound_schemas_valid: true,
        }
    }
}

/// The export's conditions after one konnector reconcile: `Connected` and `ConsumerInSync`
/// (upstream `ensureServiceBindingConditionCopied`, then `ensureCRDConditionsCopiedToBoundSchema`,
/// whose `Connected` wins). Upstream does not summarise into `Ready` here, so neither do we.
pub fn export_conditions(
    current: &[Condition],
    export: &str,
    report: &ExportReport,
    now: &Time,
) -> Vec<Condition> {
    let mut list = current.to_vec();
    let in_sync = match report.binding {
        ConsumerBinding::Missing => ConditionChange::false_(
            CONDITION_CONSUMER_IN_SYNC,
            "NA",
            ConditionSeverity::Info,
            "No APIServiceBinding exists.",
        ),
        ConsumerBinding::Present {
            schema_in_sync: true,
        } => ConditionChange::true_(CONDITION_CONSUMER_IN_SYNC),
        ConsumerBinding::Present {
            schema_in_sync: false,
        } => ConditionChange::false_(
            CONDITION_CONSUMER_IN_SYNC,
            "Unknown",
            ConditionSeverity::Info,
            format!(
                "APIServiceBinding {export} in the consumer cluster does not have a SchemaInSync condition."
            ),
        ),
    };
    let connected = if report.bound_schemas_valid {
        ConditionChange::true_(CONDITION_CONNECTED)
    } else {
        ConditionChange::false_(
            CONDITION_CONNECTED,
            "BoundSchemasNotValid",
            ConditionSeverity::Warning,
            "One or more BoundSchemas are not valid",
        )
    };
    conditions::set(&mut list, in_sync, now);
    conditions::set(&mut list, connected, now);
    list
}

/// The BoundSchema status after the konnector installed its CRD on the consumer and read back
/// `crd`: the CRD's conditions (except `Ready`) copied by type with severity `Error` unless
/// `True`, `Ready` summarised, `acceptedNames` and `storedVersions` copied; `instantiations`
/// kept as read (upstream `ensureCRDConditionsCopiedToBoundSchema`).
pub fn bound_schema_status(
    current: &BoundSchemaStatus,
    crd: &CustomResourceDefinitionStatus,
    now: &Time,
) -> BoundSchemaStatus {
    let mut status = current.clone();
    for c in crd.conditions.iter().flatten() {
        if c.type_ == READY {
            continue;
        }
        let condition_status = ConditionStatus::from(c.status.as_str());
        let severity = if condition_status == ConditionStatus::True {
            ConditionSeverity::None
        } else {
            ConditionSeverity::Error
        };
        let copied = Condition {
            type_: c.type_.clone(),
            status: condition_status,
            severity,
            last_transition_time: c
                .last_transition_time
                .clone()
                .unwrap_or_else(|| conditions::truncate_to_seconds(now)),
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        };
        match status
            .conditions
            .iter_mut()
            .find(|e| e.type_ == copied.type_)
        {
            Some(existing) => *existing = copied,
            None => status.conditions.push(copied),
        }
    }
    conditions::set_summary(&mut status.conditions, now);
    status.accepted_names = crd.accepted_names.as_ref().map(crd_names);
    status.stored_versions = crd.stored_versions.clone();
    status
}

fn crd_names(names: &CustomResourceDefinitionNames) -> CrdNames {
    CrdNames {
        plural: names.plural.clone(),
        singular: names.singular.clone().unwrap_or_default(),
        short_names: names.short_names.clone().unwrap_or_default(),
        kind: names.kind.clone(),
        list_kind: names.list_kind.clone().unwrap_or_default(),
        categories: names.categories.clone().unwrap_or_default(),
    }
}

/// What the API server reports for a CRD installed from `schema` with no conflicts: `NamesAccepted`
/// and `Established` True, the spec's names accepted, the storage version stored.
pub fn established_crd_status(
    schema: &kube_bind_apis::BoundSchemaSpec,
    now: &Time,
) -> CustomResourceDefinitionStatus {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionCondition;
    let condition = |type_: &str, reason: &str, message: &str| CustomResourceDefinitionCondition {
        type_: type_.to_owned(),
        status: "True".to_owned(),
        last_transition_time: Some(conditions::truncate_to_seconds(now)),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
    };
    let names = &schema.names;
    let non_empty = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    let non_blank = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    CustomResourceDefinitionStatus {
        accepted_names: Some(CustomResourceDefinitionNames {
            plural: names.plural.clone(),
            singular: non_blank(&names.singular),
            short_names: non_empty(&names.short_names),
            kind: names.kind.clone(),
            list_kind: non_blank(&names.list_kind),
            categories: non_empty(&names.categories),
        }),
        conditions: Some(vec![
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition(
                "Established",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ]),
        stored_versions: Some(
            schema
                .versions
                .iter()
                .filter(|v| v.storage)
                .map(|v| v.name.clone())
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionCondition;
    use k8s_openapi::jiff::Timestamp;
    use kube_bind_apis::KubeconfigSecretKey;

    use super::*;

    fn time(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn other(type_: &str, status: ConditionStatus) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status,
            severity: ConditionSeverity::None,
            last_transition_time: time(1),
            reason: String::new(),
            message: String::new(),
        }
    }

    fn types(list: &[Condition]) -> Vec<(&str, String)> {
        list.iter()
            .map(|c| (c.type_.as_str(), c.status.to_string()))
            .collect()
    }

    #[test]
    fn heartbeat_is_due_when_missing_or_older_than_half_the_interval() {
        let five_min = Duration::from_secs(300);
        let cases = [
            ("missing", None, 1000, true),
            ("fresh", Some(1000), 1100, false),
            ("exactly half", Some(1000), 1150, false),
            ("older than half", Some(1000), 1151, true),
        ];
        for (name, last, now, want) in cases {
            let last = last.map(time);
            assert_eq!(
                heartbeat_due(last.as_ref(), five_min, &time(now)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn secret_valid_follows_the_provider_secret() {
        let reference = LocalSecretKeyRef {
            name: "kubeconfig".into(),
            key: KubeconfigSecretKey::Kubeconfig,
        };
        let with = |key: &str| Secret {
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(b"x".to_vec()),
            )])),
            ..Default::default()
        };
        let cases = [
            ("absent", None, "False", "ProviderSecretNotFound"),
            (
                "wrong key",
                Some(with("other")),
                "False",
                "ProviderSecretInvalid",
            ),
            ("valid", Some(with("kubeconfig")), "True", ""),
        ];
        for (name, secret, status, reason) in cases {
            let change = secret_valid(secret.as_ref(), "cluster-a", &reference);
            assert_eq!(change.status.to_string(), status, "{name}");
            assert_eq!(change.reason, reason, "{name}");
        }
    }

    #[test]
    fn cluster_binding_keeps_healthy_and_summarises_over_it() {
        let mut healthy = other("Healthy", ConditionStatus::False);
        healthy.severity = ConditionSeverity::Error;
        healthy.reason = "HeartbeatTimeout".into();
        let current = ClusterBindingStatus {
            conditions: vec![healthy],
            ..Default::default()
        };
        let status = cluster_binding_status(
            &current,
            ConditionChange::true_(CONDITION_SECRET_VALID),
            "v0.0.0",
            Duration::from_secs(300),
            &time(2000),
        );
        assert_eq!(
            types(&status.conditions),
            [
                ("Ready", "False".to_owned()),
                ("Healthy", "False".to_owned()),
                ("SecretValid", "True".to_owned()),
                ("ValidVersion", "True".to_owned()),
            ]
        );
        assert_eq!(status.conditions[0].reason, "HeartbeatTimeout");
        assert_eq!(status.heartbeat_interval, "5m0s");
        assert_eq!(status.konnector_version, "v0.0.0");
        assert_eq!(status.last_heartbeat_time, Some(time(2000)));
    }

    #[test]
    fn empty_version_is_unknown_and_invalid() {
        let (reported, change) = valid_version("");
        assert_eq!(reported, "unknown");
        assert_eq!(change.reason, "ParseError");
    }

    #[test]
    fn export_conditions_table() {
        let cases = [
            (
                "in sync",
                ExportReport::in_sync(),
                [("Connected", "True", ""), ("ConsumerInSync", "True", "")],
            ),
            (
                "no binding",
                ExportReport {
                    binding: ConsumerBinding::Missing,
                    bound_schemas_valid: true,
                },
                [("Connected", "True", ""), ("ConsumerInSync", "False", "NA")],
            ),
            (
                "binding without SchemaInSync",
                ExportReport {
                    binding: ConsumerBinding::Present {
                        schema_in_sync: false,
                    },
                    bound_schemas_valid: true,
                },
                [
                    ("Connected", "True", ""),
                    ("ConsumerInSync", "False", "Unknown"),
                ],
            ),
            (
                "schemas not valid",
                ExportReport {
                    bound_schemas_valid: false,
                    ..ExportReport::in_sync()
                },
                [
                    ("Connected", "False", "BoundSchemasNotValid"),
                    ("ConsumerInSync", "True", ""),
                ],
            ),
        ];
        let current = vec![other("ProviderInSync", ConditionStatus::True)];
        for (name, report, want) in cases {
            let list = export_conditions(&current, "e", &report, &time(5));
            for (type_, status, reason) in want {
                let c = conditions::get(&list, type_).unwrap();
                assert_eq!(
                    (c.status.to_string().as_str(), c.reason.as_str()),
                    (status, reason),
                    "{name}: {type_}"
                );
            }
            assert!(
                conditions::is_true(&list, "ProviderInSync"),
                "{name}: others kept"
            );
            assert!(conditions::get(&list, READY).is_none(), "{name}: no Ready");
        }
    }

    #[test]
    fn bound_schema_copies_crd_conditions_names_and_versions() {
        let crd = CustomResourceDefinitionStatus {
            accepted_names: Some(CustomResourceDefinitionNames {
                plural: "cowboys".into(),
                kind: "Cowboy".into(),
                ..Default::default()
            }),
            conditions: Some(vec![
                CustomResourceDefinitionCondition {
                    type_: "Established".into(),
                    status: "False".into(),
                    reason: Some("Installing".into()),
                    last_transition_time: Some(time(3)),
                    ..Default::default()
                },
                CustomResourceDefinitionCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                },
            ]),
            stored_versions: Some(vec!["v1alpha1".into()]),
        };
        let current = BoundSchemaStatus {
            conditions: vec![other("Valid", ConditionStatus::True)],
            instantiations: Some(2),
            ..Default::default()
        };
        let status = bound_schema_status(&current, &crd, &time(9));
        assert_eq!(
            types(&status.conditions),
            [
                ("Ready", "False".to_owned()),
                ("Established", "False".to_owned()),
                ("Valid", "True".to_owned()),
            ]
        );
        let established = conditions::get(&status.conditions, "Established").unwrap();
        assert_eq!(established.severity, ConditionSeverity::Error);
        assert_eq!(established.last_transition_time, time(3));
        assert_eq!(status.conditions[0].reason, "Installing");
        assert_eq!(status.accepted_names.unwrap().kind, "Cowboy");
        assert_eq!(status.stored_versions, Some(vec!["v1alpha1".to_owned()]));
        assert_eq!(status.instantiations, Some(2));
    }
}
