//! Who is on the other end: the client's address, behind trusted proxies or not.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

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

/// Whether `ip` is one of the trusted proxies.
pub fn is_trusted(ip: &IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(ip))
}

fn from_forwarded(
    peer: IpAddr,
    trusted: &[IpNet],
    forwarded: impl FnOnce() -> Vec<String>,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| is_trusted(ip, trusted);
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded().iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // A hop we can't read: stop at the last one we could.
            Err(_) => return client,
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
}
