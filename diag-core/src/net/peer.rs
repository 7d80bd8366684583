use std::net::IpAddr;

use super::Cidr;
use super::cidr::canonical;

/// The proxies whose forwarding headers diag believes. Empty by default: then a request
/// that carries one is taken as coming through a proxy nobody named.
///
/// ```
/// use diag_core::net::{client_ip, TrustedProxies};
/// let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
/// let socket = "10.0.0.2".parse().unwrap();
/// // The proxy is trusted, so the client is the right-most untrusted hop.
/// assert_eq!(
///     client_ip(socket, Some("203.0.113.9, 10.0.0.7"), &proxies),
///     Some("203.0.113.9".parse().unwrap())
/// );
/// // An untrusted peer cannot claim to be someone else.
/// let outsider = "198.51.100.1".parse().unwrap();
/// assert_eq!(client_ip(outsider, Some("127.0.0.1"), &proxies), Some(outsider));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
}

impl TrustedProxies {
    /// The trusted networks.
    pub(crate) fn nets(&self) -> &[Cidr] {
        &self.nets
    }

    /// Trusts the given networks.
    ///
    /// ```
    /// use diag_core::net::TrustedProxies;
    /// let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
    /// assert!(proxies.contains("10.4.0.1".parse().unwrap()));
    /// assert!(proxies.contains("::1".parse().unwrap()));
    /// ```
    pub fn new(nets: Vec<Cidr>) -> Self {
        TrustedProxies { nets }
    }

    /// Whether `ip` is one of the trusted proxies.
    ///
    /// ```
    /// use diag_core::net::TrustedProxies;
    /// let proxies = TrustedProxies::new(vec!["172.16.0.0/12".parse().unwrap()]);
    /// assert!(proxies.contains("172.20.1.1".parse().unwrap()));
    /// assert!(!proxies.contains("203.0.113.9".parse().unwrap()));
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// Whether no proxy is trusted.
    ///
    /// ```
    /// use diag_core::net::TrustedProxies;
    /// assert!(TrustedProxies::default().is_empty());
    /// assert!(!TrustedProxies::new(vec!["10.0.0.1".parse().unwrap()]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// The address of the client that sent a request, or `None` when it cannot be told.
///
/// `socket_peer` is the address of the TCP peer. `forwarded_for` is the raw
/// `X-Forwarded-For` value (all of its header lines joined by commas). The header is
/// read only when the socket peer is a trusted proxy; then it is walked from the right,
/// skipping trusted proxies, and the first untrusted hop is the client. A hop may carry
/// a port (`203.0.113.9:5555`, `[2001:db8::1]:443`, as some proxies write them); a hop
/// that is no address at all (`unknown`, garbage) makes the client unknown: `None`,
/// never the trusted proxy behind it (which is often loopback).
///
/// ```
/// use std::net::IpAddr;
/// use diag_core::net::{TrustedProxies, client_ip};
/// let lb = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
/// let peer: IpAddr = "10.0.0.2".parse().unwrap();
/// // A spoofed left-most entry does not win: the walk stops at the first untrusted hop.
/// let xff = "127.0.0.1, 198.51.100.2, 10.9.9.9";
/// assert_eq!(client_ip(peer, Some(xff), &lb), Some("198.51.100.2".parse().unwrap()));
/// // Without a trusted proxy in front, the header is ignored.
/// assert_eq!(client_ip(peer, Some(xff), &TrustedProxies::default()), Some(peer));
/// // A hop that is no address: nobody knows who the client is.
/// assert_eq!(client_ip(peer, Some("unknown, 10.9.9.9"), &lb), None);
/// ```
pub fn client_ip(
    socket_peer: IpAddr,
    forwarded_for: Option<&str>,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let socket_peer = canonical(socket_peer);
    match forwarded_for {
        Some(xff) if trusted.contains(socket_peer) => walk(socket_peer, xff.rsplit(','), trusted),
        _ => Some(socket_peer),
    }
}

/// From the right: the first hop that is not a trusted proxy; `None` at a hop that is no
/// address.
fn walk<'a>(
    socket_peer: IpAddr,
    hops_from_the_right: impl Iterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let mut client = socket_peer;
    for hop in hops_from_the_right {
        client = canonical(hop_address(hop)?);
        if !trusted.contains(client) {
            break;
        }
    }
    Some(client)
}

