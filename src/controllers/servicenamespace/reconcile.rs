//! One APIServiceNamespace reconcile as named steps: the provider namespace, the `kube-binder`
//! RoleBinding in it, the claim RBAC of every export, stale claim RBAC removed, then
//! `status.namespace`; or, once it is gone, the clean-up of what it left.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt as _};
use kube_bind_apis::{APIServiceExport, APIServiceNamespace};

use super::ServiceNamespaceReconciler;
use crate::controllers::apply::{delete_if_present, ensure_binding, ensure_rules};
use crate::provider::{Cluster, ClusterId};
use crate::resources::namespaces::{
    api_service_namespace_of, provider_namespace, provider_namespace_name,
};
use crate::resources::owner::owner_of;
use crate::resources::rbac::{
    self, API_SERVICE_NAMESPACE_KIND, BINDER_ROLE_NAME, ClaimRbac, stale_claim_rbac,
    wants_provider_namespace_role_binding,
};
use crate::runtime::{Action, Cache, CachedResource, ObjectKey, Reconciler, Request, status};

#[derive(Debug, thiserror::Error)]
pub enum ServiceNamespaceError {
    #[error(
        "cannot {action} {what} for APIServiceNamespace {namespace}/{name} in cluster {cluster}: {source}"
    )]
    Write {
        action: &'static str,
        what: String,
        namespace: String,
        name: String,
        cluster: ClusterId,
        #[source]
        source: kube::Error,
    },
}

/// The APIServiceNamespace one reconcile works on.
struct Scope<'a> {
    cluster: &'a Cluster,
    /// The cluster namespace it lives in.
    cluster_ns: &'a str,
    name: &'a str,
}

impl Scope<'_> {
    fn failed(
        &self,
        action: &'static str,
        what: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> ServiceNamespaceError + '_ {
        let what = what.into();
        move |source| ServiceNamespaceError::Write {
            action,
            what,
            namespace: self.cluster_ns.to_owned(),
            name: self.name.to_owned(),
            cluster: self.cluster.id().clone(),
            source,
        }
    }

    fn key(&self, namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey::new(
            self.cluster.id().clone(),
            namespace.map(str::to_owned),
            name,
        )
    }

    /// Whether `meta` is labelled as made for this APIServiceNamespace.
    fn owns(&self, meta: &kube::api::ObjectMeta) -> bool {
        meta.labels
            .as_ref()
            .and_then(|l| owner_of(l, API_SERVICE_NAMESPACE_KIND))
            .is_some_and(|(ns, name)| ns == self.cluster_ns && name == self.name)
    }
}

impl Reconciler for ServiceNamespaceReconciler {
    type Object = APIServiceNamespace;
    type Error = ServiceNamespaceError;
    const NAME: &'static str = "servicenamespace";

    async fn reconcile(
        self: Arc<Self>,
        Request {
            cluster,
            key,
            object,
        }: Request<APIServiceNamespace>,
    ) -> Result<Action, ServiceNamespaceError> {
        let Some(cluster_ns) = key.namespace.as_deref() else {
            return Ok(Action::Done);
        };
        let scope = Scope {
            cluster: &cluster,
            cluster_ns,
            name: &key.name,
        };
        let Some(object) = object else {
            self.clean_up(&scope).await?;
            return Ok(Action::Done);
        };
        // Being deleted (or its cluster namespace is): nothing new is made; the clean-up runs
        // once it is gone.
        if object.metadata.deletion_timestamp.is_some() || !self.is_live(&scope, cluster_ns) {
            return Ok(Action::Done);
        }
        let provider_ns = provider_namespace_name(cluster_ns, &key.name, object.status.as_ref());
        if !self.ensure_provider_namespace(&scope, &provider_ns).await? {
            // Terminating: its deletion event runs this again to make it anew.
            return Ok(Action::Done);
        }
        self.ensure_binder_role_binding(&scope, &provider_ns)
            .await?;
        let exports: Vec<APIServiceExport> = self
            .exports
            .list(cluster.id(), Some(cluster_ns))
            .iter()
            .map(|e| (**e).clone())
            .collect();
        self.ensure_claim_rbac(&scope, &provider_ns, &exports)
            .await?;
        self.remove_stale_claim_rbac(&scope, &provider_ns, &exports)
            .await?;
        self.update_status(&scope, &object, &provider_ns).await?;
        Ok(Action::Done)
    }
}

