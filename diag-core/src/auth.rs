//! Who may read the diagnostics endpoints.
//!
//! With a token configured, a request must carry `Authorization: Bearer <token>`; the
//! comparison takes the same time whatever the candidate. A browser, which cannot send a
//! bearer token, may read (`GET`, `HEAD`) with HTTP Basic credentials whose password is
//! the token (any user name): the 401 offers both, so the browser asks for them. Basic
//! credentials never change anything (`PUT /debug/log-level` needs the bearer token), as
//! a browser that remembers them would send them on another site's forged request too.
//! With no token, only a loopback client is let in, and only when the request did not
//! come through a proxy the operator has not named (a local reverse proxy would
//! otherwise make the whole internet loopback).

use std::net::{IpAddr, SocketAddr};

use crate::HeaderView;
use crate::net::{ClientError, TrustedProxies, request_client};

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
#[non_exhaustive]
pub enum AuthError {
    /// A token is configured and the request carries no `Authorization` header.
    #[error(
        "no credentials: send `Authorization: Bearer <token>` with the service's token \
         (DIAG_TOKEN); `X-Debug` is for replaying requests to the service's own routes"
    )]
    MissingToken,
    /// The `Authorization` header is neither `Bearer <token>` nor Basic credentials.
    #[error(
        "the Authorization header is not `Bearer <token>` (nor Basic with the token as the \
         password)"
    )]
    MalformedAuthorization,
    /// The `Authorization` header carries an empty token.
    #[error("the token in the Authorization header is empty (is DIAG_TOKEN set in this shell?)")]
    EmptyToken,
    /// The token does not match.
    #[error("invalid token")]
    InvalidToken,
    /// A signed `X-Debug` credential (`v1.…`) sent as the token: it switches diagnostic
    /// mode on for a request, and opens nothing.
    #[error(
        "a signed X-Debug credential (v1.…) switches diagnostic mode on for a request; it \
         does not open /debug/*, which needs the service's token (DIAG_TOKEN): ask whoever \
         minted it to read the capture, or for the token"
    )]
    SignedCredential,
    /// Basic credentials (a browser's) with the right token, on a method that changes
    /// something.
    #[error("Basic credentials only read; change settings with `Authorization: Bearer <token>`")]
    BasicCannotWrite,
    /// No token is configured and the client is not on loopback.
    #[error("no token is configured, so only loopback clients are allowed")]
    NotLoopback,
    /// No token is configured and the adapter could not tell who the peer is (with axum,
    /// serve with `into_make_service_with_connect_info::<SocketAddr>()`).
    #[error(
        "no token is configured and the peer address is unknown, so loopback cannot be proven \
         (the server gave diag none: with axum, serve with \
         `into_make_service_with_connect_info::<SocketAddr>()`; with hyper, insert the \
         connection's `SocketAddr` into each request's extensions)"
    )]
    UnknownPeer,
    /// No token is configured and the request came through a proxy that is not trusted.
    #[error("no token is configured and the request came through an untrusted proxy")]
    UntrustedProxy,
    /// No token is configured and a trusted proxy forwarded the request without saying
    /// who the client is (a forwarding hop that is no address, or headers that disagree).
    #[error(
        "no token is configured and the forwarding headers do not say who the client is, \
         so loopback cannot be proven"
    )]
    UnknownClient,
    /// No token is configured and a loopback client's write carries an `Origin`: a web
    /// page open in a browser on this host (any site can send a form there).
    #[error(
        "no token is configured and this write comes from a web page (it has an Origin \
         header), which any site open in a browser here could send; use curl, or configure \
         DIAG_TOKEN"
    )]
    CrossSiteWrite,
    /// A read that carries an `Origin` that is not this host, from a loopback client
    /// with no token configured, or with Basic credentials (which a browser sends on
    /// any site's request): another site's page, whose script could read the answer
    /// wherever a CORS layer lets it.
    #[error(
        "this read comes from another site's web page (its Origin is not the Host asked \
         for), with no token or with a browser's Basic credentials; use curl (with \
         `Authorization: Bearer`) or this host's own /debug page"
    )]
    CrossSiteRead,
    /// No token is configured and a loopback client asked for a `Host` that is not a
    /// loopback name: a web page that had a DNS name of its own point at this host (DNS
    /// rebinding) would send exactly that.
    #[error(
        "no token is configured and the Host header is not a loopback name (localhost, \
         127.0.0.1, [::1]); ask for one of those, or configure DIAG_TOKEN"
    )]
    ForeignHost,
}

