//! Interop: the `openidconnect` crate, as a relying party, runs discovery, the code flow with
//! PKCE, ID token verification against the JWKS and userinfo against the issuer served on
//! 127.0.0.1:0.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use super::*;

const CLIENT_ID: &str = "kube-bind";
const CLIENT_SECRET: &str = "interop-secret";

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn send(
    client: &HttpClient,
    request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
    let response = client
        .request(request)
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?;
    Ok(http::Response::from_parts(parts, body.to_bytes().to_vec()))
}

#[tokio::test]
async fn openidconnect_relying_party_completes_the_code_flow() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer_url = format!("{base}/oidc");
    let callback = format!("{base}/api/callback");
    let app = Router::new().nest(
        "/oidc",
        router(IssuerConfig {
            issuer_url: issuer_url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![callback.clone()],
            key: SigningKey::from_pem(include_str!(
                "../crypto/testdata/test-only-rsa2048-pkcs1.pem"
            ))
            .unwrap(),
            sealer: Sealer::generate(),
            id_token_ttl: Duration::from_secs(600),
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let http = |request| send(&client, request);

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer_url).unwrap(), &http)
        .await
        .expect("discovery and JWKS");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(CLIENT_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(callback.clone()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser: the login page, then its form.
    let page = send(
        &client,
        http::Request::get(authorize_url.as_str())
            .body(Vec::new())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(page.status(), http::StatusCode::OK);
    let html = String::from_utf8(page.into_body()).unwrap();
    let marker = r#"name="pending" value=""#;
    let start = html.find(marker).unwrap() + marker.len();
    let pending = &html[start..start + html[start..].find('"').unwrap()];
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("pending", pending), ("username", "dana"), ("password", "")])
        .finish();
    let answer = send(
        &client,
        http::Request::post(format!("{base}/oidc/authorize"))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.into_bytes())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), http::StatusCode::FOUND);
    let location =
        url::Url::parse(answer.headers()[http::header::LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&callback));
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(&param("state"), csrf.secret());

    let tokens = rp
        .exchange_code(AuthorizationCode::new(param("code")))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = rp.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), "dana");
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("dana")
    );
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("dana@kube-bind.local")
    );
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual_hash, expected_hash);

    let userinfo: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject().as_str(), "dana");

    server.abort();
}
