//! APIExport: publish its API set to the virtual workspace, give it an identity hash, and create
//! the APIExportEndpointSlice of the same name next to it (as kcp 0.28+ does).

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::{
    bootstrap::now,
    bound::{ExportKey, ExportedApi},
    kcp_types::export_spec,
    member_api::{self, MemberError},
    names::ClusterId,
    reconcile_error::{Outcome, ReconcileError},
    sim::Sim,
};

pub const EXPORTS: &str = "/apis/apis.kcp.io/v1alpha2/apiexports";
pub const SCHEMAS: &str = "/apis/apis.kcp.io/v1alpha1/apiresourceschemas";
pub const SLICES: &str = "/apis/apis.kcp.io/v1alpha1/apiexportendpointslices";
/// kcp's opt-out of the automatic endpoint slice.
const SKIP_SLICE_ANNOTATION: &str = "apiexports.apis.kcp.io/skip-endpointslice";

pub async fn reconcile(sim: &Sim, cluster: &ClusterId, name: &str) -> Outcome {
    let Some(member) = sim.workspaces.by_id(cluster) else {
        return Ok(None);
    };
    let err = |source| ReconcileError {
        kind: "APIExport",
        workspace: member.path.to_string(),
        name: name.to_string(),
        source,
    };
    let key = ExportKey {
        cluster: cluster.clone(),
        name: name.to_string(),
    };
    let export = match member_api::get(&member.admin, &format!("{EXPORTS}/{name}")).await {
        Ok(v) => v,
        Err(MemberError::NotFound(_)) => {
            sim.bindings.remove_export(&key);
            sim.requeue_bindings(&key);
            sim.requeue_slices(&key);
            return Ok(None);
        }
        Err(e) => return Err(err(e)),
    };
    let spec = export_spec(&export);
    let mut apis = Vec::with_capacity(spec.resources.len());
    let mut missing_schema = false;
    for resource in &spec.resources {
        match member_api::get(&member.admin, &format!("{SCHEMAS}/{}", resource.schema)).await {
            Ok(schema) => apis.push(exported_api(&schema)),
            Err(MemberError::NotFound(_)) => {
                warn!(workspace = %member.path, export = name, schema = %resource.schema, "APIResourceSchema not found yet");
                missing_schema = true;
            }
            Err(e) => return Err(err(e)),
        }
    }
    sim.bindings.set_export(key.clone(), spec, apis);

    if export.pointer("/status/identityHash").is_none() {
        let identity = Sha256::digest(key.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let status = json!({"status": {
            "identityHash": identity,
            "conditions": [{"type": "IdentityValid", "status": "True", "lastTransitionTime": now()}],
        }});
        member_api::merge_patch(&member.admin, &format!("{EXPORTS}/{name}/status"), &status)
            .await
            .map_err(err)?;
    }

    let skip = export
        .pointer(&format!(
            "/metadata/annotations/{}",
            SKIP_SLICE_ANNOTATION.replace('/', "~1")
        ))
        .is_some();
    if !skip {
        let slice = json!({
            "apiVersion": "apis.kcp.io/v1alpha1",
            "kind": "APIExportEndpointSlice",
            "metadata": {
                "name": name,
                "ownerReferences": [{
                    "apiVersion": "apis.kcp.io/v1alpha2",
                    "kind": "APIExport",
                    "name": name,
                    "uid": export.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                }],
            },
            "spec": {"export": {"path": member.path.as_str(), "name": name}},
        });
        match member_api::call(
            &member.admin,
            http::Method::POST,
            SLICES,
            Some(&slice),
            "application/json",
        )
        .await
        {
            Ok(_) => {
                info!(workspace = %member.path, export = name, "created APIExportEndpointSlice")
            }
            Err(MemberError::Conflict(_)) => {}
            Err(e) => return Err(err(e)),
        }
    }
    sim.requeue_bindings(&key);
    sim.requeue_slices(&key);
    Ok(missing_schema.then_some(Duration::from_secs(1)))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Discovery facts of an APIResourceSchema.
pub fn exported_api(schema: &Value) -> ExportedApi {
    let spec = schema.get("spec").unwrap_or(&Value::Null);
    let names = spec.get("names").unwrap_or(&Value::Null);
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let versions: Vec<&Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
                .collect()
        })
        .unwrap_or_default();
    let kind = s(names, "kind");
    let list_kind = names
        .get("listKind")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{kind}List"));
    ExportedApi {
        group: s(spec, "group"),
        plural: s(names, "plural"),
        singular: s(names, "singular"),
        kind,
        list_kind,
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        versions: versions.iter().map(|v| s(v, "name")).collect(),
        status_versions: versions
            .iter()
            .filter(|v| v.pointer("/subresources/status").is_some())
            .map(|v| s(v, "name"))
            .collect(),
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
    }
}
