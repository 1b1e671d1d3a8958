//! The client's address: the TCP peer, or, when the peer is a trusted proxy (the ALB, inside the VPC's
//! range), the rightmost `X-Forwarded-For` entry — the one that proxy appended. Entries to its left were
//! written by the client and prove nothing, so they are never used.

use http::HeaderMap;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range, e.g. `10.0.0.0/16` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, bits) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address range (expected e.g. 10.0.0.0/16)"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = if bits.is_empty() {
            max
        } else {
            bits.parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0–{max}"))?
        };
        Ok(Cidr { network, bits })
    }
}

/// Parses a comma-separated list of ranges (the `--trusted-proxies` flag).
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// The address the client connected from, as far as `trusted` proxies vouch for it.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.iter().any(|c| c.contains(peer)) {
        return Some(peer);
    }
    // Several headers are one list, in order; the last entry of the last one is the proxy's.
    let appended = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .next_back()
        .and_then(|v| v.rsplit(',').next())
        .and_then(|e| e.trim().parse::<IpAddr>().ok());
    Some(appended.map(|ip| ip.to_canonical()).unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let c: Cidr = "10.0.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.0.255.1")));
        assert!(!c.contains(ip("10.1.0.1")));
        assert!(c.contains(ip("::ffff:10.0.3.4")));
        let c: Cidr = "10.0.0.0/20".parse().unwrap();
        assert!(c.contains(ip("10.0.15.255")));
        assert!(!c.contains(ip("10.0.16.0")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        assert!("fd00::/8".parse::<Cidr>().unwrap().contains(ip("fd12::1")));
        for bad in ["10.0.0.0/33", "x/8", "10.0.0/8", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(parse_list("10.0.0.0/16, 127.0.0.1").unwrap().len(), 2);
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let trusted = parse_list("10.0.0.0/16").unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        h.append("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        // the ALB's appended entry, never the client-written ones to its left
        assert_eq!(
            client_ip(Some(ip("10.0.1.5")), &h, &trusted),
            Some(ip("203.0.113.9"))
        );
        // an untrusted peer's header is ignored
        assert_eq!(
            client_ip(Some(ip("198.51.100.7")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.1.5")), &h, &[]),
            Some(ip("10.0.1.5"))
        );
        // a trusted peer without a usable header: the peer
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", "1.1.1.1, nonsense".parse().unwrap());
        assert_eq!(
            client_ip(Some(ip("10.0.1.5")), &junk, &trusted),
            Some(ip("10.0.1.5"))
        );
    }
}
