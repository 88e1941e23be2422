//! What the tests that take a backend away midway share: consumers' cluster namespaces as
//! bind-time provisioning leaves them, each requesting cowboys, and the inventory of everything
//! the backend makes for them (to prove nothing was made twice).

#![allow(dead_code)]

use std::collections::BTreeSet;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource, ResourceExt};
use kube_bind_apis::keys::API_SERVICE_NAMESPACE_ANNOTATION;
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, APIServiceNamespace,
    BoundSchema,
};
use kube_bind_backend::resources::owner::OWNER_NAMESPACE_LABEL;
use kube_bind_e2e::harness::fixtures::provisioned_cluster_namespace;
use kube_bind_e2e::harness::{Env, Workspace, apply};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::controller_support;
use crate::export_support::{example_crds, phase};

/// Every consumer's request (and so its export) is named after what it binds.
pub const REQUEST: &str = "cowboys";
pub const BOUND_SCHEMA: &str = "cowboys.wildwest.dev";
/// The consumer namespace every request asks a provider namespace for.
pub const CONSUMER_NS: &str = "default";

/// The plain cluster with the kube-bind CRDs and the exported example CRDs (cowboys).
pub async fn given_a_provider_exporting_cowboys()
-> anyhow::Result<(&'static Env, &'static Workspace)> {
    static EXAMPLES: OnceCell<()> = OnceCell::const_new();
    let (env, plain) = controller_support::given_a_provider_cluster().await?;
    EXAMPLES
        .get_or_try_init(|| async {
            apply::install_crds(&plain.client().await?, &example_crds()?, env.patience()).await?;
            anyhow::Ok(())
        })
        .await?;
    Ok((env, plain))
}

/// A consumer's cluster namespace as bind-time provisioning leaves it (kubeconfig Secret,
/// ClusterBinding `cluster`), with its request for cowboys asking for consumer namespace
/// `default`. Returns the namespace.
pub async fn given_a_consumer_requesting_cowboys(
    env: &Env,
    plain: &Workspace,
) -> anyhow::Result<String> {
    let ns = provisioned_cluster_namespace(env, plain, |ns| {
        vec![
            json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
                "metadata": {"name": REQUEST, "namespace": ns},
                "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys"}],
                         "namespaces": [{"name": CONSUMER_NS}]}}),
        ]
    })
    .await?;
    Ok(ns)
}

/// Every object the backend makes for one consumer whose request for cowboys succeeded, as
/// `Kind namespace/name` (reference §3.2, §3.3, §3.5 in Namespaced scope).
pub fn expected_for(cluster_ns: &str) -> Vec<String> {
    let provider_ns = format!("{cluster_ns}-{CONSUMER_NS}");
    let claim_rbac = format!("kube-binder-export-{CONSUMER_NS}-{REQUEST}");
    vec![
        format!("APIServiceExportRequest {cluster_ns}/{REQUEST}"),
        format!("APIServiceExport {cluster_ns}/{REQUEST}"),
        format!("BoundSchema {cluster_ns}/{BOUND_SCHEMA}"),
        format!("APIServiceNamespace {cluster_ns}/{CONSUMER_NS}"),
        format!("Namespace {provider_ns} for {cluster_ns}/{CONSUMER_NS}"),
        format!("RoleBinding {cluster_ns}/kube-binder"),
        format!("ClusterRole kube-binder-{cluster_ns}"),
        format!("RoleBinding {provider_ns}/kube-binder"),
        format!("Role {provider_ns}/{claim_rbac}"),
        format!("RoleBinding {provider_ns}/{claim_rbac}"),
    ]
}

/// `Kind namespace/name` of every `K` in one of `cluster_namespaces` (everywhere when
/// `selector` is given, which then picks the objects).
pub async fn names_of<K>(
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
    selector: Option<&str>,
) -> anyhow::Result<Vec<String>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let kind = K::kind(&());
    let name = |o: &K| match o.namespace() {
        Some(ns) => format!("{kind} {ns}/{}", o.name_any()),
        None => format!("{kind} {}", o.name_any()),
    };
    let listed = match selector {
        Some(selector) => Api::<K>::all(client.clone())
            .list(&ListParams::default().labels(selector))
            .await?
            .items
            .iter()
            .map(name)
            .collect(),
        None => Api::<K>::all(client.clone())
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|o| {
                o.namespace()
                    .is_some_and(|ns| cluster_namespaces.contains(&ns))
            })
            .map(name)
            .collect(),
    };
    Ok(listed)
}

