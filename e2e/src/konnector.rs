//! A konnector simulator: makes exactly the provider-side writes upstream's konnector makes in
//! one cluster namespace (reference §6), so the backend's controllers can be tested end to end
//! without a consumer cluster. Decisions are in [`decide`]; every status write goes through
//! [`write::write_status`] (resourceVersion precondition, re-read and re-apply on 409).
//!
//! What it writes, and nothing else:
//! - ClusterBinding `cluster` status: `lastHeartbeatTime`, `heartbeatInterval`,
//!   `konnectorVersion`, `SecretValid`, `ValidVersion` and `Ready` ([`Konnector::heartbeat_once`],
//!   periodically through [`Konnector::start_heartbeat`]);
//! - APIServiceExport conditions `Connected` and `ConsumerInSync` ([`Konnector::mark_export`]);
//! - BoundSchema status, all of it but `instantiations` ([`Konnector::report_bound_schema`]);
//! - APIServiceNamespaces for consumer namespaces ([`Konnector::claim_namespace`],
//!   [`Konnector::release_namespace`]).
//!
//! Not simulated: syncing bound objects and claimed objects, copying the kubeconfig Secret to
//! the consumer, the consumer-side objects themselves.

pub mod decide;
pub mod write;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::{Client, Resource, ResourceExt};
use kube_bind_apis::keys::{OWNER_LABEL, Owner};
use kube_bind_apis::v1alpha2::clusterbinding::CLUSTER_BINDING_NAME;
use kube_bind_apis::{
    APIServiceExport, APIServiceNamespace, APIServiceNamespaceSpec, BoundSchema, ClusterBinding,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use decide::{ConsumerBinding, ExportReport, established_crd_status};

/// The heartbeat interval upstream's konnector reports by default (`5m0s`).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(300);
/// The version a konnector built without ldflags reports (upstream `BinaryVersion`).
pub const DEFAULT_VERSION: &str = "v0.0.0";

#[derive(Debug, thiserror::Error)]
pub enum KonnectorError {
    #[error("konnector could not {action} {kind} {namespace}/{name}: {source}")]
    Kube {
        action: &'static str,
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "konnector gave up writing {kind} {namespace}/{name} after {attempts} conflicts; \
         another writer keeps changing it"
    )]
    Conflict {
        kind: String,
        namespace: String,
        name: String,
        attempts: usize,
    },
}

/// The konnector of one consumer, as seen from the provider: it acts in one cluster namespace
/// with whatever client it is given (a test's admin, or the `kube-binder` service account).
#[derive(Clone)]
pub struct Konnector {
    client: Client,
    namespace: String,
    heartbeat_interval: Duration,
    version: String,
}

impl Konnector {
    /// A konnector for `cluster_namespace` reporting [`DEFAULT_HEARTBEAT_INTERVAL`] and
    /// [`DEFAULT_VERSION`].
    pub fn new(provider: Client, cluster_namespace: &str) -> Self {
        Konnector {
            client: provider,
            namespace: cluster_namespace.to_owned(),
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            version: DEFAULT_VERSION.to_owned(),
        }
    }

