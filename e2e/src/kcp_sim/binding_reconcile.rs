//! APIBinding: install the export's schemas as CRDs in the binding's workspace, record the
//! accepted permission claims, serve the cluster in the export's virtual workspace, and report
//! `Bound`. Deleting the binding unbinds: the workspace leaves the virtual workspace and the
//! CRDs (with their objects) are removed before the finalizer goes.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::info;

use super::{
    bootstrap::{CRD_COLLECTION, now, wait_established},
    bound::BoundCluster,
    export_reconcile::SCHEMAS,
    kcp_types::{accepted_claims, effective_claims, export_reference},
    member_api::{self, MemberError},
    names::ClusterId,
    reconcile_error::{Outcome, ReconcileError},
    schema_to_crd::{BOUND_EXPORT_ANNOTATION, crd_from_schema},
    sim::Sim,
    workspaces::Member,
};

pub const BINDINGS: &str = "/apis/apis.kcp.io/v1alpha1/apibindings";
pub const FINALIZER: &str = "apis.kcp.io/apibinding-finalizer";
/// Annotation on installed CRDs naming the APIBinding that installed them.
const BOUND_BY_ANNOTATION: &str = "apis.kcp.io/bound-by";

/// Why a binding is not (yet) bound, as kcp's condition reasons say it.
struct NotBound {
    condition: &'static str,
    reason: &'static str,
    message: String,
}

