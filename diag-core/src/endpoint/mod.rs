//! The diagnostics endpoints, as functions that know no web framework.
//!
//! An adapter turns its framework's request into an [`EndpointRequest`], awaits
//! [`Diag::serve`], and writes the [`DiagResponse`] back. Which paths are endpoints is
//! [`Diag::is_endpoint`]'s answer, so every adapter mounts the same set.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use diag_core::EndpointRequest;
//! let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
//! // In the adapter, for a request its framework received:
//! let path = "/debug/events";
//! assert!(diag.is_endpoint(path)); // otherwise: the service's own routes
//! let req = EndpointRequest {
//!     method: "GET".into(),
//!     path: path.into(),
//!     query: Some("kind=start".into()),
//!     headers: vec![("authorization".into(), "Bearer s3cret".into())],
//!     ..Default::default()
//! };
//! let resp = diag.serve(req).await; // then write status, headers and body back
//! assert_eq!(resp.status, 200);
//! # }
//! ```

mod events;
mod index;
mod kill_switch;
mod log_level;
mod metrics;
mod pin;
mod requests;
mod response;
mod state;

use std::net::SocketAddr;

pub use log_level::ENDPOINT_DEFAULT_TTL;
pub use metrics::{CLASSIC_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE};
pub use response::DiagResponse;

use crate::Diag;
use crate::HeaderView;

/// A request to a diagnostics endpoint, owned so the adapter's request can go.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::EndpointRequest;
/// let diag = diag_core::Diag::builder().build().unwrap(); // no token: loopback only
/// let req = EndpointRequest {
///     method: "GET".into(),
///     path: "/debug/state/process".into(),
///     query: Some("pretty".into()),
///     peer: Some("127.0.0.1:50312".parse().unwrap()),
///     ..Default::default()
/// };
/// let resp = diag.serve(req).await;
/// assert_eq!(resp.status, 200);
/// assert!(resp.body.starts_with(b"{\n")); // pretty-printed
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct EndpointRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The path, without the query, e.g. `/debug/state/cache`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Header lines, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The TCP peer, when the adapter knows it. Without it only a token lets anyone in.
    pub peer: Option<SocketAddr>,
    /// The request body (only `PUT`/`POST` endpoints read it); adapters cap it at
    /// [`EndpointRequest::MAX_BODY`].
    pub body: Vec<u8>,
}

impl EndpointRequest {
    /// The largest body an endpoint accepts; adapters refuse longer ones with 413.
    ///
    /// ```
    /// use diag_core::{DiagResponse, EndpointRequest};
    /// // How an adapter reads an endpoint's body:
    /// fn read_body(chunks: &[&[u8]]) -> Result<Vec<u8>, DiagResponse> {
    ///     let mut body = Vec::new();
    ///     for chunk in chunks {
    ///         if body.len() + chunk.len() > EndpointRequest::MAX_BODY {
    ///             return Err(DiagResponse::body_too_large());
    ///         }
    ///         body.extend_from_slice(chunk);
    ///     }
    ///     Ok(body)
    /// }
    /// assert_eq!(read_body(&[b"warn"]).unwrap(), b"warn");
    /// assert_eq!(read_body(&[&[b' '; 70 * 1024]]).unwrap_err().status, 413);
    /// ```
    pub const MAX_BODY: usize = 64 * 1024;

