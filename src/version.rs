//! Build identity of this binary.

/// The upstream kube-bind release whose wire protocol we speak (a macro so `concat!` can use it).
macro_rules! kube_bind_protocol {
    () => {
        "v0.6.0"
    };
}

/// Crate version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Git commit this binary was built from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("KUBE_BIND_GIT_COMMIT");

/// Reported to consumers as `BindingProvider.version`, where upstream reports its own release.
pub const KUBE_BIND_COMPATIBLE_VERSION: &str = kube_bind_protocol!();

/// What `--version` prints after the program name.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KUBE_BIND_GIT_COMMIT"),
    ", kube-bind protocol ",
    kube_bind_protocol!(),
    ")"
);
