//! Webhooks without I/O: the event types an endpoint can subscribe to (and which audit events
//! they come from), the signing secret and the signature of the Standard Webhooks
//! specification, the rules an endpoint's URL and the addresses it resolves to must pass, and
//! the retry schedule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::Duration;

use super::EventKind;

/// Every type of message an endpoint can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookType {
    TokenCreated,
    TokenRotated,
    TokenExpiring,
    TokenExpired,
    TokenDeleted,
    TokenRevoked,
    TokenLeaked,
    UserAdded,
    UserRemoved,
    UserDeprovisioned,
    UserRoleChanged,
    SsoSignInFailed,
    /// "Send test event".
    Ping,
}

impl WebhookType {
    pub const ALL: [WebhookType; 13] = [
        WebhookType::TokenCreated,
        WebhookType::TokenRotated,
        WebhookType::TokenExpiring,
        WebhookType::TokenExpired,
        WebhookType::TokenDeleted,
        WebhookType::TokenRevoked,
        WebhookType::TokenLeaked,
        WebhookType::UserAdded,
        WebhookType::UserRemoved,
        WebhookType::UserDeprovisioned,
        WebhookType::UserRoleChanged,
        WebhookType::SsoSignInFailed,
        WebhookType::Ping,
    ];

    /// The name in the body's `type` and in an endpoint's `events`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookType::TokenCreated => "token.created",
            WebhookType::TokenRotated => "token.rotated",
            WebhookType::TokenExpiring => "token.expiring",
            WebhookType::TokenExpired => "token.expired",
            WebhookType::TokenDeleted => "token.deleted",
            WebhookType::TokenRevoked => "token.revoked",
            WebhookType::TokenLeaked => "token.leaked",
            WebhookType::UserAdded => "user.added",
            WebhookType::UserRemoved => "user.removed",
            WebhookType::UserDeprovisioned => "user.deprovisioned",
            WebhookType::UserRoleChanged => "user.role_changed",
            WebhookType::SsoSignInFailed => "sso.sign_in_failed",
            WebhookType::Ping => "ping",
        }
    }

    pub fn parse(name: &str) -> Option<WebhookType> {
        WebhookType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The message an audit event sends, if it sends one (`tokens.deleted`, a summary of
    /// several, doesn't: each token's own `token.deleted` does).
    pub fn of_event(kind: EventKind) -> Option<WebhookType> {
        Some(match kind {
            EventKind::TokenCreated | EventKind::TokenExchanged => WebhookType::TokenCreated,
            EventKind::TokenRotated => WebhookType::TokenRotated,
            EventKind::TokenDeleted => WebhookType::TokenDeleted,
            EventKind::TokenRevoked | EventKind::TokenRevokedIdle => WebhookType::TokenRevoked,
            EventKind::TokenLeaked => WebhookType::TokenLeaked,
            EventKind::UserAdded => WebhookType::UserAdded,
            EventKind::UserRemoved => WebhookType::UserRemoved,
            EventKind::UserDeprovisioned => WebhookType::UserDeprovisioned,
            EventKind::UserRoleChanged => WebhookType::UserRoleChanged,
            EventKind::SsoFailed => WebhookType::SsoSignInFailed,
            _ => return None,
        })
    }
}

/// An endpoint's subscription: the types it wants, or every type (`None`).
pub fn parse_events(stored: &str) -> Vec<WebhookType> {
    stored.split(',').filter_map(WebhookType::parse).collect()
}

/// Whether an endpoint subscribed to `stored` (comma-separated; empty: everything) wants `t`.
/// A ping is always wanted.
pub fn wants(stored: &str, t: WebhookType) -> bool {
    t == WebhookType::Ping || stored.is_empty() || stored.split(',').any(|s| s == t.as_str())
}

/// A new signing secret, `whsec_` and 32 random bytes in base64, shown once.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    format!("whsec_{}", B64.encode(bytes))
}

/// The HMAC key a `whsec_` secret stands for.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    B64.decode(secret.strip_prefix("whsec_")?).ok()
}

