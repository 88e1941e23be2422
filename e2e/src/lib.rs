//! End-to-end tests' support: the harness that starts the test world (the local control plane or
//! real kcp) once per test binary, a konnector simulator for the provider side, and the API side
//! of `hack/quickstart.sh`.

pub mod harness;
pub mod konnector;
pub mod quickstart;

/// Selects rustls' ring provider for the process (several crypto backends are linked in the
/// workspace, so rustls cannot pick one by itself). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