impl ServiceNamespaceReconciler {
    /// Whether namespace `name` is cached and not being deleted.
    fn is_live(&self, scope: &Scope<'_>, name: &str) -> bool {
        self.namespaces
            .get(&scope.key(None, name))
            .is_some_and(|ns| ns.metadata.deletion_timestamp.is_none())
    }

    /// Creates the provider namespace, annotated with its APIServiceNamespace, if missing.
    /// Returns `false` while it is terminating.
    async fn ensure_provider_namespace(
        &self,
        scope: &Scope<'_>,
        provider_ns: &str,
    ) -> Result<bool, ServiceNamespaceError> {
        if let Some(existing) = self.namespaces.get(&scope.key(None, provider_ns)) {
            return Ok(existing.metadata.deletion_timestamp.is_none());
        }
        let api: Api<Namespace> = Api::all(scope.cluster.client());
        let desired = provider_namespace(scope.cluster_ns, scope.name, provider_ns);
        match api.create(&PostParams::default(), &desired).await {
            Ok(_) => {
                tracing::info!(provider_ns, "created provider namespace");
                Ok(true)
            }
            // Made by an earlier reconcile the cache has not seen yet.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(true),
            Err(err) => Err(scope.failed("create", format!("Namespace {provider_ns}"))(
                err,
            )),
        }
    }

    /// RoleBinding `kube-binder` in the provider namespace → ClusterRole `kube-binder-<ns>`, in
    /// Namespaced consumer scope; removed in Cluster scope, where the ClusterRoleBinding grants it.
    async fn ensure_binder_role_binding(
        &self,
        scope: &Scope<'_>,
        provider_ns: &str,
    ) -> Result<(), ServiceNamespaceError> {
        let api: Api<RoleBinding> = Api::namespaced(scope.cluster.client(), provider_ns);
        let current = self
            .role_bindings
            .get(&scope.key(Some(provider_ns), BINDER_ROLE_NAME));
        let what = format!("RoleBinding {provider_ns}/{BINDER_ROLE_NAME}");
        if !wants_provider_namespace_role_binding(&self.options.informer_scope()) {
            if current.is_some_and(|c| scope.owns(c.meta())) {
                delete_if_present(&api, BINDER_ROLE_NAME)
                    .await
                    .map_err(scope.failed("delete", what))?;
            }
            return Ok(());
        }
        let desired =
            rbac::provider_namespace_role_binding(scope.cluster_ns, scope.name, provider_ns);
        ensure_binding(&api, current.as_deref(), &desired)
            .await
            .map_err(scope.failed("apply", what))
    }