/// A new message id (the `webhook-id` header), the same on every attempt of one message.
pub fn new_message_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator is available");
    format!("msg_{}", hex::encode(bytes))
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each key, space-separated (two
/// while a rotated-out secret still signs).
pub fn signature(keys: &[Vec<u8>], msg_id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|key| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
            mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
            mac.update(body.as_bytes());
            format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The longest URL an endpoint may have.
pub const MAX_URL: usize = 2000;

/// Whether `host` (a name or an address, no port) is one the operator allows over plain
/// `http` and on private addresses (`APITOKENS_WEBHOOK_ALLOW_HOSTS`).
pub fn host_allowed(host: &str, allow_hosts: &[String]) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    allow_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// Checks an endpoint URL: `https` (or `http` to a host the operator lists), no user name
/// or password in it, and, when the host is an address, one that isn't private (unless
/// listed). What a name resolves to is checked on every attempt (`forbidden_address`).
pub fn check_url(raw: &str, allow_hosts: &[String]) -> Result<url::Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Give the URL that receives the events.".into());
    }
    if raw.len() > MAX_URL {
        return Err(format!("At most {MAX_URL} characters."));
    }
    let url = url::Url::parse(raw)
        .map_err(|_| "Not a URL: give one like https://hooks.example.com/apitokens.".to_owned())?;
    let host = url
        .host_str()
        .ok_or_else(|| "The URL needs a host.".to_owned())?
        .to_owned();
    let listed = host_allowed(&host, allow_hosts);
    match url.scheme() {
        "https" => {}
        "http" if listed => {}
        _ => {
            return Err(
                "Only https:// URLs (plain http only to hosts the operator lists in APITOKENS_WEBHOOK_ALLOW_HOSTS)."
                    .into(),
            )
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("No user name or password in the URL: check the signature instead.".into());
    }
    if let Some(ip) = literal_address(&url) {
        if !listed && forbidden_address(ip) {
            return Err(format!(
                "{ip} is a private, loopback, link-local or metadata address: webhooks go to public addresses."
            ));
        }
    }
    Ok(url)
}

/// The URL as shown in the audit trail and logs: scheme, host and port only (a path or
/// query may carry a receiver's own secret, as some chat services' hook URLs do).
pub fn shown_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(an unreadable URL)".into(),
    }
}

/// The URL's host when it is an address, not a name.
fn literal_address(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(_) => None,
    }
}

/// Addresses a webhook never goes to (unless the operator lists the host): loopback,
/// private (RFC 1918, unique local), link-local (and the cloud metadata address in it),
/// carrier-grade NAT, unspecified, multicast, broadcast, documentation and reserved ranges,
/// and IPv4 hidden in IPv6 (mapped, compatible, NAT64).
pub fn forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = a.segments();
            // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) carry an IPv4 address.
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) || s[0..6] == [0; 6] {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return a.is_loopback() || a.is_unspecified() || forbidden_v4(v4);
            }
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata (IPv6)
        }
    }
}

fn forbidden_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local() // 169.254/16, the metadata address included
        || a.is_unspecified()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT, 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking, 198.18/15
        || o[0] >= 240 // reserved
}

/// How long a message keeps being retried, from its first attempt.
pub const RETRY_FOR: Duration = Duration::hours(24);
/// How long an endpoint may fail (every attempt, since its last success) before it is
/// turned off and the Administrators told.
pub const DISABLE_AFTER: Duration = Duration::days(3);
/// How long a rotated-out secret keeps signing beside the new one.
pub const OLD_SECRET_SIGNS_FOR: Duration = Duration::hours(24);

/// The pause after the `attempts`-th failed attempt: 5 s, 10 s, 20 s, ... doubling up to an
/// hour, times `jitter` (0.8 to 1.2, drawn per retry, so endpoints that failed together
/// don't all come back at once).
pub fn retry_delay(attempts: i32, jitter: f64) -> Duration {
    let base = 5i64 << (attempts.clamp(1, 20) - 1).min(10);
    let secs = base.min(3600) as f64 * jitter.clamp(0.5, 1.5);
    Duration::milliseconds((secs * 1000.0) as i64)
}

