//! The client's address, for per-address limits (login throttling).
//!
//! Behind a reverse proxy every request comes from the proxy's address, so one
//! attacker would lock out every customer. `PAZAR_TRUSTED_PROXIES` lists the
//! proxies (CIDR blocks or single addresses) whose forwarding headers are believed:
//! for a request from one of them, the client is the right-most address in
//! `Forwarded` (`for=`) or else `X-Forwarded-For` that is not itself a trusted
//! proxy. From anyone else the headers are ignored — a client cannot pick the
//! address it is throttled under.

use poem::http::HeaderMap;
use std::net::IpAddr;

/// One CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    network: IpAddr,
    prefix: u8,
}

impl Block {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose forwarding headers are believed; none by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Block>);

impl TrustedProxies {
    /// Parses a comma-separated list such as `10.0.0.0/8, 127.0.0.1, ::1/128`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut blocks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (address, prefix) = match item.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (item, None),
            };
            let network: IpAddr = address
                .parse()
                .map(canonical)
                .map_err(|_| format!("{item:?} is not an IP address or CIDR block"))?;
            let bits = if network.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(prefix) => prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= bits)
                    .ok_or_else(|| format!("{item:?} has an invalid prefix length"))?,
                None => bits,
            };
            blocks.push(Block { network, prefix });
        }
        Ok(Self(blocks))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_for(headers);
        // Right to left: the first hop not one of ours is the client; if every
        // hop is ours, the left-most is as far as we can see.
        chain
            .iter()
            .rev()
            .copied()
            .find(|ip| !self.trusts(*ip))
            .or_else(|| chain.first().copied())
            .unwrap_or(peer)
    }
}

/// The addresses in `Forwarded` (`for=`), or else `X-Forwarded-For`, in order.
/// An element that does not parse (`unknown`, an obfuscated name) ends the chain
/// there: nothing to its left can be trusted.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.eq_ignore_ascii_case("for").then_some(value)
            })
        })
        .collect();
    let items: Vec<&str> = if forwarded.is_empty() {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect()
    } else {
        forwarded
    };
    let mut chain = Vec::with_capacity(items.len());
    for item in items.iter().rev() {
        match parse_node(item) {
            Some(ip) => chain.push(canonical(ip)),
            None => break,
        }
    }
    chain.reverse();
    chain
}

/// `192.0.2.1`, `192.0.2.1:443`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let node = raw.trim().trim_matches('"');
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, _port) = node.rsplit_once(':')?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, ::1").unwrap();
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // From a stranger the header is ignored.
        assert_eq!(
            proxies.client(ip("198.51.100.1"), &forwarded),
            ip("198.51.100.1")
        );
        // From the proxy it names the client.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &forwarded),
            ip("203.0.113.9")
        );
        assert_eq!(proxies.client(ip("::1"), &forwarded), ip("203.0.113.9"));
        // IPv4-mapped peers are the IPv4 addresses they carry.
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.7"), &forwarded),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // A client cannot choose its address by prepending one.
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &spoofed), ip("203.0.113.9"));
        let forwarded = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::17]:4711\";proto=https, for=10.0.0.3",
        )]);
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &forwarded),
            ip("2001:db8::17")
        );
        let unknown = headers(&[("forwarded", "for=unknown, for=10.0.0.3")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &unknown), ip("10.0.0.3"));
    }

    #[test]
    fn lists_parse_and_refuse_nonsense() {
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        let all = TrustedProxies::parse("0.0.0.0/0").unwrap();
        assert!(all.trusts(ip("8.8.8.8")));
        assert!(!all.trusts(ip("2001:db8::1")));
    }
}
