//! Makes a member apiserver look like a kcp workspace: the kcp CRDs and `LogicalCluster/cluster`.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::info;

use super::{
    annotate::CLUSTER_ANNOTATION,
    kcp_crds,
    member_api::{self, MemberError},
    workspaces::Member,
};

pub const CRD_COLLECTION: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const LOGICAL_CLUSTERS: &str = "/apis/core.kcp.io/v1alpha1/logicalclusters";
/// kcp's annotation with a logical cluster's workspace path.
pub const PATH_ANNOTATION: &str = "kcp.io/path";

/// Installs (or updates) a CRD and waits until it is established.
pub async fn install_crd(
    client: &kube::Client,
    crd: &Value,
    timeout: Duration,
) -> Result<(), MemberError> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    member_api::create_or_replace(client, CRD_COLLECTION, crd).await?;
    wait_established(client, &name, timeout).await
}

pub async fn wait_established(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<(), MemberError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let live = member_api::get(client, &format!("{CRD_COLLECTION}/{name}")).await?;
        let established = live
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        if established {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(MemberError::Unavailable(format!(
                "CRD {name} not established after {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Installs the kcp CRDs and writes `LogicalCluster/cluster` with its URL under `base_url`.
pub async fn workspace(member: &Member, base_url: &str) -> Result<(), MemberError> {
    for crd in kcp_crds::all() {
        install_crd(&member.admin, &crd, Duration::from_secs(30)).await?;
    }
    let object = json!({
        "apiVersion": "core.kcp.io/v1alpha1",
        "kind": "LogicalCluster",
        "metadata": {
            "name": "cluster",
            "annotations": {PATH_ANNOTATION: member.path.as_str(), CLUSTER_ANNOTATION: member.id.as_str()},
        },
        "spec": {},
    });
    match member_api::call(
        &member.admin,
        http::Method::POST,
        LOGICAL_CLUSTERS,
        Some(&object),
        "application/json",
    )
    .await
    {
        Ok(_) | Err(MemberError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    let status = json!({"status": {
        "URL": format!("{base_url}/clusters/{}", member.id),
        "phase": "Ready",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}],
    }});
    member_api::merge_patch(
        &member.admin,
        &format!("{LOGICAL_CLUSTERS}/cluster/status"),
        &status,
    )
    .await?;
    info!(workspace = %member.path, cluster = %member.id, "workspace ready");
    Ok(())
}

/// RFC 3339 "now" in seconds, as Kubernetes timestamps are.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
