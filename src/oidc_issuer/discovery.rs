//! Discovery (OpenID Connect Discovery 1.0 §3) and the JWKS (RFC 7517 §5).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{Issuer, SUPPORTED_SCOPES};

/// GET `/.well-known/openid-configuration`.
pub(super) async fn configuration(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    Json(json!({
        "issuer": issuer.issuer,
        "authorization_endpoint": issuer.endpoint("/authorize"),
        "token_endpoint": issuer.endpoint("/token"),
        "userinfo_endpoint": issuer.endpoint("/userinfo"),
        "jwks_uri": issuer.endpoint("/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": SUPPORTED_SCOPES,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
            "preferred_username", "email", "email_verified"
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    }))
}

/// GET `/.well-known/jwks.json` (and `/keys`).
pub(super) async fn jwks(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    Json(json!({"keys": [issuer.key.public_jwk()]}))
}