pub async fn reconcile(sim: &Sim, cluster: &ClusterId, name: &str) -> Outcome {
    let Some(member) = sim.workspaces.by_id(cluster) else {
        return Ok(None);
    };
    let err = |source| ReconcileError {
        kind: "APIBinding",
        workspace: member.path.to_string(),
        name: name.to_string(),
        source,
    };
    let index_key = (cluster.clone(), name.to_string());
    let binding = match member_api::get(&member.admin, &format!("{BINDINGS}/{name}")).await {
        Ok(v) => v,
        Err(MemberError::NotFound(_)) => {
            forget(sim, cluster, name);
            return Ok(None);
        }
        Err(e) => return Err(err(e)),
    };
    let finalizers: Vec<String> = binding
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    if binding.pointer("/metadata/deletionTimestamp").is_some() {
        // As kcp: the bound objects go first (their DELETED events still reach virtual-workspace
        // watches), then the cluster leaves the virtual workspace, then the finalizer.
        if remove_crds(&member, name).await.map_err(err)? > 0 {
            return Ok(Some(Duration::from_millis(300)));
        }
        forget(sim, cluster, name);
        if finalizers.iter().any(|f| f == FINALIZER) {
            let rest: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
            let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": binding.pointer("/metadata/resourceVersion")}});
            member_api::merge_patch(&member.admin, &format!("{BINDINGS}/{name}"), &patch)
                .await
                .map_err(err)?;
        }
        info!(workspace = %member.path, binding = name, "unbound");
        return Ok(None);
    }
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let mut all = finalizers.clone();
        all.push(FINALIZER.to_string());
        let patch = json!({"metadata": {"finalizers": all, "resourceVersion": binding.pointer("/metadata/resourceVersion")}});
        match member_api::merge_patch(&member.admin, &format!("{BINDINGS}/{name}"), &patch).await {
            // Someone else wrote first: the next event brings us back.
            Ok(_) | Err(MemberError::Conflict(_)) => {}
            Err(e) => return Err(err(e)),
        }
    }

    let Some(reference) = export_reference(&binding) else {
        let not_bound = NotBound {
            condition: "APIExportValid",
            reason: "APIExportInvalidReference",
            message: "spec.reference.export.name is required".into(),
        };
        write_not_bound(&member, &binding, name, &not_bound)
            .await
            .map_err(err)?;
        return Ok(None);
    };
    let export_key = sim.resolve_export(cluster, &reference);
    let export = export_key.as_ref().and_then(|k| sim.bindings.export(k));
    let (Some(export_key), Some(export)) = (export_key, export) else {
        sim.index().bindings.remove(&index_key);
        let path = if reference.path.is_empty() {
            member.path.to_string()
        } else {
            reference.path.clone()
        };
        let not_bound = NotBound {
            condition: "APIExportValid",
            reason: "APIExportNotFound",
            message: format!("APIExport {path}:{} not found", reference.name),
        };
        write_not_bound(&member, &binding, name, &not_bound)
            .await
            .map_err(err)?;
        return Ok(Some(Duration::from_secs(2)));
    };
    let newly_indexed = sim
        .index()
        .bindings
        .insert(index_key, export_key.clone())
        .as_ref()
        != Some(&export_key);
    if newly_indexed {
        sim.requeue_slices(&export_key);
    }
    let Some(home) = sim.workspaces.by_id(&export_key.cluster) else {
        return Ok(None);
    };

    // Install every exported resource as a CRD in the binding's workspace.
    let mut bound_resources = Vec::new();
    for resource in &export.spec.resources {
        let schema =
            match member_api::get(&home.admin, &format!("{SCHEMAS}/{}", resource.schema)).await {
                Ok(s) => s,
                Err(MemberError::NotFound(_)) => {
                    let not_bound = NotBound {
                        condition: "APIExportValid",
                        reason: "APIResourceSchemaInvalid",
                        message: format!(
                            "APIResourceSchema {}:{} not found",
                            home.path, resource.schema
                        ),
                    };
                    write_not_bound(&member, &binding, name, &not_bound)
                        .await
                        .map_err(err)?;
                    return Ok(Some(Duration::from_secs(2)));
                }
                Err(e) => return Err(err(e)),
            };
        let (mut crd, summary) = match crd_from_schema(&schema, &export_key.to_string()) {
            Ok(x) => x,
            Err(e) => {
                let not_bound = NotBound {
                    condition: "APIExportValid",
                    reason: "APIResourceSchemaInvalid",
                    message: e.to_string(),
                };
                write_not_bound(&member, &binding, name, &not_bound)
                    .await
                    .map_err(err)?;
                return Ok(None);
            }
        };
        crd["metadata"]["annotations"][BOUND_BY_ANNOTATION] = json!(name);
        let crd_name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match member_api::get(&member.admin, &format!("{CRD_COLLECTION}/{crd_name}")).await {
            Ok(live) => {
                let owner = live.pointer(&format!(
                    "/metadata/annotations/{}",
                    BOUND_EXPORT_ANNOTATION.replace('/', "~1")
                ));
                if owner.and_then(Value::as_str) != Some(export_key.to_string().as_str()) {
                    let not_bound = NotBound {
                        condition: "BindingUpToDate",
                        reason: "NamingConflicts",
                        message: format!(
                            "CustomResourceDefinition {crd_name} already exists and is not bound from this export"
                        ),
                    };
                    write_not_bound(&member, &binding, name, &not_bound)
                        .await
                        .map_err(err)?;
                    return Ok(Some(Duration::from_secs(5)));
                }
                if live.get("spec") != crd.get("spec") {
                    member_api::create_or_replace(&member.admin, CRD_COLLECTION, &crd)
                        .await
                        .map_err(err)?;
                }
            }
            Err(MemberError::NotFound(_)) => {
                member_api::create_or_replace(&member.admin, CRD_COLLECTION, &crd)
                    .await
                    .map_err(err)?;
            }
            Err(e) => return Err(err(e)),
        }
        if let Err(e) = wait_established(&member.admin, &crd_name, Duration::from_secs(10)).await {
            let not_bound = NotBound {
                condition: "InitialBindingCompleted",
                reason: "WaitingForEstablished",
                message: e.to_string(),
            };
            write_not_bound(&member, &binding, name, &not_bound)
                .await
                .map_err(err)?;
            return Ok(Some(Duration::from_millis(500)));
        }
        bound_resources.push(json!({
            "group": summary.group,
            "resource": summary.plural,
            "schema": {
                "name": resource.schema,
                "UID": schema.pointer("/metadata/uid"),
                "identityHash": export_key.to_string(),
            },
            "storageVersions": summary.storage_versions,
        }));
    }

    let claims = effective_claims(&export.spec, &accepted_claims(&binding));
    // Served before `Bound` is written, so whoever waits for `Bound` finds the cluster in the VW.
    sim.bindings.bind(
        &export_key,
        cluster.clone(),
        BoundCluster {
            binding: name.to_string(),
            claims: claims.clone(),
        },
    );

    let applied: Vec<Value> = claims
        .iter()
        .map(|c| json!({"group": c.resource.group, "resource": c.resource.resource, "verbs": c.verbs, "selector": {"matchAll": true}}))
        .collect();
    let exported: Vec<Value> = export
        .spec
        .claims
        .iter()
        .map(|c| json!({"group": c.resource.group, "resource": c.resource.resource, "verbs": c.verbs}))
        .collect();
    let desired = json!({
        "phase": "Bound",
        "apiExportClusterName": export_key.cluster.as_str(),
        "boundResources": bound_resources,
        "appliedPermissionClaims": applied,
        "exportPermissionClaims": exported,
    });
    let live = binding.get("status").cloned().unwrap_or(Value::Null);
    let unchanged = [
        "phase",
        "apiExportClusterName",
        "boundResources",
        "appliedPermissionClaims",
        "exportPermissionClaims",
    ]
    .iter()
    .all(|k| live.get(*k).unwrap_or(&Value::Null) == desired.get(*k).unwrap_or(&Value::Null))
        && condition_statuses(&live).iter().all(|(_, s)| s == "True");
    if unchanged {
        return Ok(None);
    }
    let mut status = desired;
    let ts = now();
    status["conditions"] = json!(
        [
            "Ready",
            "APIExportValid",
            "InitialBindingCompleted",
            "BindingUpToDate",
            "PermissionClaimsValid",
            "PermissionClaimsApplied"
        ]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": ts}))
        .collect::<Vec<_>>()
    );
    member_api::merge_patch(
        &member.admin,
        &format!("{BINDINGS}/{name}/status"),
        &json!({"status": status}),
    )
    .await
    .map_err(err)?;
    info!(workspace = %member.path, binding = name, export = %export_key, "bound");
    Ok(None)
}

