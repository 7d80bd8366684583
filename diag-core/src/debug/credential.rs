//! What an `X-Debug` header value may be, and why one is refused.
//!
//! Accepted values:
//! - the debug token itself (`DIAG_DEBUG_TOKEN`, or `DIAG_TOKEN` when no separate debug
//!   token is configured), compared in constant time;
//! - a signed, short-lived credential `v1.<expiry>.<mac>` (see [`super::signed`]);
//! - `1`, only from a trusted debug network (default: loopback), the client address
//!   being resolved through trusted proxies only.
//!
//! A refused credential never changes the response status: the request is served
//! normally, the refusal is counted by [`RejectReason`], and a warning is logged at most
//! once per [`WARN_INTERVAL`] per reason.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::signed;
use super::throttle::Throttle;
use crate::HeaderView;
use crate::auth::Secret;
use crate::net::{Cidr, TrustedProxies, request_client};

/// The longest `X-Debug` value looked at; longer ones are refused unread.
///
/// ```
/// use diag_core::debug::{Decision, MAX_CREDENTIAL_BYTES, RejectReason};
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let headers = vec![("x-debug".to_owned(), "x".repeat(MAX_CREDENTIAL_BYTES + 1))];
/// assert_eq!(diag.debug_decision(&headers, None), Decision::Rejected(RejectReason::Oversized));
/// ```
pub const MAX_CREDENTIAL_BYTES: usize = 256;

/// How often, at most, a warning is logged for each rejection reason.
///
/// ```
/// use diag_core::debug::{RejectReason, WARN_INTERVAL};
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let guess = vec![("x-debug".to_owned(), "guess".to_owned())];
/// for _ in 0..100 {
///     diag.debug_decision(&guess, None);
/// }
/// // All are counted; at most one warning per reason was logged in this interval.
/// assert_eq!(diag.debug_mode().rejected(RejectReason::Invalid), 100);
/// assert_eq!(WARN_INTERVAL.as_secs(), 10);
/// ```
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Why an `X-Debug` header did not turn diagnostic mode on.
///
/// ```
/// use diag_core::debug::{Decision, RejectReason};
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let ask = |value: &str| {
///     let headers = vec![("x-debug".to_owned(), value.to_owned())];
///     diag.debug_decision(&headers, Some("203.0.113.9:4000".parse().unwrap()))
/// };
/// assert_eq!(ask("wrong"), Decision::Rejected(RejectReason::Invalid));
/// assert_eq!(ask("v1.12.x"), Decision::Rejected(RejectReason::Malformed));
/// assert_eq!(ask("1"), Decision::Rejected(RejectReason::UntrustedNetwork));
/// assert_eq!(RejectReason::Expired.to_string(), "debug credential has expired");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// Longer than [`MAX_CREDENTIAL_BYTES`].
    #[error("debug credential longer than {MAX_CREDENTIAL_BYTES} bytes")]
    Oversized,
    /// Empty, not printable ASCII, or a signed credential of the wrong shape.
    #[error("debug credential is malformed")]
    Malformed,
    /// A wrong token, a signature that does not verify, or no key configured.
    #[error("debug credential is invalid")]
    Invalid,
    /// A genuine signed credential past its expiry.
    #[error("debug credential has expired")]
    Expired,
    /// `X-Debug: 1` from outside the trusted debug networks, or through an untrusted proxy.
    #[error(
        "`X-Debug: 1` is only honoured from trusted debug networks (or the peer address \
         is unknown: the server must give diag the connection's address)"
    )]
    UntrustedNetwork,
}

impl RejectReason {
    /// Every reason, in a fixed order (for exporting one counter per reason).
    ///
    /// ```
    /// use diag_core::debug::RejectReason;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// // One counter per reason, e.g. for a metrics exporter of one's own:
    /// let lines: Vec<String> = RejectReason::ALL
    ///     .iter()
    ///     .map(|r| format!("rejected{{reason={}}} {}", r.as_str(), diag.debug_mode().rejected(*r)))
    ///     .collect();
    /// assert_eq!(lines.len(), 5);
    /// assert_eq!(lines[0], "rejected{reason=oversized} 0");
    /// ```
    pub const ALL: &[RejectReason] = &[
        RejectReason::Oversized,
        RejectReason::Malformed,
        RejectReason::Invalid,
        RejectReason::Expired,
        RejectReason::UntrustedNetwork,
    ];

