//! Who may read the diagnostics endpoints.
//!
//! With a token configured, a request must carry `Authorization: Bearer <token>`; the
//! comparison takes the same time whatever the candidate. With no token, only a loopback
//! client is let in, and only when the request did not come through a proxy the operator
//! has not named (a local reverse proxy would otherwise make the whole internet loopback).

use std::net::{IpAddr, SocketAddr};

use crate::HeaderView;
use crate::net::{TrustedProxies, client_ip};

/// Why a request to a diagnostics endpoint was refused.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::{AuthError, Diag, EndpointRequest};
/// let diag = Diag::builder().token("s3cret").build().unwrap();
/// let req = EndpointRequest { method: "GET".into(), path: "/debug/state".into(), ..Default::default() };
/// let resp = diag.serve(req).await;
/// // A refusal is a 401 whose JSON body says why.
/// assert_eq!(resp.status, 401);
/// let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
/// assert_eq!(body["error"], AuthError::MissingToken.to_string());
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A token is configured and the request carries no `Authorization: Bearer` header.
    #[error("missing bearer token")]
    MissingToken,
    /// The bearer token does not match.
    #[error("invalid bearer token")]
    InvalidToken,
    /// No token is configured and the client is not on loopback.
    #[error("no token is configured, so only loopback clients are allowed")]
    NotLoopback,
    /// No token is configured and the adapter could not tell who the peer is (with axum,
    /// serve with `into_make_service_with_connect_info::<SocketAddr>()`).
    #[error("no token is configured and the peer address is unknown, so loopback cannot be proven")]
    UnknownPeer,
    /// No token is configured and the request came through a proxy that is not trusted.
    #[error("no token is configured and the request came through an untrusted proxy")]
    UntrustedProxy,
}

/// A secret compared in constant time; its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    pub(crate) fn new(s: impl Into<Vec<u8>>) -> Self {
        Secret(s.into())
    }

    /// Whether `candidate` equals the secret. The time taken depends only on the
    /// lengths, never on where the first difference is.
    pub(crate) fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(&self.0, candidate)
    }

    /// The secret's bytes, for keying a MAC (debug credentials).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Compares two byte strings without an early exit on the first difference.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Fold the length difference in rather than returning early on it, and walk the
    // expected secret's full length whatever the candidate's length.
    let mut diff = (a.len() ^ b.len()) as u64;
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// The bearer token of an `Authorization` header value, if it has that scheme.
pub(crate) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if scheme.eq_ignore_ascii_case(b"bearer ") {
        Some(value[7..].trim_ascii())
    } else {
        None
    }
}

/// Decides whether a request may read the diagnostics endpoints.
pub(crate) fn authorize(
    token: Option<&Secret>,
    trusted: &TrustedProxies,
    headers: &dyn HeaderView,
    peer: Option<SocketAddr>,
) -> Result<(), AuthError> {
    if let Some(token) = token {
        let candidate = headers
            .get("authorization")
            .and_then(bearer)
            .ok_or(AuthError::MissingToken)?;
        return if token.matches(candidate) {
            Ok(())
        } else {
            Err(AuthError::InvalidToken)
        };
    }
    let peer = peer.ok_or(AuthError::UnknownPeer)?.ip();
    let forwarded = headers.get_joined("x-forwarded-for");
    let proxied = forwarded.is_some() || headers.get("forwarded").is_some();
    if proxied && !trusted.contains(crate::net::canonical_ip(peer)) {
        return Err(AuthError::UntrustedProxy);
    }
    let client = client_ip(peer, forwarded.as_deref(), trusted);
    if is_loopback(client) {
        Ok(())
    } else {
        Err(AuthError::NotLoopback)
    }
}

pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    crate::net::canonical_ip(ip).is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{headers as h, peer};

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn token_required_when_configured_even_on_loopback() {
        let t = Secret::new("s3cret");
        let none = TrustedProxies::default();
        let lo = peer("127.0.0.1");
        assert_eq!(
            authorize(Some(&t), &none, &h(&[]), lo),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            authorize(Some(&t), &none, &h(&[("authorization", "Bearer nope")]), lo),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            authorize(
                Some(&t),
                &none,
                &h(&[("Authorization", "bearer s3cret")]),
                peer("8.8.8.8")
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                Some(&t),
                &none,
                &h(&[("authorization", "Basic czNjcmV0")]),
                lo
            ),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn without_token_only_unproxied_loopback() {
        let none = TrustedProxies::default();
        assert_eq!(authorize(None, &none, &h(&[]), peer("127.0.0.1")), Ok(()));
        assert_eq!(authorize(None, &none, &h(&[]), peer("::1")), Ok(()));
        assert_eq!(
            authorize(None, &none, &h(&[]), peer("10.1.1.1")),
            Err(AuthError::NotLoopback)
        );
        assert_eq!(
            authorize(None, &none, &h(&[]), None),
            Err(AuthError::UnknownPeer)
        );
        // A local reverse proxy forwarding an outsider: refused.
        assert_eq!(
            authorize(
                None,
                &none,
                &h(&[("x-forwarded-for", "203.0.113.5")]),
                peer("127.0.0.1")
            ),
            Err(AuthError::UntrustedProxy)
        );
        // The outsider cannot claim loopback through XFF either.
        assert_eq!(
            authorize(
                None,
                &none,
                &h(&[("x-forwarded-for", "127.0.0.1")]),
                peer("203.0.113.5")
            ),
            Err(AuthError::UntrustedProxy)
        );
        // A trusted local proxy passing on a loopback client is fine; an outsider is not.
        let local = TrustedProxies::new(vec!["127.0.0.1".parse().unwrap()]);
        assert_eq!(
            authorize(
                None,
                &local,
                &h(&[("x-forwarded-for", "127.0.0.1")]),
                peer("127.0.0.1")
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                None,
                &local,
                &h(&[("x-forwarded-for", "203.0.113.5")]),
                peer("127.0.0.1")
            ),
            Err(AuthError::NotLoopback)
        );
    }
}
