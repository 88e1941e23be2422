//! Key material and the two primitives built on it: sealing small values (cookies, pending logins,
//! authorization codes) and signing RS256 JWTs.
//!
//! Both are stateless by design: any replica holding the same keys opens what another sealed and
//! verifies what another signed.

mod rsa_key;
mod seal;

pub use rsa_key::{JwtError, SigningKey};
pub use seal::{OpenError, SealError, Sealer};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Key material that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the signing key is {len} bytes long, but HMAC-SHA256 keys must be 32 or 64 bytes; \
         make one with `openssl rand 32`"
    )]
    SigningKeyLength { len: usize },
    #[error(
        "the encryption key is {len} bytes long, but AES-GCM keys must be 16, 24 or 32 bytes \
         (AES-128/192/256); make one with `openssl rand 32`"
    )]
    EncryptionKeyLength { len: usize },
    #[error(
        "cannot read the RSA signing key {path}: {error}; make one with \
         `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {path}`"
    )]
    ReadPem { path: String, error: std::io::Error },
    #[error(
        "{source_name} holds no RSA private key in PKCS#1 (BEGIN RSA PRIVATE KEY) or PKCS#8 \
         (BEGIN PRIVATE KEY) PEM form; make one with \
         `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem`"
    )]
    NotRsaPem { source_name: String },
    #[error(
        "the RSA key in {source_name} has {bits} bits, fewer than the 2048 RS256 needs; make a \
         new one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem`"
    )]
    RsaTooSmall { source_name: String, bits: u32 },
    #[error("the RSA key in {source_name} is invalid: {reason}")]
    RsaInvalid { source_name: String, reason: String },
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
}

/// Cookie- and URL-safe base64 (RFC 4648 §5, no padding), as JOSE uses.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// `N` bytes from the operating system's CSPRNG.
///
/// Panics only if the OS has no random source, where no key or nonce could be made at all.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// A random, URL-safe token of `N` random bytes (ids, nonces, PKCE verifiers).
pub fn random_token<const N: usize>() -> String {
    b64url(&random_bytes::<N>())
}
