//! Sealing: AES-GCM encryption plus an HMAC-SHA256 over the whole value, bound to a purpose and
//! an expiry, written as base64url so it fits in a cookie, a form field or a query parameter.
//!
//! Layout (before base64url): `version(1) ‖ expires_at(8, unix seconds, BE) ‖ nonce(12) ‖
//! ciphertext+tag ‖ mac(32)`.
//!
//! NOTE: the MAC covers the purpose, the version, the expiry, the nonce and the ciphertext, and is
//! checked in constant time before anything is decrypted; the purpose and expiry are also the
//! AES-GCM associated data, so neither layer opens a value sealed for another purpose.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::aead::Aead;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{KeyError, b64url, b64url_decode, random_bytes};

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAC_LEN: usize = 32;
const MIN_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN + MAC_LEN;
/// Domain separation: a MAC made here is never a MAC for anything else keyed the same.
const MAC_CONTEXT: &[u8] = b"kube-bind seal v1\0";

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not something [`Sealer::seal`] makes (bad base64, too short, unknown version, or a
    /// payload of the wrong shape for `open_json`).
    #[error("the sealed value is malformed")]
    Malformed,
    /// Changed, sealed with other keys, or sealed for another purpose.
    #[error("the sealed value was tampered with or sealed with other keys or for another purpose")]
    Tampered,
    /// Authentic, but past its expiry.
    #[error("the sealed value has expired")]
    Expired,
}

/// Why a value could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot serialize the value to seal: {0}")]
    Json(#[from] serde_json::Error),
}

/// Seals and opens small values with a signing key (HMAC-SHA256) and an encryption key (AES-GCM).
#[derive(Clone)]
pub struct Sealer {
    inner: Arc<Keys>,
}

struct Keys {
    mac: Hmac<Sha256>,
    cipher: Cipher,
}

enum Cipher {
    Aes128(Aes128Gcm),
    Aes192(AesGcm<Aes192, U12>),
    Aes256(Aes256Gcm),
}

