//! End-to-end tests' support: the kcp stand-in (`kcp_sim`), the CRD compatibility step for the
//! 1.20 apiservers, the harness that starts everything once per test binary, and the API side of
//! `hack/quickstart.sh`.

pub mod crd_compat;
pub mod harness;
pub mod kcp_sim;
pub mod quickstart;

/// Selects rustls' ring provider for the process (several crypto backends are linked in the
/// workspace, so rustls cannot pick one by itself). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
