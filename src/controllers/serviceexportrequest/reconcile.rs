//! One APIServiceExportRequest reconcile, as named steps: decide, ensure BoundSchemas, ensure
//! the export, ensure APIServiceNamespaces, write the status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube_bind_apis::apiserviceexportrequest::CONDITION_EXPORTS_READY;
use kube_bind_apis::conditions::{self, ConditionChange};
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase,
    APIServiceExportRequestStatus, APIServiceNamespace, BoundSchema, BoundSchemaSpec,
    ConditionSeverity,
};

use super::{ExportRequestReconciler, isolation};
use crate::controllers::schema_source::ExportedSchemas;
use crate::controllers::status::report_on_conditions;
use crate::options::format_go_duration;
use crate::provider::Cluster;
use crate::resources::bound_schema::{bound_schema, bound_schema_name, exported_spec};
use crate::resources::export::export_for_request;
use crate::resources::export_request::{
    AvailableSchema, RequestDecision, ResolvedResource, SchemaCatalog, decide, exports_created,
};
use crate::resources::namespaces::api_service_namespace_for_export;
use crate::runtime::{Action, Malformed, ObjectKey, Reconciler, Request, status};

/// A write of the request reconcile that failed, naming the object it concerned.
#[derive(Debug, thiserror::Error)]
pub enum ExportRequestError {
    #[error("cannot {action} {object}: {source}")]
    Api {
        /// What was attempted, e.g. `create BoundSchema`.
        action: &'static str,
        /// The object, as `cluster|namespace/name`.
        object: ObjectKey,
        #[source]
        source: kube::Error,
    },
}

impl ExportRequestError {
    /// Someone wrote first (409): the key runs again at once, nothing to report.
    fn is_conflict(&self) -> bool {
        let Self::Api { source, .. } = self;
        matches!(source, kube::Error::Api(status) if status.code == 409)
    }
}

type Result<T, E = ExportRequestError> = std::result::Result<T, E>;

fn api_error(
    action: &'static str,
    object: ObjectKey,
) -> impl FnOnce(kube::Error) -> ExportRequestError {
    move |source| ExportRequestError::Api {
        action,
        object,
        source,
    }
}

fn already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

impl Reconciler for ExportRequestReconciler {
    type Object = APIServiceExportRequest;
    type Error = ExportRequestError;
    const NAME: &'static str = "serviceexportrequest";

    /// A request or export the backend cannot decode gets `Ready=False` saying so.
    async fn report_malformed(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
        malformed: Arc<Malformed>,
    ) -> Result<Action> {
        report_on_conditions::<APIServiceExportRequest>(&cluster, &key, &malformed, &["v1alpha1"])
            .await
            .map_err(api_error("report the malformed", key))?;
        Ok(Action::Done)
    }

    async fn reconcile(
        self: Arc<Self>,
        Request {
            cluster,
            key,
            object,
        }: Request<APIServiceExportRequest>,
    ) -> Result<Action> {
        let (Some(request), Some(namespace)) = (object, key.namespace.clone()) else {
            // Gone: what it created belongs to its export (or the cluster namespace) now.
            return Ok(Action::Done);
        };
        let now = Timestamp::now();
        let exported = self
            .sources
            .exported(cluster.id(), &self.options.informer_scope());
        let catalog: SchemaCatalog = exported
            .iter()
            .map(|(gr, s)| (gr.clone(), AvailableSchema::of(&s.spec)))
            .collect();
        let phase = request
            .status
            .as_ref()
            .map(APIServiceExportRequestStatus::phase)
            .unwrap_or(APIServiceExportRequestPhase::Pending);
        let created = request
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, |t| t.0);
        let decision = decide(
            &request.spec,
            &phase,
            &catalog,
            created,
            now,
            self.options.request_ttl,
        );