    /// A request as an adapter holds it, with an empty body (see
    /// [`push_body`](Self::push_body)): a header value's bytes that are not UTF-8 read
    /// as U+FFFD (never left out: a check must see every header), and an HTTP/2 request's `:authority` (which `http` keeps in the URI, not the
    /// headers) stands in as `host` when no `Host` came, so the no-token check of a
    /// foreign `Host` (DNS rebinding) sees it on every protocol.
    ///
    /// ```
    /// use diag_core::EndpointRequest;
    /// let headers = vec![("accept".to_owned(), "text/plain".to_owned())];
    /// let req = EndpointRequest::from_parts(
    ///     "GET", "/debug/state", Some("pretty"), &headers, Some("evil.example"), None,
    /// );
    /// assert_eq!(req.query_param("pretty"), Some(""));
    /// assert_eq!(req.headers[1], ("host".to_owned(), "evil.example".to_owned()));
    /// ```
    pub fn from_parts(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &dyn crate::HeaderView,
        authority: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Self {
        let mut lines = Vec::new();
        // Every line kept, a byte that is not UTF-8 as U+FFFD: a forwarding header left
        // out would make a proxy's client look like the proxy (loopback), an `Origin` or
        // `Host` left out would skip their checks.
        headers.for_each(&mut |name, value| {
            let value = String::from_utf8_lossy(value).into_owned();
            lines.push((name.to_ascii_lowercase(), value));
        });
        if let Some(authority) = authority
            && !lines.iter().any(|(name, _)| name == "host")
        {
            lines.push(("host".to_owned(), authority.to_owned()));
        }
        EndpointRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.filter(|q| !q.is_empty()).map(str::to_owned),
            headers: lines,
            peer,
            body: Vec::new(),
        }
    }

    /// Appends a chunk of the request body as it is read; the 413 to answer with once
    /// the body would pass [`MAX_BODY`](Self::MAX_BODY).
    ///
    /// ```
    /// use diag_core::EndpointRequest;
    /// let mut req = EndpointRequest::default();
    /// assert!(req.push_body(b"warn").is_ok());
    /// assert_eq!(req.push_body(&[b' '; 70 * 1024]).unwrap_err().status, 413);
    /// ```
    pub fn push_body(&mut self, chunk: &[u8]) -> Result<(), DiagResponse> {
        if self.body.len() + chunk.len() > Self::MAX_BODY {
            return Err(DiagResponse::body_too_large());
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    /// The value of query parameter `key`, if present (`?pretty` gives `Some("")`).
    ///
    /// ```
    /// use diag_core::EndpointRequest;
    /// let req = EndpointRequest {
    ///     path: "/debug/events".into(),
    ///     query: Some("since=41&kind=deploy&pretty".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(req.query_param("since"), Some("41"));
    /// assert_eq!(req.query_param("pretty"), Some(""));
    /// assert_eq!(req.query_param("limit"), None);
    /// ```
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then_some(v)
        })
    }

    /// `?limit=<n>`, at most `max`, or `max` without one; a 400 to answer with when it is
    /// not a number.
    pub(crate) fn limit(&self, max: usize) -> Result<usize, DiagResponse> {
        match self.query_param("limit").map(str::parse::<usize>) {
            None => Ok(max),
            Some(Ok(n)) => Ok(n.min(max)),
            Some(Err(_)) => Err(DiagResponse::error(400, "`limit` must be a number")),
        }
    }

    /// The `Accept` header, all its lines joined (clients may send several).
    pub(crate) fn accept(&self) -> Option<String> {
        self.headers.get_joined("accept")
    }

    /// Whether the client prefers `mime` (e.g. `text/html`) over JSON, by its `Accept`.
    /// `?pretty` (and not `?pretty=0` or `=false`): indented JSON.
    pub(crate) fn pretty(&self) -> bool {
        self.query_param("pretty")
            .is_some_and(|v| v != "0" && v != "false")
    }

    /// Plain text when asked with `?format=text` (any case, or `txt`), or when the client
    /// accepts `text/plain` and not JSON (`curl -H 'Accept: text/plain'`).
    pub(crate) fn wants_text(&self) -> bool {
        match self.query_param("format").map(response::Format::parse) {
            Some(format) => format == Some(response::Format::Text),
            None => self.accepts("text/plain") && !self.accepts("application/json"),
        }
    }

    pub(crate) fn accepts(&self, mime: &str) -> bool {
        self.accept().is_some_and(|a| {
            a.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(mime))
            })
        })
    }
}

