//! End-to-end tests' support: the kcp stand-in (`kcp_sim`), the CRD compatibility step for the
//! 1.20 apiservers, and the harness that starts everything once per test binary.

pub mod crd_compat;
pub mod kcp_sim;
