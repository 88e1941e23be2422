//! `--trusted-proxies`: the addresses (IPs or CIDRs) whose `X-Forwarded-For` is believed.

use std::fmt;
use std::net::IpAddr;

/// One address block: every address whose first `prefix` bits equal `network`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// `10.0.0.0/8`, `fd00::/8`, or a bare address (a block of one).
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse =
            || format!("{text:?} is not an IP address or CIDR; use e.g. 10.0.0.1 or 10.0.0.0/8");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| refuse())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would also take "+8".
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(p) if p <= max => p,
                    _ => return Err(refuse()),
                }
            }
            Some(_) => return Err(refuse()),
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may show up as an IPv4-mapped IPv6 address on a dual-stack listener.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn same_prefix(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// The proxies in front of the backend; empty (the default) trusts none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpBlock>);

impl TrustedProxies {
    /// Every value of the flag (already split at commas); blanks are skipped.
    pub fn parse(values: &[String]) -> Result<Self, String> {
        let mut blocks = Vec::new();
        let mut bad = Vec::new();
        for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            match IpBlock::parse(value) {
                Ok(block) => blocks.push(block),
                Err(e) => bad.push(e),
            }
        }
        if bad.is_empty() {
            Ok(Self(blocks))
        } else {
            Err(bad.join("; "))
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_contain_what_their_prefix_covers() {
        let table = [
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("10.0.0.0/8", "10.255.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.128/25", "192.168.1.200", true),
            ("192.168.1.128/25", "192.168.1.127", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::1", "::1", true),
            // An IPv4 peer on a dual-stack socket.
            ("127.0.0.1", "::ffff:127.0.0.1", true),
            ("10.0.0.0/8", "::1", false),
        ];
        for (block, addr, want) in table {
            let block = IpBlock::parse(block).unwrap();
            assert_eq!(block.contains(ip(addr)), want, "{block} contains {addr}");
        }
    }

    #[test]
    fn malformed_values_are_refused_with_an_example() {
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "1.2.3.4/8/8",
        ] {
            let err = IpBlock::parse(bad).unwrap_err();
            assert!(err.contains("use e.g. 10.0.0.1"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_flag_lists_blocks_and_reports_every_bad_one() {
        let ok =
            TrustedProxies::parse(&["127.0.0.1".into(), " 10.0.0.0/8 ".into(), "".into()]).unwrap();
        assert!(ok.contains(ip("10.1.1.1")) && ok.contains(ip("127.0.0.1")));
        assert!(!ok.contains(ip("192.168.0.1")));
        assert!(TrustedProxies::parse(&[]).unwrap().is_empty());
        let err = TrustedProxies::parse(&["a".into(), "1.1.1.1".into(), "b/2".into()]).unwrap_err();
        assert!(err.contains("\"a\"") && err.contains("\"b/2\""), "{err}");
    }
}