    /// A role and binding `kube-binder-export-<name>-<export>` per export, granting its claims:
    /// namespaced in the provider namespace, or cluster-wide in Cluster scope.
    async fn ensure_claim_rbac(
        &self,
        scope: &Scope<'_>,
        provider_ns: &str,
        exports: &[APIServiceExport],
    ) -> Result<(), ServiceNamespaceError> {
        let client = scope.cluster.client();
        for export in exports {
            let wanted = rbac::claim_rbac(
                &self.options.informer_scope(),
                scope.cluster_ns,
                scope.name,
                provider_ns,
                export,
            );
            match wanted {
                ClaimRbac::Namespaced { role, binding } => {
                    let name = role.name_any();
                    let what = format!("Role and RoleBinding {provider_ns}/{name}");
                    let key = scope.key(Some(provider_ns), &name);
                    let roles: Api<Role> = Api::namespaced(client.clone(), provider_ns);
                    ensure_rules(&roles, self.roles.get(&key).as_deref(), &role)
                        .await
                        .map_err(scope.failed("apply", what.clone()))?;
                    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), provider_ns);
                    ensure_binding(&bindings, self.role_bindings.get(&key).as_deref(), &binding)
                        .await
                        .map_err(scope.failed("apply", what))?;
                }
                ClaimRbac::Cluster { role, binding } => {
                    let name = role.name_any();
                    let what = format!("ClusterRole and ClusterRoleBinding {name}");
                    let key = scope.key(None, &name);
                    let roles: Api<ClusterRole> = Api::all(client.clone());
                    ensure_rules(&roles, self.cluster_roles.get(&key).as_deref(), &role)
                        .await
                        .map_err(scope.failed("apply", what.clone()))?;
                    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
                    let current = self.cluster_role_bindings.get(&key);
                    ensure_binding(&bindings, current.as_deref(), &binding)
                        .await
                        .map_err(scope.failed("apply", what))?;
                }
            }
        }
        Ok(())
    }

    /// Deletes claim RBAC of this APIServiceNamespace for exports that are gone, and all of it
    /// of the kind the consumer scope does not use.
    async fn remove_stale_claim_rbac(
        &self,
        scope: &Scope<'_>,
        provider_ns: &str,
        exports: &[APIServiceExport],
    ) -> Result<(), ServiceNamespaceError> {
        let cluster_scope = !wants_provider_namespace_role_binding(&self.options.informer_scope());
        let (namespaced_wanted, cluster_wanted): (&[APIServiceExport], &[APIServiceExport]) =
            if cluster_scope {
                (&[], exports)
            } else {
                (exports, &[])
            };
        let client = scope.cluster.client();
        let id = scope.cluster.id();
        let in_ns = Some(provider_ns);
        self.delete_stale(
            scope,
            &self.roles,
            Api::<Role>::namespaced(client.clone(), provider_ns),
            in_ns,
            namespaced_wanted,
            id,
        )
        .await?;
        self.delete_stale(
            scope,
            &self.role_bindings,
            Api::<RoleBinding>::namespaced(client.clone(), provider_ns),
            in_ns,
            namespaced_wanted,
            id,
        )
        .await?;
        self.delete_stale(
            scope,
            &self.cluster_roles,
            Api::<ClusterRole>::all(client.clone()),
            None,
            cluster_wanted,
            id,
        )
        .await?;
        self.delete_stale(
            scope,
            &self.cluster_role_bindings,
            Api::<ClusterRoleBinding>::all(client),
            None,
            cluster_wanted,
            id,
        )
        .await
    }

    async fn delete_stale<K: CachedResource + Resource<DynamicType = ()>>(
        &self,
        scope: &Scope<'_>,
        cache: &Cache<K>,
        api: Api<K>,
        namespace: Option<&str>,
        wanted: &[APIServiceExport],
        cluster: &ClusterId,
    ) -> Result<(), ServiceNamespaceError> {
        let cached = cache.list(cluster, namespace);
        let stale = stale_claim_rbac(
            scope.cluster_ns,
            scope.name,
            wanted,
            cached.iter().map(|o| o.meta()),
        );
        for name in stale {
            tracing::info!(kind = %K::kind(&()), name, "deleting stale claim RBAC");
            delete_if_present(&api, &name)
                .await
                .map_err(scope.failed("delete", format!("{} {name}", K::kind(&()))))?;
        }
        Ok(())
    }

    /// Records the provider namespace in `status.namespace`.
    async fn update_status(
        &self,
        scope: &Scope<'_>,
        object: &APIServiceNamespace,
        provider_ns: &str,
    ) -> Result<(), ServiceNamespaceError> {
        let recorded = object.status.as_ref().map(|s| s.namespace.as_str());
        if recorded == Some(provider_ns) {
            return Ok(());
        }
        let api: Api<APIServiceNamespace> =
            Api::namespaced(scope.cluster.client(), scope.cluster_ns);
        status::patch_status(&api, object, serde_json::json!({"namespace": provider_ns}))
            .await
            .map_err(scope.failed("write status of", "APIServiceNamespace"))?;
        Ok(())
    }

    /// What a deleted APIServiceNamespace leaves: its provider namespace (namespaced RBAC goes
    /// with it) and its cluster-scoped claim RBAC, which nothing else would remove.
    async fn clean_up(&self, scope: &Scope<'_>) -> Result<(), ServiceNamespaceError> {
        let id = scope.cluster.id();
        let client = scope.cluster.client();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let owned_namespaces = self.namespaces.list(id, None).into_iter().filter(|ns| {
            ns.metadata.deletion_timestamp.is_none()
                && api_service_namespace_of(ns)
                    .is_some_and(|(c, n)| c == scope.cluster_ns && n == scope.name)
        });
        for namespace in owned_namespaces {
            let name = namespace.name_any();
            tracing::info!(provider_ns = name, "deleting provider namespace");
            delete_if_present(&namespaces, &name)
                .await
                .map_err(scope.failed("delete", format!("Namespace {name}")))?;
        }
        self.delete_stale(
            scope,
            &self.cluster_roles,
            Api::<ClusterRole>::all(client.clone()),
            None,
            &[],
            id,
        )
        .await?;
        self.delete_stale(
            scope,
            &self.cluster_role_bindings,
            Api::<ClusterRoleBinding>::all(client),
            None,
            &[],
            id,
        )
        .await
    }
}