impl AuthError {
    /// Whether sending credentials could change the answer: not when no token is
    /// configured (only where the request came from counts then), so such a refusal is
    /// a 403 without a challenge, and a browser does not ask for a password that cannot
    /// work.
    ///
    /// ```
    /// use diag_core::AuthError;
    /// assert!(AuthError::InvalidToken.credentials_can_help());
    /// assert!(!AuthError::NotLoopback.credentials_can_help());
    /// ```
    pub fn credentials_can_help(&self) -> bool {
        !matches!(
            self,
            AuthError::NotLoopback
                | AuthError::UnknownPeer
                | AuthError::UntrustedProxy
                | AuthError::UnknownClient
                | AuthError::CrossSiteWrite
                | AuthError::CrossSiteRead
                | AuthError::ForeignHost
                | AuthError::BasicCannotWrite
        )
    }
}

/// A secret compared in constant time; its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    pub(crate) fn new(s: impl Into<Vec<u8>>) -> Self {
        Secret(s.into())
    }

    /// A token as configured: surrounding whitespace dropped (a secret mounted from a
    /// file ends with a newline, which no client sends); `None` when nothing is left.
    pub(crate) fn configured(token: String) -> Option<Self> {
        let trimmed = token.trim_ascii();
        (!trimmed.is_empty()).then(|| Secret::new(trimmed))
    }

    /// Refuses a token a header cannot carry: one with a control character (a tab
    /// aside), such as a line break inside it. `what` names it in the error.
    pub(crate) fn validate(&self, what: &str) -> Result<(), crate::ConfigError> {
        if self
            .0
            .iter()
            .all(|&b| b == b'\t' || !(b < 0x20 || b == 0x7f))
        {
            Ok(())
        } else {
            Err(crate::ConfigError::Token(format!(
                "{what} holds a control character (a line break?), which no header can carry"
            )))
        }
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

/// The rest of `value` after the authentication scheme `scheme` (case-insensitive)
/// and its spaces, if it has that scheme.
fn after_scheme<'v>(value: &'v [u8], scheme: &[u8]) -> Option<&'v [u8]> {
    let (name, rest) = value.split_at_checked(scheme.len())?;
    // `Bearer` alone: HTTP strips the trailing space of `Bearer $UNSET_VARIABLE`.
    (name.eq_ignore_ascii_case(scheme) && rest.first().is_none_or(|b| *b == b' '))
        .then(|| rest.trim_ascii())
}

/// Basic credentials longer than this are not decoded.
const MAX_BASIC: usize = 4096;

