use std::net::IpAddr;

use super::Cidr;
use super::cidr::canonical;

/// The proxies whose `X-Forwarded-For` diag believes. Empty by default: then the
/// header is ignored and the socket's peer address is the client.
///
/// ```
/// use diag_core::net::{client_ip, TrustedProxies};
/// let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
/// let socket = "10.0.0.2".parse().unwrap();
/// // The proxy is trusted, so the client is the right-most untrusted hop.
/// assert_eq!(
///     client_ip(socket, Some("203.0.113.9, 10.0.0.7"), &proxies),
///     "203.0.113.9".parse::<std::net::IpAddr>().unwrap()
/// );
/// // An untrusted peer cannot claim to be someone else.
/// let outsider = "198.51.100.1".parse().unwrap();
/// assert_eq!(client_ip(outsider, Some("127.0.0.1"), &proxies), outsider);
/// ```
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
}

impl TrustedProxies {
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

/// The address of the client that sent a request.
///
/// `socket_peer` is the address of the TCP peer. `forwarded_for` is the raw
/// `X-Forwarded-For` value (all of its header lines joined by commas). The header is
/// read only when the socket peer is a trusted proxy; then it is walked from the right,
/// skipping trusted proxies, and the first untrusted hop is the client. A malformed hop
/// stops the walk at the last address known good.
///
/// ```
/// use std::net::IpAddr;
/// use diag_core::net::{TrustedProxies, client_ip};
/// let lb = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
/// let peer: IpAddr = "10.0.0.2".parse().unwrap();
/// // A spoofed left-most entry does not win: the walk stops at the first untrusted hop.
/// let xff = "127.0.0.1, 198.51.100.2, 10.9.9.9";
/// assert_eq!(client_ip(peer, Some(xff), &lb), "198.51.100.2".parse::<IpAddr>().unwrap());
/// // Without a trusted proxy in front, the header is ignored.
/// assert_eq!(client_ip(peer, Some(xff), &TrustedProxies::default()), peer);
/// ```
pub fn client_ip(
    socket_peer: IpAddr,
    forwarded_for: Option<&str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let socket_peer = canonical(socket_peer);
    let Some(xff) = forwarded_for else {
        return socket_peer;
    };
    if !trusted.contains(socket_peer) {
        return socket_peer;
    }
    let mut client = socket_peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !trusted.contains(client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
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
            ip("203.0.113.1")
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
            ip("198.51.100.2"),
            "a spoofed left-most entry must not win"
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("garbage"), &t),
            ip("10.0.0.1")
        );
    }
}
