//! Client addresses, one way everywhere: a TCP peer or an `X-Forwarded-For` hop becomes the
//! address that trusted proxies, allowlists, the sign-in limiter and the audit trail all see.
//!
//! On a dual-stack listener an IPv4 client arrives as `::ffff:a.b.c.d`; compared raw, it
//! would never match `127.0.0.1` in `APITOKENS_TRUSTED_PROXIES` nor count with the same
//! client seen over IPv4. So the mapped form becomes its IPv4 address, and a zone id
//! (`fe80::1%eth0`), which names an interface of the proxy rather than the client, is dropped.

use std::net::IpAddr;

/// The canonical form of an address: an IPv4-mapped IPv6 address as its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address as a proxy writes it into `X-Forwarded-For`: `203.0.113.7`, `2001:db8::1`,
/// `[2001:db8::1]`, with a port (`203.0.113.7:5678`, `[2001:db8::1]:5678`) or a zone id
/// (`fe80::1%eth0`) dropped, in canonical form. `None` for anything else.
pub fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if raw.len() > 64 {
        return None;
    }
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inside
    } else if let Some((host, port)) = raw.split_once(':').filter(|(_, p)| !p.contains(':')) {
        // `v4:port` (an IPv6 address has more than one colon)
        if !is_port(port) {
            return None;
        }
        host
    } else {
        raw
    };
    let host = host.split_once('%').map_or(host, |(addr, _zone)| addr);
    host.parse::<IpAddr>().ok().map(canonical)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mapped_addresses_are_their_ipv4_address() {
        assert_eq!(canonical(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(canonical(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(canonical(ip("::1")), ip("::1"), "loopback v6 is not mapped");
        assert_eq!(canonical(ip("10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_hops_in_every_form_proxies_write() {
        for (raw, want) in [
            ("203.0.113.7", "203.0.113.7"),
            (" 203.0.113.7 ", "203.0.113.7"),
            ("203.0.113.7:5678", "203.0.113.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1"),
            ("[fe80::1%25eth0]:80", "fe80::1"),
            ("::ffff:198.51.100.4", "198.51.100.4"),
            ("[::ffff:198.51.100.4]:1", "198.51.100.4"),
        ] {
            assert_eq!(parse_hop(raw), Some(ip(want)), "{raw}");
        }
        for bad in [
            "",
            "unknown",
            "203.0.113.7:port",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "1.2.3.4:99999999",
            "example.com:80",
            &"1".repeat(100),
        ] {
            assert_eq!(parse_hop(bad), None, "{bad}");
        }
    }
}
