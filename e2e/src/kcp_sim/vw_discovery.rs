//! Discovery of an APIExport virtual workspace: only what it serves (exported resources, claimed
//! resources, APIBindings), on both `/clusters/<id>` and `/clusters/*`.

use http::StatusCode;
use serde_json::{Value, json};

use super::{
    bound::{BINDINGS, ExportState, ExportedApi},
    member_api::{self, group_version_path},
    request_info::DiscoveryPath,
    status,
    workspaces::Member,
};

/// Answers a discovery request; built-in groups are read from `member` and filtered.
pub async fn serve(
    export: &ExportState,
    member: &Member,
    path: &DiscoveryPath,
) -> axum::response::Response {
    match path {
        DiscoveryPath::LegacyVersions => {
            let versions: Vec<&str> = if export
                .spec
                .claims
                .iter()
                .any(|c| c.resource.group.is_empty())
            {
                vec!["v1"]
            } else {
                vec![]
            };
            status::json_response(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": versions,
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
            )
        }
        DiscoveryPath::Groups => {
            let groups = groups(export, member).await;
            status::json_response(
                StatusCode::OK,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            )
        }
        DiscoveryPath::Group(group) => match groups(export, member)
            .await
            .into_iter()
            .find(|g| g["name"] == group.as_str())
        {
            Some(mut g) => {
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                status::json_response(StatusCode::OK, &g)
            }
            None => status::error(
                StatusCode::NOT_FOUND,
                "the server could not find the requested resource",
            ),
        },
        DiscoveryPath::GroupVersion { group, version } => {
            match resources(export, member, group, version).await {
                Some(list) => status::json_response(StatusCode::OK, &list),
                None => status::error(
                    StatusCode::NOT_FOUND,
                    "the server could not find the requested resource",
                ),
            }
        }
    }
}

/// Groups served by the export, with the versions that hold something it serves.
async fn groups(export: &ExportState, member: &Member) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for api in &export.apis {
        if api.group.is_empty() || out.iter().any(|g| g["name"] == api.group.as_str()) {
            continue;
        }
        let versions: Vec<Value> = api
            .versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{}/{v}", api.group), "version": v}))
            .collect();
        let preferred = versions.first().cloned().unwrap_or(Value::Null);
        out.push(json!({"name": api.group, "versions": versions, "preferredVersion": preferred}));
    }
    let mut builtin_groups: Vec<&str> = export
        .spec
        .claims
        .iter()
        .map(|c| c.resource.group.as_str())
        .filter(|g| !g.is_empty())
        .collect();
    builtin_groups.push(BINDINGS.0);
    let Ok(all) = member_api::get(&member.admin, "/apis").await else {
        return out;
    };
    for group in all
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = group
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if builtin_groups.contains(&name) && !out.iter().any(|g| g["name"] == name) {
            out.push(group.clone());
        }
    }
    out
}

fn exported_resources(api: &ExportedApi, version: &str) -> Vec<Value> {
    let verbs = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let mut out = vec![json!({
        "name": api.plural,
        "singularName": api.singular,
        "namespaced": api.namespaced,
        "kind": api.kind,
        "verbs": verbs,
        "shortNames": api.short_names,
        "categories": api.categories,
    })];
    if api.status_versions.iter().any(|v| v == version) {
        out.push(json!({"name": format!("{}/status", api.plural), "singularName": "", "namespaced": api.namespaced,
            "kind": api.kind, "verbs": ["get", "patch", "update"]}));
    }
    out
}

/// The resource list of one group-version as the virtual workspace serves it.
async fn resources(
    export: &ExportState,
    member: &Member,
    group: &str,
    version: &str,
) -> Option<Value> {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let exported: Vec<Value> = export
        .apis
        .iter()
        .filter(|a| a.group == group && a.versions.iter().any(|v| v == version))
        .flat_map(|a| exported_resources(a, version))
        .collect();
    if !exported.is_empty() {
        return Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": exported}),
        );
    }
    let live = member_api::get(&member.admin, &group_version_path(group, version))
        .await
        .ok()?;
    let kept: Vec<Value> = live
        .get("resources")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|r| {
            let name = r.get("name").and_then(Value::as_str)?;
            let base = name.split('/').next().unwrap_or(name);
            let is_bindings = (group, base) == BINDINGS;
            let claimed = export
                .spec
                .claims
                .iter()
                .any(|c| c.resource.group == group && c.resource.resource == base);
            if !(is_bindings || claimed) {
                return None;
            }
            let mut r = r.clone();
            if is_bindings {
                r["verbs"] = json!(if name.contains('/') {
                    vec!["get"]
                } else {
                    vec!["get", "list", "watch"]
                });
            }
            Some(r)
        })
        .collect();
    if kept.is_empty() {
        return None;
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": kept}),
    )
}

/// The list kind of a resource (`ConfigMapList`), for merged lists with no member answer.
pub async fn list_kind(
    export: &ExportState,
    member: &Member,
    group: &str,
    version: &str,
    resource: &str,
) -> String {
    if let Some(api) = export
        .apis
        .iter()
        .find(|a| a.group == group && a.plural == resource)
    {
        return api.list_kind.clone();
    }
    let kind = member_api::get(&member.admin, &group_version_path(group, version))
        .await
        .ok()
        .and_then(|l| {
            l.get("resources")?
                .as_array()?
                .iter()
                .find(|r| r["name"] == resource)
                .and_then(|r| r.get("kind"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "List".to_string());
    if kind == "List" {
        kind
    } else {
        format!("{kind}List")
    }
}
