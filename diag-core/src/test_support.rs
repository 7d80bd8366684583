//! What the unit tests share.

use std::net::SocketAddr;

use crate::{Diag, EndpointRequest};

/// Header lines from `(name, value)` pairs.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A TCP peer at address `ip`.
pub(crate) fn peer(ip: &str) -> Option<SocketAddr> {
    Some(SocketAddr::new(ip.parse().unwrap(), 40000))
}

/// Serializes the unit tests that install `tracing` dispatchers or start debug requests:
/// tracing's callsite interest cache is process-wide, so such tests running side by side
/// would change each other's interest mid-test.
pub(crate) fn tracing_test_lock() -> parking_lot::MutexGuard<'static, ()> {
    static LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    LOCK.lock()
}

/// `GET path?query` through [`Diag::serve`] as on-call asks: from loopback, with the
/// token `tok` (a `Diag` without a token lets the loopback peer in, one built with
/// `.token("tok")` takes the token), and this `Accept`.
pub(crate) async fn get_endpoint(
    diag: &Diag,
    path: &str,
    query: Option<&str>,
    accept: Option<&str>,
) -> crate::DiagResponse {
    let mut headers = vec![("authorization".to_owned(), "Bearer tok".to_owned())];
    if let Some(a) = accept {
        headers.push(("accept".to_owned(), a.to_owned()));
    }
    diag.serve(EndpointRequest {
        method: "GET".into(),
        path: path.into(),
        query: query.map(str::to_owned),
        headers,
        peer: peer("127.0.0.1"),
        ..Default::default()
    })
    .await
}

/// `GET /metrics` with this `Accept` through [`Diag::serve`]: the content type and the
/// exposition text. The answer must be a 200.
pub(crate) async fn scrape_metrics(diag: &Diag, accept: Option<&str>) -> (String, String) {
    let mut req = EndpointRequest {
        method: "GET".into(),
        path: "/metrics".into(),
        ..Default::default()
    };
    if let Some(a) = accept {
        req.headers.push(("accept".into(), a.into()));
    }
    let resp = diag.serve(req).await;
    assert_eq!(resp.status, 200);
    let content_type = resp.header("content-type").unwrap_or_default().to_owned();
    (content_type, String::from_utf8(resp.body).unwrap())
}

/// The `/metrics` text, scraped on a runtime of its own (for tests that have none).
pub(crate) fn metrics_text(diag: &Diag) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(scrape_metrics(diag, None)).1
}

/// The headers of a debug request that carries every kind of secret redaction must hide:
/// the `X-Debug` credential `SECRET-DEBUGTOKEN`, `Authorization`, `Proxy-Authorization`,
/// `Cookie` and a configured header `X-Internal-Key`, each value marked `SECRET-`.
pub(crate) fn secret_headers() -> Vec<(String, String)> {
    headers(&[
        ("x-debug", "SECRET-DEBUGTOKEN"),
        ("authorization", "Bearer SECRET-AUTH"),
        ("proxy-authorization", "Basic SECRET-PROXY"),
        ("cookie", "sid=SECRET-COOKIE"),
        ("x-internal-key", "SECRET-INTERNAL"),
        ("content-type", "application/json"),
    ])
}
