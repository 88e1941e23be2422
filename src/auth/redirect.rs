//! Which URLs the backend may send a browser to after login. These targets receive bearer tokens
//! and kubeconfigs, so a client-supplied one must be on this machine (loopback, where the CLI
//! listens) or on a host the operator allowed; anything else is refused before any redirect.

use std::net::IpAddr;

use url::Url;

/// Why a redirect target was refused; the message names the target and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("{param} is required")]
    Missing { param: &'static str },
    #[error("{param} {target:?} is not an absolute http(s) URL")]
    NotHttp { param: &'static str, target: String },
    #[error(
        "{param} {target:?} points to host {host:?}, which is neither loopback nor allowed; \
         the backend operator can add it with --allowed-redirect-hosts"
    )]
    Foreign {
        param: &'static str,
        target: String,
        host: String,
    },
}

/// Loopback plus `--allowed-redirect-hosts` (host or host:port entries).
#[derive(Clone, Debug, Default)]
pub struct RedirectPolicy {
    allowed_hosts: Vec<String>,
}

impl RedirectPolicy {
    pub fn new(allowed_hosts: &[String]) -> Self {
        Self {
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// A target a client supplied (the CLI's callback, the UI's final page).
    pub fn check(&self, param: &'static str, target: &str) -> Result<Url, RedirectError> {
        if target.is_empty() {
            return Err(RedirectError::Missing { param });
        }
        let url = Url::parse(target)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| RedirectError::NotHttp {
                param,
                target: target.to_owned(),
            })?;
        if self.allows(&url) {
            Ok(url)
        } else {
            Err(RedirectError::Foreign {
                param,
                host: url.host_str().unwrap_or_default().to_owned(),
                target: target.to_owned(),
            })
        }
    }

    /// The UI's own hop back into the backend: a relative path, or a URL on `own_origin`
    /// (`scheme://host[:port]` the request reached us on); anything else as [`Self::check`].
    pub fn check_internal(
        &self,
        param: &'static str,
        target: &str,
        own_origin: &Url,
    ) -> Result<Url, RedirectError> {
        if target.starts_with('/') && !target.starts_with("//") && !target.starts_with("/\\") {
            return own_origin.join(target).map_err(|_| RedirectError::NotHttp {
                param,
                target: target.to_owned(),
            });
        }
        match Url::parse(target) {
            Ok(url) if url.origin() == own_origin.origin() => Ok(url),
            _ => self.check(param, target),
        }
    }

    fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        if is_loopback(&host) {
            return true;
        }
        let with_port = url
            .port_or_known_default()
            .map(|port| format!("{host}:{port}"));
        self.allowed_hosts
            .iter()
            .any(|allowed| *allowed == host || Some(allowed) == with_port.as_ref())
    }
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_allowed_hosts_pass_everything_else_is_refused() {
        let policy = RedirectPolicy::new(&["ui.example.com".into(), "cli.example:8443".into()]);
        for ok in [
            "http://127.0.0.1:5000/callback",
            "http://127.9.9.9/callback",
            "http://localhost:1234/x?y=1",
            "http://[::1]:8080/cb",
            "https://ui.example.com/bound",
            "https://UI.example.com:9999/bound",
            "https://cli.example:8443/cb",
        ] {
            assert!(policy.check("redirect_url", ok).is_ok(), "{ok}");
        }
        let refused = [
            ("https://evil.example/cb", "Foreign"),
            ("https://cli.example/cb", "Foreign"),
            ("http://127.0.0.1.evil.example/cb", "Foreign"),
            ("https://ui.example.com.evil.example/", "Foreign"),
            ("javascript:alert(1)", "NotHttp"),
            ("//evil.example/cb", "NotHttp"),
            ("/relative", "NotHttp"),
            ("", "Missing"),
        ];
        for (target, kind) in refused {
            let err = policy.check("redirect_url", target).unwrap_err();
            assert!(format!("{err:?}").starts_with(kind), "{target}: {err:?}");
        }
    }

    #[test]
    fn the_internal_hop_may_be_relative_or_on_our_origin() {
        let policy = RedirectPolicy::default();
        let own = Url::parse("https://bind.example:8443").unwrap();
        assert_eq!(
            policy
                .check_internal("redirect_url", "/bind?x=1", &own)
                .unwrap()
                .as_str(),
            "https://bind.example:8443/bind?x=1"
        );
        assert!(
            policy
                .check_internal("redirect_url", "https://bind.example:8443/ui", &own)
                .is_ok()
        );
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "https://bind.example:9999/ui",
            "http://bind.example:8443/ui",
        ] {
            assert!(
                policy.check_internal("redirect_url", bad, &own).is_err(),
                "{bad}"
            );
        }
        // Loopback stays allowed, as for every client-supplied target.
        assert!(
            policy
                .check_internal("redirect_url", "http://127.0.0.1:1/cb", &own)
                .is_ok()
        );
    }

    #[test]
    fn the_refusal_names_the_fix() {
        let err = RedirectPolicy::default()
            .check("redirect_url", "https://evil.example/cb")
            .unwrap_err();
        assert!(
            err.to_string().contains("--allowed-redirect-hosts"),
            "{err}"
        );
    }
}
