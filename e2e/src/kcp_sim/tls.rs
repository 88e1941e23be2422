//! The stand-in's one CA and its serving certificate for 127.0.0.1/localhost, kept in the state
//! dir so a restarted stand-in keeps serving what earlier kubeconfigs trust.

use std::{path::Path, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read or write {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot parse {file}: {reason}")]
    Parse { file: String, reason: String },
    #[error("cannot build the TLS config: {0}")]
    Rustls(#[from] rustls::Error),
}

/// PEM material of the stand-in's CA and serving certificate.
pub struct Certificates {
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
}

const FILES: [&str; 4] = ["ca.crt", "ca.key", "serving.crt", "serving.key"];

/// Loads the certificates from `dir`, generating (and writing) them the first time.
pub fn load_or_generate(dir: &Path) -> Result<Certificates, TlsError> {
    let read = |name: &str| {
        let file = dir.join(name);
        std::fs::read_to_string(&file).map_err(|source| TlsError::Io {
            file: file.display().to_string(),
            source,
        })
    };
    if FILES.iter().all(|f| dir.join(f).exists()) {
        return Ok(Certificates {
            ca_pem: read("ca.crt")?,
            serving_cert_pem: read("serving.crt")?,
            serving_key_pem: read("serving.key")?,
        });
    }
    let (certs, ca_key_pem) = generate()?;
    let contents = [
        &certs.ca_pem,
        &ca_key_pem,
        &certs.serving_cert_pem,
        &certs.serving_key_pem,
    ];
    for (name, content) in FILES.iter().zip(contents) {
        let file = dir.join(name);
        std::fs::write(&file, content).map_err(|source| TlsError::Io {
            file: file.display().to_string(),
            source,
        })?;
    }
    Ok(certs)
}

fn generate() -> Result<(Certificates, String), TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kcp-sim CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let serving_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    params
        .distinguished_name
        .push(DnType::CommonName, "kcp-sim");
    let serving = params.signed_by(&serving_key, &issuer)?;
    Ok((
        Certificates {
            ca_pem: ca_cert.pem(),
            serving_cert_pem: serving.pem(),
            serving_key_pem: serving_key.serialize_pem(),
        },
        ca_key.serialize_pem(),
    ))
}

/// A rustls server config for the serving certificate (HTTP/2 and HTTP/1.1 via ALPN).
pub fn server_config(certs: &Certificates) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let parse = |reason: String| TlsError::Parse {
        file: "serving.crt/serving.key".into(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(certs.serving_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(certs.serving_key_pem.as_bytes())
        .map_err(|e| parse(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reloads() {
        let dir = std::env::temp_dir().join(format!("kcp-sim-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = load_or_generate(&dir).unwrap();
        let second = load_or_generate(&dir).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert!(server_config(&second).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