/// One endpoint, as the index lists it.
pub(crate) struct Endpoint {
    pub(crate) path: &'static str,
    pub(crate) methods: &'static str,
    pub(crate) shows: &'static str,
    /// Where its text form is (`Accept: text/plain` gets it too), when it has one.
    pub(crate) text: Option<&'static str>,
}

/// Every endpoint diag serves, in the order the index lists them.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "/debug",
        methods: "GET",
        shows: "this index: the service, its endpoints and providers",
        text: None,
    },
    Endpoint {
        path: "/debug/state",
        methods: "GET",
        shows: "every state provider's report, keyed by name (?pretty)",
        text: None,
    },
    Endpoint {
        path: "/debug/state/{name}",
        methods: "GET",
        shows: "one state provider's report (as text too for those under `provider_text_views`: Accept: text/plain or ?format=text)",
        text: Some("/debug/state/{name}?format=text"),
    },
    Endpoint {
        path: "/debug/requests",
        methods: "GET",
        shows: "debug (X-Debug) requests still running, then those kept by the flight recorder, newest first (?trace_id= for one trace's; text with Accept: text/plain or ?format=text)",
        text: Some("/debug/requests?format=text"),
    },
    Endpoint {
        path: "/debug/requests/{id}",
        methods: "GET",
        shows: "one debug request by its X-Debug-Id, or by trace id (X-Trace-Id, an exemplar's trace_id): spans, logs, redacted request and response, so far while it still runs (JSON, or a text waterfall with Accept: text/plain or ?format=text)",
        text: Some("/debug/requests/{id}?format=text"),
    },
    Endpoint {
        path: "/debug/requests/{id}/pin",
        methods: "PUT, POST, DELETE",
        shows: "PUT pins a capture (or a running debug request, pinned as it ends): the flight recorder keeps it until DELETE, at most a quarter of its count cap, in half its bytes",
        text: None,
    },
    Endpoint {
        path: "/debug/events",
        methods: "GET",
        shows: "what changed: start, config reloads, log level, kill switch, ... (?since=<seq>&kind=<kind>&limit=<n>; text with Accept: text/plain or ?format=text)",
        text: Some("/debug/events?format=text"),
    },
    Endpoint {
        path: "/debug/log-level",
        methods: "GET, PUT, POST, DELETE",
        shows: "the active log filter; PUT a directive (optionally with a TTL), DELETE to reset",
        text: None,
    },
    Endpoint {
        path: "/debug/kill-switch",
        methods: "GET, PUT, POST, DELETE",
        shows: "whether diag is switched off; PUT on to make the middleware a pass-through (no metrics, traces or diagnostic mode), off or DELETE to resume",
        text: None,
    },
    Endpoint {
        path: "/metrics",
        methods: "GET",
        shows: "RED metrics with exemplars and the service's own metrics (OpenMetrics or Prometheus text)",
        text: None,
    },
];

/// The paths diag's endpoints live at, each with whether what is below it is diag's too
/// (`/debug/state` covers `/debug/state/{name}`; nothing below `/metrics` or `/debug`
/// itself is, as [`Diag::is_endpoint`] says): for a framework that mounts them one by
/// one rather than behind a catch-all that would take the service's own routes.
///
/// ```
/// let roots: Vec<_> = diag_core::endpoint::roots().collect();
/// assert!(roots.contains(&("/metrics", false)) && roots.contains(&("/debug", false)));
/// assert!(roots.contains(&("/debug/state", true)));
/// assert!(roots.iter().all(|(r, _)| !r.contains('{')));
/// ```
pub fn roots() -> impl Iterator<Item = (&'static str, bool)> {
    ENDPOINTS
        .iter()
        .map(|e| e.path)
        .filter(|path| !path.contains('{'))
        // `is_endpoint`'s rule: what is below a listed `/debug/...` path is diag's.
        .map(|path| (path, path.starts_with("/debug/")))
}