impl Cipher {
    fn name(&self) -> &'static str {
        match self {
            Cipher::Aes128(_) => "AES-128-GCM",
            Cipher::Aes192(_) => "AES-192-GCM",
            Cipher::Aes256(_) => "AES-256-GCM",
        }
    }

    fn encrypt(&self, nonce: &[u8; NONCE_LEN], payload: Payload<'_, '_>) -> Vec<u8> {
        let nonce = Nonce::<U12>::from(*nonce);
        let sealed = match self {
            Cipher::Aes128(c) => c.encrypt(&nonce, payload),
            Cipher::Aes192(c) => c.encrypt(&nonce, payload),
            Cipher::Aes256(c) => c.encrypt(&nonce, payload),
        };
        // AES-GCM fails only for inputs over 64 GiB; sealed values are a few KiB.
        sealed.expect("AES-GCM cannot encrypt this much data")
    }

    fn decrypt(&self, nonce: &[u8], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = Nonce::<U12>::try_from(nonce).ok()?;
        match self {
            Cipher::Aes128(c) => c.decrypt(&nonce, payload),
            Cipher::Aes192(c) => c.decrypt(&nonce, payload),
            Cipher::Aes256(c) => c.decrypt(&nonce, payload),
        }
        .ok()
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("mac", &"HMAC-SHA256")
            .field("cipher", &self.inner.cipher.name())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// `signing_key`: 32 or 64 bytes (HMAC-SHA256); `encryption_key`: 16, 24 or 32 bytes
    /// (AES-128/192/256-GCM).
    pub fn new(signing_key: &[u8], encryption_key: &[u8]) -> Result<Self, KeyError> {
        if !matches!(signing_key.len(), 32 | 64) {
            return Err(KeyError::SigningKeyLength {
                len: signing_key.len(),
            });
        }
        let cipher = match encryption_key.len() {
            16 => Cipher::Aes128(Aes128Gcm::new_from_slice(encryption_key).expect("16 bytes")),
            24 => Cipher::Aes192(
                AesGcm::<Aes192, U12>::new_from_slice(encryption_key).expect("24 bytes"),
            ),
            32 => Cipher::Aes256(Aes256Gcm::new_from_slice(encryption_key).expect("32 bytes")),
            len => return Err(KeyError::EncryptionKeyLength { len }),
        };
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(signing_key)
            .expect("HMAC accepts keys of any length");
        Ok(Self {
            inner: Arc::new(Keys { mac, cipher }),
        })
    }

    /// Random keys (for a single replica when no keys are configured): what it seals opens only
    /// in this process.
    pub fn generate() -> Self {
        Self::new(&random_bytes::<64>(), &random_bytes::<32>()).expect("valid key lengths")
    }

    /// Seals `plaintext` for `purpose` until `expires_at`; the result is base64url without padding.
    pub fn seal(&self, purpose: &str, plaintext: &[u8], expires_at: SystemTime) -> String {
        let mut out = Vec::with_capacity(MIN_LEN + plaintext.len());
        out.push(VERSION);
        out.extend_from_slice(&unix_seconds(expires_at).to_be_bytes());
        let header: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().expect("header length");
        let nonce = random_bytes::<NONCE_LEN>();
        out.extend_from_slice(&nonce);
        let aad = associated_data(purpose, &header);
        let ciphertext = self.inner.cipher.encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        );
        out.extend_from_slice(&ciphertext);
        let mac = self.mac(purpose, &out).finalize().into_bytes();
        out.extend_from_slice(&mac);
        b64url(&out)
    }

    /// Opens what [`Sealer::seal`] made for the same `purpose`, if it has not expired at `now`.
    pub fn open(&self, purpose: &str, sealed: &str, now: SystemTime) -> Result<Vec<u8>, OpenError> {
        let bytes = b64url_decode(sealed).ok_or(OpenError::Malformed)?;
        if bytes.len() < MIN_LEN || bytes[0] != VERSION {
            return Err(OpenError::Malformed);
        }
        let (body, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        self.mac(purpose, body)
            .verify_slice(mac)
            .map_err(|_| OpenError::Tampered)?;
        let (header, rest) = body.split_at(HEADER_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = associated_data(purpose, header);
        let plaintext = self
            .inner
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok_or(OpenError::Tampered)?;
        let expires_at = u64::from_be_bytes(header[1..].try_into().expect("8 bytes"));
        if unix_seconds(now) >= expires_at {
            return Err(OpenError::Expired);
        }
        Ok(plaintext)
    }

    /// Seals `value` as JSON.
    pub fn seal_json<T: serde::Serialize>(
        &self,
        purpose: &str,
        value: &T,
        expires_at: SystemTime,
    ) -> Result<String, SealError> {
        Ok(self.seal(purpose, &serde_json::to_vec(value)?, expires_at))
    }

    /// Opens a value sealed by [`Sealer::seal_json`]; a payload of another shape is `Malformed`.
    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        purpose: &str,
        sealed: &str,
        now: SystemTime,
    ) -> Result<T, OpenError> {
        let plaintext = self.open(purpose, sealed, now)?;
        serde_json::from_slice(&plaintext).map_err(|_| OpenError::Malformed)
    }

    fn mac(&self, purpose: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.inner.mac.clone();
        mac.update(MAC_CONTEXT);
        mac.update(&length_prefixed(purpose));
        mac.update(body);
        mac
    }
}