        let requests: Api<APIServiceExportRequest> = Api::namespaced(cluster.client(), &namespace);
        if decision.expired {
            tracing::info!(
                request = %key,
                ttl = %format_go_duration(self.options.request_ttl),
                "deleting request older than --request-ttl"
            );
            return match requests
                .delete(&key.name, &DeleteParams::background())
                .await
            {
                Ok(_) => Ok(Action::Done),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::Done),
                Err(err) => Err(api_error("delete expired", key)(err)),
            };
        }

        let provisioned = self
            .provision(&cluster, &request, &key, &decision, &exported)
            .await;
        let (export, failure) = match provisioned {
            Ok(export) => (export, None),
            Err(err) => (None, Some(err)),
        };
        let current = request.status.clone().unwrap_or_default();
        let failure_message = failure
            .as_ref()
            .filter(|e| !e.is_conflict())
            .map(ToString::to_string);
        let status = request_status(
            &current,
            &decision,
            export.is_some(),
            failure_message,
            &Time(now),
        );
        if request.status.as_ref() != Some(&status) {
            let json = serde_json::to_value(&status).unwrap_or_default();
            let written = status::patch_status(&requests, &request, json)
                .await
                .map_err(api_error("write the status of", key.clone()));
            if let Err(err) = written
                && failure.is_none()
            {
                return Err(err);
            }
        }
        if let Some(err) = failure {
            return Err(err);
        }
        Ok(match decision.requeue_at {
            Some(at) => Action::RequeueAfter(
                Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO),
            ),
            None => Action::Done,
        })
    }
}

/// Reason (`ExportsReady`): writing a BoundSchema, the export or an APIServiceNamespace failed.
pub const REASON_PROVISIONING_FAILED: &str = "ProvisioningFailed";

/// The request's status after this reconcile: the decision's conditions, phase and (on
/// failure) terminal message; `ExportsReady` True and phase `Succeeded` once the export exists
/// and the schemas are valid; `ExportsReady` False naming a failed write (`failure`). Every
/// other condition is kept, and `Ready` is recomputed.
fn request_status(
    current: &APIServiceExportRequestStatus,
    decision: &RequestDecision,
    export_exists: bool,
    failure: Option<String>,
    now: &Time,
) -> APIServiceExportRequestStatus {
    let mut status = current.clone();
    let schemas_ok = !decision
        .conditions
        .iter()
        .any(|c| c.type_ == CONDITION_EXPORTS_READY);
    for change in &decision.conditions {
        conditions::set(&mut status.conditions, change.clone(), now);
    }
    let mut phase = decision.phase.clone();
    if let Some(message) = failure {
        let change = ConditionChange::false_(
            CONDITION_EXPORTS_READY,
            REASON_PROVISIONING_FAILED,
            ConditionSeverity::Error,
            message,
        );
        conditions::set(&mut status.conditions, change, now);
    } else if export_exists && schemas_ok {
        let (ready, succeeded) = exports_created();
        conditions::set(&mut status.conditions, ready, now);
        if phase == APIServiceExportRequestPhase::Pending {
            phase = succeeded;
        }
    }
    if let Some(message) = &decision.terminal_message {
        status.terminal_message.clone_from(message);
    }
    status.phase = Some(phase);
    conditions::set_summary(&mut status.conditions, now);
    status
}

impl ExportRequestReconciler {
    /// BoundSchemas, export and APIServiceNamespaces of a valid Pending request; the export
    /// alone (if it exists) once the request succeeded. Returns the export, if there is one.
    async fn provision(
        &self,
        cluster: &Cluster,
        request: &APIServiceExportRequest,
        key: &ObjectKey,
        decision: &RequestDecision,
        exported: &ExportedSchemas,
    ) -> Result<Option<APIServiceExport>> {
        let namespace = key.namespace.clone().unwrap_or_default();
        let export = match &decision.export {
            Some((resources, _scope)) => {
                let specs = self
                    .ensure_bound_schemas(cluster, &namespace, resources, exported)
                    .await?;
                Some(
                    self.ensure_export(cluster, request, resources, &specs)
                        .await?,
                )
            }
            None if decision.phase == APIServiceExportRequestPhase::Succeeded => {
                self.exports.get(key).map(|e| (*e).clone())
            }
            None => None,
        };
        if let Some(export) = &export {
            self.ensure_namespaces(cluster, request, export).await?;
        }
        Ok(export)
    }

