//! Applying objects (kcp-config, CRDs) to a workspace: create, or replace what exists.

use std::time::Duration;

use kube::{
    Client,
    api::{Api, DynamicObject, PostParams},
    core::GroupVersionKind,
    discovery::{self, Scope},
};
use serde_json::Value;

use super::{
    HarnessError,
    wait::{Check, wait_for},
};

/// Creates `object`, or replaces it when it exists (keeping its resourceVersion).
pub async fn apply(client: &Client, object: &Value) -> Result<DynamicObject, HarnessError> {
    let object = object.clone();
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (group, version) = api_version
        .rsplit_once('/')
        .unwrap_or(("", api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (resource, caps) = discovery::pinned_kind(client, &gvk).await?;
    let obj: DynamicObject =
        serde_json::from_value(object).map_err(|e| HarnessError::Other(format!("{kind}: {e}")))?;
    let name = obj.metadata.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            obj.metadata.namespace.as_deref().unwrap_or("default"),
            &resource,
        ),
    };
    match api.create(&PostParams::default(), &obj).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let mut attempts = REPLACE_ATTEMPTS;
            loop {
                let live = api.get(&name).await?;
                let mut desired = obj.clone();
                keep_token(&mut desired, &live);
                keep_kcp_claim_labels(&mut desired, &live);
                desired.metadata.resource_version = live.metadata.resource_version;
                match api.replace(&name, &PostParams::default(), &desired).await {
                    // A controller wrote it (e.g. its status) between our read and write.
                    Err(kube::Error::Api(e)) if e.code == 409 && attempts > 1 => attempts -= 1,
                    // kcp's admission wants a claim label its labeler has not written yet.
                    Err(kube::Error::Api(e))
                        if e.code == 403
                            && e.message.contains(KCP_CLAIM_LABEL_PREFIX)
                            && attempts > 1 =>
                    {
                        attempts -= 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    replaced => return Ok(replaced?),
                }
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// How often `apply` reads and replaces an object that running controllers keep writing.
const REPLACE_ATTEMPTS: usize = 5;

/// Replacing a token Secret (kcp-config's bootstrap has one) without `data` would empty it until
/// the controller-manager writes the token again (the same one: legacy tokens carry no time);
/// meanwhile every request with that token gets 401, e.g. a running backend's.
fn keep_token(desired: &mut DynamicObject, live: &DynamicObject) {
    let is_secret = desired.types.as_ref().is_some_and(|t| t.kind == "Secret");
    let brings_data =
        desired.data.get("data").is_some() || desired.data.get("stringData").is_some();
    if let (true, false, Some(data)) = (is_secret, brings_data, live.data.get("data")) {
        desired.data["data"] = data.clone();
    }
}

/// kcp labels every object a bound APIExport's permission claim covers (e.g. kcp-config's
/// APIResourceSchemas once the home workspace's self-binding accepts its claims), and its
/// admission refuses an update without such a label, even before its labeler has written it
/// (then `apply` waits a second and reads again). Keep the labels kcp set.
fn keep_kcp_claim_labels(desired: &mut DynamicObject, live: &DynamicObject) {
    let claimed = live
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(key, _)| key.starts_with(KCP_CLAIM_LABEL_PREFIX));
    for (key, value) in claimed {
        desired
            .metadata
            .labels
            .get_or_insert_default()
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
}

/// The label kcp's permission-claim labeler puts on claimed objects, one per claiming binding.
const KCP_CLAIM_LABEL_PREFIX: &str = "claimed.internal.apis.kcp.io/";

/// Applies CRDs as they are and waits until each is established.
pub async fn install_crds(
    client: &Client,
    crds: &[Value],
    timeout: Duration,
) -> Result<(), HarnessError> {
    for crd in crds {
        apply(client, crd).await?;
    }
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    for crd in crds {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        wait_for(format!("CRD {name} to be established"), timeout, || async {
            match api.get(&name).await {
                Ok(live) => {
                    let established = live
                        .data
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c["type"] == "Established" && c["status"] == "True")
                        });
                    if established {
                        Check::Done(())
                    } else {
                        Check::Pending("not established".into())
                    }
                }
                Err(e) => Check::Pending(e.to_string()),
            }
        })
        .await
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    }
    Ok(())
}

/// Installs the ten kube-bind.io CRDs (`kube_bind_apis::crds::all()`, exactly as upstream ships
/// them) and waits until they are established.
pub async fn install_kube_bind_crds(
    client: &Client,
    timeout: Duration,
) -> Result<(), HarnessError> {
    let crds = kube_bind_apis::crds::all().map_err(|e| HarnessError::Other(e.to_string()))?;
    let values = crds
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    install_crds(client, &values, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(labels: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIResourceSchema",
            "metadata": {"name": "v1.widgets.example.dev", "labels": labels},
        }))
        .unwrap()
    }

    #[test]
    fn a_replace_keeps_the_claim_labels_kcp_set_and_nothing_else() {
        let live = object(serde_json::json!({
            "claimed.internal.apis.kcp.io/abc": "hash",
            "kube-bind.io/exported": "true",
            "stale": "yes",
        }));
        let mut desired = object(serde_json::json!({"kube-bind.io/exported": "true"}));
        keep_kcp_claim_labels(&mut desired, &live);
        let labels = desired.metadata.labels.unwrap();
        assert_eq!(
            labels.keys().collect::<Vec<_>>(),
            ["claimed.internal.apis.kcp.io/abc", "kube-bind.io/exported"]
        );
        assert_eq!(labels["claimed.internal.apis.kcp.io/abc"], "hash");
    }
}
