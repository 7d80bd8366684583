//! One request's path through diag: [`Diag::begin`] when it arrives, a
//! [`RequestGuard`] while the handler runs, [`RequestGuard::finish`] when the response
//! head is ready. Dropping the guard unfinished (the client went away, the handler
//! panicked) still leaves every gauge and record right.
//!
//! What an adapter does, in order (see `diag-tower`'s service for the reference):
//! 1. skip paths where [`Diag::watches`] says no (diag's own endpoints, kill switch on);
//! 2. [`Diag::begin`] with a [`RequestView`] of the request ([`Diag::begin_http`] where
//!    the server may also take gRPC calls);
//! 3. wrap the request body with [`RequestGuard::request_tap`] (a debug request's capture);
//! 4. call the handler inside [`RequestGuard::enter`] and poll its future through
//!    [`RequestGuard::poll_response`], which enters the request around each poll;
//! 5. when the response head is ready, [`RequestGuard::finish`] (or
//!    [`RequestGuard::finish_http`]) with the response headers (it adds its own), and
//!    wrap the response body with the tap it returns (and, for a gRPC call whose status
//!    comes in the trailers, hand them to the [`GrpcCall`]).

mod begin;
pub(crate) mod grpc;
mod guard;
mod scope;

pub use grpc::{GrpcCall, GrpcCode, is_grpc_request};
pub use guard::{RequestEntered, RequestGuard};
pub use scope::{Entered, RequestScope, request_body_failed, with_current};

use std::net::SocketAddr;

#[cfg(doc)]
use crate::Diag;
use crate::HeaderView;

