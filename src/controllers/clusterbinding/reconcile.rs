//! One ClusterBinding reconcile as named steps: RBAC of the cluster namespace (its RoleBinding
//! and the global role it refers to, the ClusterRole of its bound resources, the
//! ClusterRoleBinding in Cluster scope), then the `Healthy` condition and `Ready` summary
//! through the status subresource.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube_bind_apis::ClusterBinding;
use kube_bind_apis::clusterbinding::CONDITION_PERMITTED;
use kube_bind_apis::conditions::{self, ConditionChange, ConditionSeverity};

use super::ClusterBindingReconciler;
use crate::controllers::apply::{
    delete_if_present, ensure_binder_cluster_role, ensure_binding, ensure_rules,
};
use crate::controllers::status::report_on_conditions;
use crate::provider::{Cluster, ClusterId};
use crate::resources::heartbeat::health;
use crate::resources::rbac::{
    self, ClusterNamespace, RbacError, cluster_role_name, wants_cluster_role_binding,
};
use crate::runtime::{Action, Malformed, ObjectKey, Reconciler, Request, status};

#[derive(Debug, thiserror::Error)]
pub enum ClusterBindingError {
    #[error(
        "cannot {action} {what} for ClusterBinding {namespace}/cluster in cluster {cluster}: {source}"
    )]
    Write {
        action: &'static str,
        what: String,
        namespace: String,
        cluster: ClusterId,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Rbac(#[from] RbacError),
}

impl ClusterBindingError {
    /// The API server's message when it refused a write with 403.
    fn forbidden(&self) -> Option<&str> {
        match self {
            Self::Write {
                source: kube::Error::Api(status),
                ..
            } if status.code == 403 => Some(&status.message),
            _ => None,
        }
    }
}

/// What one reconcile works on.
struct Scope<'a> {
    cluster: &'a Cluster,
    namespace: &'a str,
}

impl Scope<'_> {
    fn failed(
        &self,
        action: &'static str,
        what: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> ClusterBindingError + '_ {
        let what = what.into();
        move |source| ClusterBindingError::Write {
            action,
            what,
            namespace: self.namespace.to_owned(),
            cluster: self.cluster.id().clone(),
            source,
        }
    }
}

impl Reconciler for ClusterBindingReconciler {
    type Object = ClusterBinding;
    type Error = ClusterBindingError;
    const NAME: &'static str = "clusterbinding";

    async fn reconcile(
        self: Arc<Self>,
        Request {
            cluster,
            key,
            object,
        }: Request<ClusterBinding>,
    ) -> Result<Action, ClusterBindingError> {
        // A deleted binding leaves its RBAC to the cluster namespace: the RoleBinding lives in
        // it and the cluster-scoped objects are owned by it (garbage collected with it).
        let (Some(binding), Some(namespace)) = (object, key.namespace.as_deref()) else {
            return Ok(Action::Done);
        };
        let scope = Scope {
            cluster: &cluster,
            namespace,
        };
        let rbac = self.ensure_rbac(&scope).await;
        // A refusal is shown on the binding and waits (see `Reconciler::Error`): in kcp it ends
        // when the provider accepts the claims, and the binding's change runs this again.
        let refused = rbac.as_ref().err().and_then(ClusterBindingError::forbidden);
        let recheck = self.update_status(&scope, &binding, refused).await?;
        rbac?;
        Ok(match recheck {
            Some(after) => Action::RequeueAfter(after),
            None => Action::Done,
        })
    }

    async fn report_malformed(
        self: Arc<Self>,
        cluster: Cluster,
        key: ObjectKey,
        malformed: Arc<Malformed>,
    ) -> Result<Action, ClusterBindingError> {
        let namespace = key.namespace.clone().unwrap_or_default();
        report_on_conditions::<ClusterBinding>(&cluster, &key, &malformed, &["v1alpha1"])
            .await
            .map_err(|source| ClusterBindingError::Write {
                action: "report a malformed object on",
                what: "ClusterBinding".to_owned(),
                namespace,
                cluster: cluster.id().clone(),
                source,
            })?;
        Ok(Action::Done)
    }
}

impl ClusterBindingReconciler {
    /// The RBAC steps; skipped while the cluster namespace is missing or terminating, so nothing
    /// cluster-scoped is created that its garbage collection already passed over.
    async fn ensure_rbac(&self, scope: &Scope<'_>) -> Result<(), ClusterBindingError> {
        let id = scope.cluster.id();
        let ns_key = ObjectKey::new(id.clone(), None, scope.namespace);
        let Some(namespace) = self.namespaces.get(&ns_key) else {
            return Ok(());
        };
        let Some(uid) = live_uid(&namespace) else {
            return Ok(());
        };
        let cluster_ns = ClusterNamespace {
            name: scope.namespace,
            uid,
        };
        self.ensure_role_binding(scope).await?;
        self.ensure_binder_role(scope).await?;
        self.ensure_cluster_role(scope, cluster_ns).await?;
        self.ensure_cluster_role_binding(scope, cluster_ns).await
    }

    /// RoleBinding `kube-binder` in the cluster namespace → ClusterRole `kube-binder`.
    async fn ensure_role_binding(&self, scope: &Scope<'_>) -> Result<(), ClusterBindingError> {
        let desired = rbac::cluster_namespace_role_binding(scope.namespace);
        let key = ObjectKey::new(
            scope.cluster.id().clone(),
            Some(scope.namespace.to_owned()),
            rbac::BINDER_ROLE_NAME,
        );
        let current = self.role_bindings.get(&key);
        let api: Api<RoleBinding> = Api::namespaced(scope.cluster.client(), scope.namespace);
        ensure_binding(&api, current.as_deref(), &desired)
            .await
            .map_err(scope.failed("apply", "RoleBinding kube-binder"))
    }

