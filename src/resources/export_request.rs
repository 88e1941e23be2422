//! What to do with an APIServiceExportRequest given the schemas the provider exports
//! (reference §3.3 steps 2–3): its conditions, its phase, the resources to export, and when to
//! look at it again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube_bind_apis::apiserviceexport::CONDITION_PERMISSION_CLAIM;
use kube_bind_apis::apiserviceexportrequest::CONDITION_EXPORTS_READY;
use kube_bind_apis::conditions::ConditionChange;
use kube_bind_apis::{
    APIServiceExportRequestPhase, APIServiceExportRequestSpec, BoundSchemaSpec, ConditionSeverity,
    GroupResource, ResourceScope, resolve_claimable_api,
};

/// Reason (`ExportsReady`): no exported schema at all, or none for a requested resource.
pub const REASON_SCHEMA_NOT_FOUND: &str = "SchemaNotFound";
/// Reason (`ExportsReady`): the requested resources are not all of one scope.
pub const REASON_DIFFERENT_SCOPES: &str = "DifferentScopes";
/// Reason (`ExportsReady`): a BoundSchema the export needs is not in the cluster namespace.
pub const REASON_BOUND_SCHEMA_NOT_FOUND: &str = "BoundSchemaNotFound";
/// Reason (`PermissionClaim`): a claim names an API that cannot be claimed.
pub const REASON_INVALID_PERMISSION_CLAIM: &str = "InvalidPermissionClaim";
/// Reason (`PermissionClaim`): two claims name the same group and resource.
pub const REASON_DUPLICATE_PERMISSION_CLAIM: &str = "DuplicatePermissionClaim";

/// How long a request whose schemas are not (yet) all there stays Pending before it fails.
pub const SCHEMA_GRACE: Duration = Duration::from_secs(60);

/// An exported schema, as far as a request's validation needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvailableSchema {
    pub scope: ResourceScope,
    /// Served versions, in the schema's order.
    pub served_versions: Vec<String>,
}

impl AvailableSchema {
    /// From a BoundSchema spec converted from the schema source (CRD or APIResourceSchema).
    pub fn of(spec: &BoundSchemaSpec) -> Self {
        Self {
            scope: spec.scope.clone(),
            served_versions: spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| v.name.clone())
                .collect(),
        }
    }
}

/// Exported schemas by group and plural resource.
pub type SchemaCatalog = BTreeMap<GroupResource, AvailableSchema>;

/// A requested resource whose schema exists, with the versions to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedResource {
    pub group_resource: GroupResource,
    /// As requested, or every served version when the request names none.
    pub versions: Vec<String>,
}

/// Everything [`decide`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestDecision {
    /// Conditions to set; types not listed are left as they are.
    pub conditions: Vec<ConditionChange>,
    /// The phase to record.
    pub phase: APIServiceExportRequestPhase,
    /// Set exactly when the request fails in this decision.
    pub terminal_message: Option<String>,
    /// The resources to create BoundSchemas and the export for, and their common scope; only
    /// for a valid request still `Pending`.
    pub export: Option<(Vec<ResolvedResource>, ResourceScope)>,
    /// Delete the request: it is older than the TTL `decide` was given.
    pub expired: bool,
    /// When the decision changes on its own (grace or TTL ends), if it will.
    pub requeue_at: Option<Timestamp>,
}

