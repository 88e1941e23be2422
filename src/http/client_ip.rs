//! Who a request comes from: the TCP peer, or, when the peer is a trusted proxy
//! (`--trusted-proxies`), the client its `X-Forwarded-For` names.

use std::net::{IpAddr, SocketAddr};

use crate::options::TrustedProxies;

/// The client address of a request from `peer` carrying these `X-Forwarded-For` header values.
///
/// NOTE: only a trusted peer's header is read, and it is read from the right: every proxy appends
/// the address it got the request from, so the rightmost address that is not a trusted proxy is
/// the last one nobody could forge. Anything left of it is the client's own claim and ignored.
/// A malformed entry ends the walk at the proxy that appended it (it keeps its bucket).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return nearest;
        };
        if !trusted.contains(ip) {
            return ip;
        }
        nearest = ip;
    }
    // Every hop is a trusted proxy: the leftmost one is where the request entered.
    nearest
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(canonical)
}

/// An IPv4 client on a dual-stack socket has one bucket, not two.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        let values: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        TrustedProxies::parse(&values).unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_of_a_trusted_peer() {
        let proxies = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let none = trusted(&[]);
        // (peer, X-Forwarded-For values, trusted, client)
        let table: &[(&str, &[&str], &TrustedProxies, &str)] = &[
            // No proxies trusted: the header is anyone's claim.
            ("127.0.0.1", &["203.0.113.7"], &none, "127.0.0.1"),
            // An untrusted peer cannot pick its bucket.
            ("198.51.100.1", &["203.0.113.7"], &proxies, "198.51.100.1"),
            // Behind haproxy on loopback.
            ("127.0.0.1", &["203.0.113.7"], &proxies, "203.0.113.7"),
            // The client's own forged entries are left of the address our proxy saw.
            (
                "127.0.0.1",
                &["1.1.1.1, 203.0.113.7"],
                &proxies,
                "203.0.113.7",
            ),
            // Two trusted proxies in a row, the chain split over two header lines.
            (
                "127.0.0.1",
                &["9.9.9.9, 203.0.113.7", "10.1.2.3"],
                &proxies,
                "203.0.113.7",
            ),
            // A trusted peer without the header is the client.
            ("127.0.0.1", &[], &proxies, "127.0.0.1"),
            ("127.0.0.1", &[" , "], &proxies, "127.0.0.1"),
            // Only proxies: the leftmost is where the request came in.
            ("127.0.0.1", &["10.0.0.9, 10.0.0.8"], &proxies, "10.0.0.9"),
            // Ports and IPv6 forms some proxies write.
            ("127.0.0.1", &["203.0.113.7:4711"], &proxies, "203.0.113.7"),
            (
                "127.0.0.1",
                &["[2001:db8::1]:4711"],
                &proxies,
                "2001:db8::1",
            ),
            ("127.0.0.1", &["2001:db8::1"], &proxies, "2001:db8::1"),
            // A malformed hop: keyed on the proxy that appended it.
            (
                "127.0.0.1",
                &["203.0.113.7, unknown"],
                &proxies,
                "127.0.0.1",
            ),
            ("127.0.0.1", &["unknown, 10.0.0.5"], &proxies, "10.0.0.5"),
            // An IPv4 peer seen on a dual-stack listener.
            (
                "::ffff:127.0.0.1",
                &["203.0.113.7"],
                &proxies,
                "203.0.113.7",
            ),
            ("::ffff:198.51.100.1", &[], &proxies, "198.51.100.1"),
        ];
        for (peer, header, trusted, want) in table {
            let got = client_ip(peer.parse().unwrap(), header.iter().copied(), trusted);
            assert_eq!(
                got,
                want.parse::<IpAddr>().unwrap(),
                "peer {peer}, X-Forwarded-For {header:?}"
            );
        }
    }
}
