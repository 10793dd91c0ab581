//! Who is on the other end: the client's address, behind trusted proxies or not. Every
//! address, the TCP peer's and each forwarded hop, goes through `domain::address` first, so
//! `::ffff:127.0.0.1` on a dual-stack listener is the proxy `127.0.0.1` it is.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::domain::address;

/// The client's address. The TCP peer, unless the peer is a trusted proxy: then the rightmost
/// address in `X-Forwarded-For` that isn't itself a trusted proxy (each proxy appends the
/// address it saw, so everything left of that could be made up by the client).
pub fn client_address(req: &HttpRequest, trusted: &[IpNet]) -> String {
    client_ip(req, trusted)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

/// The client's address as an IP (see `client_address`); `None` without a TCP peer.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(from_forwarded(peer, trusted, || {
        req.headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .collect()
    }))
}

/// Whether the TCP peer is one of the trusted proxies.
pub fn peer_is_trusted(req: &HttpRequest, trusted: &[IpNet]) -> bool {
    !trusted.is_empty()
        && req
            .peer_addr()
            .is_some_and(|peer| is_trusted(address::canonical(peer.ip()), trusted))
}

/// Whether `ip` (canonical) is one of the trusted proxies.
fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

fn from_forwarded(
    peer: IpAddr,
    trusted: &[IpNet],
    forwarded: impl FnOnce() -> Vec<String>,
) -> IpAddr {
    let peer = address::canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded().iter().rev() {
        match address::parse_hop(hop) {
            Some(ip) if is_trusted(ip, trusted) => client = ip,
            Some(ip) => return ip,
            // A hop we can't read: stop at the last one we could.
            None => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(list: &[&str]) -> impl FnOnce() -> Vec<String> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        move || list
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        // From a stranger the header is ignored.
        assert_eq!(
            from_forwarded(stranger, &proxies, hops(&["1.2.3.4"])),
            stranger
        );
        // From a proxy: the rightmost untrusted hop; a forged left part is skipped.
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            from_forwarded(
                proxy,
                &proxies,
                hops(&["6.6.6.6", "198.51.100.7", "10.9.9.9"])
            ),
            client
        );
        assert_eq!(from_forwarded(proxy, &proxies, hops(&[])), proxy);
        assert_eq!(
            from_forwarded(proxy, &proxies, hops(&["garbage", "10.9.9.9"])),
            "10.9.9.9".parse::<IpAddr>().unwrap()
        );
        // Nobody trusted (the default): always the peer.
        assert_eq!(from_forwarded(proxy, &[], hops(&["1.2.3.4"])), proxy);
    }

    #[test]
    fn a_mapped_peer_is_the_proxy_it_maps_to_and_mapped_hops_are_ipv4() {
        let proxies: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let mapped_proxy: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            from_forwarded(mapped_proxy, &proxies, hops(&["203.0.113.5"])),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            from_forwarded(
                mapped_proxy,
                &proxies,
                hops(&["[::ffff:198.51.100.1]:4444"])
            ),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // A mapped stranger is reported as its IPv4 address.
        let mapped_stranger: IpAddr = "::ffff:203.0.113.77".parse().unwrap();
        assert_eq!(
            from_forwarded(mapped_stranger, &proxies, hops(&["1.2.3.4"])),
            "203.0.113.77".parse::<IpAddr>().unwrap()
        );
    }
}