    /// Reports `interval` as `heartbeatInterval` and heartbeats on its schedule.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Reports `version` as `konnectorVersion`; empty reports `unknown` and `ValidVersion=False`.
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// The cluster namespace it acts in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn api<K: Resource<Scope = k8s_openapi::NamespaceResourceScope>>(&self) -> Api<K>
    where
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn error(
        &self,
        action: &'static str,
        kind: &str,
        name: &str,
        source: kube::Error,
    ) -> KonnectorError {
        KonnectorError::Kube {
            action,
            kind: kind.to_owned(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            source,
        }
    }

    /// One reconcile of the konnector's ClusterBinding controller: `lastHeartbeatTime` is
    /// refreshed when missing or older than half the interval, `heartbeatInterval`,
    /// `konnectorVersion`, `SecretValid` (from the Secret `spec.kubeconfigSecretRef` names),
    /// `ValidVersion` and `Ready` are set; other conditions are kept. Returns the object written.
    pub async fn heartbeat_once(&self) -> Result<ClusterBinding, KonnectorError> {
        let bindings: Api<ClusterBinding> = self.api();
        let binding = bindings
            .get(CLUSTER_BINDING_NAME)
            .await
            .map_err(|e| self.error("get", "ClusterBinding", CLUSTER_BINDING_NAME, e))?;
        let reference = &binding.spec.kubeconfig_secret_ref;
        let secret = self
            .api::<Secret>()
            .get_opt(&reference.name)
            .await
            .map_err(|e| self.error("get", "Secret", &reference.name, e))?;
        let secret_valid = decide::secret_valid(secret.as_ref(), &self.namespace, reference);
        write::write_status(
            &bindings,
            &self.namespace,
            CLUSTER_BINDING_NAME,
            |live, now| {
                let current = live.status.clone().unwrap_or_default();
                let next = decide::cluster_binding_status(
                    &current,
                    secret_valid.clone(),
                    &self.version,
                    self.heartbeat_interval,
                    now,
                );
                let changed = next != current;
                changed.then(|| {
                    serde_json::json!({
                        "lastHeartbeatTime": next.last_heartbeat_time,
                        "heartbeatInterval": next.heartbeat_interval,
                        "konnectorVersion": next.konnector_version,
                        "conditions": next.conditions,
                    })
                })
            },
        )
        .await
    }

    /// Heartbeats now and then every half interval (as upstream polls) until the task is
    /// stopped or dropped. Failures are logged and retried on the next tick.
    pub fn start_heartbeat(&self) -> HeartbeatTask {
        let token = CancellationToken::new();
        let konnector = self.clone();
        let stop = token.clone();
        let period = (self.heartbeat_interval / 2).max(Duration::from_millis(100));
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                if let Err(error) = konnector.heartbeat_once().await {
                    tracing::warn!(namespace = %konnector.namespace, %error, "simulated heartbeat failed");
                }
            }
        });
        HeartbeatTask {
            token,
            handle: Some(handle),
        }
    }

    /// Creates the APIServiceNamespace `consumer_namespace` for the export `export`, as the
    /// konnector does before syncing the first object of that namespace: a controller owner
    /// reference to the export and no owner label. An existing one is returned as it is.
    pub async fn claim_namespace(
        &self,
        export: &str,
        consumer_namespace: &str,
    ) -> Result<APIServiceNamespace, KonnectorError> {
        let namespaces: Api<APIServiceNamespace> = self.api();
        let kind = "APIServiceNamespace";
        if let Some(existing) = namespaces
            .get_opt(consumer_namespace)
            .await
            .map_err(|e| self.error("get", kind, consumer_namespace, e))?
        {
            return Ok(existing);
        }
        let owner = self
            .api::<APIServiceExport>()
            .get(export)
            .await
            .map_err(|e| self.error("get", "APIServiceExport", export, e))?;
        let object = APIServiceNamespace {
            metadata: ObjectMeta {
                name: Some(consumer_namespace.to_owned()),
                namespace: Some(self.namespace.clone()),
                owner_references: Some(vec![controller_reference(&owner)]),
                ..Default::default()
            },
            spec: APIServiceNamespaceSpec {},
            status: None,
        };
        match namespaces.create(&PostParams::default(), &object).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(status)) if status.code == 409 => namespaces
                .get(consumer_namespace)
                .await
                .map_err(|e| self.error("get", kind, consumer_namespace, e)),
            Err(e) => Err(self.error("create", kind, consumer_namespace, e)),
        }
    }

    /// The provider namespace the backend assigned to `consumer_namespace`, once it has.
    pub async fn provider_namespace(
        &self,
        consumer_namespace: &str,
    ) -> Result<Option<String>, KonnectorError> {
        let found = self
            .api::<APIServiceNamespace>()
            .get_opt(consumer_namespace)
            .await
            .map_err(|e| self.error("get", "APIServiceNamespace", consumer_namespace, e))?;
        Ok(found
            .and_then(|n| n.status)
            .map(|s| s.namespace)
            .filter(|n| !n.is_empty()))
    }

    /// The consumer namespace is gone: deletes its APIServiceNamespace if the konnector created
    /// it (no `kube-bind.io/owner=provider` label). Provider-owned ones are left alone (upstream
    /// re-creates the consumer namespace instead). Returns whether one was deleted.
    pub async fn release_namespace(
        &self,
        consumer_namespace: &str,
    ) -> Result<bool, KonnectorError> {
        let namespaces: Api<APIServiceNamespace> = self.api();
        let kind = "APIServiceNamespace";
        let Some(found) = namespaces
            .get_opt(consumer_namespace)
            .await
            .map_err(|e| self.error("get", kind, consumer_namespace, e))?
        else {
            return Ok(false);
        };
        if found.labels().get(OWNER_LABEL).map(String::as_str) == Some(Owner::Provider.as_str()) {
            return Ok(false);
        }
        match namespaces
            .delete(consumer_namespace, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(self.error("delete", kind, consumer_namespace, e)),
        }
    }

    /// Writes the export's `Connected` and `ConsumerInSync` for what the consumer `report`s;
    /// other conditions are kept and no `Ready` is written (upstream's konnector writes none).
    pub async fn mark_export(
        &self,
        name: &str,
        report: &ExportReport,
    ) -> Result<APIServiceExport, KonnectorError> {
        let exports: Api<APIServiceExport> = self.api();
        write::write_status(&exports, &self.namespace, name, |live, now| {
            let current = live
                .status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            let next = decide::export_conditions(current, name, report, now);
            (next != current).then(|| serde_json::json!({ "conditions": next }))
        })
        .await
    }

    /// Writes the BoundSchema's status after installing its CRD on the consumer, whose status
    /// reads `crd` (see [`established_crd_status`] for a CRD that went in cleanly).
    pub async fn report_bound_schema(
        &self,
        name: &str,
        crd: &CustomResourceDefinitionStatus,
    ) -> Result<BoundSchema, KonnectorError> {
        let schemas: Api<BoundSchema> = self.api();
        write::write_status(&schemas, &self.namespace, name, |live, now| {
            let current = live.status.clone().unwrap_or_default();
            let next = decide::bound_schema_status(&current, crd, now);
            (next != current).then(|| {
                serde_json::json!({
                    "acceptedNames": next.accepted_names,
                    "storedVersions": next.stored_versions,
                    "conditions": next.conditions,
                })
            })
        })
        .await
    }
}

/// `metav1.NewControllerRef(export, …)`: controller and blockOwnerDeletion set.
fn controller_reference(export: &APIServiceExport) -> OwnerReference {
    OwnerReference {
        api_version: APIServiceExport::api_version(&()).into_owned(),
        kind: APIServiceExport::kind(&()).into_owned(),
        name: export.name_any(),
        uid: export.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The periodic heartbeat of a [`Konnector`]; stopped when dropped.
pub struct HeartbeatTask {
    token: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl HeartbeatTask {
    /// Stops heartbeating and waits until the last write has finished.
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for HeartbeatTask {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