    /// A label value, e.g. for `diag_debug_rejected_total{reason="expired"}`.
    ///
    /// ```
    /// use diag_core::debug::RejectReason;
    /// assert_eq!(RejectReason::UntrustedNetwork.as_str(), "untrusted_network");
    /// assert_eq!(RejectReason::Expired.as_str(), "expired");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::Malformed => "malformed",
            RejectReason::Invalid => "invalid",
            RejectReason::Expired => "expired",
            RejectReason::UntrustedNetwork => "untrusted_network",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Refusals counted by reason, with a rate-limited warning for each.
#[derive(Debug)]
pub(crate) struct Rejections {
    counts: [AtomicU64; RejectReason::ALL.len()],
    warn: [Throttle; RejectReason::ALL.len()],
}

impl Rejections {
    pub(crate) fn new() -> Self {
        Rejections {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            warn: std::array::from_fn(|_| Throttle::new(WARN_INTERVAL)),
        }
    }

    /// Counts a refusal; the warning (at most one per reason per [`WARN_INTERVAL`]) names
    /// the connection's peer, looked up only then, as the place to start looking.
    pub(crate) fn record(&self, reason: RejectReason, peer: &dyn Fn() -> Option<SocketAddr>) {
        let total = self.counts[reason.index()].fetch_add(1, Ordering::Relaxed) + 1;
        if self.warn[reason.index()].ready() {
            let peer = peer().map(|p| crate::net::canonical_ip(p.ip()));
            tracing::warn!(
                reason = reason.as_str(),
                total,
                peer = peer.map(tracing::field::display),
                "diag: X-Debug refused ({reason}); the request is served normally"
            );
        }
    }

    pub(crate) fn count(&self, reason: RejectReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }
}

/// What a credential is checked against.
pub(crate) struct CredentialPolicy<'a> {
    /// The debug token, also the signing key.
    pub(crate) key: Option<&'a Secret>,
    /// Where `X-Debug: 1` is honoured from.
    pub(crate) networks: &'a [Cidr],
    /// Whose `X-Forwarded-For` is believed.
    pub(crate) proxies: &'a TrustedProxies,
}

impl CredentialPolicy<'_> {
    /// Checks one `X-Debug` value from a request with these headers and peer.
    pub(crate) fn check(
        &self,
        value: &[u8],
        headers: &dyn HeaderView,
        peer: Option<SocketAddr>,
    ) -> Result<(), RejectReason> {
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(RejectReason::Oversized);
        }
        let value = value.trim_ascii();
        if value.is_empty() || !value.iter().all(|b| b.is_ascii_graphic()) {
            return Err(RejectReason::Malformed);
        }
        if value == b"1" {
            return self.check_network(headers, peer);
        }
        if signed::looks_signed(value) {
            return signed::verify(self.key.map(Secret::expose), value, now_unix());
        }
        match self.key {
            Some(key) if key.matches(value) => Ok(()),
            _ => Err(RejectReason::Invalid),
        }
    }

    fn check_network(
        &self,
        headers: &dyn HeaderView,
        peer: Option<SocketAddr>,
    ) -> Result<(), RejectReason> {
        let peer = peer.ok_or(RejectReason::UntrustedNetwork)?.ip();
        // Through a proxy nobody declared, or one that does not say who the client is:
        // untrusted (a local reverse proxy would otherwise make every outsider local).
        let client = request_client(peer, headers, self.proxies)
            .map_err(|_| RejectReason::UntrustedNetwork)?;
        if self.networks.iter().any(|n| n.contains(client)) {
            Ok(())
        } else {
            Err(RejectReason::UntrustedNetwork)
        }
    }
}