/// The `route` every request that matched no route shares, so unknown paths never
/// become label values.
///
/// ```
/// use diag_core::request::{RequestView, UNMATCHED_ROUTE};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// # let scrape = |diag: &diag_core::Diag| {
/// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
/// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
/// # };
/// // No route matched: the raw path never becomes a label value.
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: None, uri: "/wp-login.php", headers: &(), peer: &|| None,
/// });
/// let _ = guard.finish(404, &mut Vec::<(String, String)>::new());
/// let series = format!(r#"route="{UNMATCHED_ROUTE}",status="404"}} 1"#);
/// assert!(scrape(&diag).contains(&series));
/// ```
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What the core needs to know about an incoming request. Adapters build it from
/// their framework's request without copying.
///
/// ```
/// use std::net::SocketAddr;
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let headers = vec![("user-agent".to_owned(), "curl/8.5".to_owned())];
/// let peer: SocketAddr = "192.0.2.10:51234".parse().unwrap();
/// let view = RequestView {
///     method: "GET",
///     route: Some("/products/{id}"),
///     uri: "/products/7?ref=home",
///     headers: &headers,
///     peer: &|| Some(peer),
/// };
/// let guard = diag.begin(&view);
/// assert!(guard.debug_id().is_none(), "no X-Debug: an ordinary request");
/// ```
pub struct RequestView<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The route template the router matched (`/products/{id}`), or `None` when no route
    /// matched. Never the raw path.
    pub route: Option<&'a str>,
    /// The path and query as received (only a debug request's capture keeps it, redacted).
    pub uri: &'a str,
    /// The request headers.
    pub headers: &'a dyn HeaderView,
    /// The TCP peer, when known. Called only for a request that asks for diagnostic
    /// mode (trusted networks are checked against it): finding the peer is a lookup in
    /// most frameworks, which every other request skips.
    pub peer: &'a dyn Fn() -> Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diag;

    /// A handler that panics while its request is current counts as a 500 once the
    /// guard goes, whoever caught the panic; a request the client abandoned counts
    /// nowhere but comes off the gauge.
    #[test]
    fn a_panicking_handler_counts_as_a_500() {
        let diag = Diag::builder().build().unwrap();
        let view = |route| RequestView {
            method: "GET",
            route: Some(route),
            uri: "/",
            headers: &(),
            peer: &|| None,
        };
        let guard = diag.begin(&view("/boom"));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _entered = guard.enter();
            panic!("the handler's bug");
        }));
        assert!(caught.is_err());
        drop(guard);
        drop(diag.begin(&view("/gone")));
        let text = crate::test_support::metrics_text(&diag);
        assert!(
            text.contains(
                r#"http_server_requests_total{method="GET",route="/boom",status="500"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains(r#"route="/gone",status"#), "{text}");
        // The abandoned one is counted as such; the panic was answered (a 500).
        for (route, n) in [("/gone", 1), ("/boom", 0)] {
            let abandoned = format!(
                r#"http_server_requests_abandoned_total{{method="GET",route="{route}"}} {n}"#
            );
            assert!(text.contains(&abandoned), "{abandoned}\n{text}");
        }
        for route in ["/boom", "/gone"] {
            let gauge = format!(r#"http_server_active_requests{{method="GET",route="{route}"}} 0"#);
            assert!(text.contains(&gauge), "{gauge}\n{text}");
        }
    }

    /// A debug request to `diag` (token `t`), answered 200 with the handler's `own`
    /// headers: its trace id and the response headers after diag's.
    fn debug_response(diag: &Diag, own: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
        let headers = crate::test_support::headers(&[("x-debug", "t")]);
        let guard = diag.begin(&RequestView {
            method: "GET",
            route: Some("/"),
            uri: "/",
            headers: &headers,
            peer: &|| None,
        });
        let trace_id = guard.trace().trace_id.to_string();
        let mut response = crate::test_support::headers(own);
        let _tap = guard.finish(200, &mut response);
        (trace_id, response)
    }

    /// A debug request's `Server-Timing` comes as a line of its own after the handler's
    /// lines, which stay as they were (not merged, none dropped).
    #[test]
    fn the_services_own_server_timing_is_kept() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = Diag::builder().token("t").build().unwrap();
        let finish = |own: &[(&str, &str)]| {
            let (_, response) = debug_response(&diag, own);
            response
                .into_iter()
                .filter(|(n, _)| n == "server-timing")
                .map(|(_, v)| v)
                .collect::<Vec<String>>()
        };
        let lines = finish(&[
            ("server-timing", "cdn;dur=3"),
            ("server-timing", "db;dur=5.2"),
        ]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(&lines[..2], ["cdn;dur=3", "db;dur=5.2"]);
        assert!(lines[2].contains("total;dur="), "{lines:?}");
        assert!(!lines[2].contains("cdn"), "{lines:?}");
        let alone = finish(&[]);
        assert_eq!(alone.len(), 1, "{alone:?}");
        assert!(alone[0].contains("total;dur="), "{alone:?}");
    }

    /// A debug response keeps a `traceparent` and an `x-trace-id` the handler set (ids
    /// of the service's own); diag's `x-debug-id` is added either way.
    #[test]
    fn the_services_own_trace_headers_are_kept() {
        let _serial = crate::test_support::tracing_test_lock();
        let diag = Diag::builder().token("t").build().unwrap();
        let finish = |own: &[(&str, &str)]| debug_response(&diag, own);
        let own_tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let (_, kept) = finish(&[("traceparent", own_tp), ("x-trace-id", "dd-123")]);
        let get = |r: &Vec<(String, String)>, n: &str| {
            let all: Vec<&str> = r
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect();
            assert!(all.len() <= 1, "{n}: {all:?}");
            all.first().map(|v| v.to_string())
        };
        assert_eq!(get(&kept, "traceparent").as_deref(), Some(own_tp));
        assert_eq!(get(&kept, "x-trace-id").as_deref(), Some("dd-123"));
        assert!(get(&kept, "x-debug-id").is_some());
        let (trace_id, added) = finish(&[]);
        assert!(get(&added, "traceparent").unwrap().contains(&trace_id));
        assert_eq!(get(&added, "x-trace-id"), Some(trace_id));
    }
}