    /// Creates the missing BoundSchemas of `resources` from their source schemas and returns the
    /// specs of all of them, in order. Existing ones are left to the export controller, which
    /// keeps them in sync with their source.
    async fn ensure_bound_schemas(
        &self,
        cluster: &Cluster,
        namespace: &str,
        resources: &[ResolvedResource],
        exported: &ExportedSchemas,
    ) -> Result<Vec<BoundSchemaSpec>> {
        let api: Api<BoundSchema> = Api::namespaced(cluster.client(), namespace);
        let mut specs = Vec::with_capacity(resources.len());
        for resource in resources {
            let name = bound_schema_name(&resource.group_resource);
            let key = ObjectKey::new(cluster.id().clone(), Some(namespace.to_owned()), &name);
            if let Some(existing) = self.bound_schemas.get(&key) {
                specs.push(existing.spec.clone());
                continue;
            }
            // `decide` only resolves resources with a source schema.
            let Some(source) = exported.get(&resource.group_resource) else {
                continue;
            };
            let spec = exported_spec(&source.spec, &isolation(&self.options));
            let desired = bound_schema(spec.clone(), namespace, Some(&source.labels));
            match api.create(&PostParams::default(), &desired).await {
                Ok(_) => tracing::info!(bound_schema = %key, "created BoundSchema"),
                Err(err) if already_exists(&err) => {}
                Err(err) => return Err(api_error("create BoundSchema", key)(err)),
            }
            specs.push(spec);
        }
        Ok(specs)
    }

    /// The request's export: as cached, else created from the request.
    async fn ensure_export(
        &self,
        cluster: &Cluster,
        request: &APIServiceExportRequest,
        resources: &[ResolvedResource],
        specs: &[BoundSchemaSpec],
    ) -> Result<APIServiceExport> {
        let key = ObjectKey::from_meta(cluster.id().clone(), &request.metadata);
        if let Some(existing) = self.exports.get(&key) {
            return Ok((*existing).clone());
        }
        let namespace = key.namespace.clone().unwrap_or_default();
        let api: Api<APIServiceExport> = Api::namespaced(cluster.client(), &namespace);
        let desired = export_for_request(
            request,
            resources,
            specs,
            &self.options.informer_scope(),
            &isolation(&self.options),
        );
        match api.create(&PostParams::default(), &desired).await {
            Ok(created) => {
                tracing::info!(export = %key, "created APIServiceExport");
                Ok(created)
            }
            Err(err) if already_exists(&err) => api
                .get(&key.name)
                .await
                .map_err(api_error("read APIServiceExport", key)),
            Err(err) => Err(api_error("create APIServiceExport", key)(err)),
        }
    }

