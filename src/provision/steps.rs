//! The steps of bind-time provisioning (reference §3.1), each a thin async shell around the
//! builders in [`super::objects`]. Every step is idempotent: a bind that failed halfway is
//! finished by the next one.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_bind_apis::{CLUSTER_BINDING_NAME, ClusterBinding};
use serde_json::json;

use super::objects::{self, Claim, KUBECONFIG_SECRET_NAME, TOKEN_SECRET_NAME};
use super::{Identity, ProvisionError};
use crate::controllers::apply::{ensure_binder_cluster_role, ensure_binding};
use crate::provider::Cluster;
use crate::resources::rbac::{self, BINDER_ROLE_NAME, SERVICE_ACCOUNT_NAME};

/// How often, and how long, the token Secret is read until the token controller filled it.
pub const TOKEN_POLL_INTERVAL: Duration = Duration::from_millis(500);
pub const TOKEN_POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// The steps, writing into one cluster.
pub struct Steps<'c> {
    cluster: &'c Cluster,
    client: kube::Client,
}

fn is_code(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

impl<'c> Steps<'c> {
    pub fn new(cluster: &'c Cluster) -> Self {
        Self {
            cluster,
            client: cluster.client(),
        }
    }

    fn failed(&self, action: impl Into<String>) -> impl FnOnce(kube::Error) -> ProvisionError {
        let cluster = self.cluster.id().clone();
        let action = action.into();
        move |source| ProvisionError::Api {
            cluster,
            action,
            source,
        }
    }

    /// The namespaces of `identity`, with how each is tied to it.
    async fn namespaces_of(
        &self,
        api: &Api<Namespace>,
        identity: &Identity,
    ) -> Result<Vec<(Namespace, Claim)>, ProvisionError> {
        let all = api
            .list(&ListParams::default())
            .await
            .map_err(self.failed("list namespaces"))?;
        Ok(all
            .items
            .into_iter()
            .filter(|ns| ns.metadata.name.is_some())
            .filter_map(|ns| objects::claim_of(&ns, identity).map(|claim| (ns, claim)))
            .collect())
    }

    /// Step 1: the cluster namespace of `identity`, found by its annotation (the legacy key is
    /// migrated) or created with `generateName: <prefix>-`.
    ///
    /// NOTE: the caller serializes binds of one identity in this process. Two replicas binding
    /// the same identity at once can both find nothing and both create: each then lists again
    /// (a consistent read, so the later creator sees both) and the one that did not create the
    /// oldest namespace deletes its own. Both keep theirs only when they were created in the
    /// same second (`creationTimestamp` has no finer grain), the later one sorts first by name,
    /// and the earlier creator listed before the later one existed; the next bind then fails
    /// with [`ProvisionError::AmbiguousNamespace`], as upstream's does.
    pub async fn cluster_namespace(
        &self,
        prefix: &str,
        identity: &Identity,
    ) -> Result<String, ProvisionError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut found = self.namespaces_of(&api, identity).await?;
        if found.len() > 1 {
            return Err(self.ambiguous(identity, &found));
        }
        if let Some((namespace, claim)) = found.pop() {
            let name = namespace.metadata.name.unwrap_or_default();
            if claim == Claim::Legacy {
                api.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(objects::legacy_migration_patch(identity)),
                )
                .await
                .map_err(self.failed(format!(
                    "migrate the identity annotation of namespace {name}"
                )))?;
                tracing::info!(namespace = %name, "moved the legacy identity annotation to the current key");
            }
            return Ok(name);
        }

        let created = api
            .create(
                &PostParams::default(),
                &objects::cluster_namespace(prefix, identity),
            )
            .await
            .map_err(self.failed(format!("create a namespace for identity {identity}")))?;
        let name = created
            .metadata
            .name
            .ok_or_else(|| ProvisionError::UnnamedNamespace {
                cluster: self.cluster.id().clone(),
                identity: identity.to_string(),
            })?;

        // Another replica may have created one for the same identity meanwhile: keep the oldest.
        let found = self.namespaces_of(&api, identity).await?;
        let keep = objects::oldest(found.iter().map(|(ns, _)| ns))
            .and_then(|ns| ns.metadata.name.clone())
            .unwrap_or_else(|| name.clone());
        if keep == name {
            tracing::info!(namespace = %name, "created cluster namespace");
            return Ok(name);
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(err) if is_code(&err, 404) => {}
            Err(err) => {
                return Err(self.failed(format!("delete duplicate namespace {name}"))(
                    err,
                ));
            }
        }
        tracing::info!(namespace = %keep, duplicate = %name, "another bind of this identity created its namespace first; deleted ours");
        Ok(keep)
    }

    fn ambiguous(&self, identity: &Identity, found: &[(Namespace, Claim)]) -> ProvisionError {
        ProvisionError::AmbiguousNamespace {
            cluster: self.cluster.id().clone(),
            identity: identity.to_string(),
            namespaces: found
                .iter()
                .filter_map(|(ns, _)| ns.metadata.name.clone())
                .collect(),
        }
    }

    /// Step 2: the ClusterBinding `cluster`, created if missing; returns the name of its
    /// kubeconfig Secret (an existing binding's, which is immutable).
    pub async fn cluster_binding(
        &self,
        namespace: &str,
        pretty_name: &str,
    ) -> Result<String, ProvisionError> {
        let api: Api<ClusterBinding> = Api::namespaced(self.client.clone(), namespace);
        let read = format!("read ClusterBinding {namespace}/{CLUSTER_BINDING_NAME}");
        if let Some(existing) = api
            .get_opt(CLUSTER_BINDING_NAME)
            .await
            .map_err(self.failed(&read))?
        {
            return Ok(existing.spec.kubeconfig_secret_ref.name);
        }
        let desired = objects::cluster_binding(namespace, pretty_name);
        match api.create(&PostParams::default(), &desired).await {
            Ok(_) => {
                tracing::info!(namespace, "created ClusterBinding");
                Ok(KUBECONFIG_SECRET_NAME.to_owned())
            }
            Err(err) if is_code(&err, 409) => {
                let existing = api
                    .get(CLUSTER_BINDING_NAME)
                    .await
                    .map_err(self.failed(read))?;
                Ok(existing.spec.kubeconfig_secret_ref.name)
            }
            Err(err) => Err(self.failed(format!(
                "create ClusterBinding {namespace}/{CLUSTER_BINDING_NAME}"
            ))(err)),
        }
    }

    /// Step 3: the `kube-binder` ServiceAccount.
    pub async fn service_account(&self, namespace: &str) -> Result<(), ProvisionError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("ServiceAccount {namespace}/{SERVICE_ACCOUNT_NAME}");
        if api
            .get_opt(SERVICE_ACCOUNT_NAME)
            .await
            .map_err(self.failed(format!("read {what}")))?
            .is_some()
        {
            return Ok(());
        }
        match api
            .create(&PostParams::default(), &objects::service_account(namespace))
            .await
        {
            Ok(_) => {
                tracing::info!(namespace, "created ServiceAccount {SERVICE_ACCOUNT_NAME}");
                Ok(())
            }
            Err(err) if is_code(&err, 409) => Ok(()),
            Err(err) => Err(self.failed(format!("create {what}"))(err)),
        }
    }

    /// Step 4: the global `kube-binder` ClusterRole, its rules put back when they differ.
    pub async fn binder_cluster_role(&self) -> Result<(), ProvisionError> {
        ensure_binder_cluster_role(&Api::all(self.client.clone()))
            .await
            .map_err(self.failed(format!("write ClusterRole {BINDER_ROLE_NAME}")))
    }

    /// Step 4b: the RoleBinding `kube-binder` in the cluster namespace, the very object the
    /// ClusterBinding controller keeps. Written here too so the kubeconfig works when the bind
    /// answers: upstream's CLI creates its APIServiceExportRequest at once and does not retry a
    /// 403.
    pub async fn binder_role_binding(&self, namespace: &str) -> Result<(), ProvisionError> {
        let api: Api<RoleBinding> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("RoleBinding {namespace}/{BINDER_ROLE_NAME}");
        let current = api
            .get_opt(BINDER_ROLE_NAME)
            .await
            .map_err(self.failed(format!("read {what}")))?;
        let desired = rbac::cluster_namespace_role_binding(namespace);
        ensure_binding(&api, current.as_ref(), &desired)
            .await
            .map_err(self.failed(format!("write {what}")))
    }

    /// Step 5: the token of the `kube-binder` ServiceAccount, from its (non-expiring) token
    /// Secret, created if missing and read until the token controller filled it.
    pub async fn token(&self, namespace: &str) -> Result<String, ProvisionError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let read = format!("read Secret {namespace}/{TOKEN_SECRET_NAME}");
        let mut secret = api
            .get_opt(TOKEN_SECRET_NAME)
            .await
            .map_err(self.failed(&read))?;
        if secret.is_none() {
            match api
                .create(&PostParams::default(), &objects::token_secret(namespace))
                .await
            {
                Ok(created) => {
                    tracing::info!(
                        namespace,
                        "created ServiceAccount token Secret {TOKEN_SECRET_NAME}"
                    );
                    secret = Some(created);
                }
                Err(err) if is_code(&err, 409) => {}
                Err(err) => {
                    return Err(self
                        .failed(format!("create Secret {namespace}/{TOKEN_SECRET_NAME}"))(
                        err,
                    ));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + TOKEN_POLL_TIMEOUT;
        loop {
            if let Some(token) = secret.as_ref().and_then(objects::filled_token) {
                return String::from_utf8(token.to_vec()).map_err(|_| {
                    ProvisionError::TokenNotText {
                        cluster: self.cluster.id().clone(),
                        namespace: namespace.to_owned(),
                        secret: TOKEN_SECRET_NAME.to_owned(),
                    }
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProvisionError::TokenNotIssued {
                    cluster: self.cluster.id().clone(),
                    namespace: namespace.to_owned(),
                    secret: TOKEN_SECRET_NAME.to_owned(),
                    waited: TOKEN_POLL_TIMEOUT,
                });
            }
            tokio::time::sleep(TOKEN_POLL_INTERVAL).await;
            secret = api
                .get_opt(TOKEN_SECRET_NAME)
                .await
                .map_err(self.failed(&read))?;
        }
    }

    /// Step 6 (storing): Secret `<name>` holds `kubeconfig` under key `kubeconfig`.
    pub async fn store_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        kubeconfig: &[u8],
    ) -> Result<(), ProvisionError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("Secret {namespace}/{name}");
        match api
            .get_opt(name)
            .await
            .map_err(self.failed(format!("read {what}")))?
        {
            Some(current) if objects::holds_kubeconfig(&current, kubeconfig) => return Ok(()),
            Some(_) => {}
            None => {
                match api
                    .create(
                        &PostParams::default(),
                        &objects::kubeconfig_secret(namespace, name, kubeconfig),
                    )
                    .await
                {
                    Ok(_) => {
                        tracing::info!(namespace, secret = name, "stored the consumer kubeconfig");
                        return Ok(());
                    }
                    Err(err) if is_code(&err, 409) => {}
                    Err(err) => return Err(self.failed(format!("create {what}"))(err)),
                }
            }
        }
        // A merge patch of the one key: other keys and concurrent writers' metadata stay.
        let patch = json!({"data": objects::kubeconfig_data(kubeconfig)});
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(self.failed(format!("update {what}")))?;
        tracing::info!(namespace, secret = name, "updated the consumer kubeconfig");
        Ok(())
    }
}