    /// The global ClusterRole `kube-binder` the RoleBinding refers to, once per cluster and
    /// process. Bind-time provisioning writes it too; without this a ClusterBinding made any
    /// other way (by an operator, a migration, a test) would bind the consumer to nothing.
    async fn ensure_binder_role(&self, scope: &Scope<'_>) -> Result<(), ClusterBindingError> {
        let id = scope.cluster.id();
        if self.binder_role_ensured.contains(id) {
            return Ok(());
        }
        ensure_binder_cluster_role(&Api::all(scope.cluster.client()))
            .await
            .map_err(scope.failed("apply", format!("ClusterRole {}", rbac::BINDER_ROLE_NAME)))?;
        self.binder_role_ensured.insert(id.clone());
        Ok(())
    }

    /// ClusterRole `kube-binder-<ns>`: BoundSchema access plus the bound resources of every
    /// export in the namespace.
    async fn ensure_cluster_role(
        &self,
        scope: &Scope<'_>,
        cluster_ns: ClusterNamespace<'_>,
    ) -> Result<(), ClusterBindingError> {
        let id = scope.cluster.id();
        let exports: Vec<_> = self
            .exports
            .list(id, Some(scope.namespace))
            .iter()
            .map(|e| (**e).clone())
            .collect();
        let schemas = self.schemas.list(id, Some(scope.namespace));
        let rules = rbac::bound_resource_rules(scope.namespace, &exports, |name| {
            schemas
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
                .map(|s| &**s)
        })?;
        let desired = rbac::cluster_role(cluster_ns, rules);
        let name = cluster_role_name(scope.namespace);
        let current = self
            .cluster_roles
            .get(&ObjectKey::new(id.clone(), None, &name));
        let api: Api<ClusterRole> = Api::all(scope.cluster.client());
        ensure_rules(&api, current.as_deref(), &desired)
            .await
            .map_err(scope.failed("apply", format!("ClusterRole {name}")))
    }

    /// ClusterRoleBinding `kube-binder-<ns>` in Cluster consumer scope; deleted otherwise.
    async fn ensure_cluster_role_binding(
        &self,
        scope: &Scope<'_>,
        cluster_ns: ClusterNamespace<'_>,
    ) -> Result<(), ClusterBindingError> {
        let name = cluster_role_name(scope.namespace);
        let current = self.cluster_role_bindings.get(&ObjectKey::new(
            scope.cluster.id().clone(),
            None,
            &name,
        ));
        let api: Api<ClusterRoleBinding> = Api::all(scope.cluster.client());
        if !wants_cluster_role_binding(&self.options.informer_scope()) {
            if current.is_some() {
                tracing::info!(
                    name,
                    "deleting ClusterRoleBinding: consumer scope is not Cluster"
                );
                delete_if_present(&api, &name)
                    .await
                    .map_err(scope.failed("delete", format!("ClusterRoleBinding {name}")))?;
            }
            return Ok(());
        }
        let desired = rbac::cluster_role_binding(cluster_ns);
        ensure_binding(&api, current.as_deref(), &desired)
            .await
            .map_err(scope.failed("apply", format!("ClusterRoleBinding {name}")))
    }

    /// Sets `Healthy` from the heartbeat, `Permitted` from the RBAC step's refusal (if any) and
    /// the `Ready` summary over every condition (the konnector's kept), written only when they
    /// changed. Returns when to judge again.
    async fn update_status(
        &self,
        scope: &Scope<'_>,
        binding: &ClusterBinding,
        refused: Option<&str>,
    ) -> Result<Option<Duration>, ClusterBindingError> {
        let now = Timestamp::now();
        let judged = health(binding.status.as_ref(), now);
        let current = binding
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let mut next = current.clone();
        let at = Time(now);
        conditions::set(&mut next, judged.condition, &at);
        match refused {
            Some(message) => conditions::set(&mut next, permission_refused(message), &at),
            None => conditions::delete(&mut next, CONDITION_PERMITTED),
        }
        conditions::set_summary(&mut next, &at);
        if next != current {
            let api: Api<ClusterBinding> = Api::namespaced(scope.cluster.client(), scope.namespace);
            let patch = serde_json::json!({ "conditions": next });
            status::patch_status(&api, binding, patch)
                .await
                .map_err(scope.failed("write status of", "ClusterBinding"))?;
        }
        Ok(judged.recheck_at.map(|at| {
            let wait = at.duration_since(now);
            Duration::try_from(wait).unwrap_or_default() + Duration::from_secs(1)
        }))
    }
}

/// `Permitted` False: what was refused, and what the provider can do about it.
fn permission_refused(message: &str) -> ConditionChange {
    ConditionChange::false_(
        CONDITION_PERMITTED,
        "Forbidden",
        ConditionSeverity::Error,
        format!(
            "kube-bind-backend may not write the RBAC of this cluster namespace: {message}; on kcp, \
             accept the permission claims of the kube-bind.io APIBinding in this workspace, \
             otherwise grant the backend's RBAC; it retries on its own"
        ),
    )
}

/// The uid of a namespace that is not being deleted.
fn live_uid(namespace: &Namespace) -> Option<&str> {
    if namespace.metadata.deletion_timestamp.is_some() {
        return None;
    }
    namespace.metadata.uid.as_deref()
}