/// Everything the backend made (and the requests) for `cluster_namespaces`, sorted, with
/// repeats kept: kube-bind objects in those namespaces, provider namespaces by the backend's
/// annotation, RBAC by the backend's owner label.
pub async fn inventory(
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    let owned = format!(
        "{OWNER_NAMESPACE_LABEL} in ({})",
        cluster_namespaces
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut all = Vec::new();
    all.extend(names_of::<APIServiceExportRequest>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<APIServiceExport>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<BoundSchema>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<APIServiceNamespace>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<RoleBinding>(client, cluster_namespaces, Some(&owned)).await?);
    all.extend(names_of::<Role>(client, cluster_namespaces, Some(&owned)).await?);
    all.extend(names_of::<ClusterRole>(client, cluster_namespaces, Some(&owned)).await?);
    all.extend(names_of::<ClusterRoleBinding>(client, cluster_namespaces, Some(&owned)).await?);
    for namespace in Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        let Some(owner) = namespace
            .annotations()
            .get(API_SERVICE_NAMESPACE_ANNOTATION)
        else {
            continue;
        };
        if owner
            .split_once('/')
            .is_some_and(|(ns, _)| cluster_namespaces.contains(ns))
        {
            all.push(format!("Namespace {} for {owner}", namespace.name_any()));
        }
    }
    all.sort();
    Ok(all)
}

/// How many of the requests in `cluster_namespaces` have succeeded.
pub async fn succeeded(
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
) -> anyhow::Result<usize> {
    let requests = Api::<APIServiceExportRequest>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(requests
        .items
        .iter()
        .filter(|r| {
            r.namespace()
                .is_some_and(|ns| cluster_namespaces.contains(&ns))
        })
        .filter(|r| phase(r) == APIServiceExportRequestPhase::Succeeded)
        .count())
}

/// Returns the moment `n` of the requests in `cluster_namespaces` have succeeded, as a watch
/// sees them (a poll could see many more by then).
pub async fn first_succeeded(
    env: &Env,
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
    n: usize,
) -> anyhow::Result<()> {
    let requests = Api::<APIServiceExportRequest>::all(client.clone());
    let mut seen = watcher::watcher(requests, watcher::Config::default())
        .applied_objects()
        .boxed();
    let mut done = BTreeSet::new();
    let watch = async {
        while let Some(request) = seen.try_next().await? {
            let Some(ns) = request.namespace() else {
                continue;
            };
            if cluster_namespaces.contains(&ns)
                && phase(&request) == APIServiceExportRequestPhase::Succeeded
            {
                done.insert(ns);
                if done.len() >= n {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("the watch of APIServiceExportRequests ended")
    };
    tokio::time::timeout(env.patience(), watch)
        .await
        .map_err(|_| anyhow::anyhow!("timed out waiting for {n} requests to succeed"))?
}

/// Counts of `inventory` by kind (every kind the backend makes, zero included), for the log.
pub fn by_kind(inventory: &[String]) -> String {
    let kinds = expected_for("");
    let mut counts: std::collections::BTreeMap<&str, usize> = kinds
        .iter()
        .map(|e| (e.split(' ').next().unwrap_or_default(), 0))
        .collect();
    for entry in inventory {
        *counts
            .entry(entry.split(' ').next().unwrap_or_default())
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `found` has beyond `expected` (repeats included) and what it lacks.
pub fn diff(expected: &[String], found: &[String]) -> String {
    let mut missing = expected.to_vec();
    let mut extra = Vec::new();
    for entry in found {
        match missing.iter().position(|e| e == entry) {
            Some(i) => {
                missing.remove(i);
            }
            None => extra.push(entry.clone()),
        }
    }
    format!("extra {extra:?}, missing {missing:?}")
}