/// Decides on a request as of `now`.
///
/// - Age: a request older than `ttl` (`--request-ttl`, upstream's fixed ten minutes) is to be
///   deleted, whatever its phase; what it made stays.
/// - Schemas (`ExportsReady` False, Error): none exported at all (`SchemaNotFound`, "Schema not
///   found"); requested resources without a schema, all of them named (`SchemaNotFound`);
///   resources of different scopes (`DifferentScopes`). A Pending request fails once it is more
///   than [`SCHEMA_GRACE`] old, with the condition's message; until then it waits, as a provider
///   may still be installing a CRD.
/// - Claims (`PermissionClaim` False, Error): an API outside the claimable ones
///   (`InvalidPermissionClaim`), else a repeated group/resource (`DuplicatePermissionClaim`).
///   Claims are immutable, so a Pending request fails at once.
/// - `Failed` and `Succeeded` are final: conditions are still reported, the phase stays.
///
/// Upstream differences, each implementing its evident intent:
/// - It stops at the first problem and names only the first bad resource or claim; we report
///   schema and claim problems together and name every offender.
/// - It skips resources without `versions` when creating BoundSchemas (reference §3.3 step 1),
///   so they later fail with `BoundSchemaNotFound`; we export every served version for them.
/// - Its one-minute cutoff fails a request whose export it has just created; we apply the
///   grace to the wait for schemas (see [`exports_created`]).
pub fn decide(
    spec: &APIServiceExportRequestSpec,
    phase: &APIServiceExportRequestPhase,
    schemas: &SchemaCatalog,
    created: Timestamp,
    now: Timestamp,
    ttl: Duration,
) -> RequestDecision {
    let schema_check = check_schemas(spec, schemas);
    let claim_problem = check_claims(spec);

    let mut conditions = Vec::new();
    let mut terminal_message = None;
    let mut next_phase = phase.clone();
    let mut export = None;
    let mut requeue_at = None;
    let pending = *phase == APIServiceExportRequestPhase::Pending;

    let grace_over = now.duration_since(created) > signed(SCHEMA_GRACE);
    match schema_check {
        Ok(resolved) => export = pending.then_some(resolved),
        Err(problem) => {
            if pending && grace_over {
                next_phase = APIServiceExportRequestPhase::Failed;
                terminal_message = Some(problem.message.clone());
            } else if pending {
                requeue_at = just_after(created, SCHEMA_GRACE);
            }
            conditions.push(problem);
        }
    }
    if let Some(problem) = claim_problem {
        if pending {
            next_phase = APIServiceExportRequestPhase::Failed;
            terminal_message = Some(problem.message.clone());
            export = None;
            requeue_at = None;
        }
        conditions.push(problem);
    }

    let expired = now.duration_since(created) > signed(ttl);
    if !expired {
        let ttl_end = just_after(created, ttl);
        requeue_at = match (requeue_at, ttl_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    } else {
        requeue_at = None;
    }

    RequestDecision {
        conditions,
        phase: next_phase,
        terminal_message,
        export,
        expired,
        requeue_at,
    }
}

/// `ExportsReady` False when the BoundSchema `name` (`<resource>.<group|core>`) the export
/// needs is missing from the cluster namespace.
pub fn bound_schema_not_found(name: &str) -> ConditionChange {
    ConditionChange::false_(
        CONDITION_EXPORTS_READY,
        REASON_BOUND_SCHEMA_NOT_FOUND,
        ConditionSeverity::Error,
        format!("BoundSchema {name} in the service provider cluster not found"),
    )
}

/// The export exists: `ExportsReady` True and phase `Succeeded`.
///
/// Upstream bug (reference §3.3 step 3): a request older than a minute turns `Failed` here, with
/// the (empty) message of the True condition. A created export is a success whatever the age.
pub fn exports_created() -> (ConditionChange, APIServiceExportRequestPhase) {
    (
        ConditionChange::true_(CONDITION_EXPORTS_READY),
        APIServiceExportRequestPhase::Succeeded,
    )
}

fn check_schemas(
    spec: &APIServiceExportRequestSpec,
    schemas: &SchemaCatalog,
) -> Result<(Vec<ResolvedResource>, ResourceScope), ConditionChange> {
    let exports_not_ready = |reason: &str, message: String| {
        ConditionChange::false_(
            CONDITION_EXPORTS_READY,
            reason,
            ConditionSeverity::Error,
            message,
        )
    };
    if schemas.is_empty() {
        return Err(exports_not_ready(
            REASON_SCHEMA_NOT_FOUND,
            "Schema not found".to_owned(),
        ));
    }
    let mut missing = Vec::new();
    let mut resolved = Vec::new();
    let mut first_scope: Option<&ResourceScope> = None;
    let mut other_scope: Option<&ResourceScope> = None;
    for res in &spec.resources {
        let Some(schema) = schemas.get(&res.group_resource()) else {
            missing.push(res.resource_group_name());
            continue;
        };
        match first_scope {
            None => first_scope = Some(&schema.scope),
            Some(first) if *first != schema.scope && other_scope.is_none() => {
                other_scope = Some(&schema.scope);
            }
            Some(_) => {}
        }
        let versions = if res.versions.is_empty() {
            schema.served_versions.clone()
        } else {
            res.versions.clone()
        };
        resolved.push(ResolvedResource {
            group_resource: res.group_resource(),
            versions,
        });
    }
    if !missing.is_empty() {
        return Err(exports_not_ready(
            REASON_SCHEMA_NOT_FOUND,
            format!("Schema {} not found", missing.join(", ")),
        ));
    }
    if let Some(other) = other_scope {
        return Err(exports_not_ready(
            REASON_DIFFERENT_SCOPES,
            format!("Different scopes found: {other}"),
        ));
    }
    match first_scope {
        Some(scope) => Ok((resolved, scope.clone())),
        // The CRD demands at least one resource; an empty list has nothing to export.
        None => Err(exports_not_ready(
            REASON_SCHEMA_NOT_FOUND,
            "Schema not found".to_owned(),
        )),
    }
}

fn check_claims(spec: &APIServiceExportRequestSpec) -> Option<ConditionChange> {
    let claim_problem = |reason: &str, message: String| {
        ConditionChange::false_(
            CONDITION_PERMISSION_CLAIM,
            reason,
            ConditionSeverity::Error,
            message,
        )
    };
    let unclaimable: Vec<String> = spec
        .permission_claims
        .iter()
        .filter(|c| resolve_claimable_api(&c.group, &c.resource).is_none())
        .map(|c| c.group_resource().to_string())
        .collect();
    if !unclaimable.is_empty() {
        return Some(claim_problem(
            REASON_INVALID_PERMISSION_CLAIM,
            format!(
                "Resource {} is not a valid claimable API",
                unclaimable.join(", ")
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut duplicates = Vec::new();
    for claim in &spec.permission_claims {
        let gr = claim.group_resource();
        if !seen.insert(gr.clone()) && !duplicates.contains(&gr) {
            duplicates.push(gr);
        }
    }
    (!duplicates.is_empty()).then(|| {
        let names: Vec<String> = duplicates.iter().map(ToString::to_string).collect();
        claim_problem(
            REASON_DUPLICATE_PERMISSION_CLAIM,
            format!(
                "Duplicate permission claim found for group/resource {}",
                names.join(", ")
            ),
        )
    })
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// The first instant strictly more than `d` after `t` (the cutoffs compare with `>`).
fn just_after(t: Timestamp, d: Duration) -> Option<Timestamp> {
    t.checked_add(signed(d))
        .and_then(|end| end.checked_add(SignedDuration::from_nanos(1)))
        .ok()
}

#[cfg(test)]
mod tests {
    use kube_bind_apis::{
        APIResourceVersion, APIServiceExportRequestResource, ConditionStatus, CrdNames,
        InformerScope, PermissionClaim,
    };

    use super::*;
    use APIServiceExportRequestPhase as Phase;

    const CREATED: i64 = 1_700_000_000;
    /// The default `--request-ttl`.
    const TTL: Duration = Duration::from_secs(600);

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn catalog() -> SchemaCatalog {
        let ns = |versions: &[&str]| AvailableSchema {
            scope: ResourceScope::Namespaced,
            served_versions: versions.iter().map(|v| (*v).to_owned()).collect(),
        };
        BTreeMap::from([
            (
                GroupResource::new("wildwest.dev", "cowboys"),
                ns(&["v1", "v2"]),
            ),
            (GroupResource::new("wildwest.dev", "sheriffs"), ns(&["v1"])),
            (
                GroupResource::new("wildwest.dev", "towns"),
                AvailableSchema {
                    scope: ResourceScope::Cluster,
                    served_versions: vec!["v1".to_owned()],
                },
            ),
        ])
    }

    fn request(
        resources: &[(&str, &str, &[&str])],
        claims: &[(&str, &str)],
    ) -> APIServiceExportRequestSpec {
        APIServiceExportRequestSpec {
            resources: resources
                .iter()
                .map(|(g, r, v)| APIServiceExportRequestResource {
                    group: (*g).to_owned(),
                    resource: (*r).to_owned(),
                    versions: v.iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
            permission_claims: claims
                .iter()
                .map(|(g, r)| PermissionClaim {
                    group: (*g).to_owned(),
                    resource: (*r).to_owned(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// (type, reason, message) of each condition.
    fn conds(d: &RequestDecision) -> Vec<(&str, &str, &str)> {
        d.conditions
            .iter()
            .map(|c| {
                assert_eq!(c.status, ConditionStatus::False);
                assert_eq!(c.severity, ConditionSeverity::Error);
                (c.type_.as_str(), c.reason.as_str(), c.message.as_str())
            })
            .collect()
    }

    #[test]
    fn decide_table() {
        type Case = (
            &'static str,
            APIServiceExportRequestSpec,
            Phase,
            i64, // age in seconds
            Vec<(&'static str, &'static str, &'static str)>,
            Phase,
            Option<&'static str>, // terminal message
            bool,                 // export
            Option<i64>,          // requeue, seconds after creation (+1ns)
        );
        let cowboys: &[(&str, &str, &[&str])] = &[("wildwest.dev", "cowboys", &[])];
        let cases: Vec<Case> = vec![
            (
                "valid and new",
                request(cowboys, &[("", "secrets")]),
                Phase::Pending,
                0,
                vec![],
                Phase::Pending,
                None,
                true,
                Some(600),
            ),
            (
                "unknown resource waits out the grace",
                request(
                    &[("wildwest.dev", "cowboys", &[]), ("x.dev", "foos", &["v1"])],
                    &[],
                ),
                Phase::Pending,
                60,
                vec![(
                    "ExportsReady",
                    "SchemaNotFound",
                    "Schema foos.x.dev not found",
                )],
                Phase::Pending,
                None,
                false,
                Some(60),
            ),
            (
                "unknown resources fail after the grace, every one named",
                request(&[("", "foos", &[]), ("x.dev", "bars", &[])], &[]),
                Phase::Pending,
                61,
                vec![(
                    "ExportsReady",
                    "SchemaNotFound",
                    "Schema foos.core, bars.x.dev not found",
                )],
                Phase::Failed,
                Some("Schema foos.core, bars.x.dev not found"),
                false,
                Some(600),
            ),
            (
                "mixed scopes",
                request(
                    &[
                        ("wildwest.dev", "cowboys", &[]),
                        ("wildwest.dev", "towns", &[]),
                    ],
                    &[],
                ),
                Phase::Pending,
                0,
                vec![(
                    "ExportsReady",
                    "DifferentScopes",
                    "Different scopes found: Cluster",
                )],
                Phase::Pending,
                None,
                false,
                Some(60),
            ),
            (
                "unclaimable claim fails at once",
                request(
                    cowboys,
                    &[("", "secrets"), ("", "pods"), ("apps", "deployments")],
                ),
                Phase::Pending,
                0,
                vec![(
                    "PermissionClaim",
                    "InvalidPermissionClaim",
                    "Resource pods., deployments.apps is not a valid claimable API",
                )],
                Phase::Failed,
                Some("Resource pods., deployments.apps is not a valid claimable API"),
                false,
                Some(600),
            ),
            (
                "duplicate claims",
                request(
                    cowboys,
                    &[
                        ("", "secrets"),
                        ("", "configmaps"),
                        ("", "secrets"),
                        ("", "secrets"),
                    ],
                ),
                Phase::Pending,
                0,
                vec![(
                    "PermissionClaim",
                    "DuplicatePermissionClaim",
                    "Duplicate permission claim found for group/resource secrets.",
                )],
                Phase::Failed,
                Some("Duplicate permission claim found for group/resource secrets."),
                false,
                Some(600),
            ),
            (
                "schema and claim problems reported together; claims decide the failure",
                request(&[("x.dev", "foos", &[])], &[("", "pods")]),
                Phase::Pending,
                0,
                vec![
                    (
                        "ExportsReady",
                        "SchemaNotFound",
                        "Schema foos.x.dev not found",
                    ),
                    (
                        "PermissionClaim",
                        "InvalidPermissionClaim",
                        "Resource pods. is not a valid claimable API",
                    ),
                ],
                Phase::Failed,
                Some("Resource pods. is not a valid claimable API"),
                false,
                Some(600),
            ),
            (
                "succeeded stays succeeded, conditions still reported",
                request(&[("x.dev", "foos", &[])], &[]),
                Phase::Succeeded,
                120,
                vec![(
                    "ExportsReady",
                    "SchemaNotFound",
                    "Schema foos.x.dev not found",
                )],
                Phase::Succeeded,
                None,
                false,
                Some(600),
            ),
            (
                "succeeded is not exported again",
                request(cowboys, &[]),
                Phase::Succeeded,
                0,
                vec![],
                Phase::Succeeded,
                None,
                false,
                Some(600),
            ),
            (
                "expired",
                request(cowboys, &[]),
                Phase::Succeeded,
                601,
                vec![],
                Phase::Succeeded,
                None,
                false,
                None,
            ),
            (
                "not yet expired",
                request(cowboys, &[]),
                Phase::Pending,
                600,
                vec![],
                Phase::Pending,
                None,
                true,
                Some(600),
            ),
        ];
        for (
            name,
            spec,
            phase,
            age,
            want_conds,
            want_phase,
            want_terminal,
            want_export,
            want_requeue,
        ) in cases
        {
            let d = decide(
                &spec,
                &phase,
                &catalog(),
                at(CREATED),
                at(CREATED + age),
                TTL,
            );
            assert_eq!(conds(&d), want_conds, "{name}");
            assert_eq!(d.phase, want_phase, "{name}");
            assert_eq!(d.terminal_message.as_deref(), want_terminal, "{name}");
            assert_eq!(d.export.is_some(), want_export, "{name}");
            assert_eq!(d.expired, age > 600, "{name}");
            assert_eq!(
                d.requeue_at,
                want_requeue.and_then(|s| just_after(at(CREATED), Duration::from_secs(s as u64))),
                "{name}"
            );
        }
    }

    #[test]
    fn no_exported_schemas_at_all() {
        let d = decide(
            &request(&[("wildwest.dev", "cowboys", &[])], &[]),
            &Phase::Pending,
            &SchemaCatalog::new(),
            at(CREATED),
            at(CREATED + 120),
            TTL,
        );
        assert_eq!(
            conds(&d),
            vec![("ExportsReady", "SchemaNotFound", "Schema not found")]
        );
        assert_eq!(d.phase, Phase::Failed);
        assert_eq!(d.terminal_message.as_deref(), Some("Schema not found"));
    }

    #[test]
    fn resources_without_versions_get_every_served_version() {
        let d = decide(
            &request(
                &[
                    ("wildwest.dev", "cowboys", &[]),
                    ("wildwest.dev", "sheriffs", &["v1"]),
                ],
                &[],
            ),
            &Phase::Pending,
            &catalog(),
            at(CREATED),
            at(CREATED),
            TTL,
        );
        let (resources, scope) = d.export.unwrap();
        assert_eq!(scope, ResourceScope::Namespaced);
        assert_eq!(
            resources,
            vec![
                ResolvedResource {
                    group_resource: GroupResource::new("wildwest.dev", "cowboys"),
                    versions: vec!["v1".into(), "v2".into()],
                },
                ResolvedResource {
                    group_resource: GroupResource::new("wildwest.dev", "sheriffs"),
                    versions: vec!["v1".into()],
                },
            ]
        );
    }

    #[test]
    fn available_schema_lists_served_versions_only() {
        let version = |name: &str, served: bool| APIResourceVersion {
            name: name.to_owned(),
            served,
            storage: served,
            deprecated: false,
            deprecation_warning: None,
            schema: serde_json::json!({}),
            subresources: None,
            additional_printer_columns: vec![],
        };
        let spec = BoundSchemaSpec {
            informer_scope: InformerScope::Namespaced,
            group: "wildwest.dev".into(),
            names: CrdNames::default(),
            scope: ResourceScope::Cluster,
            versions: vec![
                version("v1", false),
                version("v2", true),
                version("v3", true),
            ],
            conversion: None,
        };
        assert_eq!(
            AvailableSchema::of(&spec),
            AvailableSchema {
                scope: ResourceScope::Cluster,
                served_versions: vec!["v2".into(), "v3".into()],
            }
        );
    }

    #[test]
    fn follow_up_conditions_as_upstream() {
        let missing = bound_schema_not_found("cowboys.wildwest.dev");
        assert_eq!(
            (
                missing.type_.as_str(),
                missing.reason.as_str(),
                missing.message.as_str()
            ),
            (
                "ExportsReady",
                "BoundSchemaNotFound",
                "BoundSchema cowboys.wildwest.dev in the service provider cluster not found"
            )
        );
        let (ready, phase) = exports_created();
        assert_eq!(
            (ready.type_.as_str(), ready.status),
            ("ExportsReady", ConditionStatus::True)
        );
        assert_eq!(phase, Phase::Succeeded);
    }
}
