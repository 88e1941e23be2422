//! The APIExport virtual workspace: `/services/apiexport/<export cluster>/<export>/clusters/<id|*>/…`.
//!
//! Every request is first authorized like kcp's content authorizer (`apiexports/content` in the
//! export's workspace, verb = the request's verb). Then `/clusters/<id>` reaches one bound cluster
//! as the stand-in, for the export's resources, accepted claims and (read-only) its APIBindings;
//! `/clusters/*` serves discovery, merged LIST and merged WATCH over all bound clusters.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{
    annotate,
    auth::{Decision, bearer},
    bound::{Access, BINDINGS, ExportKey, ExportState},
    forward::{self, Identity, Keep, KeepFor, Outgoing, Rewrite},
    kcp_types::{GroupResource, export_reference},
    member_api::{self, At, MemberError},
    names::ClusterId,
    request_info::{self, ApiRequest, ResourceRequest, Verb},
    sim::Sim,
    status, vw_discovery,
    vw_watch::{self, WatchSpec},
    workspaces::Member,
};

/// A parsed virtual-workspace request.
pub struct VwRequest<'a> {
    pub export_cluster: &'a str,
    pub export_name: &'a str,
    /// A cluster id, or `*`.
    pub target: &'a str,
    /// The path below `/clusters/<target>`.
    pub rest: &'a str,
    pub query: Option<&'a str>,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub async fn serve(sim: Arc<Sim>, req: VwRequest<'_>) -> Response {
    let Some(home) = sim.workspaces.resolve(req.export_cluster) else {
        return status::error(
            StatusCode::NOT_FOUND,
            format!("workspace {} not found", req.export_cluster),
        );
    };
    let export_key = ExportKey {
        cluster: home.id.clone(),
        name: req.export_name.to_string(),
    };
    let Some(export) = sim.bindings.export(&export_key) else {
        return status::error(
            StatusCode::NOT_FOUND,
            format!("APIExport {}:{} not found", home.path, req.export_name),
        );
    };
    let parsed = request_info::parse(&req.method, req.rest, req.query);
    let verb = match &parsed {
        ApiRequest::Resource(r) => r.verb.as_str(),
        _ => "get",
    };
    let Some(token) = bearer(&req.headers) else {
        return status::error(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let user = match sim
        .authorizer
        .authorize(&home.admin, token, req.export_name, verb)
        .await
    {
        Ok(Decision::Allowed { user }) => user,
        Ok(Decision::Unauthenticated) => {
            return status::error(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        Ok(Decision::Denied { user, reason }) => {
            return status::forbidden(
                &user,
                verb,
                "apis.kcp.io",
                "apiexports/content",
                &format!(
                    "API export {:?} in workspace {:?}: {reason}",
                    req.export_name,
                    home.path.as_str()
                ),
            );
        }
        Err(e) => {
            return status::error(StatusCode::SERVICE_UNAVAILABLE, format!("authorizing: {e}"));
        }
    };

    let wildcard = req.target == "*";
    let cluster = if wildcard {
        None
    } else {
        match sim.workspaces.resolve(req.target) {
            Some(m) if m.id.as_str() == req.target => Some(m),
            _ => {
                return status::error(
                    StatusCode::NOT_FOUND,
                    format!("logical cluster {} not found", req.target),
                );
            }
        }
    };
    match parsed {
        ApiRequest::Discovery(path) => {
            let member = cluster.clone().unwrap_or_else(|| home.clone());
            vw_discovery::serve(&export, &member, &path).await
        }
        ApiRequest::Version => proxy_plain(&home, "/version").await,
        // OpenAPI documents (kubectl apply validates against them) come from a member: they
        // describe more than the virtual workspace serves, which only affects validation.
        ApiRequest::Other if req.rest.starts_with("/openapi/") => {
            let member = cluster.clone().unwrap_or_else(|| home.clone());
            let path_and_query = match req.query {
                Some(q) => format!("{}?{q}", req.rest),
                None => req.rest.to_string(),
            };
            let outgoing = Outgoing::new(
                req.method,
                path_and_query,
                &req.headers,
                req.body,
                Identity::StandIn,
            );
            match outgoing.send(&member.admin).await {
                Ok(resp) => forward::respond(resp, Rewrite::None, false).await,
                Err(e) => status::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            }
        }
        ApiRequest::Other => status::error(
            StatusCode::NOT_FOUND,
            "the server could not find the requested resource",
        ),
        ApiRequest::Resource(resource) => {
            let gr = GroupResource::new(&resource.group, &resource.resource);
            if !export.serves(&gr) {
                return forbidden_resource(&user, &resource, &export_key);
            }
            match cluster {
                Some(member) => {
                    one_cluster(&sim, &user, &export_key, &export, &member, &resource, req).await
                }
                None => wildcard_request(sim, &export_key, &export, home, &resource, req).await,
            }
        }
    }
}

fn forbidden_resource(user: &str, resource: &ResourceRequest, export: &ExportKey) -> Response {
    let gr = GroupResource::new(&resource.group, &resource.resource);
    status::forbidden(
        user,
        resource.verb.as_str(),
        &resource.group,
        &gr.display(),
        &format!("not served by the virtual workspace of APIExport {export}"),
    )
}

/// Keeps only APIBindings to `export` (made from `cluster`).
fn bindings_filter(sim: &Arc<Sim>, export: &ExportKey, cluster: &ClusterId) -> Keep {
    let sim = sim.clone();
    let export = export.clone();
    let cluster = cluster.clone();
    Arc::new(move |obj: &Value| {
        export_reference(obj)
            .and_then(|r| sim.resolve_export(&cluster, &r))
            .is_some_and(|k| k == export)
    })
}

fn is_bindings(resource: &ResourceRequest) -> bool {
    (resource.group.as_str(), resource.resource.as_str()) == BINDINGS
}

async fn one_cluster(
    sim: &Arc<Sim>,
    user: &str,
    export_key: &ExportKey,
    export: &ExportState,
    member: &Arc<Member>,
    resource: &ResourceRequest,
    req: VwRequest<'_>,
) -> Response {
    let gr = GroupResource::new(&resource.group, &resource.resource);
    let Some(access) = export.access(&member.id, &gr) else {
        return status::forbidden(
            user,
            resource.verb.as_str(),
            &resource.group,
            &gr.display(),
            &format!(
                "logical cluster {} does not bind APIExport {export_key} or did not accept a claim for it",
                member.id
            ),
        );
    };
    if !access.allows(resource.verb.as_str())
        || (access == Access::Bindings
            && resource.subresource.is_some()
            && !resource.verb.is_read())
    {
        return forbidden_resource(user, resource, export_key);
    }
    let watch_guard = (resource.verb == Verb::Watch).then(|| {
        sim.metrics.watch_opened(super::metrics::WatchLabels {
            export: export_key.name.clone(),
            resource: gr.display(),
        })
    });
    let path_and_query = match req.query {
        Some(q) => format!("{}?{q}", req.rest),
        None => req.rest.to_string(),
    };
    let outgoing = Outgoing::new(
        req.method,
        path_and_query,
        &req.headers,
        req.body,
        Identity::StandIn,
    );
    let keep = is_bindings(resource).then(|| bindings_filter(sim, export_key, &member.id));
    match outgoing.send(&member.admin).await {
        Ok(resp) => {
            let response = forward::respond(
                resp,
                Rewrite::Annotate {
                    cluster: member.id.clone(),
                    keep,
                },
                resource.verb == Verb::Watch,
            )
            .await;
            if let Some(guard) = watch_guard {
                return hold_until_body_ends(response, guard);
            }
            response
        }
        Err(e) => status::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("logical cluster {}: {e}", member.id),
        ),
    }
}

/// Keeps `guard` alive as long as the response body streams (for the open-watch gauge).
fn hold_until_body_ends<G: Send + 'static>(response: Response, guard: G) -> Response {
    use futures::StreamExt;
    let (parts, body) = response.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _ = &guard;
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

async fn wildcard_request(
    sim: Arc<Sim>,
    export_key: &ExportKey,
    export: &ExportState,
    home: Arc<Member>,
    resource: &ResourceRequest,
    req: VwRequest<'_>,
) -> Response {
    if resource.name.is_some() || !matches!(resource.verb, Verb::List | Verb::Watch) {
        return status::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{} is not supported on /clusters/*: only list and watch",
                resource.verb.as_str()
            ),
        );
    }
    let params = request_info::query_params(req.query);
    let selectors = selector_query(&params);
    let gr = GroupResource::new(&resource.group, &resource.resource);
    let keep_for: Option<KeepFor> = if is_bindings(resource) {
        let sim = sim.clone();
        let export_key = export_key.clone();
        Some(Arc::new(move |c: &ClusterId| {
            bindings_filter(&sim, &export_key, c)
        }))
    } else {
        None
    };
    if resource.verb == Verb::Watch {
        let timeout = params
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(1800);
        let spec = WatchSpec {
            export: export_key.clone(),
            home,
            resource: gr,
            version: resource.version.clone(),
            namespace: resource.namespace.clone(),
            selectors,
            resource_version: params.get("resourceVersion").cloned(),
            bookmarks: params
                .get("allowWatchBookmarks")
                .is_some_and(|v| v == "true" || v == "1"),
            timeout: Duration::from_secs(timeout),
            keep_for,
        };
        return vw_watch::serve(sim, spec).await;
    }
    merged_list(
        &sim, export_key, export, &home, resource, &params, &selectors, keep_for,
    )
    .await
}

/// `labelSelector` and `fieldSelector`, re-encoded for the members.
fn selector_query(params: &BTreeMap<String, String>) -> String {
    ["labelSelector", "fieldSelector"]
        .iter()
        .filter_map(|k| {
            params
                .get(*k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(v)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One consistent LIST over every bound cluster: the global revision R first, then every member
/// at exactly R. R is recorded so a WATCH from it resumes every member from R.
#[allow(clippy::too_many_arguments)]
async fn merged_list(
    sim: &Arc<Sim>,
    export_key: &ExportKey,
    export: &ExportState,
    home: &Arc<Member>,
    resource: &ResourceRequest,
    params: &BTreeMap<String, String>,
    selectors: &str,
    keep_for: Option<KeepFor>,
) -> Response {
    let gr = GroupResource::new(&resource.group, &resource.resource);
    let clusters = export.clusters_serving(&gr);
    let exact = params
        .get("resourceVersionMatch")
        .is_some_and(|m| m == "Exact");
    let revision = match params
        .get("resourceVersion")
        .and_then(|r| r.parse::<u64>().ok())
    {
        Some(rv) if exact => rv,
        _ => match member_api::global_revision(&home.admin).await {
            Ok(rv) => rv,
            Err(e) => return status::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
    };
    let collection = member_api::collection_path(
        &resource.group,
        &resource.version,
        &resource.resource,
        resource.namespace.as_deref(),
    );
    let lists = futures::future::join_all(clusters.iter().map(|c| {
        let member = sim.workspaces.by_id(c);
        let collection = collection.clone();
        async move {
            let Some(member) = member else {
                return Ok(None);
            };
            match member_api::list(&member.admin, &collection, selectors, At::Exact(revision)).await
            {
                Ok(l) => Ok(Some(l)),
                Err(MemberError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }))
    .await;
    let mut items = Vec::new();
    let mut kind = None;
    let mut api_version = None;
    for (cluster, listed) in clusters.iter().zip(lists) {
        let listed = match listed {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(MemberError::Gone(m)) => return status::error(StatusCode::GONE, m),
            Err(e) => {
                return status::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("logical cluster {cluster}: {e}"),
                );
            }
        };
        if kind.is_none() && !listed.kind.is_empty() {
            kind = Some(listed.kind.clone());
            api_version = Some(listed.api_version.clone());
        }
        let keep = keep_for.as_ref().map(|f| f(cluster));
        for mut item in listed.items {
            if keep.as_ref().is_some_and(|k| !k(&item)) {
                continue;
            }
            annotate::object(&mut item, cluster);
            items.push(item);
        }
    }
    let kind = match kind {
        Some(k) => k,
        None => {
            vw_discovery::list_kind(
                export,
                home,
                &resource.group,
                &resource.version,
                &resource.resource,
            )
            .await
        }
    };
    let api_version = api_version.unwrap_or_else(|| {
        if resource.group.is_empty() {
            resource.version.clone()
        } else {
            format!("{}/{}", resource.group, resource.version)
        }
    });
    sim.resume.record_snapshot(
        &super::resume::StreamKey {
            export: export_key.to_string(),
            group: gr.group.clone(),
            resource: gr.resource.clone(),
            filter: super::resume::filter_key(resource.namespace.as_deref(), selectors),
        },
        revision,
        clusters,
    );
    status::json_response(
        StatusCode::OK,
        &json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": revision.to_string()}, "items": items}),
    )
}

async fn proxy_plain(member: &Member, path: &str) -> Response {
    match member_api::get(&member.admin, path).await {
        Ok(v) => status::json_response(StatusCode::OK, &v),
        Err(e) => status::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_reencoded_for_members() {
        let params = request_info::query_params(Some(
            "labelSelector=e2e%3Dx%2Cenv+in+%28a%29&fieldSelector=&limit=500&resourceVersion=0",
        ));
        assert_eq!(
            selector_query(&params),
            "labelSelector=e2e%3Dx%2Cenv%20in%20%28a%29"
        );
        assert_eq!(selector_query(&BTreeMap::new()), "");
    }
}
