//! The OIDC relying party: authorization-code flow with PKCE (S256), `state` and `nonce`, and the
//! ID token verified against the issuer's JWKS (upstream only base64-decodes it).
//!
//! Discovery happens on first use and is retried until it succeeds: the embedded issuer lives on
//! our own listener, which is not serving yet when this client is built.

use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse as _,
};
use tokio::sync::OnceCell;

use super::session::LoggedInUser;

/// How long the issuer may take to answer one request.
const ISSUER_DEADLINE: Duration = Duration::from_secs(15);
/// Clock difference tolerated with the issuer when checking the ID token's expiry.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a login could not go on; messages say what to check, never carry tokens.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(
        "the OIDC issuer {issuer} could not be discovered ({reason}); check --oidc-issuer-url and that the issuer is reachable"
    )]
    Discovery { issuer: String, reason: String },
    #[error("the OIDC issuer refused the authorization code ({0}); start the login again")]
    Exchange(String),
    #[error(
        "the OIDC issuer returned no ID token; the client needs the openid scope at the issuer"
    )]
    NoIdToken,
    #[error("the ID token failed verification ({0}); start the login again")]
    Verification(String),
    #[error("{0}")]
    Config(String),
}

/// Settings of the relying party.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub callback_url: String,
    /// Extra CA (PEM) trusted for the issuer's TLS certificate (`--oidc-ca-file`).
    pub ca: Option<Vec<u8>>,
}

/// What the login keeps between the redirect to the issuer and the callback.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingAuthorization {
    pub pkce_verifier: String,
    pub nonce: String,
}

pub struct OidcClient {
    settings: OidcSettings,
    http: IssuerHttp,
    discovered: OnceCell<DiscoveredClient>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.settings.issuer_url)
            .field("client_id", &self.settings.client_id)
            .finish()
    }
}

impl OidcClient {
    pub fn new(settings: OidcSettings) -> Result<Self, OidcError> {
        // No redirects: the issuer's endpoints answer directly; following one could leak the
        // client secret or a code to another host.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ISSUER_DEADLINE)
            .user_agent(concat!("kube-bind-backend/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &settings.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                OidcError::Config(format!(
                    "--oidc-ca-file holds no usable PEM certificate: {e}"
                ))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| OidcError::Config(format!("cannot build the OIDC HTTP client: {e}")))?;
        Ok(Self {
            settings,
            http: IssuerHttp(http),
            discovered: OnceCell::new(),
        })
    }

    pub fn issuer_url(&self) -> &str {
        &self.settings.issuer_url
    }

    async fn client(&self) -> Result<&DiscoveredClient, OidcError> {
        self.discovered
            .get_or_try_init(|| async {
                let discovery_error = |reason: String| OidcError::Discovery {
                    issuer: self.settings.issuer_url.clone(),
                    reason,
                };
                let issuer = IssuerUrl::new(self.settings.issuer_url.clone())
                    .map_err(|e| discovery_error(e.to_string()))?;
                let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| discovery_error(error_chain(&e)))?;
                let redirect = RedirectUrl::new(self.settings.callback_url.clone())
                    .map_err(|e| OidcError::Config(format!("--oidc-callback-url: {e}")))?;
                Ok(CoreClient::from_provider_metadata(
                    metadata,
                    ClientId::new(self.settings.client_id.clone()),
                    Some(ClientSecret::new(self.settings.client_secret.clone())),
                )
                .set_redirect_uri(redirect))
            })
            .await
    }

    /// The issuer URL to send the browser to, carrying `state`, and what the callback needs.
    pub async fn authorize_url(
        &self,
        state: &str,
    ) -> Result<(url::Url, PendingAuthorization), OidcError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let (url, _, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url,
            PendingAuthorization {
                pkce_verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
            },
        ))
    }

    /// Exchanges `code` and verifies the ID token (signature by the JWKS, issuer, audience,
    /// expiry with [`CLOCK_SKEW`], nonce).
    pub async fn finish(
        &self,
        code: &str,
        pending: &PendingAuthorization,
    ) -> Result<LoggedInUser, OidcError> {
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(format!("the issuer has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let _ = response.access_token();
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        let verifier = client.id_token_verifier().set_time_fn(|| {
            chrono::Utc::now() - chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default()
        });
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce.clone()))
            .map_err(|e| OidcError::Verification(e.to_string()))?;
        Ok(LoggedInUser {
            subject: claims.subject().as_str().to_owned(),
            issuer: claims.issuer().as_str().to_owned(),
            groups: groups_claim(&id_token.to_string()),
        })
    }
}

/// `groups` of an ID token whose signature was already verified (the core claims type does not
/// carry it). Absent or malformed: none.
fn groups_claim(token: &str) -> Vec<String> {
    use base64::Engine as _;
    #[derive(serde::Deserialize)]
    struct Groups {
        #[serde(default)]
        groups: Vec<String>,
    }
    token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|json| serde_json::from_slice::<Groups>(&json).ok())
        .map(|g| g.groups)
        .unwrap_or_default()
}

/// The OIDC library's requests over our HTTP client (reqwest with our TLS settings; the library's
/// own reqwest integration targets another reqwest version).
struct IssuerHttp(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for IssuerHttp {
    type Error = reqwest::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>> + Send + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(send(self.0.clone(), request))
    }
}

async fn send(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = http::Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder
        .body(body)
        .unwrap_or_else(|_| http::Response::new(Vec::new())))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_from_the_payload_and_default_to_none() {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"a","groups":["dev","ops"]}"#);
        assert_eq!(groups_claim(&format!("h.{payload}.s")), ["dev", "ops"]);
        assert!(groups_claim("garbage").is_empty());
        let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"a"}"#);
        assert!(groups_claim(&format!("h.{none}.s")).is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_a_discovery_error_naming_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = OidcClient::new(OidcSettings {
            issuer_url: "http://127.0.0.1:9/oidc".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            callback_url: "http://127.0.0.1:9/api/callback".into(),
            ca: None,
        })
        .unwrap();
        let err = client.authorize_url("s").await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("http://127.0.0.1:9/oidc"), "{text}");
        assert!(text.contains("--oidc-issuer-url"), "{text}");
    }
}