/// The address of one forwarding hop: `203.0.113.9`, `203.0.113.9:5555`, `2001:db8::1`,
/// `[2001:db8::1]:443`, optionally in double quotes (RFC 7239's `for="[…]:443"`).
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let hop = hop
        .strip_prefix('"')
        .and_then(|h| h.strip_suffix('"'))
        .unwrap_or(hop);
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !after.is_empty() {
            after.strip_prefix(':')?.parse::<u16>().ok()?;
        }
        return v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    // `a.b.c.d:port` (a bare IPv6 address parsed above; one with a port is bracketed).
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The `for=` values of a `Forwarded` header (RFC 7239), one per element, in order.
fn forwarded_for_values(forwarded: &str) -> impl DoubleEndedIterator<Item = &str> {
    forwarded.split(',').map(|element| {
        element
            .split(';')
            .find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
            })
            // An element without `for=` says nothing of the client: no address.
            .unwrap_or("")
    })
}

/// Why diag cannot name the client of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientError {
    /// Forwarding headers came from a peer that is not a trusted proxy: a local reverse
    /// proxy nobody declared would make every outsider look local.
    UntrustedProxy,
    /// A trusted proxy forwarded it, but its forwarding headers do not say who the
    /// client is (a hop that is no address, or headers that disagree).
    Unknown,
}