/// The password of HTTP Basic credentials (`base64(user:password)`).
fn basic_password(encoded: &[u8]) -> Option<Vec<u8>> {
    if encoded.len() > MAX_BASIC {
        return None;
    }
    let decoded = crate::debug::base64::decode(encoded, crate::debug::base64::STANDARD)?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// Whether `method` only reads.
fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// Decides whether a request may use the diagnostics endpoints.
pub(crate) fn authorize(
    token: Option<&Secret>,
    trusted: &TrustedProxies,
    method: &str,
    headers: &dyn HeaderView,
    peer: Option<SocketAddr>,
) -> Result<(), AuthError> {
    if let Some(token) = token {
        let value = headers
            .get("authorization")
            .ok_or(AuthError::MissingToken)?;
        let (candidate, basic) = if let Some(t) = after_scheme(value, b"bearer") {
            (std::borrow::Cow::Borrowed(t), false)
        } else if let Some(encoded) = after_scheme(value, b"basic") {
            let password = basic_password(encoded).ok_or(AuthError::MalformedAuthorization)?;
            (std::borrow::Cow::Owned(password), true)
        } else {
            return Err(AuthError::MalformedAuthorization);
        };
        if candidate.is_empty() {
            return Err(AuthError::EmptyToken);
        }
        if !token.matches(&candidate) {
            if candidate.starts_with(b"v1.") {
                return Err(AuthError::SignedCredential);
            }
            return Err(AuthError::InvalidToken);
        }
        // Basic credentials are a browser's, which sends them on any site's request
        // too: they only read, and only for diag's own page (or a client with no
        // `Origin`), never for another site's script behind a permissive CORS layer.
        if basic && !is_safe(method) {
            return Err(AuthError::BasicCannotWrite);
        }
        if basic && !same_origin_or_none(headers) {
            return Err(AuthError::CrossSiteRead);
        }
        return Ok(());
    }
    let peer = peer.ok_or(AuthError::UnknownPeer)?.ip();
    let client = request_client(peer, headers, trusted).map_err(|e| match e {
        ClientError::UntrustedProxy => AuthError::UntrustedProxy,
        ClientError::Unknown => AuthError::UnknownClient,
    })?;
    if !is_loopback(client) {
        return Err(AuthError::NotLoopback);
    }
    // Loopback is all the proof there is, and a browser on this host is loopback too:
    // its writes carry an `Origin`, and its reads through a rebound DNS name that name
    // as `Host`. Through a loopback proxy too: it passes the name on (nginx's
    // `Host $host`), and a proxy listening on `[::1]` in front of one on 127.0.0.1 once
    // skipped this check, as client and peer differed. A proxy that sends a name of its
    // own (the upstream's) is refused: have it pass the client's.
    // A read from a page is fine only from diag's own (same-origin fetches send no
    // `Origin`, but some browsers send one anyway): another site's page could read the
    // answer wherever a CORS layer of the service's lets it.
    if headers.get("origin").is_some() && !is_safe(method) {
        return Err(AuthError::CrossSiteWrite);
    }
    if !same_origin_or_none(headers) {
        return Err(AuthError::CrossSiteRead);
    }
    if let Some(host) = headers.get("host")
        && !is_loopback_host(host)
    {
        return Err(AuthError::ForeignHost);
    }
    Ok(())
}

/// Whether the request carries no `Origin`, or one naming the `Host` it asks for.
fn same_origin_or_none(headers: &dyn HeaderView) -> bool {
    match headers.get("origin") {
        None => true,
        Some(origin) => headers
            .get("host")
            .is_some_and(|host| same_origin(origin, host)),
    }
}

/// Whether `origin` (`http://localhost:8080`) names the host and port `host` does.
fn same_origin(origin: &[u8], host: &[u8]) -> bool {
    let origin = origin.trim_ascii();
    let authority = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host.trim_ascii()))
}