impl Diag {
    /// Whether `path` is one of diag's endpoints: `/metrics`, `/debug`, or one of the
    /// `/debug/...` endpoints the index lists and what is below them. The service's own
    /// routes elsewhere under `/debug` (a `/debug/pprof`, say) are the service's: the
    /// middleware counts them like any other.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert!(diag.is_endpoint("/debug/state"));
    /// assert!(diag.is_endpoint("/debug/requests/42"));
    /// assert!(!diag.is_endpoint("/debugger"));
    /// assert!(!diag.is_endpoint("/debug/pprof"), "the service's own");
    /// assert!(diag.is_endpoint("/debug/state/") && diag.is_endpoint("/metrics/"));
    /// ```
    pub fn is_endpoint(&self, path: &str) -> bool {
        // With or without a trailing slash, as `serve` takes it. (Every request asks:
        // the slash is looked at only for paths that start like diag's.)
        if let Some(rest) = path.strip_prefix("/metrics") {
            return rest.bytes().all(|b| b == b'/');
        }
        // Every other request stops here: its path does not start with `/debug`.
        let Some(rest) = path.strip_prefix("/debug") else {
            return false;
        };
        let rest = rest.trim_end_matches('/');
        rest.is_empty()
            || ENDPOINTS.iter().any(|e| {
                let Some(own) = e.path.strip_prefix("/debug").filter(|p| !p.is_empty()) else {
                    return false;
                };
                rest.strip_prefix(own)
                    .is_some_and(|below| below.is_empty() || below.starts_with('/'))
            })
    }

    /// Serves a diagnostics endpoint: checks access, routes, and renders.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use diag_core::EndpointRequest;
    /// let diag = diag_core::Diag::builder().token("t0k").build().unwrap();
    /// let mut req = EndpointRequest { method: "GET".into(), path: "/debug/state".into(), ..Default::default() };
    /// assert_eq!(diag.serve(req.clone()).await.status, 401);
    /// req.headers.push(("authorization".into(), "Bearer t0k".into()));
    /// let resp = diag.serve(req).await;
    /// assert_eq!(resp.status, 200);
    /// assert!(String::from_utf8(resp.body).unwrap().contains("\"process\""));
    /// # }
    /// ```
    pub async fn serve(&self, req: EndpointRequest) -> DiagResponse {
        // An error says what went wrong in the form the reader asked for: a terminal that
        // asked for text gets a line, not JSON.
        let text = req.wants_text()
            || req
                .query_param("format")
                .is_some_and(|f| response::Format::parse(f) != Some(response::Format::Json));
        let head = req.method == "HEAD";
        let resp = self.serve_json_errors(req).await;
        let mut resp = if text { resp.error_as_text() } else { resp };
        if head {
            // The headers a GET would get, no body.
            resp.body = Vec::new();
        }
        resp
    }

    /// Whether [`serve`](Self::serve) refuses `req` whatever its body: not one of diag's
    /// paths, or a client not let in. An adapter asks before it reads a body, so that
    /// nobody without access makes diag hold one.
    ///
    /// ```
    /// use diag_core::EndpointRequest;
    /// let diag = diag_core::Diag::builder().token("t0k").build().unwrap();
    /// let mut put = EndpointRequest::from_parts("PUT", "/debug/log-level", None, &(), None, None);
    /// assert!(diag.refuses(&put), "no token: its body is never read");
    /// put.headers.push(("authorization".into(), "Bearer t0k".into()));
    /// assert!(!diag.refuses(&put));
    /// ```
    pub fn refuses(&self, req: &EndpointRequest) -> bool {
        self.refusal(req).is_some()
    }