    /// Creates the APIServiceNamespaces the request lists, owned by the export.
    async fn ensure_namespaces(
        &self,
        cluster: &Cluster,
        request: &APIServiceExportRequest,
        export: &APIServiceExport,
    ) -> Result<()> {
        let namespace = request.metadata.namespace.clone().unwrap_or_default();
        let api: Api<APIServiceNamespace> = Api::namespaced(cluster.client(), &namespace);
        for wanted in &request.spec.namespaces {
            let key = ObjectKey::new(cluster.id().clone(), Some(namespace.clone()), &wanted.name);
            if self.namespaces.get(&key).is_some() {
                continue;
            }
            let Some(desired) = api_service_namespace_for_export(export, &wanted.name) else {
                continue;
            };
            match api.create(&PostParams::default(), &desired).await {
                Ok(_) => {
                    tracing::info!(api_service_namespace = %key, "created APIServiceNamespace")
                }
                Err(err) if already_exists(&err) => {}
                Err(err) => return Err(api_error("create APIServiceNamespace", key)(err)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use kube_bind_apis::ConditionStatus;
    use kube_bind_apis::apiserviceexport::CONDITION_PERMISSION_CLAIM;

    use super::*;

    fn now() -> Time {
        Time(Timestamp::from_second(1_700_000_000).unwrap())
    }

    fn decision(
        conditions: Vec<ConditionChange>,
        phase: APIServiceExportRequestPhase,
        terminal_message: Option<&str>,
    ) -> RequestDecision {
        RequestDecision {
            conditions,
            phase,
            terminal_message: terminal_message.map(str::to_owned),
            export: None,
            expired: false,
            requeue_at: None,
        }
    }

    fn schema_missing() -> ConditionChange {
        ConditionChange::false_(
            CONDITION_EXPORTS_READY,
            "SchemaNotFound",
            ConditionSeverity::Error,
            "Schema foos.example.dev not found",
        )
    }

    /// (type, status, reason) of every condition, in order.
    fn summary(status: &APIServiceExportRequestStatus) -> Vec<(&str, ConditionStatus, &str)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.clone(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn an_existing_export_makes_a_pending_request_succeed() {
        let d = decision(vec![], APIServiceExportRequestPhase::Pending, None);
        let status = request_status(&Default::default(), &d, true, None, &now());
        assert_eq!(status.phase, Some(APIServiceExportRequestPhase::Succeeded));
        assert_eq!(
            summary(&status),
            [
                ("Ready", ConditionStatus::True, ""),
                ("ExportsReady", ConditionStatus::True, "")
            ]
        );
        assert!(status.terminal_message.is_empty());
        let json = serde_json::to_value(&status).unwrap();
        assert!(
            json.get("terminalMessage").is_none(),
            "never an empty string"
        );
    }

    #[test]
    fn a_missing_schema_stays_pending_and_is_named() {
        let d = decision(
            vec![schema_missing()],
            APIServiceExportRequestPhase::Pending,
            None,
        );
        let status = request_status(&Default::default(), &d, false, None, &now());
        assert_eq!(status.phase, Some(APIServiceExportRequestPhase::Pending));
        assert_eq!(
            summary(&status),
            [
                ("Ready", ConditionStatus::False, "SchemaNotFound"),
                ("ExportsReady", ConditionStatus::False, "SchemaNotFound")
            ]
        );
    }

    #[test]
    fn a_failure_keeps_its_terminal_message_and_other_conditions_survive() {
        let mut current = APIServiceExportRequestStatus::default();
        conditions::set(
            &mut current.conditions,
            ConditionChange::true_("SomeoneElses"),
            &now(),
        );
        let claim = ConditionChange::false_(
            CONDITION_PERMISSION_CLAIM,
            "InvalidPermissionClaim",
            ConditionSeverity::Error,
            "Resource pods. is not a valid claimable API",
        );
        let d = decision(
            vec![claim],
            APIServiceExportRequestPhase::Failed,
            Some("Resource pods. is not a valid claimable API"),
        );
        let status = request_status(&current, &d, false, None, &now());
        assert_eq!(status.phase, Some(APIServiceExportRequestPhase::Failed));
        assert_eq!(
            status.terminal_message,
            "Resource pods. is not a valid claimable API"
        );
        assert_eq!(
            summary(&status),
            [
                ("Ready", ConditionStatus::False, "InvalidPermissionClaim"),
                (
                    "PermissionClaim",
                    ConditionStatus::False,
                    "InvalidPermissionClaim"
                ),
                ("SomeoneElses", ConditionStatus::True, ""),
            ]
        );
    }

    #[test]
    fn a_failed_write_is_reported_and_the_phase_waits() {
        let d = decision(vec![], APIServiceExportRequestPhase::Pending, None);
        let status = request_status(
            &Default::default(),
            &d,
            false,
            Some("cannot create BoundSchema: forbidden".into()),
            &now(),
        );
        assert_eq!(status.phase, Some(APIServiceExportRequestPhase::Pending));
        let ready = conditions::get(&status.conditions, CONDITION_EXPORTS_READY).unwrap();
        assert_eq!(
            (ready.reason.as_str(), ready.message.as_str()),
            (
                REASON_PROVISIONING_FAILED,
                "cannot create BoundSchema: forbidden"
            )
        );
    }

    #[test]
    fn the_same_decision_twice_changes_nothing() {
        let d = decision(vec![], APIServiceExportRequestPhase::Pending, None);
        let first = request_status(&Default::default(), &d, true, None, &now());
        let later = Time(Timestamp::from_second(1_700_000_100).unwrap());
        let d = decision(vec![], APIServiceExportRequestPhase::Succeeded, None);
        assert_eq!(request_status(&first, &d, true, None, &later), first);
    }
}
