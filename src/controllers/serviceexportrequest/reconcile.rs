//! One APIServiceExportRequest reconcile, as named steps: decide, ensure BoundSchemas, ensure
//! the export, ensure APIServiceNamespaces, write the status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube_bind_apis::apiserviceexportrequest::CONDITION_EXPORTS_READY;
use kube_bind_apis::conditions;
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase,
    APIServiceExportRequestStatus, APIServiceNamespace, BoundSchema, BoundSchemaSpec,
};

use super::{ExportRequestReconciler, informer_scope, isolation};
use crate::provider::Cluster;
use crate::resources::bound_schema::{bound_schema, bound_schema_name, exported_spec};
use crate::resources::export::export_for_request;
use crate::resources::export_request::{
    AvailableSchema, RequestDecision, ResolvedResource, SchemaCatalog, decide, exports_created,
};
use crate::resources::namespaces::api_service_namespace_for_export;
use crate::runtime::{Action, ObjectKey, Reconciler, Request, status};

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
            .exported(cluster.id(), &informer_scope(&self.options));
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
        let decision = decide(&request.spec, &phase, &catalog, created, now);

        let requests: Api<APIServiceExportRequest> = Api::namespaced(cluster.client(), &namespace);
        if decision.expired {
            tracing::info!(request = %key, "deleting request older than ten minutes");
            return match requests
                .delete(&key.name, &DeleteParams::background())
                .await
            {
                Ok(_) => Ok(Action::Done),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::Done),
                Err(err) => Err(api_error("delete expired", key)(err)),
            };
        }

        let mut status = request.status.clone().unwrap_or_default();
        let mut outcome = Outcome::from(&decision);
        if let Some((resources, _scope)) = &decision.export {
            let specs = self
                .ensure_bound_schemas(&cluster, &namespace, resources, &exported)
                .await?;
            let export = self
                .ensure_export(&cluster, &request, resources, &specs)
                .await?;
            outcome.export = Some(export);
        } else if decision.phase == APIServiceExportRequestPhase::Succeeded {
            outcome.export = self.exports.get(&key).map(|e| (*e).clone());
        }
        if let Some(export) = &outcome.export {
            self.ensure_namespaces(&cluster, &request, export).await?;
        }
        outcome.apply(&mut status, &Time(now));
        if request.status.as_ref() != Some(&status) {
            let json = serde_json::to_value(&status).unwrap_or_default();
            status::patch_status(&requests, &request, json)
                .await
                .map_err(api_error("write the status of", key.clone()))?;
        }
        Ok(match decision.requeue_at {
            Some(at) => Action::RequeueAfter(
                Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO),
            ),
            None => Action::Done,
        })
    }
}

/// What this reconcile concluded for the request's status.
struct Outcome {
    decision: RequestDecision,
    /// The request's export, once it exists.
    export: Option<APIServiceExport>,
}

impl From<&RequestDecision> for Outcome {
    fn from(decision: &RequestDecision) -> Self {
        Self {
            decision: decision.clone(),
            export: None,
        }
    }
}

impl Outcome {
    /// Sets the conditions, the phase and (on failure) the terminal message; keeps every
    /// condition the backend does not decide here, and recomputes `Ready`.
    fn apply(self, status: &mut APIServiceExportRequestStatus, now: &Time) {
        let schemas_ok = !self
            .decision
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_EXPORTS_READY);
        for change in self.decision.conditions {
            conditions::set(&mut status.conditions, change, now);
        }
        let mut phase = self.decision.phase;
        if self.export.is_some() && schemas_ok {
            let (ready, succeeded) = exports_created();
            conditions::set(&mut status.conditions, ready, now);
            if phase == APIServiceExportRequestPhase::Pending {
                phase = succeeded;
            }
        }
        if let Some(message) = self.decision.terminal_message {
            status.terminal_message = message;
        }
        status.phase = Some(phase);
        conditions::set_summary(&mut status.conditions, now);
    }
}

impl ExportRequestReconciler {
    /// Creates the missing BoundSchemas of `resources` from their source schemas and returns the
    /// specs of all of them, in order. Existing ones are left to the export controller, which
    /// keeps them in sync with their source.
    async fn ensure_bound_schemas(
        &self,
        cluster: &Cluster,
        namespace: &str,
        resources: &[ResolvedResource],
        exported: &crate::controllers::schema_source::ExportedSchemas,
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
            &informer_scope(&self.options),
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
