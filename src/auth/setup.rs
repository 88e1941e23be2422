//! Builds the login machinery from the validated options: key material, the session store, the
//! OIDC client and, with `--oidc-type embedded`, the issuer it talks to.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{
    Auth, BearerTokens, MemoryStore, OidcClient, OidcSettings, RedirectPolicy, RedisStore,
    SessionStore,
};
use crate::crypto::{Sealer, SigningKey};
use crate::oidc_issuer::{self, IssuerConfig};
use crate::options::{self, Oidc, Options};

/// Lifetime of the embedded issuer's ID tokens: long enough for the code exchange only.
const EMBEDDED_ID_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Why the login could not be set up; each names the flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Flag(String),
}

/// The login and, for the embedded issuer, its routes.
pub struct LoginSetup {
    pub auth: Auth,
    pub embedded_issuer: Option<axum::Router>,
}

/// `listen` is the bound address (port resolved), `tls` whether it serves HTTPS.
pub fn build(options: &Options, listen: SocketAddr, tls: bool) -> Result<LoginSetup, SetupError> {
    let sealer = sealer(&options.cookie_keys)?;
    let jwt_key = jwt_key(options.jwt_signing_key_file.as_deref())?;
    let store = match &options.session_store {
        options::SessionStore::Memory => SessionStore::Memory(MemoryStore::default()),
        options::SessionStore::Cookie => SessionStore::Cookie,
        options::SessionStore::Redis { url } => {
            SessionStore::Redis(RedisStore::new(url).map_err(|e| {
                SetupError::Flag(format!(
                    "--redis-url is not usable: {e}; use redis://host:port[/db]"
                ))
            })?)
        }
    };
    let own = own_base_url(listen, tls);
    let (settings, embedded_issuer) = match &options.oidc {
        Oidc::External {
            issuer_url,
            client_id,
            client_secret,
            callback_url,
            ca_file,
        } => (
            OidcSettings {
                issuer_url: issuer_url.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                callback_url: callback_url.clone(),
                ca: ca_file.as_deref().map(read_ca).transpose()?,
            },
            None,
        ),
        Oidc::Embedded {
            issuer_url,
            callback_url,
            client_id,
            client_secret,
            signing_key_file,
        } => {
            let issuer_url = issuer_url.clone().unwrap_or_else(|| format!("{own}/oidc"));
            let callback_url = callback_url
                .clone()
                .unwrap_or_else(|| format!("{own}/api/callback"));
            let key = match signing_key_file {
                Some(path) => load_key(path, "oidc-signing-key-file")?,
                None => jwt_key.clone(),
            };
            let issuer = oidc_issuer::router(IssuerConfig {
                issuer_url: issuer_url.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                redirect_uris: vec![callback_url.clone()],
                key,
                sealer: sealer.clone(),
                id_token_ttl: EMBEDDED_ID_TOKEN_TTL,
            });
            tracing::info!(issuer = %issuer_url, client_id = %client_id, "embedded OIDC issuer serving");
            if client_secret == options::EMBEDDED_CLIENT_SECRET {
                // A published development value, printed so nobody takes it for a secret.
                tracing::warn!(
                    client_id = %client_id,
                    client_secret = options::EMBEDDED_CLIENT_SECRET,
                    "embedded OIDC issuer uses the development client credentials; set \
                     --oidc-issuer-client-id and --oidc-issuer-client-secret for anything but local \
                     development"
                );
            }
            (
                OidcSettings {
                    issuer_url,
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    callback_url,
                    // Under TLS the issuer is ourselves: trust our own serving certificate.
                    ca: options
                        .tls
                        .as_ref()
                        .map(|files| read_ca(&files.cert))
                        .transpose()?,
                },
                Some(issuer),
            )
        }
    };
    let oidc = OidcClient::new(settings).map_err(|e| SetupError::Flag(e.to_string()))?;
    Ok(LoginSetup {
        auth: Auth {
            oidc,
            sealer,
            tokens: BearerTokens::new(jwt_key),
            store,
            redirects: RedirectPolicy::new(&options.allowed_redirect_hosts),
            session_lifetime: options.token_expiry,
        },
        embedded_issuer,
    })
}

fn sealer(keys: &options::CookieKeys) -> Result<Sealer, SetupError> {
    match (&keys.signing, &keys.encryption) {
        (Some(signing), Some(encryption)) => Sealer::new(signing, encryption)
            .map_err(|e| SetupError::Flag(format!("--cookie-signing-key/--cookie-encryption-key: {e}"))),
        (None, None) => {
            tracing::warn!(
                "no --cookie-signing-key/--cookie-encryption-key: generated keys for this process; \
                 logins in flight and UI sessions end with a restart and are not shared with other \
                 replicas"
            );
            Ok(Sealer::generate())
        }
        _ => Err(SetupError::Flag(
            "give both --cookie-signing-key and --cookie-encryption-key, or neither (generated, one \
             replica only)"
                .into(),
        )),
    }
}

fn jwt_key(path: Option<&Path>) -> Result<SigningKey, SetupError> {
    match path {
        Some(path) => load_key(path, "jwt-signing-key-file"),
        None => {
            tracing::warn!(
                "no --jwt-signing-key-file: generated an RSA key for this process; bearer tokens end \
                 with a restart and are not accepted by other replicas"
            );
            SigningKey::generate().map_err(|e| SetupError::Flag(e.to_string()))
        }
    }
}

fn load_key(path: &Path, flag: &str) -> Result<SigningKey, SetupError> {
    SigningKey::from_pem_file(path).map_err(|e| SetupError::Flag(format!("--{flag}: {e}")))
}

fn read_ca(path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path)
        .map_err(|e| SetupError::Flag(format!("cannot read CA file {}: {e}", path.display())))
}

/// `http(s)://host:port` of our listener; a wildcard address is reached on loopback.
fn own_base_url(listen: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("{scheme}://{host}:{}", listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_url_uses_loopback_for_a_wildcard_listener() {
        assert_eq!(
            own_base_url("0.0.0.0:8080".parse().unwrap(), false),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            own_base_url("127.0.0.1:443".parse().unwrap(), true),
            "https://127.0.0.1:443"
        );
        assert_eq!(
            own_base_url("[::]:80".parse().unwrap(), false),
            "http://[::1]:80"
        );
    }
}