fn condition_statuses(status: &Value) -> Vec<(String, String)> {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k: &str| {
                        c.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    (s("type"), s("status"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Drops the binding from the virtual workspace and the indexes.
fn forget(sim: &Sim, cluster: &ClusterId, name: &str) {
    sim.bindings.unbind(cluster, name);
    let removed = sim
        .index()
        .bindings
        .remove(&(cluster.clone(), name.to_string()));
    if let Some(export) = removed {
        sim.requeue_slices(&export);
    }
}

/// Deletes the CRDs this binding installed (their objects go with them); returns how many
/// still existed, so the caller waits until none is left.
async fn remove_crds(member: &Member, binding: &str) -> Result<usize, MemberError> {
    let crds = member_api::list(&member.admin, CRD_COLLECTION, "", member_api::At::Latest).await?;
    let mut remaining = 0;
    for crd in crds.items {
        let by = crd.pointer(&format!(
            "/metadata/annotations/{}",
            BOUND_BY_ANNOTATION.replace('/', "~1")
        ));
        if by.and_then(Value::as_str) == Some(binding)
            && let Some(name) = crd.pointer("/metadata/name").and_then(Value::as_str)
        {
            remaining += 1;
            if crd.pointer("/metadata/deletionTimestamp").is_none() {
                member_api::delete(&member.admin, &format!("{CRD_COLLECTION}/{name}")).await?;
            }
        }
    }
    Ok(remaining)
}

async fn write_not_bound(
    member: &Member,
    binding: &Value,
    name: &str,
    not_bound: &NotBound,
) -> Result<(), MemberError> {
    let live_phase = binding
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let live = condition_statuses(binding.get("status").unwrap_or(&Value::Null));
    if live
        .iter()
        .any(|(t, s)| t == not_bound.condition && s == "False")
    {
        return Ok(());
    }
    let ts = now();
    let status = json!({"status": {
        "phase": if live_phase == "Bound" { "Bound" } else { "Binding" },
        "conditions": [
            {"type": "Ready", "status": "False", "reason": not_bound.reason, "message": not_bound.message, "lastTransitionTime": ts},
            {"type": not_bound.condition, "status": "False", "reason": not_bound.reason, "message": not_bound.message, "lastTransitionTime": ts},
        ],
    }});
    member_api::merge_patch(&member.admin, &format!("{BINDINGS}/{name}/status"), &status).await?;
    Ok(())
}
