//! JSON bodies the backend's HTTP API exchanges with the CLI and the web UI.
//!
//! These are not Kubernetes objects, but they carry `kind`/`apiVersion` the way upstream's Go
//! types do, and their field names and omission rules follow upstream byte for byte where a
//! client could notice.

use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::v1alpha2::{APIServiceExportRequestSpec, APIServiceExportRequestStatus};

/// `apiVersion` of `/api/exports`: upstream sends the bare version, without the group.
pub const BINDING_PROVIDER_API_VERSION: &str = "v1alpha2";
/// `apiVersion` of every other body: the kube-bind.io group version.
pub const API_VERSION: &str = "kube-bind.io/v1alpha2";
/// `kind` of the `/api/exports` body.
pub const BINDING_PROVIDER_KIND: &str = "BindingProvider";
/// `kind` of the `/api/bind` response (not `BindingResourceResponse`, which is only the Go type name).
pub const BINDING_RESPONSE_KIND: &str = "BindingResponse";
/// `kind` of an error body.
pub const ERROR_KIND: &str = "Error";
/// `kind` of each entry of [`BindingResponse::requests`].
pub const EXPORT_REQUEST_KIND: &str = "APIServiceExportRequest";

/// Value of `--oidc-type` selecting the in-process issuer.
pub const OIDC_PROVIDER_TYPE_EMBEDDED: &str = "embedded";
/// Value of `--oidc-type` selecting an external identity provider.
pub const OIDC_PROVIDER_TYPE_EXTERNAL: &str = "external";

/// `GET /api/exports`: who the provider is and how to log in to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingProvider {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Human-readable provider name, from `--pretty-name`.
    #[serde(default)]
    pub provider_pretty_name: String,
    /// kube-bind version of the backend, e.g. `v0.5.0`.
    #[serde(default)]
    pub version: String,
    /// Ways to log in, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication_methods: Vec<AuthenticationMethod>,
}

impl BindingProvider {
    /// A provider offering the OAuth2 code grant at `authenticated_url` (the `/api/authorize` URL).
    pub fn new(
        pretty_name: impl Into<String>,
        version: impl Into<String>,
        authenticated_url: impl Into<String>,
    ) -> Self {
        Self {
            kind: BINDING_PROVIDER_KIND.to_owned(),
            api_version: BINDING_PROVIDER_API_VERSION.to_owned(),
            provider_pretty_name: pretty_name.into(),
            version: version.into(),
            authentication_methods: vec![AuthenticationMethod::oauth2_code_grant(
                authenticated_url,
            )],
        }
    }

    /// The authorize URL of the first OAuth2 code-grant method, if any.
    pub fn oauth2_authenticated_url(&self) -> Option<&str> {
        self.authentication_methods
            .iter()
            .filter(|m| m.method == AuthenticationMethodType::OAuth2CodeGrant)
            .find_map(|m| m.oauth2_code_grant.as_ref())
            .map(|grant| grant.authenticated_url.as_str())
    }
}

open_enum! {
    /// How a client authenticates against the backend.
    pub enum AuthenticationMethodType {
        /// OAuth2 authorization-code flow started at `oauth2CodeGrant.authenticatedURL`.
        OAuth2CodeGrant => "OAuth2CodeGrant",
    }
}

impl Default for AuthenticationMethodType {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

/// One login method offered by [`BindingProvider`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationMethod {
    #[serde(default, skip_serializing_if = "is_empty_method")]
    pub method: AuthenticationMethodType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_code_grant: Option<OAuth2CodeGrant>,
}

fn is_empty_method(method: &AuthenticationMethodType) -> bool {
    method.as_str().is_empty()
}

impl AuthenticationMethod {
    /// The OAuth2 code-grant method starting at `authenticated_url`.
    pub fn oauth2_code_grant(authenticated_url: impl Into<String>) -> Self {
        Self {
            method: AuthenticationMethodType::OAuth2CodeGrant,
            oauth2_code_grant: Some(OAuth2CodeGrant {
                authenticated_url: authenticated_url.into(),
            }),
        }
    }
}

/// Where the OAuth2 code grant starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OAuth2CodeGrant {
    /// URL of `/api/authorize`, with the caller's query parameters carried over.
    #[serde(rename = "authenticatedURL", default)]
    pub authenticated_url: String,
}

/// `POST /api/bind` response: the consumer's kubeconfig and the export requests to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingResponse {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Always present on the wire (Go does not omit empty structs), `{}` when unauthenticated.
    #[serde(default)]
    pub authentication: BindingResponseAuthentication,
    /// Kubeconfig bytes, base64 in JSON like Go's `[]byte`.
    #[serde(default, with = "base64_bytes")]
    #[schemars(with = "String")]
    pub kubeconfig: Vec<u8>,
    /// Raw `APIServiceExportRequest` objects (see [`APIServiceExportRequestResponse`]).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub requests: Vec<serde_json::Value>,
}

