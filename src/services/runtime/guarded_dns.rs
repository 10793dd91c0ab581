//! Outbound connections to addresses others chose (webhook endpoints, OpenID issuers'
//! keys) don't reach the server's own network: names are resolved through a guard, and an
//! address written in the URL is checked before any connection.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::domain::webhook::{forbidden_address, host_allowed};

/// A resolver for connections the server makes to URLs others chose (webhooks, issuers'
/// keys): a name whose addresses are all private, loopback, link-local or metadata is
/// refused, unless the operator lists the host; the others are kept.
pub struct GuardedResolver {
    allow_hosts: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_hosts.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if host_allowed(&host, &allow) {
                return Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs);
            }
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| !forbidden_address(a.ip()))
                .collect();
            if public.is_empty() {
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "refused: {host} resolves only to private, loopback, link-local or metadata addresses ({})",
                    shown.join(", ")
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn new(allow_hosts: Arc<Vec<String>>) -> GuardedResolver {
        GuardedResolver { allow_hosts }
    }
}

/// Why `url` may not be fetched: its host is an address (not a name, so no resolver sees it)
/// that is private, loopback, link-local or metadata, and the operator doesn't list it.
pub fn refused_literal(url: &url::Url, allow_hosts: &[String]) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Ipv4(a) => std::net::IpAddr::V4(a),
        url::Host::Ipv6(a) => std::net::IpAddr::V6(a),
        url::Host::Domain(_) => return None,
    };
    let host = url.host_str().unwrap_or_default();
    (!host_allowed(host, allow_hosts) && forbidden_address(ip))
        .then(|| format!("{ip} is a private, loopback, link-local or metadata address"))
}
