//! APIExportEndpointSlice: the virtual-workspace URL of its export, listed while at least one
//! APIBinding to the export exists (as kcp's endpoint-slice URL controller does).

use serde_json::{Value, json};

use super::{
    bootstrap::now,
    export_reconcile::SLICES,
    kcp_types::ExportReference,
    member_api::{self, MemberError},
    names::ClusterId,
    reconcile_error::{Outcome, ReconcileError},
    sim::Sim,
};

pub async fn reconcile(sim: &Sim, cluster: &ClusterId, name: &str) -> Outcome {
    let Some(member) = sim.workspaces.by_id(cluster) else {
        return Ok(None);
    };
    let err = |source| ReconcileError {
        kind: "APIExportEndpointSlice",
        workspace: member.path.to_string(),
        name: name.to_string(),
        source,
    };
    let index_key = (cluster.clone(), name.to_string());
    let slice = match member_api::get(&member.admin, &format!("{SLICES}/{name}")).await {
        Ok(v) => v,
        Err(MemberError::NotFound(_)) => {
            sim.index().slices.remove(&index_key);
            return Ok(None);
        }
        Err(e) => return Err(err(e)),
    };
    let reference = ExportReference {
        path: slice
            .pointer("/spec/export/path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        name: slice
            .pointer("/spec/export/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let export = sim.resolve_export(cluster, &reference);
    let valid = export
        .as_ref()
        .is_some_and(|k| sim.bindings.export(k).is_some());
    let endpoints: Vec<Value> = match &export {
        Some(key) => {
            let mut index = sim.index();
            index.slices.insert(index_key, key.clone());
            let bound = index.bindings.values().any(|k| k == key);
            if valid && bound {
                vec![json!({"url": sim.vw_url(key)})]
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    };
    let (status, reason) = if valid {
        ("True", "")
    } else {
        ("False", "APIExportNotFound")
    };
    let live_endpoints = slice
        .pointer("/status/endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let live_condition = slice
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "APIExportValid"))
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if live_endpoints == endpoints && live_condition == status {
        return Ok(None);
    }
    let mut condition =
        json!({"type": "APIExportValid", "status": status, "lastTransitionTime": now()});
    if !reason.is_empty() {
        condition["reason"] = json!(reason);
        condition["message"] = json!(format!(
            "APIExport {}:{} not found",
            reference.path, reference.name
        ));
    }
    let patch = json!({"status": {
        "conditions": [condition],
        "endpoints": if endpoints.is_empty() { Value::Null } else { Value::Array(endpoints) },
    }});
    member_api::merge_patch(&member.admin, &format!("{SLICES}/{name}/status"), &patch)
        .await
        .map_err(err)?;
    Ok(None)
}
