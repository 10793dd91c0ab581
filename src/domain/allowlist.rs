//! A token's address allowlist: the networks (IPv4 and IPv6 CIDRs) it may be used from.

use std::net::IpAddr;

use ipnet::IpNet;

/// Most entries in one list.
pub const MAX_ENTRIES: usize = 50;

/// Reads a list as people write it: CIDRs (`203.0.113.0/24`, `2001:db8::/32`) or single
/// addresses, each normalised to its network (`203.0.113.7/24` → `203.0.113.0/24`), duplicates
/// dropped. Empty: any address. A bad entry is named in the message.
pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, String> {
    let mut nets: Vec<IpNet> = Vec::new();
    for raw in entries {
        let raw = raw.as_ref().trim();
        if raw.is_empty() {
            continue;
        }
        let shown: String = raw.chars().take(60).collect();
        let net = match raw.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => match raw.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(format!(
                        "\"{shown}\" is not an address or a network: write it like 203.0.113.0/24 or 2001:db8::/32."
                    ))
                }
            },
        };
        if !nets.contains(&net) {
            nets.push(net);
        }
        if nets.len() > MAX_ENTRIES {
            return Err(format!("At most {MAX_ENTRIES} networks per token."));
        }
    }
    Ok(nets)
}

/// As stored: comma-separated, `None` for "any address".
pub fn to_stored(nets: &[IpNet]) -> Option<String> {
    (!nets.is_empty()).then(|| {
        nets.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// From storage (written by `to_stored`; anything unreadable is skipped).
pub fn from_stored(stored: Option<&str>) -> Vec<IpNet> {
    stored
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse::<IpNet>().ok())
        .collect()
}

/// Whether `ip` may use a token with this list (an IPv4 client seen as an IPv4-mapped IPv6
/// address counts as its IPv4 address).
pub fn admits(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = super::address::canonical(ip);
    nets.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_addresses_are_normalised_and_deduplicated() {
        let nets = parse(&[
            "203.0.113.7/24",
            " 203.0.113.0/24 ",
            "2001:db8::1/32",
            "198.51.100.9",
            "",
        ])
        .unwrap();
        let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["203.0.113.0/24", "2001:db8::/32", "198.51.100.9/32"]
        );
        assert_eq!(from_stored(to_stored(&nets).as_deref()), nets);
        assert_eq!(to_stored(&[]), None);
        assert!(from_stored(None).is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        let e = parse(&["10.0.0.0/8", "10.0.0.0/33"]).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
        assert!(parse(&["example.com"]).unwrap_err().contains("example.com"));
        let many: Vec<String> = (0..51).map(|i| format!("10.0.{i}.0/24")).collect();
        assert!(parse(&many).unwrap_err().contains("At most 50"));
    }

    #[test]
    fn admits_only_addresses_inside_ipv4_ipv6_and_mapped() {
        let nets = parse(&["203.0.113.0/24", "2001:db8::/32"]).unwrap();
        assert!(admits(&nets, "203.0.113.200".parse().unwrap()));
        assert!(!admits(&nets, "203.0.114.1".parse().unwrap()));
        assert!(admits(&nets, "2001:db8:ffff::1".parse().unwrap()));
        assert!(!admits(&nets, "2001:db9::1".parse().unwrap()));
        assert!(admits(&nets, "::ffff:203.0.113.5".parse().unwrap()));
    }
}