/// Who sent a request, from its socket peer and its forwarding headers
/// (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`), for access and network checks. Without
/// any forwarding header the peer is the client. With one, the peer must be a trusted
/// proxy, and the headers must name the client: `X-Forwarded-For`, else `Forwarded`'s
/// `for=` values, else `X-Real-IP`, walked as [`client_ip`] walks; when both
/// `X-Forwarded-For` and `Forwarded` are present they must agree, and an `X-Real-IP`
/// that names a client must name theirs (a proxy that writes one passes a client's
/// forged others through).
pub(crate) fn request_client(
    peer: IpAddr,
    headers: &dyn crate::HeaderView,
    trusted: &TrustedProxies,
) -> Result<IpAddr, ClientError> {
    let peer = canonical(peer);
    let xff = headers.get_joined("x-forwarded-for");
    let forwarded = headers.get_joined("forwarded");
    let real_ip = headers.get_joined("x-real-ip");
    if xff.is_none() && forwarded.is_none() && real_ip.is_none() {
        return Ok(peer);
    }
    if !trusted.contains(peer) {
        return Err(ClientError::UntrustedProxy);
    }
    let from_xff = xff.as_deref().map(|v| walk(peer, v.rsplit(','), trusted));
    let from_forwarded = forwarded
        .as_deref()
        .map(|v| walk(peer, forwarded_for_values(v).rev(), trusted));
    let client = match (from_xff, from_forwarded) {
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => None,
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => {
            return walk(peer, real_ip.as_deref().into_iter(), trusted).ok_or(ClientError::Unknown);
        }
    };
    let client = client.ok_or(ClientError::Unknown)?;
    // A proxy that sets only `X-Real-IP` (a common nginx setup) passes a client's own
    // `X-Forwarded-For` and `Forwarded` through, and those are read first: when
    // `X-Real-IP` names a client (an address that is no trusted proxy), they must lead
    // to that same client. One that names a trusted proxy (a CDN's hop before this
    // proxy) says nothing more.
    if let Some(real_ip) = real_ip.as_deref() {
        let named = hop_address(real_ip)
            .map(canonical)
            .ok_or(ClientError::Unknown)?;
        if !trusted.contains(named) && named != client {
            return Err(ClientError::Unknown);
        }
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ignores_xff_without_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip(ip("203.0.113.1"), Some("127.0.0.1"), &none),
            Some(ip("203.0.113.1"))
        );
    }

    #[test]
    fn walks_past_chained_trusted_proxies() {
        let t = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                Some("127.0.0.1, 198.51.100.2, 10.9.9.9"),
                &t
            ),
            Some(ip("198.51.100.2")),
            "a spoofed left-most entry must not win"
        );
        // A hop that is no address: the client is unknown, never the proxy behind it.
        for garbage in [
            "garbage",
            "unknown",
            "1.2.3.4.5",
            "[::1",
            "1.2.3.4:99999",
            "[::1]:abc",
            "[::1]x",
            "[1.2.3.4]",
        ] {
            assert_eq!(
                client_ip(ip("10.0.0.1"), Some(garbage), &t),
                None,
                "{garbage}"
            );
        }
        // Hops with ports, as some proxies write them.
        for (hop, client) in [
            ("203.0.113.9:5555", "203.0.113.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("\"[2001:db8::1]:443\"", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            assert_eq!(
                client_ip(ip("10.0.0.1"), Some(hop), &t),
                Some(ip(client)),
                "{hop}"
            );
        }
    }

    fn client(
        peer: &str,
        headers: &[(&str, &str)],
        trusted: &TrustedProxies,
    ) -> Result<IpAddr, ClientError> {
        request_client(ip(peer), &crate::test_support::headers(headers), trusted)
    }

    #[test]
    fn every_forwarding_header_is_a_proxy_and_must_name_the_client() {
        let lo = TrustedProxies::new(vec!["127.0.0.1".parse().unwrap()]);
        let none = TrustedProxies::default();
        // No forwarding header: the peer.
        assert_eq!(client("127.0.0.1", &[], &lo), Ok(ip("127.0.0.1")));
        // Any of the three from an untrusted peer: refused.
        for h in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            assert_eq!(
                client("127.0.0.1", &[(h, "for=1.2.3.4")], &none),
                Err(ClientError::UntrustedProxy),
                "{h}"
            );
        }
        // `Forwarded` alone, through the trusted proxy: its `for=` names the client.
        assert_eq!(
            client("127.0.0.1", &[("forwarded", "for=1.2.3.4;proto=http")], &lo),
            Ok(ip("1.2.3.4"))
        );
        assert_eq!(
            client(
                "127.0.0.1",
                &[("forwarded", "for=\"[2001:db8::1]:443\", for=127.0.0.1")],
                &lo
            ),
            Ok(ip("2001:db8::1"))
        );
        for unknown in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "for=1.2.3.4:5555x",
        ] {
            assert_eq!(
                client("127.0.0.1", &[("forwarded", unknown)], &lo),
                Err(ClientError::Unknown),
                "{unknown}"
            );
        }
        // `X-Real-IP` alone.
        assert_eq!(
            client("127.0.0.1", &[("x-real-ip", "1.2.3.4")], &lo),
            Ok(ip("1.2.3.4"))
        );
        // A port on an `X-Forwarded-For` hop no longer ends the walk at the proxy.
        assert_eq!(
            client("127.0.0.1", &[("x-forwarded-for", "1.2.3.4:5555")], &lo),
            Ok(ip("1.2.3.4"))
        );
        // Both kinds: they must agree, or nobody knows who the client is.
        assert_eq!(
            client(
                "127.0.0.1",
                &[
                    ("x-forwarded-for", "127.0.0.1"),
                    ("forwarded", "for=1.2.3.4")
                ],
                &lo
            ),
            Err(ClientError::Unknown)
        );
        assert_eq!(
            client(
                "127.0.0.1",
                &[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")],
                &lo
            ),
            Ok(ip("1.2.3.4"))
        );
    }

    /// nginx with only `proxy_set_header X-Real-IP $remote_addr` passes a client's own
    /// `X-Forwarded-For` and `Forwarded` through: they must lead to the client
    /// `X-Real-IP` names, or nobody knows who the client is.
    #[test]
    fn x_real_ip_naming_a_client_must_agree_with_the_others() {
        let lo = TrustedProxies::new(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]);
        let outsider = ("x-real-ip", "192.0.2.2");
        for forged in [
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-for", "::ffff:127.0.0.1"),
            ("forwarded", "for=\"[::1]:80\""),
            ("x-forwarded-for", "10.0.0.1"),
        ] {
            assert_eq!(
                client("127.0.0.1", &[outsider, forged], &lo),
                Err(ClientError::Unknown),
                "{forged:?}"
            );
        }
        // A proxy that appends to `X-Forwarded-For` and sets `X-Real-IP`: they agree.
        assert_eq!(
            client(
                "127.0.0.1",
                &[("x-forwarded-for", "127.0.0.1, 192.0.2.2"), outsider],
                &lo
            ),
            Ok(ip("192.0.2.2"))
        );
        // The on-call on the proxy's host: `X-Real-IP` names a trusted address.
        assert_eq!(
            client(
                "127.0.0.1",
                &[("x-forwarded-for", "127.0.0.1"), ("x-real-ip", "127.0.0.1")],
                &lo
            ),
            Ok(ip("127.0.0.1"))
        );
        // `X-Real-IP` that is no address, beside the others: unknown.
        assert_eq!(
            client(
                "127.0.0.1",
                &[("x-forwarded-for", "192.0.2.2"), ("x-real-ip", "garbage")],
                &lo
            ),
            Err(ClientError::Unknown)
        );
    }
}
