use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR notation, such as `10.0.0.0/8` or `::1/128`.
///
/// A bare address (`192.0.2.7`) is a network of one host.
///
/// ```
/// use diag_core::net::Cidr;
/// let net: Cidr = "10.0.0.0/8".parse().unwrap();
/// assert!(net.contains("10.1.2.3".parse().unwrap()));
/// assert!(!net.contains("11.0.0.1".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not a [`Cidr`].
///
/// ```
/// use diag_core::net::{Cidr, CidrParseError};
/// assert_eq!("10.0.0.0/33".parse::<Cidr>(), Err(CidrParseError::Prefix("33".into())));
/// let err = "intranet/8".parse::<Cidr>().unwrap_err();
/// assert_eq!(err.to_string(), "`intranet` is not an IP address");
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CidrParseError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("`{0}` is not an IP address")]
    Address(String),
    /// The prefix length is not a number within the address family's width.
    #[error("`{0}` is not a valid prefix length")]
    Prefix(String),
}

impl Cidr {
    /// The loopback networks, `127.0.0.0/8` and `::1/128`.
    ///
    /// ```
    /// use diag_core::net::Cidr;
    /// let [v4, v6] = Cidr::loopback();
    /// assert!(v4.contains("127.0.0.53".parse().unwrap()));
    /// assert!(v6.contains("::1".parse().unwrap()));
    /// assert_eq!(v4.to_string(), "127.0.0.0/8");
    /// ```
    pub fn loopback() -> [Cidr; 2] {
        [
            Cidr {
                addr: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            Cidr {
                addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                prefix: 128,
            },
        ]
    }

    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
    /// is compared as the IPv4 address it carries.
    ///
    /// ```
    /// use diag_core::net::Cidr;
    /// let net: Cidr = "192.168.0.0/16".parse().unwrap();
    /// assert!(net.contains("192.168.4.2".parse().unwrap()));
    /// // A dual-stack socket's IPv4-mapped address matches the IPv4 network.
    /// assert!(net.contains("::ffff:192.168.4.2".parse().unwrap()));
    /// assert!(!net.contains("192.169.0.1".parse().unwrap()));
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Maps `::ffff:a.b.c.d` to `a.b.c.d` so dual-stack sockets match IPv4 rules.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl FromStr for Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| CidrParseError::Address(addr.to_owned()))?,
        );
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| CidrParseError::Prefix(p.to_owned()))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6_membership() {
        let n: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(n.contains("192.168.255.1".parse().unwrap()));
        assert!(!n.contains("192.169.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.168.1.1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bare_address_is_one_host() {
        let n: Cidr = "10.0.0.5".parse().unwrap();
        assert!(n.contains("10.0.0.5".parse().unwrap()));
        assert!(!n.contains("10.0.0.6".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            "nope/8".parse::<Cidr>(),
            Err(CidrParseError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrParseError::Prefix(_))
        ));
        assert!(matches!(
            "::/129".parse::<Cidr>(),
            Err(CidrParseError::Prefix(_))
        ));
    }
}
