//! One APIServiceExport reconcile, as named steps: sync its BoundSchemas with their sources,
//! keep the spec-hash annotation, write `ProviderInSync`.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PostParams};
use kube_bind_apis::apiserviceexport::CONDITION_PROVIDER_IN_SYNC;
use kube_bind_apis::conditions::{self, ConditionChange};
use kube_bind_apis::keys::SOURCE_SPEC_HASH_ANNOTATION;
use kube_bind_apis::{APIServiceExport, BoundSchema, BoundSchemaSpec, ConditionSeverity};

use super::ExportReconciler;
use crate::controllers::schema_source::ExportedSchemas;
use crate::controllers::serviceexportrequest::isolation;
use crate::controllers::status::report_on_conditions;
use crate::provider::Cluster;
use crate::resources::bound_schema::{
    bound_schema_name, export_owner_reference, exported_spec, with_owner,
};
use crate::resources::export_hash::export_spec_hash;
use crate::runtime::{Action, Malformed, ObjectKey, Reconciler, Request, status};

/// Reason (`ProviderInSync`): a BoundSchema the export names is not in the cluster namespace.
pub const REASON_BOUND_SCHEMA_MISSING: &str = "BoundSchemaMissing";

/// A write of the export reconcile that failed, naming the object it concerned.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot {action} {object}: {source}")]
    Api {
        /// What was attempted, e.g. `update BoundSchema`.
        action: &'static str,
        /// The object, as `cluster|namespace/name`.
        object: ObjectKey,
        #[source]
        source: kube::Error,
    },
}

fn api_error(action: &'static str, object: ObjectKey) -> impl FnOnce(kube::Error) -> ExportError {
    move |source| ExportError::Api {
        action,
        object,
        source,
    }
}

impl Reconciler for ExportReconciler {
    type Object = APIServiceExport;
    type Error = ExportError;
    const NAME: &'static str = "serviceexport";

    /// A request or export the backend cannot decode gets `Ready=False` saying so.
    async fn report_malformed(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
        malformed: Arc<Malformed>,
    ) -> Result<Action, ExportError> {
        report_on_conditions::<APIServiceExport>(&cluster, &key, &malformed, &["v1alpha1"])
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
        }: Request<APIServiceExport>,
    ) -> Result<Action, ExportError> {
        let (Some(export), Some(namespace)) = (object, key.namespace.clone()) else {
            // Gone: its BoundSchemas and APIServiceNamespaces go with it by ownerReference.
            return Ok(Action::Done);
        };
        let exported = self
            .sources
            .exported(cluster.id(), &export.spec.informer_scope);
        let synced = self
            .sync_bound_schemas(&cluster, &namespace, &export, &exported)
            .await?;
        let exports: Api<APIServiceExport> = Api::namespaced(cluster.client(), &namespace);
        let mut export = (*export).clone();
        let in_sync = match synced {
            Ok(specs) => {
                export = ensure_hash(&exports, export, &specs, &key).await?;
                ConditionChange::true_(CONDITION_PROVIDER_IN_SYNC)
            }
            Err(missing) => ConditionChange::false_(
                CONDITION_PROVIDER_IN_SYNC,
                REASON_BOUND_SCHEMA_MISSING,
                ConditionSeverity::Error,
                format!(
                    "BoundSchema {} not found in the service provider cluster",
                    missing.join(", ")
                ),
            ),
        };
        let mut status = export.status.clone().unwrap_or_default();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        conditions::set(&mut status.conditions, in_sync, &now);
        conditions::set_summary(&mut status.conditions, &now);
        if export.status.as_ref() != Some(&status) {
            let json = serde_json::json!({"conditions": status.conditions});
            status::patch_status(&exports, &export, json)
                .await
                .map_err(api_error("write the status of", key))?;
        }
        Ok(Action::Done)
    }
}

/// Sets the spec-hash annotation to the hash of `specs` if it differs; returns the export as
/// written (or as it was).
async fn ensure_hash(
    exports: &Api<APIServiceExport>,
    export: APIServiceExport,
    specs: &[BoundSchemaSpec],
    key: &ObjectKey,
) -> Result<APIServiceExport, ExportError> {
    let hash = export_spec_hash(specs);
    if export.annotations().get(SOURCE_SPEC_HASH_ANNOTATION) == Some(&hash) {
        return Ok(export);
    }
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": export.metadata.resource_version,
        "annotations": {SOURCE_SPEC_HASH_ANNOTATION: hash},
    }});
    tracing::info!(export = %key, "source spec hash changed");
    exports
        .patch(&key.name, &status::params(), &Patch::Merge(&patch))
        .await
        .map_err(api_error("annotate", key.clone()))
}

impl ExportReconciler {
    /// Brings each BoundSchema the export names in step with its source schema (when the source
    /// is still exported) and adds the export as an owner. Returns their specs in `resources`
    /// order, or the names of the missing ones.
    async fn sync_bound_schemas(
        &self,
        cluster: &Cluster,
        namespace: &str,
        export: &APIServiceExport,
        exported: &ExportedSchemas,
    ) -> Result<Result<Vec<BoundSchemaSpec>, Vec<String>>, ExportError> {
        let api: Api<BoundSchema> = Api::namespaced(cluster.client(), namespace);
        let owner = export_owner_reference(export);
        let mut specs = Vec::new();
        let mut missing = Vec::new();
        for resource in &export.spec.resources {
            let group_resource = resource.group_resource();
            let name = bound_schema_name(&group_resource);
            let key = ObjectKey::new(cluster.id().clone(), Some(namespace.to_owned()), &name);
            let Some(current) = self.bound_schemas.get(&key) else {
                missing.push(name);
                continue;
            };
            let mut desired = (*current).clone();
            if let Some(source) = exported.get(&group_resource) {
                let mut spec = exported_spec(&source.spec, &isolation(&self.options));
                // The informer scope is the export's, fixed when it was created.
                spec.informer_scope = current.spec.informer_scope.clone();
                desired.spec = spec;
            }
            if let Some(owners) = owner.as_ref().and_then(|o| with_owner(&current, o)) {
                desired.metadata.owner_references = Some(owners);
            }
            if desired != *current {
                // Unset managedFields keep the stored ones; the cached copy may be stale.
                desired.metadata.managed_fields = None;
                // A full update guarded by the cached resourceVersion; status is not written
                // through the main resource, so the konnector's status stays.
                if desired.spec != current.spec {
                    tracing::info!(bound_schema = %key, "updating BoundSchema from its source schema");
                }
                let params = PostParams {
                    field_manager: status::params().field_manager,
                    ..PostParams::default()
                };
                api.replace(&name, &params, &desired)
                    .await
                    .map_err(api_error("update BoundSchema", key))?;
            }
            specs.push(desired.spec);
        }
        Ok(if missing.is_empty() {
            Ok(specs)
        } else {
            Err(missing)
        })
    }
}
