//! The RSA key that signs RS256 JWTs (the backend's bearer tokens and the embedded issuer's ID
//! tokens), with its public half as a JWK named by its RFC 7638 thumbprint.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::PrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{KeyError, b64url};

/// The smallest modulus accepted for RS256, and the size of generated keys.
const MIN_BITS: u32 = 2048;

/// Why a JWT could not be signed or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("cannot sign the token: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("the token is not accepted: {0}")]
    Invalid(jsonwebtoken::errors::Error),
}

/// An RSA private key for RS256.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

struct Inner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    n: String,
    e: String,
    bits: u32,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.inner.kid)
            .field("bits", &self.inner.bits)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`) PEM file.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|error| KeyError::ReadPem {
            path: path.display().to_string(),
            error,
        })?;
        Self::parse(&pem, &path.display().to_string())
    }

    /// Parses a PKCS#1 or PKCS#8 PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::parse(pem, "the PEM text")
    }

    /// A new RSA-2048 key.
    pub fn generate() -> Result<Self, KeyError> {
        let key = PrivateKey::new(&mut getrandom::SysRng, MIN_BITS as usize)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_private_key(&key, "the generated key")
    }

    fn parse(pem: &str, source_name: &str) -> Result<Self, KeyError> {
        let key = PrivateKey::from_pkcs1_pem(pem)
            .ok()
            .or_else(|| PrivateKey::from_pkcs8_pem(pem).ok())
            .ok_or_else(|| KeyError::NotRsaPem {
                source_name: source_name.to_string(),
            })?;
        Self::from_private_key(&key, source_name)
    }

    fn from_private_key(key: &PrivateKey, source_name: &str) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::RsaInvalid {
            source_name: source_name.to_string(),
            reason,
        };
        let bits = key.n().bit_width();
        if bits < MIN_BITS {
            return Err(KeyError::RsaTooSmall {
                source_name: source_name.to_string(),
                bits,
            });
        }
        key.validate().map_err(|e| invalid(e.to_string()))?;
        let der = key.to_pkcs1_der().map_err(|e| invalid(e.to_string()))?;
        let (n_bytes, e_bytes) = (key.n_bytes(), key.e_bytes());
        let (n, e) = (b64url(&n_bytes), b64url(&e_bytes));
        Ok(Self {
            inner: Arc::new(Inner {
                encoding: EncodingKey::from_rsa_der(der.as_bytes()),
                decoding: DecodingKey::from_rsa_raw_components(&n_bytes, &e_bytes),
                kid: thumbprint(&n, &e),
                n,
                e,
                bits,
            }),
        })
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): the `kid` of every token signed here.
    pub fn key_id(&self) -> &str {
        &self.inner.kid
    }

    /// The public key as a JWK, for a JWKS document.
    pub fn public_jwk(&self) -> serde_json::Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.inner.kid,
            "n": self.inner.n,
            "e": self.inner.e,
        })
    }

    /// Signs `claims` as an RS256 JWT whose header carries this key's `kid`.
    pub fn sign<C: serde::Serialize>(&self, claims: &C) -> Result<String, JwtError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.inner.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.inner.encoding).map_err(JwtError::Sign)
    }

    /// Verifies an RS256 JWT made with this key and checks `validation`'s claims; whatever
    /// algorithms `validation` lists, only RS256 is accepted.
    pub fn verify<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<C, JwtError> {
        let mut validation = validation.clone();
        validation.algorithms = vec![Algorithm::RS256];
        jsonwebtoken::decode::<C>(token, &self.inner.decoding, &validation)
            .map(|data| data.claims)
            .map_err(JwtError::Invalid)
    }
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    b64url(&Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
    use serde::{Deserialize, Serialize};

    use super::*;

    const PKCS1: &str = include_str!("testdata/test-only-rsa2048-pkcs1.pem");
    const PKCS8: &str = include_str!("testdata/test-only-rsa2048-pkcs8.pem");
    const SMALL: &str = include_str!("testdata/test-only-rsa1024-pkcs8.pem");
    const EC: &str = include_str!("testdata/test-only-ec-p256.pem");

    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_pem(PKCS8).unwrap());

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "alice".into(),
            exp: jsonwebtoken::get_current_timestamp() + 600,
        }
    }

    fn segment(value: serde_json::Value) -> String {
        b64url(value.to_string().as_bytes())
    }

    #[test]
    fn pkcs1_and_pkcs8_pem_load_the_same_key() {
        let a = SigningKey::from_pem(PKCS1).unwrap();
        let b = SigningKey::from_pem(PKCS8).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(a.public_jwk(), b.public_jwk());
    }

    #[test]
    fn pem_file_loads_and_a_missing_file_says_what_to_do() {
        let dir = std::env::temp_dir().join(format!("kb-rsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        std::fs::write(&path, PKCS1).unwrap();
        assert_eq!(
            SigningKey::from_pem_file(&path).unwrap().key_id(),
            KEY.key_id()
        );
        let missing = dir.join("missing.pem");
        let err = SigningKey::from_pem_file(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        assert!(err.contains("openssl genpkey"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn small_ec_and_garbage_keys_are_refused() {
        let err = SigningKey::from_pem(SMALL).unwrap_err();
        assert!(
            matches!(err, KeyError::RsaTooSmall { bits: 1024, .. }),
            "{err}"
        );
        let err = SigningKey::from_pem(EC).unwrap_err();
        assert!(matches!(err, KeyError::NotRsaPem { .. }), "{err}");
        let err = SigningKey::from_pem("hello").unwrap_err();
        assert!(err.to_string().contains("PKCS#8"), "{err}");
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        let jwk: Jwk = serde_json::from_value(KEY.public_jwk()).unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            KEY.key_id()
        );
        let public = KEY.public_jwk();
        assert_eq!(public["kty"], "RSA");
        assert_eq!(public["use"], "sig");
        assert_eq!(public["alg"], "RS256");
        assert_eq!(public["kid"], KEY.key_id());
        assert_eq!(public["e"], "AQAB");
    }

    #[test]
    fn sign_then_verify_and_with_the_public_jwk() {
        let token = KEY.sign(&claims()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(KEY.key_id()));
        let validation = Validation::new(Algorithm::RS256);
        assert_eq!(
            KEY.verify::<Claims>(&token, &validation).unwrap().sub,
            "alice"
        );
        let jwk: Jwk = serde_json::from_value(KEY.public_jwk()).unwrap();
        let decoded = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims.sub, "alice");
    }

    #[test]
    fn expired_and_tampered_tokens_are_refused() {
        let validation = Validation::new(Algorithm::RS256);
        let old = Claims {
            sub: "alice".into(),
            exp: 1_000,
        };
        assert!(
            KEY.verify::<Claims>(&KEY.sign(&old).unwrap(), &validation)
                .is_err()
        );
        let token = KEY.sign(&claims()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = segment(json!({"sub": "mallory", "exp": claims().exp}));
        parts[1] = &forged;
        assert!(KEY.verify::<Claims>(&parts.join("."), &validation).is_err());
    }

    #[test]
    fn alg_none_hs256_and_other_rsa_algs_are_refused() {
        // Whatever the caller allows, only RS256 verifies.
        let mut lenient = Validation::new(Algorithm::RS256);
        lenient.algorithms = vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::PS256,
            Algorithm::HS256,
        ];
        let body = segment(json!({"sub": "mallory", "exp": claims().exp}));

        let none = format!("{}.{body}.", segment(json!({"alg": "none", "typ": "JWT"})));
        assert!(KEY.verify::<Claims>(&none, &lenient).is_err());

        // HS256 keyed with the public modulus: the classic algorithm-confusion forgery.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(KEY.public_jwk()["n"].as_str().unwrap().as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(KEY.verify::<Claims>(&hs, &lenient).is_err());

        let der = PrivateKey::from_pkcs8_pem(PKCS8)
            .unwrap()
            .to_pkcs1_der()
            .unwrap();
        for alg in [Algorithm::RS384, Algorithm::PS256] {
            let other = jsonwebtoken::encode(
                &Header::new(alg),
                &claims(),
                &EncodingKey::from_rsa_der(der.as_bytes()),
            )
            .unwrap();
            assert!(KEY.verify::<Claims>(&other, &lenient).is_err(), "{alg:?}");
        }
    }

    #[test]
    fn generated_key_signs_and_is_2048_bits() {
        let key = SigningKey::generate().unwrap();
        assert_eq!(key.inner.bits, 2048);
        let token = key.sign(&claims()).unwrap();
        let validation = Validation::new(Algorithm::RS256);
        assert!(key.verify::<Claims>(&token, &validation).is_ok());
        assert!(KEY.verify::<Claims>(&token, &validation).is_err());
    }

    #[test]
    fn debug_prints_no_key_material() {
        let debug = format!("{:?}", *KEY);
        assert!(debug.contains(KEY.key_id()));
        assert!(!debug.contains(&KEY.inner.n[..16]));
    }
}