impl BindingResponse {
    /// A response for session `sid` of user `id` (`<issuer>/<subject>`).
    pub fn new(
        session_id: impl Into<String>,
        id: impl Into<String>,
        kubeconfig: Vec<u8>,
        requests: Vec<serde_json::Value>,
    ) -> Self {
        Self {
            kind: BINDING_RESPONSE_KIND.to_owned(),
            api_version: API_VERSION.to_owned(),
            authentication: BindingResponseAuthentication {
                oauth2_code_grant: Some(BindingResponseOAuth2CodeGrant {
                    session_id: session_id.into(),
                    id: id.into(),
                }),
            },
            kubeconfig,
            requests,
        }
    }
}

/// How the consumer authenticated when it asked to bind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingResponseAuthentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_code_grant: Option<BindingResponseOAuth2CodeGrant>,
}

/// The session and user behind an OAuth2 code-grant login.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BindingResponseOAuth2CodeGrant {
    /// Session id the CLI passed to `/api/authorize`.
    #[serde(rename = "sid", default)]
    pub session_id: String,
    /// `<issuer>/<subject>` of the logged-in user.
    #[serde(default)]
    pub id: String,
}

/// Name-only object metadata, as used by [`APIServiceExportRequestResponse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NameObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// An `APIServiceExportRequest` as handed to the consumer, which creates it on the provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportRequestResponse {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: NameObjectMeta,
    pub spec: APIServiceExportRequestSpec,
    /// Always serialized; Go emits `"status":{}` for an empty status.
    #[serde(default)]
    pub status: APIServiceExportRequestStatus,
}

impl APIServiceExportRequestResponse {
    /// A request named `name` (empty lets the consumer pick one) with `spec`.
    pub fn new(name: impl Into<String>, spec: APIServiceExportRequestSpec) -> Self {
        Self {
            kind: EXPORT_REQUEST_KIND.to_owned(),
            api_version: API_VERSION.to_owned(),
            metadata: NameObjectMeta { name: name.into() },
            spec,
            status: APIServiceExportRequestStatus::default(),
        }
    }
}

open_enum! {
    /// Machine-readable error code of an [`ErrorBody`].
    pub enum ErrorCode {
        AuthenticationFailed => "AUTHENTICATION_FAILED",
        AuthorizationFailed => "AUTHORIZATION_FAILED",
        ResourceNotFound => "RESOURCE_NOT_FOUND",
        InternalError => "INTERNAL_ERROR",
        BadRequest => "BAD_REQUEST",
        /// Defined upstream, unused there: the backend could not reach a cluster.
        ClusterConnectionFailed => "CLUSTER_CONNECTION_FAILED",
    }
}

impl ErrorCode {
    /// The HTTP status code that goes with this error code (500 for unknown codes).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::AuthenticationFailed => 401,
            Self::AuthorizationFailed => 403,
            Self::ResourceNotFound => 404,
            Self::InternalError => 500,
            Self::BadRequest => 400,
            Self::ClusterConnectionFailed => 502,
            Self::Unknown(_) => 500,
        }
    }
}

/// The JSON body of every API error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// What went wrong, for a person.
    #[serde(default)]
    pub message: String,
    pub code: ErrorCode,
    /// Underlying cause, e.g. the Kubernetes error text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            kind: ERROR_KIND.to_owned(),
            api_version: API_VERSION.to_owned(),
            message: message.into(),
            code,
            details: String::new(),
        }
    }

    /// Adds the underlying cause.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The HTTP status code this body should be sent with.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// One entry of `GET /api/bindable-resources`.
///
/// Upstream serializes a Go struct without json tags, hence the capitalised field names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BindableResource {
    #[serde(rename = "Names")]
    pub names: BindableResourceNames,
    #[serde(rename = "GroupVersionResource")]
    pub group_version_resource: GroupVersionResource,
    /// An empty object of the kind (Go serializes a zero-valued object here).
    #[serde(rename = "Instance")]
    pub instance: serde_json::Value,
    #[serde(rename = "ResourceScope")]
    pub resource_scope: String,
    #[serde(rename = "HasStatus")]
    pub has_status: bool,
}

/// CRD-style names of a [`BindableResource`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BindableResourceNames {
    pub plural: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub singular: String,
    pub kind: String,
}

/// Group, version and resource with Go's untagged field names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupVersionResource {
    #[serde(rename = "Group")]
    pub group: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Resource")]
    pub resource: String,
}

