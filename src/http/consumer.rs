//! What a logged-in consumer asks for: `/api/ping`, `/api/templates`, `/api/collections` and
//! `/api/bind`, each in the cluster its login was for.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kube::Api;
use kube::api::ListParams;
use kube_bind_apis::v1alpha2::{
    APIServiceExportRequestSpec, APIServiceExportTemplate, BindableResourcesRequest, Collection,
};
use kube_bind_apis::wire::{APIServiceExportRequestResponse, BindingResponse};

use super::AppState;
use super::authn::Authenticated;
use super::error::ApiError;
use super::routes::no_cache;
use crate::provision::Identity;

/// Largest `/api/bind` body, as upstream.
pub const BIND_BODY_LIMIT: usize = 1 << 20;

pub(super) async fn ping(_: Authenticated) -> Response {
    no_cache("pong".into_response())
}

pub(super) async fn templates(login: Authenticated) -> Result<Response, ApiError> {
    let api = Api::<APIServiceExportTemplate>::all(login.cluster.client());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::from_kube("Failed to list templates", &e))?;
    Ok(no_cache(Json(list).into_response()))
}

pub(super) async fn collections(login: Authenticated) -> Result<Response, ApiError> {
    let api = Api::<Collection>::all(login.cluster.client());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::from_kube("Failed to list collections", &e))?;
    Ok(no_cache(Json(list).into_response()))
}

/// `POST /api/bind`: provisions the consumer's access and answers with its kubeconfig and the
/// export request built from the chosen template. Unlike upstream the body is read and checked
/// first, so a bad request creates nothing.
pub(super) async fn bind(
    State(state): State<AppState>,
    login: Authenticated,
    body: Body,
) -> Result<Response, ApiError> {
    let request = read_bind_request(body).await?;
    let bound = bind_template(&state, &login, request).await?;
    Ok(no_cache(Json(bound.response).into_response()))
}

/// What a bind made: the response the consumer gets, and where the provider keeps its
/// kubeconfig (the UI shows it; `/api/bind` answers with `response` only).
pub(super) struct Bound {
    pub response: BindingResponse,
    /// The consumer's cluster namespace in the provider.
    pub namespace: String,
    /// The Secret in `namespace` holding the kubeconfig.
    pub secret_name: String,
}

/// The bind behind `/api/bind` and the UI's `/ui/bind`: fetch the template, provision the
/// consumer's access, and build the export request from the template.
pub(super) async fn bind_template(
    state: &AppState,
    login: &Authenticated,
    request: BindableResourcesRequest,
) -> Result<Bound, ApiError> {
    let name = request.metadata.name.clone().unwrap_or_default();
    let template = Api::<APIServiceExportTemplate>::all(login.cluster.client())
        .get(&request.template_ref.name)
        .await
        .map_err(|e| ApiError::from_kube("Failed to retrieve template", &e))?;
    let provisioner = state.provisioner()?;
    let identity = Identity::new(&login.session.subject, login.cluster.id());
    let provisioned = provisioner
        .provision(&login.cluster, &identity)
        .await
        .map_err(|e| match e.kube_error() {
            Some(kube) => ApiError::from_kube("Failed to handle cluster resources", kube),
            None => {
                ApiError::internal("Failed to handle cluster resources").with_details(e.to_string())
            }
        })?;
    tracing::info!(
        cluster = %login.cluster.id(),
        namespace = %provisioned.namespace,
        template = %request.template_ref.name,
        "bound"
    );
    let spec = APIServiceExportRequestSpec {
        parameters: None,
        resources: template.spec.resources,
        permission_claims: template.spec.permission_claims,
        namespaces: template.spec.namespaces,
    };
    let export_request = serde_json::to_value(APIServiceExportRequestResponse::new(name, spec))
        .map_err(|e| ApiError::internal(format!("cannot encode the export request: {e}")))?;
    let response = BindingResponse::new(
        &login.session.client_session_id,
        login.session.user_id(),
        provisioned.kubeconfig,
        vec![export_request],
    );
    Ok(Bound {
        response,
        namespace: provisioned.namespace,
        secret_name: provisioned.secret_name,
    })
}

async fn read_bind_request(body: Body) -> Result<BindableResourcesRequest, ApiError> {
    let bytes = axum::body::to_bytes(body, BIND_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::bad_request(format!(
                "Request body too large; a bind request is at most {BIND_BODY_LIMIT} bytes"
            ))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })?;
    let request: BindableResourcesRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            "Invalid JSON request body; send {\"metadata\":{\"name\":…},\"templateRef\":{\"name\":…}}",
        )
        .with_details(e.to_string())
    })?;
    request
        .validate()
        .map_err(|e| ApiError::bad_request(format!("Invalid bind request: {e}")))?;
    Ok(request)
}
