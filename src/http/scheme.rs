//! The scheme a request reached us with, for the URLs we hand out and the cookies' `Secure`
//! flag: the listener's own, or, from a trusted proxy (`--trusted-proxies`) that terminates TLS
//! in front of plain-HTTP backends, the one its `X-Forwarded-Proto` names.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::AppState;
use super::client_ip::canonical;
use crate::options::TrustedProxies;

const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// `http` or `https`, as the client sees us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// Whether cookies set on this request should be `Secure`.
    pub fn is_secure(self) -> bool {
        self == Self::Https
    }

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }
}

/// The scheme of a request that reached a `listener` from `peer` with these
/// `X-Forwarded-Proto` values.
///
/// NOTE: only a trusted peer's header counts. Its first entry is the scheme at the outermost
/// proxy, where the client connected; a value other than `http` or `https` is ignored. A client
/// behind a trusted proxy that appends instead of setting the header can only mislabel its own
/// connection (its cookies, its URLs).
pub fn request_scheme<'a>(
    listener: Scheme,
    peer: Option<IpAddr>,
    forwarded_proto: impl IntoIterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> Scheme {
    let from_proxy = peer.map(canonical).is_some_and(|p| trusted.contains(p));
    if !from_proxy {
        return listener;
    }
    forwarded_proto
        .into_iter()
        .flat_map(|value| value.split(','))
        .next()
        .and_then(Scheme::parse)
        .unwrap_or(listener)
}

impl FromRequestParts<AppState> for Scheme {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // Without connection info (in-process tests) nobody is a trusted proxy.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let forwarded_proto = parts
            .headers
            .get_all(X_FORWARDED_PROTO)
            .iter()
            .filter_map(|value| value.to_str().ok());
        Ok(request_scheme(
            state.listener_scheme(),
            peer,
            forwarded_proto,
            state.trusted_proxies(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_names_the_scheme() {
        let values: Vec<String> = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
        let proxies = TrustedProxies::parse(&values).unwrap();
        let none = TrustedProxies::default();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        use Scheme::{Http, Https};
        /// (listener, peer, X-Forwarded-Proto values, trusted, scheme)
        type Case<'a> = (
            Scheme,
            Option<IpAddr>,
            &'a [&'a str],
            &'a TrustedProxies,
            Scheme,
        );
        let table: &[Case] = &[
            // TLS terminated at haproxy on loopback.
            (Http, ip("127.0.0.1"), &["https"], &proxies, Https),
            (Http, ip("10.1.2.3"), &["HTTPS "], &proxies, Https),
            // An IPv4 proxy on a dual-stack socket.
            (Http, ip("::ffff:127.0.0.1"), &["https"], &proxies, Https),
            // The outermost proxy's entry wins.
            (Http, ip("127.0.0.1"), &["https, http"], &proxies, Https),
            (Http, ip("127.0.0.1"), &["https", "http"], &proxies, Https),
            // A plain-HTTP front of a TLS listener says so.
            (Https, ip("127.0.0.1"), &["http"], &proxies, Http),
            // Nothing, or nonsense: the listener's.
            (Https, ip("127.0.0.1"), &[], &proxies, Https),
            (Http, ip("127.0.0.1"), &["wss"], &proxies, Http),
            (Http, ip("127.0.0.1"), &[""], &proxies, Http),
            // Anyone else's claim is ignored.
            (Http, ip("198.51.100.1"), &["https"], &proxies, Http),
            (Http, ip("127.0.0.1"), &["https"], &none, Http),
            (Http, None, &["https"], &proxies, Http),
        ];
        for (listener, peer, headers, trusted, want) in table {
            assert_eq!(
                request_scheme(*listener, *peer, headers.iter().copied(), trusted),
                *want,
                "{listener:?} {peer:?} {headers:?}"
            );
        }
    }
}