/// A jitter factor between 0.8 and 1.2.
pub fn jitter() -> f64 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("the OS random number generator is available");
    0.8 + 0.4 * (u16::from_le_bytes(b) as f64 / u16::MAX as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_one_name_and_parses_back() {
        for t in WebhookType::ALL {
            assert_eq!(WebhookType::parse(t.as_str()), Some(t));
        }
        assert_eq!(WebhookType::parse("token.renamed"), None);
    }

    #[test]
    fn subscriptions_filter_and_a_ping_always_goes() {
        assert!(wants("", WebhookType::TokenCreated));
        assert!(wants("token.revoked,user.added", WebhookType::UserAdded));
        assert!(!wants("token.revoked", WebhookType::TokenCreated));
        assert!(wants("token.revoked", WebhookType::Ping));
    }

    #[test]
    fn the_signature_is_the_specifications_example() {
        // The Standard Webhooks specification's own example.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &[key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn urls_must_be_https_without_credentials_and_not_at_private_addresses() {
        let none: Vec<String> = vec![];
        let listed = vec!["127.0.0.1".to_owned()];
        assert!(check_url("https://hooks.example.com/x", &none).is_ok());
        assert!(check_url("http://hooks.example.com/x", &none).is_err());
        assert!(check_url("https://user:pw@hooks.example.com/x", &none).is_err());
        assert!(check_url("https://169.254.169.254/latest", &none).is_err());
        assert!(check_url("https://127.0.0.1:9/", &none).is_err());
        assert!(check_url("https://[::ffff:127.0.0.1]/", &none).is_err());
        assert!(check_url("https://10.1.2.3/", &none).is_err());
        assert!(check_url("ftp://hooks.example.com/", &none).is_err());
        assert!(check_url("", &none).is_err());
        assert!(check_url(&format!("https://a.example/{}", "x".repeat(3000)), &none).is_err());
        // Addresses written the other ways a URL parser reads them: decimal, hex, short.
        for sneaky in [
            "https://2130706433/",
            "https://0x7f.1/",
            "https://127.1/",
            "https://0/",
            "https://[::ffff:7f00:1]/",
            "https://[0:0:0:0:0:ffff:169.254.169.254]/",
        ] {
            assert!(check_url(sneaky, &none).is_err(), "{sneaky}");
        }
        assert!(check_url("http://127.0.0.1:9/", &listed).is_ok());
        assert!(check_url("http://127.0.0.2:9/", &listed).is_err());
    }

    #[test]
    fn private_loopback_link_local_and_hidden_ipv4_are_forbidden_public_ones_not() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "fd00:ec2::254",
        ] {
            assert!(forbidden_address(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!forbidden_address(good.parse().unwrap()), "{good}");
        }
    }

    proptest::proptest! {
        /// An IPv4 address hidden in IPv6 (mapped, or NAT64) is judged as itself.
        #[test]
        fn ipv4_in_ipv6_is_judged_as_itself(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            let o = v4.octets();
            let nat64 = IpAddr::V6(Ipv6Addr::new(
                0x64, 0xff9b, 0, 0, 0, 0,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            ));
            let plain = forbidden_address(IpAddr::V4(v4));
            proptest::prop_assert_eq!(forbidden_address(mapped), plain);
            proptest::prop_assert_eq!(forbidden_address(nat64), plain);
        }
    }

    #[test]
    fn retries_double_from_five_seconds_up_to_an_hour() {
        assert_eq!(retry_delay(1, 1.0), Duration::seconds(5));
        assert_eq!(retry_delay(2, 1.0), Duration::seconds(10));
        assert_eq!(retry_delay(30, 1.0), Duration::hours(1));
        assert!(retry_delay(3, jitter()) >= Duration::seconds(16));
        assert!(retry_delay(3, jitter()) <= Duration::seconds(24));
    }
}