    /// The 413 an adapter answers with when an endpoint's request body would pass
    /// [`EndpointRequest::MAX_BODY`], counted in
    /// `diag_endpoint_refused_total{status="413"}`.
    ///
    /// ```
    /// use diag_core::EndpointRequest;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let mut put = EndpointRequest::from_parts("PUT", "/debug/log-level", None, &(), None, None);
    /// assert!(put.push_body(&[b' '; 70 * 1024]).is_err());
    /// assert_eq!(diag.body_too_large().status, 413);
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # let scrape = EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// let metrics = String::from_utf8(rt.block_on(diag.serve(scrape)).body).unwrap();
    /// assert!(metrics.contains(r#"diag_endpoint_refused_total{status="413"} 1"#));
    /// ```
    pub fn body_too_large(&self) -> DiagResponse {
        self.inner.endpoint_refused[2].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        DiagResponse::body_too_large()
    }

    fn refusal(&self, req: &EndpointRequest) -> Option<DiagResponse> {
        // A path that is none of diag's (on the admin port, say) says so to anyone: it
        // reveals nothing, and a 401 would send the reader after a token for nothing.
        if !self.is_endpoint(&req.path) {
            return Some(DiagResponse::not_found(&format!(
                "`{}` is not one of diag's endpoints (see /debug for them)",
                crate::debug::Safe(&req.path)
            )));
        }
        let public =
            matches!(req.path.as_str(), "/metrics" | "/metrics/") && self.inner.metrics_public;
        if public {
            return None;
        }
        let Err(e) = crate::auth::authorize(
            self.inner.token.as_ref(),
            &self.inner.trusted_proxies,
            &req.method,
            &req.headers,
            req.peer,
        ) else {
            return None;
        };
        Some(DiagResponse::unauthorized(e))
    }

