//! The stand-in's HTTPS front: routes kcp's URL shapes to workspaces and virtual workspaces.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    response::{IntoResponse, Response},
    routing::get,
};
use http::StatusCode;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{Instrument, debug, info_span};

use super::{
    forward::{self, Identity, Outgoing, Rewrite},
    request_info::query_params,
    sim::Sim,
    status,
    vw::{self, VwRequest},
};

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .fallback(route)
        .with_state(sim)
}

/// Accepts TLS connections until the listener fails; each connection is served on its own task.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, router: Router) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                debug!(%peer, "TLS handshake failed");
                return;
            };
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

async fn metrics(State(sim): State<Arc<Sim>>) -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        sim.metrics.encode(),
    )
        .into_response()
}

async fn route(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let span = info_span!("request", method = %req.method(), path = %path);
    async move {
        if let Some(rest) = path.strip_prefix("/services/apiexport/") {
            return virtual_workspace(sim, rest, query.as_deref(), req).await;
        }
        if let Some(rest) = path.strip_prefix("/clusters/") {
            let (workspace, below) = split_first(rest);
            return workspace_proxy(sim, workspace, below, query.as_deref(), req).await;
        }
        // kcp serves the root workspace at the bare URL.
        workspace_proxy(sim, "root", &path, query.as_deref(), req).await
    }
    .instrument(span)
    .await
}

/// `a/b/c` → (`a`, `/b/c`).
fn split_first(s: &str) -> (&str, &str) {
    match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "/"),
    }
}

async fn virtual_workspace(
    sim: Arc<Sim>,
    rest: &str,
    query: Option<&str>,
    req: Request,
) -> Response {
    let (export_cluster, rest) = split_first(rest);
    let (export_name, rest) = split_first(rest.trim_start_matches('/'));
    let Some(rest) = rest.strip_prefix("/clusters/") else {
        return status::error(
            StatusCode::NOT_FOUND,
            "virtual workspace URLs continue with /clusters/<logical cluster>",
        );
    };
    let (target, rest) = split_first(rest);
    // Go clients escape the wildcard in URL paths.
    let target = if target.eq_ignore_ascii_case("%2A") {
        "*"
    } else {
        target
    };
    let (parts, body) = req.into_parts();
    let body = match forward::read_body(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    vw::serve(
        sim,
        VwRequest {
            export_cluster,
            export_name,
            target,
            rest,
            query,
            method: parts.method,
            headers: parts.headers,
            body,
        },
    )
    .await
}

async fn workspace_proxy(
    sim: Arc<Sim>,
    workspace: &str,
    rest: &str,
    query: Option<&str>,
    req: Request,
) -> Response {
    if workspace == "*" {
        return status::error(
            StatusCode::FORBIDDEN,
            "wildcard requests are served by virtual workspaces only",
        );
    }
    let Some(member) = sim.workspaces.resolve(workspace) else {
        return status::error(
            StatusCode::NOT_FOUND,
            format!("workspace {workspace} not found"),
        );
    };
    let is_watch = query_params(query)
        .get("watch")
        .is_some_and(|w| w == "1" || w == "true");
    let (parts, body) = req.into_parts();
    let body: Body = body;
    let body = match forward::read_body(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let path_and_query = match query {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let outgoing = Outgoing::new(
        parts.method,
        path_and_query,
        &parts.headers,
        body,
        Identity::Caller,
    );
    match outgoing.send(&member.passthrough).await {
        Ok(resp) => {
            forward::respond(
                resp,
                Rewrite::Annotate {
                    cluster: member.id.clone(),
                    keep: None,
                },
                is_watch,
            )
            .await
        }
        Err(e) => status::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("workspace {}: {e}", member.path),
        ),
    }
}