use crate::clock::unix_now_secs as now_unix;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{headers as h, peer};

    #[test]
    fn the_warning_names_the_peer_and_comes_once_per_interval() {
        #[derive(Clone, Default)]
        struct Out(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);
        impl std::io::Write for Out {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Out::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let rejections = Rejections::new();
        tracing::subscriber::with_default(subscriber, || {
            rejections.record(RejectReason::Invalid, &|| {
                Some("[::ffff:10.1.2.3]:5000".parse().unwrap())
            });
            rejections.record(RejectReason::Invalid, &|| {
                panic!("the peer is looked up only for a warning")
            });
        });
        let text = String::from_utf8(out.0.lock().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("WARN") && text.contains("peer=10.1.2.3"),
            "{text}"
        );
        assert_eq!(rejections.count(RejectReason::Invalid), 2);
    }

    #[test]
    fn each_reason() {
        let key = Secret::new("tok");
        let loopback = Cidr::loopback();
        let none = TrustedProxies::default();
        let p = CredentialPolicy {
            key: Some(&key),
            networks: &loopback,
            proxies: &none,
        };
        let lo = peer("127.0.0.1");
        let out = peer("203.0.113.9");
        let check = |v: &str, headers: &[(&str, &str)], pe| p.check(v.as_bytes(), &h(headers), pe);
        assert_eq!(check("tok", &[], out), Ok(()));
        assert_eq!(check(" tok ", &[], out), Ok(()));
        assert_eq!(check("tOk", &[], out), Err(RejectReason::Invalid));
        assert_eq!(check("", &[], lo), Err(RejectReason::Malformed));
        assert_eq!(check("to k", &[], lo), Err(RejectReason::Malformed));
        assert_eq!(check("v1.x.y", &[], lo), Err(RejectReason::Malformed));
        assert_eq!(
            check(&"a".repeat(MAX_CREDENTIAL_BYTES + 1), &[], lo),
            Err(RejectReason::Oversized)
        );
        assert_eq!(check("1", &[], lo), Ok(()));
        assert_eq!(check("1", &[], peer("::1")), Ok(()));
        assert_eq!(check("1", &[], out), Err(RejectReason::UntrustedNetwork));
        assert_eq!(check("1", &[], None), Err(RejectReason::UntrustedNetwork));
        // An untrusted local proxy forwarding an outsider is not "loopback".
        assert_eq!(
            check("1", &[("x-forwarded-for", "203.0.113.9")], lo),
            Err(RejectReason::UntrustedNetwork)
        );
        let expired = signed::sign_credential(b"tok", now_unix() - 5);
        assert_eq!(check(&expired, &[], out), Err(RejectReason::Expired));
        let fresh = signed::sign_credential(b"tok", now_unix() + 60);
        assert_eq!(check(&fresh, &[], out), Ok(()));
    }

    #[test]
    fn trusted_proxy_passes_on_the_client_address() {
        let key = Secret::new("tok");
        let office: Vec<Cidr> = vec!["10.8.0.0/16".parse().unwrap()];
        let proxies = TrustedProxies::new(vec!["192.0.2.1".parse().unwrap()]);
        let p = CredentialPolicy {
            key: Some(&key),
            networks: &office,
            proxies: &proxies,
        };
        let via_proxy = peer("192.0.2.1");
        assert_eq!(
            p.check(b"1", &h(&[("x-forwarded-for", "10.8.3.4")]), via_proxy),
            Ok(())
        );
        assert_eq!(
            p.check(b"1", &h(&[("x-forwarded-for", "198.51.100.7")]), via_proxy),
            Err(RejectReason::UntrustedNetwork)
        );
        // Loopback is not trusted once the networks were replaced.
        assert_eq!(
            p.check(b"1", &h(&[]), peer("127.0.0.1")),
            Err(RejectReason::UntrustedNetwork)
        );
    }

    #[test]
    fn without_a_key_only_the_network_path_works() {
        let loopback = Cidr::loopback();
        let none = TrustedProxies::default();
        let p = CredentialPolicy {
            key: None,
            networks: &loopback,
            proxies: &none,
        };
        assert_eq!(
            p.check(b"anything", &h(&[]), peer("127.0.0.1")),
            Err(RejectReason::Invalid)
        );
        let signed = signed::sign_credential(b"k", now_unix() + 60);
        assert_eq!(
            p.check(signed.as_bytes(), &h(&[]), peer("127.0.0.1")),
            Err(RejectReason::Invalid)
        );
        assert_eq!(p.check(b"1", &h(&[]), peer("127.0.0.1")), Ok(()));
    }
}