    async fn serve_json_errors(&self, req: EndpointRequest) -> DiagResponse {
        if let Some(refused) = self.refusal(&req) {
            let counter = match refused.status {
                401 => Some(&self.inner.endpoint_refused[0]),
                403 => Some(&self.inner.endpoint_refused[1]),
                _ => None,
            };
            if let Some(counter) = counter {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return refused;
        }
        if let Some(format) = req.query_param("format")
            && req.path != "/metrics"
            && response::Format::parse(format).is_none()
        {
            let format = crate::debug::Safe(format);
            return DiagResponse::error(400, &format!("format `{format}`: use text or json"));
        }
        let path = req.path.trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        match (req.method.as_str(), segments.as_slice()) {
            ("GET" | "HEAD", ["debug"]) => index::serve(self, &req),
            ("GET" | "HEAD", ["debug", "state"]) => state::serve_all(self, &req).await,
            ("GET" | "HEAD", ["debug", "state", name]) => state::serve_one(self, &req, name).await,
            ("GET" | "HEAD", ["debug", "requests"]) => requests::serve_list(self, &req),
            ("GET" | "HEAD", ["debug", "requests", id]) => requests::serve_one(self, &req, id),
            (_, ["debug", "requests", id, "pin"]) => pin::serve(self, &req, id),
            (_, ["debug", "requests"] | ["debug", "requests", _]) => {
                DiagResponse::method_not_allowed("GET")
            }
            ("GET" | "HEAD", ["debug", "events"]) => events::serve(self, &req),
            (_, ["debug", "events"]) => DiagResponse::method_not_allowed("GET"),
            (_, ["debug", "log-level"]) => log_level::serve(self, &req),
            (_, ["debug", "kill-switch"]) => kill_switch::serve(self, &req),
            ("GET" | "HEAD", ["metrics"]) => metrics::serve(self, &req),
            (_, ["metrics"]) => DiagResponse::method_not_allowed("GET"),
            (_, ["debug"] | ["debug", "state"] | ["debug", "state", _]) => {
                DiagResponse::method_not_allowed("GET")
            }
            _ => DiagResponse::not_found(&format!(
                "no diagnostics endpoint at {}; see /debug",
                req.path
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn head_gets_a_gets_headers_and_no_body() {
        let diag = Diag::builder().build().unwrap();
        let ask = |method: &str| {
            let mut req = EndpointRequest::from_parts(
                method,
                "/debug/state",
                None,
                &(),
                Some("localhost:8080"),
                Some(([127, 0, 0, 1], 40000).into()),
            );
            req.push_body(b"").unwrap();
            diag.serve(req)
        };
        let get = ask("GET").await;
        let head = ask("HEAD").await;
        assert_eq!((get.status, head.status), (200, 200));
        assert!(!get.body.is_empty() && head.body.is_empty());
        assert_eq!(get.headers, head.headers);
    }

    /// Header lines whose values are raw bytes, as a proxy may pass them on.
    struct RawHeaders(Vec<(&'static str, &'static [u8])>);

    impl crate::HeaderView for RawHeaders {
        fn get(&self, name: &str) -> Option<&[u8]> {
            self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
        fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
            for (n, v) in &self.0 {
                f(n, v);
            }
        }
    }

    /// A local proxy that passes a client's bytes on: a forwarding header that is not
    /// UTF-8 must not leave the proxy's loopback address as the client.
    #[tokio::test]
    async fn a_forwarding_header_that_is_not_utf8_still_counts() {
        let local = Some(([127, 0, 0, 1], 40000).into());
        let serve = |diag: Diag, name: &'static str, value: &'static [u8]| async move {
            let headers = RawHeaders(vec![("host", b"localhost"), (name, value)]);
            let req =
                EndpointRequest::from_parts("GET", "/debug/state", None, &headers, None, local);
            diag.serve(req).await.status
        };
        let untrusted = Diag::builder().build().unwrap();
        let trusted = Diag::builder()
            .trusted_proxy("127.0.0.1/32")
            .build()
            .unwrap();
        for (name, value) in [
            ("x-forwarded-for", &b"\xff"[..]),
            ("x-forwarded-for", b"\xff, 203.0.113.5"),
            ("forwarded", b"for=\xff"),
            ("x-real-ip", b"\x80"),
        ] {
            assert_eq!(serve(untrusted.clone(), name, value).await, 403, "{name}");
            assert_eq!(
                serve(trusted.clone(), name, value).await,
                403,
                "{name}, trusted"
            );
        }
        // A foreign `Host` with a stray byte is still foreign.
        let headers = RawHeaders(vec![("host", b"evil.example\xff")]);
        let req = EndpointRequest::from_parts("GET", "/debug/state", None, &headers, None, local);
        assert_eq!(untrusted.serve(req).await.status, 403);
        // The proxy's own request, with nothing forwarded, is loopback.
        let headers = RawHeaders(vec![("host", b"localhost")]);
        let req = EndpointRequest::from_parts("GET", "/debug/state", None, &headers, None, local);
        assert_eq!(untrusted.serve(req).await.status, 200);
    }

    #[test]
    fn roots_say_what_is_below_them_as_is_endpoint_does() {
        let diag = Diag::builder().build().unwrap();
        for (root, below_is_ours) in roots() {
            assert!(diag.is_endpoint(root), "{root}");
            assert_eq!(
                diag.is_endpoint(&format!("{root}/x")),
                below_is_ours,
                "{root}"
            );
        }
    }

    #[test]
    fn a_host_header_wins_over_the_authority() {
        let headers = vec![
            ("Host".to_owned(), "localhost".to_owned()),
            ("x-bytes".to_owned(), "ok".to_owned()),
        ];
        let req =
            EndpointRequest::from_parts("GET", "/debug", Some(""), &headers, Some("evil"), None);
        assert_eq!(req.query, None);
        assert_eq!(
            req.headers,
            [
                ("host".to_owned(), "localhost".to_owned()),
                ("x-bytes".to_owned(), "ok".to_owned())
            ]
        );
    }
}