/// The purpose, length-prefixed so `("ab", "c…")` and `("a", "bc…")` never collide.
fn length_prefixed(purpose: &str) -> Vec<u8> {
    let len = u32::try_from(purpose.len()).expect("purpose shorter than 4 GiB");
    let mut out = Vec::with_capacity(4 + purpose.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(purpose.as_bytes());
    out
}

fn associated_data(purpose: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = length_prefixed(purpose);
    aad.extend_from_slice(header);
    aad
}

/// Seconds since the Unix epoch; times before it count as the epoch (already expired).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&[7u8; 32], &[9u8; 32]).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn round_trip_for_every_key_size() {
        for (sign, enc) in [(32, 16), (32, 24), (64, 32)] {
            let sealer = Sealer::new(&vec![1u8; sign], &vec![2u8; enc]).unwrap();
            let sealed = sealer.seal("cookie", b"hello", at(2_000));
            assert_eq!(sealer.open("cookie", &sealed, at(1_000)).unwrap(), b"hello");
        }
    }

    #[test]
    fn sealed_text_is_cookie_safe_and_hides_the_plaintext() {
        let sealed = sealer().seal("cookie", b"secret-session", at(2_000));
        assert!(
            sealed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let raw = b64url_decode(&sealed).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn two_seals_of_the_same_value_differ() {
        let s = sealer();
        assert_ne!(s.seal("p", b"x", at(10)), s.seal("p", b"x", at(10)));
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let s = sealer();
        let sealed = s.seal("p", b"", at(10));
        assert_eq!(s.open("p", &sealed, at(5)).unwrap(), b"");
    }

    #[test]
    fn any_flipped_byte_is_tampered() {
        let s = sealer();
        let sealed = s.seal("cookie", b"hello world", at(2_000));
        let raw = b64url_decode(&sealed).unwrap();
        for i in 1..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                s.open("cookie", &b64url(&bad), at(1_000)),
                Err(OpenError::Tampered),
                "byte {i}"
            );
        }
    }

    #[test]
    fn wrong_purpose_is_tampered() {
        let s = sealer();
        let sealed = s.seal("kube-bind", b"hello", at(2_000));
        assert_eq!(
            s.open("kube-bind-c1", &sealed, at(1_000)),
            Err(OpenError::Tampered)
        );
    }

    #[test]
    fn other_keys_are_tampered() {
        let sealed = sealer().seal("p", b"hello", at(2_000));
        let other = Sealer::new(&[7u8; 32], &[8u8; 32]).unwrap();
        assert_eq!(other.open("p", &sealed, at(1)), Err(OpenError::Tampered));
        let other = Sealer::new(&[6u8; 32], &[9u8; 32]).unwrap();
        assert_eq!(other.open("p", &sealed, at(1)), Err(OpenError::Tampered));
    }

    #[test]
    fn expired_at_and_after_the_expiry() {
        let s = sealer();
        let sealed = s.seal("p", b"hello", at(2_000));
        assert!(s.open("p", &sealed, at(1_999)).is_ok());
        assert_eq!(s.open("p", &sealed, at(2_000)), Err(OpenError::Expired));
        assert_eq!(s.open("p", &sealed, at(9_999)), Err(OpenError::Expired));
    }

    #[test]
    fn garbage_is_malformed() {
        let s = sealer();
        for garbage in ["", "not base64!", "AAAA", &b64url(&[1u8; MIN_LEN - 1])] {
            assert_eq!(s.open("p", garbage, at(1)), Err(OpenError::Malformed));
        }
        let mut wrong_version = b64url_decode(&s.seal("p", b"x", at(10))).unwrap();
        wrong_version[0] = 2;
        assert_eq!(
            s.open("p", &b64url(&wrong_version), at(1)),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn json_round_trip_and_wrong_shape() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Pending {
            state: String,
            n: u32,
        }
        let s = sealer();
        let value = Pending {
            state: "abc".into(),
            n: 3,
        };
        let sealed = s.seal_json("pending", &value, at(100)).unwrap();
        assert_eq!(
            s.open_json::<Pending>("pending", &sealed, at(1)).unwrap(),
            value
        );
        let not_json = s.seal("pending", b"\xff", at(100));
        assert_eq!(
            s.open_json::<Pending>("pending", &not_json, at(1)),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn key_lengths_are_checked_and_named() {
        let err = Sealer::new(&[0u8; 31], &[0u8; 32]).unwrap_err();
        assert!(matches!(err, KeyError::SigningKeyLength { len: 31 }));
        assert!(err.to_string().contains("31 bytes"), "{err}");
        assert!(err.to_string().contains("32 or 64"), "{err}");
        let err = Sealer::new(&[0u8; 64], &[0u8; 20]).unwrap_err();
        assert!(matches!(err, KeyError::EncryptionKeyLength { len: 20 }));
        assert!(err.to_string().contains("16, 24 or 32"), "{err}");
    }

    #[test]
    fn generated_keys_work_and_differ() {
        let a = Sealer::generate();
        let b = Sealer::generate();
        let sealed = a.seal("p", b"x", at(10));
        assert!(a.open("p", &sealed, at(1)).is_ok());
        assert_eq!(b.open("p", &sealed, at(1)), Err(OpenError::Tampered));
    }

    #[test]
    fn debug_prints_no_key() {
        let debug = format!("{:?}", Sealer::new(&[0xAB; 32], &[0xCD; 16]).unwrap());
        assert!(debug.contains("AES-128-GCM"), "{debug}");
        assert!(!debug.contains("171") && !debug.contains("ab") && !debug.contains("AB"));
    }
}