/// The body of `GET /api/bindable-resources`: the claimable APIs, in upstream's order.
pub fn bindable_resources() -> Vec<BindableResource> {
    crate::claimable::CLAIMABLE_APIS
        .iter()
        .map(|api| BindableResource {
            names: BindableResourceNames {
                plural: api.resource.to_owned(),
                singular: api.singular.to_owned(),
                kind: api.kind.to_owned(),
            },
            group_version_resource: GroupVersionResource {
                group: api.group.to_owned(),
                version: api.version.to_owned(),
                resource: api.resource.to_owned(),
            },
            instance: serde_json::json!({ "metadata": {} }),
            resource_scope: "Namespaced".to_owned(),
            has_status: false,
        })
        .collect()
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// `[]byte` as Go's encoding/json writes it: standard base64, `null` for nil.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Vec::new()),
            Some(text) => STANDARD.decode(text.as_bytes()).map_err(|e| {
                serde::de::Error::custom(format!("kubeconfig is not valid base64: {e}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_provider_matches_upstream_shape() {
        let p = BindingProvider::new(
            "BigCorp.com",
            "v0.5.0",
            "http://h:8080/api/authorize?cluster_id=abc",
        );
        let got = serde_json::to_value(&p).unwrap();
        let want = json!({
            "kind": "BindingProvider",
            "apiVersion": "v1alpha2",
            "providerPrettyName": "BigCorp.com",
            "version": "v0.5.0",
            "authenticationMethods": [{
                "method": "OAuth2CodeGrant",
                "oauth2CodeGrant": {"authenticatedURL": "http://h:8080/api/authorize?cluster_id=abc"}
            }]
        });
        assert_eq!(got, want);
        let back: BindingProvider = serde_json::from_value(want).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.oauth2_authenticated_url(),
            Some("http://h:8080/api/authorize?cluster_id=abc")
        );
    }

    #[test]
    fn error_body_shape_and_status() {
        let e = ErrorBody::new(ErrorCode::ResourceNotFound, "Failed to retrieve template")
            .with_details("not found");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"kind": "Error", "apiVersion": "kube-bind.io/v1alpha2",
                   "message": "Failed to retrieve template", "code": "RESOURCE_NOT_FOUND", "details": "not found"})
        );
        let bare = serde_json::to_value(ErrorBody::new(ErrorCode::BadRequest, "x")).unwrap();
        assert!(bare.get("details").is_none());
        let table = [
            (ErrorCode::AuthenticationFailed, 401),
            (ErrorCode::AuthorizationFailed, 403),
            (ErrorCode::ResourceNotFound, 404),
            (ErrorCode::InternalError, 500),
            (ErrorCode::BadRequest, 400),
            (ErrorCode::ClusterConnectionFailed, 502),
            (ErrorCode::Unknown("TEAPOT".into()), 500),
        ];
        for (code, status) in table {
            assert_eq!(code.http_status(), status, "{code}");
        }
    }

    #[test]
    fn unknown_error_code_round_trips() {
        let json = json!({"kind": "Error", "apiVersion": "kube-bind.io/v1alpha2", "message": "m", "code": "NEW_CODE"});
        let e: ErrorBody = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(e.code, ErrorCode::Unknown("NEW_CODE".into()));
        assert_eq!(serde_json::to_value(&e).unwrap(), json);
    }

    #[test]
    fn binding_response_kubeconfig_is_base64() {
        let r = BindingResponse::new(
            "sess",
            "https://issuer/sub",
            b"apiVersion: v1\n".to_vec(),
            vec![json!({})],
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kubeconfig"], "YXBpVmVyc2lvbjogdjEK");
        assert_eq!(v["kind"], "BindingResponse");
        assert_eq!(v["apiVersion"], "kube-bind.io/v1alpha2");
        assert_eq!(
            v["authentication"],
            json!({"oauth2CodeGrant": {"sid": "sess", "id": "https://issuer/sub"}})
        );
        let back: BindingResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn export_request_response_always_has_status() {
        let spec = crate::v1alpha2::APIServiceExportRequestSpec {
            resources: vec![crate::v1alpha2::APIServiceExportResource {
                group: "wildwest.dev".into(),
                resource: "cowboys".into(),
                versions: vec![],
            }],
            ..Default::default()
        };
        let v = serde_json::to_value(APIServiceExportRequestResponse::new("test-binding", spec))
            .unwrap();
        assert_eq!(
            v,
            json!({"kind": "APIServiceExportRequest", "apiVersion": "kube-bind.io/v1alpha2",
                   "metadata": {"name": "test-binding"},
                   "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys"}]},
                   "status": {}})
        );
    }

    #[test]
    fn bindable_resources_use_go_field_names() {
        let v = serde_json::to_value(bindable_resources()).unwrap();
        assert_eq!(
            v[0],
            json!({
                "Names": {"plural": "configmaps", "singular": "configmap", "kind": "ConfigMap"},
                "GroupVersionResource": {"Group": "", "Version": "v1", "Resource": "configmaps"},
                "Instance": {"metadata": {}},
                "ResourceScope": "Namespaced",
                "HasStatus": false
            })
        );
        assert_eq!(v.as_array().map(Vec::len), Some(3));
    }
}