/// Whether a `Host` value names this host's loopback: `localhost` (or a name under it),
/// a loopback address, with or without a port.
fn is_loopback_host(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, _)) => v6,
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(is_loopback)
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
            authorize(Some(&t), &none, "GET", &h(&[]), lo),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            authorize(
                Some(&t),
                &none,
                "GET",
                &h(&[("authorization", "Bearer nope")]),
                lo
            ),
            Err(AuthError::InvalidToken)
        );
        // A colleague's signed X-Debug credential is told what it is for.
        let signed = crate::debug::sign_credential(b"s3cret", 4_000_000_000);
        let refused = authorize(
            Some(&t),
            &none,
            "GET",
            &h(&[("authorization", &format!("Bearer {signed}"))]),
            lo,
        );
        assert_eq!(refused, Err(AuthError::SignedCredential));
        assert!(refused.unwrap_err().to_string().contains("DIAG_TOKEN"));
        assert_eq!(
            authorize(
                Some(&t),
                &none,
                "GET",
                &h(&[("Authorization", "bearer s3cret")]),
                peer("8.8.8.8")
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                Some(&t),
                &none,
                "GET",
                &h(&[("authorization", "Digest s3cret")]),
                lo
            ),
            Err(AuthError::MalformedAuthorization)
        );
        for empty in ["Bearer ", "Bearer", "bearer   "] {
            assert_eq!(
                authorize(Some(&t), &none, "GET", &h(&[("authorization", empty)]), lo),
                Err(AuthError::EmptyToken),
                "{empty:?}"
            );
        }
        assert_eq!(
            authorize(
                Some(&t),
                &none,
                "GET",
                &h(&[("authorization", "Bearers3cret")]),
                lo
            ),
            Err(AuthError::MalformedAuthorization)
        );
    }

    /// Without a token, loopback is the only proof, and a browser on this host is
    /// loopback too: its writes (with an `Origin`) and its reads through a rebound DNS
    /// name (a foreign `Host`) are refused; curl's requests are not.
    #[test]
    fn no_token_refuses_a_browser_page_on_this_host() {
        let none = TrustedProxies::default();
        let lo = peer("127.0.0.1");
        let ask = |method: &str, headers: &[(&str, &str)]| {
            authorize(None, &none, method, &h(headers), lo)
        };
        // Through a trusted loopback proxy, the `Host` it passes on is checked too, also
        // when the proxy's client (`::1`) is another loopback address than its own.
        let lo_proxy = TrustedProxies::new(vec!["127.0.0.1".parse().unwrap()]);
        for client in ["::1", "127.0.0.1"] {
            let through = |host: &str| {
                let headers = h(&[("x-forwarded-for", client), ("host", host)]);
                authorize(None, &lo_proxy, "GET", &headers, lo)
            };
            assert_eq!(
                through("rebind.evil.example:8080"),
                Err(AuthError::ForeignHost),
                "{client}"
            );
            assert_eq!(through("localhost:8080"), Ok(()), "{client}");
        }
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
            "app.localhost:3000",
            "127.0.0.1",
        ] {
            assert_eq!(ask("GET", &[("host", host)]), Ok(()), "{host}");
        }
        assert_eq!(
            ask("GET", &[]),
            Ok(()),
            "no Host (HTTP/1.0, HTTP/2 authority)"
        );
        for host in [
            "evil.example",
            "evil.example:8080",
            "0.0.0.0:8080",
            "10.0.0.1",
            "[::]:80",
            "localhost.evil.example",
        ] {
            assert_eq!(
                ask("GET", &[("host", host)]),
                Err(AuthError::ForeignHost),
                "{host}"
            );
        }
        assert_eq!(
            ask(
                "PUT",
                &[
                    ("host", "localhost:8080"),
                    ("origin", "https://evil.example")
                ]
            ),
            Err(AuthError::CrossSiteWrite)
        );
        assert_eq!(
            ask("DELETE", &[("origin", "null")]),
            Err(AuthError::CrossSiteWrite)
        );
        assert_eq!(
            ask("PUT", &[("host", "localhost:8080")]),
            Ok(()),
            "curl sends no Origin"
        );
        for origin in ["https://evil.example", "null", "http://localhost:3000"] {
            assert_eq!(
                ask("GET", &[("host", "localhost:8080"), ("origin", origin)]),
                Err(AuthError::CrossSiteRead),
                "a read from another site's page: {origin}"
            );
        }
        assert_eq!(
            ask("GET", &[("origin", "http://localhost:8080")]),
            Err(AuthError::CrossSiteRead),
            "no Host to compare with"
        );
        assert_eq!(
            ask(
                "GET",
                &[
                    ("host", "localhost:8080"),
                    ("origin", "http://LOCALHOST:8080")
                ]
            ),
            Ok(()),
            "diag's own page"
        );
        // A token makes none of this matter: a page cannot send it.
        let t = Secret::new("s3cret");
        let with_token = &h(&[
            ("authorization", "Bearer s3cret"),
            ("host", "evil.example"),
            ("origin", "x"),
        ]);
        assert_eq!(authorize(Some(&t), &none, "PUT", with_token, lo), Ok(()));
        // Refusals that no credential could lift are 403s without a challenge.
        assert!(!AuthError::ForeignHost.credentials_can_help());
        assert!(!AuthError::CrossSiteWrite.credentials_can_help());
        assert!(!AuthError::CrossSiteRead.credentials_can_help());
    }

    #[test]
    fn basic_credentials_with_the_token_as_password_only_read() {
        let t = Secret::new("s3cret");
        let none = TrustedProxies::default();
        let far = peer("203.0.113.5");
        // base64("oncall:s3cret"), base64(":s3cret"), base64("oncall:nope")
        let auth = |v: &str| h(&[("authorization", v)]);
        for ok in [
            "Basic b25jYWxsOnMzY3JldA==",
            "basic OnMzY3JldA",
            "BASIC  OnMzY3JldA==",
        ] {
            assert_eq!(
                authorize(Some(&t), &none, "GET", &auth(ok), far),
                Ok(()),
                "{ok}"
            );
            assert_eq!(
                authorize(Some(&t), &none, "HEAD", &auth(ok), far),
                Ok(()),
                "{ok}"
            );
            for method in ["PUT", "POST", "DELETE"] {
                assert_eq!(
                    authorize(Some(&t), &none, method, &auth(ok), far),
                    Err(AuthError::BasicCannotWrite),
                    "{method} {ok}"
                );
            }
        }
        assert_eq!(
            authorize(Some(&t), &none, "GET", &auth("Basic b25jYWxsOm5vcGU="), far),
            Err(AuthError::InvalidToken)
        );
        // A browser sends remembered Basic credentials on another site's script's
        // request too: only diag's own page (or no page) reads with them.
        let from = |origin: &str, scheme: &str| {
            h(&[
                ("authorization", scheme),
                ("host", "svc.example:8443"),
                ("origin", origin),
            ])
        };
        let basic = "Basic OnMzY3JldA==";
        let read = |origin: &str, scheme: &str| {
            authorize(Some(&t), &none, "GET", &from(origin, scheme), far)
        };
        assert_eq!(
            read("https://evil.example", basic),
            Err(AuthError::CrossSiteRead)
        );
        assert_eq!(read("https://svc.example:8443", basic), Ok(()));
        assert_eq!(
            read("https://evil.example", "Bearer s3cret"),
            Ok(()),
            "a bearer token is never sent by a browser on its own"
        );
        // No colon, not base64, a stray sixth of a byte, and no password at all.
        for bad in ["Basic czNjcmV0", "Basic !!!!", "Basic czNjcmV0M", "Basic"] {
            assert_eq!(
                authorize(Some(&t), &none, "GET", &auth(bad), far),
                Err(AuthError::MalformedAuthorization),
                "{bad}"
            );
        }
        assert_eq!(
            authorize(Some(&t), &none, "GET", &auth("Basic b25jYWxsOg=="), far),
            Err(AuthError::EmptyToken)
        );
        // The bearer token may write.
        assert_eq!(
            authorize(Some(&t), &none, "PUT", &auth("Bearer s3cret"), far),
            Ok(())
        );
    }

    #[test]
    fn without_token_only_unproxied_loopback() {
        let none = TrustedProxies::default();
        assert_eq!(
            authorize(None, &none, "GET", &h(&[]), peer("127.0.0.1")),
            Ok(())
        );
        assert_eq!(authorize(None, &none, "GET", &h(&[]), peer("::1")), Ok(()));
        assert_eq!(
            authorize(None, &none, "GET", &h(&[]), peer("10.1.1.1")),
            Err(AuthError::NotLoopback)
        );
        assert_eq!(
            authorize(None, &none, "GET", &h(&[]), None),
            Err(AuthError::UnknownPeer)
        );
        // A local reverse proxy forwarding an outsider: refused.
        assert_eq!(
            authorize(
                None,
                &none,
                "GET",
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
                "GET",
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
                "GET",
                &h(&[("x-forwarded-for", "127.0.0.1")]),
                peer("127.0.0.1")
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                None,
                &local,
                "GET",
                &h(&[("x-forwarded-for", "203.0.113.5")]),
                peer("127.0.0.1")
            ),
            Err(AuthError::NotLoopback)
        );
        // A hop that is no address does not leave the local proxy as the client, and
        // `Forwarded` or `X-Real-IP` name the client as `X-Forwarded-For` does.
        for (name, value, refused) in [
            ("x-forwarded-for", "unknown", AuthError::UnknownClient),
            (
                "x-forwarded-for",
                "203.0.113.5:5555",
                AuthError::NotLoopback,
            ),
            ("forwarded", "for=203.0.113.5", AuthError::NotLoopback),
            ("forwarded", "for=_hidden", AuthError::UnknownClient),
            ("x-real-ip", "203.0.113.5", AuthError::NotLoopback),
        ] {
            assert_eq!(
                authorize(None, &local, "GET", &h(&[(name, value)]), peer("127.0.0.1")),
                Err(refused),
                "{name}: {value}"
            );
        }
    }
}
