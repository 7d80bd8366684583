//! gRPC calls: their outcome is the `grpc-status` the server sends, in the response
//! headers when the call fails at once (a "Trailers-Only" response), otherwise in the
//! trailers after the last message. The HTTP status of a gRPC call is 200 whatever
//! happened, so without reading `grpc-status` every failed call would count as a success.
//!
//! What an adapter does (see `diag-tower`'s `DiagLayer`): [`Diag::begin_http`], which
//! recognises a gRPC call ([`is_grpc_request`]) and begins it as [`Diag::begin_grpc`]
//! with the request path as the route; [`RequestGuard::finish_http`] when the response
//! head is ready; and, when that returns a [`GrpcCall`], hand it the response body's
//! trailers ([`GrpcCall::trailers`]) or its end ([`GrpcCall::ended_without_status`]);
//! dropping it first records a cancelled call.

use super::guard::GRPC;
use super::{RequestGuard, RequestView, UNMATCHED_ROUTE};
use crate::debug::BodyTap;
use crate::metrics::{Outcome, method_label};
use crate::{Diag, HeaderView, ResponseHeaders};

/// The longest method path taken as a route (`/package.Service/Method`); a longer one
/// counts as unmatched.
pub const MAX_GRPC_ROUTE_LEN: usize = 256;

/// A gRPC status code, `0` (`OK`) to `16` (`UNAUTHENTICATED`).
///
/// ```
/// use diag_core::request::GrpcCode;
/// assert_eq!(GrpcCode::from_header(b"5").name(), "NOT_FOUND");
/// // Anything that is not one of the 17 codes is UNKNOWN, so clients cannot mint labels.
/// assert_eq!(GrpcCode::from_header(b"99"), GrpcCode::UNKNOWN);
/// assert_eq!(GrpcCode::from_header(b"ok"), GrpcCode::UNKNOWN);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcCode(pub(crate) u8);

const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl GrpcCode {
    /// The call succeeded.
    ///
    /// ```
    /// use diag_core::request::GrpcCode;
    /// assert_eq!(GrpcCode::from_header(b"0"), GrpcCode::OK);
    /// assert_eq!(GrpcCode::OK.name(), "OK");
    /// ```
    pub const OK: GrpcCode = GrpcCode(0);
    /// The client went away before the call ended.
    ///
    /// ```
    /// use diag_core::request::{GrpcCode, RequestView};
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let scrape = |diag: &diag_core::Diag| {
    /// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
    /// # };
    /// let guard = diag.begin_grpc(&RequestView {
    ///     method: "POST", route: Some("/shop.Cart/Watch"), uri: "/shop.Cart/Watch", headers: &(), peer: &|| None,
    /// });
    /// let mut head = vec![("content-type".to_owned(), "application/grpc".to_owned())];
    /// let (_tap, call) = guard.finish_grpc(200, &mut head);
    /// drop(call); // the client hung up before the trailers
    /// assert!(scrape(&diag).contains(&format!("status=\"{}\"}} 1", GrpcCode::CANCELLED.name())));
    /// ```
    pub const CANCELLED: GrpcCode = GrpcCode(1);
    /// No (valid) status was sent.
    ///
    /// ```
    /// use diag_core::request::GrpcCode;
    /// assert_eq!(GrpcCode::from_header(b"not a code"), GrpcCode::UNKNOWN);
    /// assert!(GrpcCode::UNKNOWN.is_server_error());
    /// ```
    pub const UNKNOWN: GrpcCode = GrpcCode(2);
    /// The server has no such method (or service).
    ///
    /// ```
    /// use diag_core::request::GrpcCode;
    /// assert_eq!(GrpcCode::from_header(b"12"), GrpcCode::UNIMPLEMENTED);
    /// assert_eq!(GrpcCode::UNIMPLEMENTED.name(), "UNIMPLEMENTED");
    /// ```
    pub const UNIMPLEMENTED: GrpcCode = GrpcCode(12);

    /// The code of a `grpc-status` header value; [`UNKNOWN`](Self::UNKNOWN) for anything
    /// that is not a code.
    ///
    /// ```
    /// use diag_core::request::GrpcCode;
    /// assert_eq!(GrpcCode::from_header(b"14").name(), "UNAVAILABLE");
    /// assert_eq!(GrpcCode::from_header(b"17"), GrpcCode::UNKNOWN);
    /// assert_eq!(GrpcCode::from_header(b" 0"), GrpcCode::UNKNOWN);
    /// ```
    pub fn from_header(value: &[u8]) -> GrpcCode {
        match value {
            [d @ b'0'..=b'9'] => GrpcCode(d - b'0'),
            [b'1', d @ b'0'..=b'6'] => GrpcCode(10 + d - b'0'),
            _ => GrpcCode::UNKNOWN,
        }
    }

    /// The code's name as the gRPC specification spells it (`NOT_FOUND`): the `status`
    /// label of a gRPC call.
    ///
    /// ```
    /// use diag_core::request::GrpcCode;
    /// assert_eq!(GrpcCode::from_header(b"16").name(), "UNAUTHENTICATED");
    /// assert_eq!(GrpcCode::CANCELLED.name(), "CANCELLED");
    /// ```
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }

    /// The code a status name (`"UNAVAILABLE"`) names, as [`name`](Self::name) and the
    /// `status` label write it; `None` for anything else.
    pub(crate) fn from_name(name: &str) -> Option<GrpcCode> {
        NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| GrpcCode(i as u8))
    }

    /// The numeric code.
    ///
    /// ```
    /// use diag_core::request::GrpcCode;
    /// assert_eq!(GrpcCode::UNIMPLEMENTED.code(), 12);
    /// assert_eq!(GrpcCode::from_header(b"5").code(), 5);
    /// ```
    pub fn code(self) -> u8 {
        self.0
    }

    /// Whether OpenTelemetry counts the code as a server error (`UNKNOWN`,
    /// `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`); the
    /// rest are the client's (or no) errors.
    ///
    /// ```
    /// use diag_core::request::GrpcCode;
    /// assert!(GrpcCode::from_header(b"14").is_server_error()); // UNAVAILABLE
    /// assert!(!GrpcCode::from_header(b"5").is_server_error()); // NOT_FOUND: the client's
    /// assert!(!GrpcCode::OK.is_server_error());
    /// ```
    pub fn is_server_error(self) -> bool {
        matches!(self.0, 2 | 4 | 12 | 13 | 14 | 15)
    }
}

/// Whether `path` has the shape of a gRPC method path: `/service/method`, both parts
/// non-empty, in the characters protobuf names use.
pub(crate) fn is_method_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let Some((service, method)) = rest.split_once('/') else {
        return false;
    };
    let name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    path.len() <= MAX_GRPC_ROUTE_LEN && name(service) && name(method)
}

/// Whether a request is a gRPC call: a `POST` (every gRPC call is one; any other method
/// costs this check one comparison) with a gRPC `content-type` (`application/grpc`,
/// `application/grpc+proto`, ...), whatever the HTTP version: gRPC itself runs over
/// HTTP/2, but a gRPC-Web translator in front of the service (tonic-web's
/// `GrpcWebLayer`) hands it gRPC requests that came over HTTP/1.1. gRPC-Web as it
/// arrives (`application/grpc-web`) is not: its status travels inside the body, so it is
/// recorded as plain HTTP; put diag's layer inside the translator.
///
/// ```
/// use diag_core::request::is_grpc_request;
/// let grpc = vec![("content-type".to_owned(), "application/grpc+proto".to_owned())];
/// assert!(is_grpc_request("POST", &grpc));
/// assert!(!is_grpc_request("GET", &grpc), "every gRPC call is a POST");
/// let web = vec![("content-type".to_owned(), "application/grpc-web".to_owned())];
/// assert!(!is_grpc_request("POST", &web));
/// assert!(!is_grpc_request("POST", &()));
/// ```
#[inline]
pub fn is_grpc_request(method: &str, headers: &dyn HeaderView) -> bool {
    method == "POST"
        && headers
            .get("content-type")
            .is_some_and(is_grpc_content_type)
}

/// Whether a request's or response's `content-type` is gRPC's (`application/grpc`,
/// `application/grpc+proto`, ...), not gRPC-Web's (whose trailers are in the body).
pub(crate) fn is_grpc_content_type(value: &[u8]) -> bool {
    let Some(rest) = value.strip_prefix(b"application/grpc") else {
        return false;
    };
    matches!(rest.first(), None | Some(b'+' | b';'))
}

impl RequestGuard {
    /// Counts the request as active and in flight under `route`, found to exist after
    /// it began under [`UNMATCHED_ROUTE`] (when its response head or its status shows
    /// it).
    pub(super) fn learn(&mut self, route: &str) {
        let inner = &self.diag.inner;
        let learned = inner.metrics.http.learn(self.active, route);
        let [method, _] = inner.metrics.http.active.labels(learned);
        self.in_flight = inner.in_flight.move_to(self.in_flight, method, route);
        self.active = learned;
    }
}

impl Diag {
    /// [`begin`](Self::begin) for a gRPC server, with the request's path as
    /// `req.route` (`/package.Service/Method`).
    ///
    /// Anyone can send a call to any path, so a method becomes a route label only once a
    /// call to it has succeeded (`OK`), or its response head came without a status (the
    /// server took the call and streams its answer: from then on it counts under its
    /// method, however long it lasts). An error says nothing: `UNIMPLEMENTED` is the
    /// answer to a method the server does not have, and any other code may come from a
    /// layer in front of the router (an auth interceptor answers `UNAUTHENTICATED` to
    /// made-up paths too). Until then, and for any path not shaped like a method, the
    /// request counts under `unmatched`. Label sets stay bounded by the methods the
    /// server implements (and the family's series cap).
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let call = |path, status| {
    ///     let guard = diag.begin_grpc(&RequestView {
    ///         method: "POST", route: Some(path), uri: path, headers: &(), peer: &|| None,
    ///     });
    ///     let mut headers = vec![
    ///         ("content-type".to_owned(), "application/grpc".to_owned()),
    ///         ("grpc-status".to_owned(), status),
    ///     ];
    ///     let (_tap, pending) = guard.finish_grpc(200, &mut headers);
    ///     assert!(pending.is_none(), "the status was in the headers");
    /// };
    /// call("/shop.Cart/Remove", "5".to_owned()); // no success yet: `unmatched`
    /// call("/shop.Cart/Add", "0".to_owned());
    /// call("/shop.Cart/Add", "5".to_owned());
    /// call("/shop.Cart/MadeUp", "12".to_owned());
    /// call("/shop.Cart/MadeUpToo", "16".to_owned()); // an interceptor's UNAUTHENTICATED
    /// let scrape = diag_core::EndpointRequest {
    ///     method: "GET".into(), path: "/metrics".into(), ..Default::default()
    /// };
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let metrics = String::from_utf8(rt.block_on(diag.serve(scrape)).body).unwrap();
    /// for series in [
    ///     r#"{method="POST",route="/shop.Cart/Add",status="OK"} 1"#,
    ///     r#"{method="POST",route="/shop.Cart/Add",status="NOT_FOUND"} 1"#,
    ///     r#"{method="POST",route="unmatched",status="UNIMPLEMENTED"} 1"#,
    ///     r#"{method="POST",route="unmatched",status="UNAUTHENTICATED"} 1"#,
    ///     r#"{method="POST",route="unmatched",status="NOT_FOUND"} 1"#,
    /// ] {
    ///     assert!(metrics.contains(&format!("http_server_requests_total{series}")), "{series}");
    /// }
    /// assert!(!metrics.contains("MadeUp") && !metrics.contains("Remove"));
    /// ```
    pub fn begin_grpc(&self, req: &RequestView<'_>) -> RequestGuard {
        let http = &self.inner.metrics.http;
        let path = req.route.filter(|p| is_method_path(p));
        let known = path.and_then(|p| Some((p, http.begin_known(method_label(req.method), p)?)));
        match known {
            Some((route, series)) => self.begin_counted(req, route, |_| series),
            None => {
                let mut guard = self.begin_counted(req, UNMATCHED_ROUTE, |method| {
                    http.begin(method, UNMATCHED_ROUTE)
                });
                guard.learning = path.map(Box::from);
                guard
            }
        }
    }
}

impl Diag {
    /// [`begin`](Self::begin) for a server that may also take gRPC calls (a tonic
    /// service beside the HTTP routes, or alone): a request [`is_grpc_request`]
    /// recognises begins as [`begin_grpc`](Self::begin_grpc) under its path (`uri`
    /// without a query), any other as [`begin`](Self::begin) under `req.route`. Finish
    /// it with [`RequestGuard::finish_http`], which knows which it was. What the tower
    /// and axum layers call.
    ///
    /// A request the router matched to a route of its own (a template with no catch-all
    /// `{*...}`, which a gRPC service merged into an axum router has) is that route's,
    /// whatever its `content-type` says: a client cannot move its requests out of a
    /// route's series by claiming to be gRPC. Its `status` is still the gRPC status
    /// when the answer is gRPC, so a hand-written router may give each method its path
    /// as template (`/shop.Cart/Add`).
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let headers = vec![("content-type".to_owned(), "application/grpc".to_owned())];
    /// let guard = diag.begin_http(&RequestView {
    ///     method: "POST",
    ///     route: Some("/shop.Cart/{*rest}"), // what the router matched: not the method
    ///     uri: "/shop.Cart/Add",
    ///     headers: &headers,
    ///     peer: &|| None,
    /// });
    /// let mut head = headers.clone();
    /// let (_tap, call) = guard.finish_http(200, &mut head);
    /// // A gRPC call: its status comes in the trailers.
    /// call.expect("a gRPC call").trailers(&vec![("grpc-status".to_owned(), "0".to_owned())]);
    /// # let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # let metrics = String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap();
    /// # assert!(metrics.contains(r#"route="/shop.Cart/Add",status="OK"} 1"#), "{metrics}");
    /// ```
    #[inline]
    pub fn begin_http(&self, req: &RequestView<'_>) -> RequestGuard {
        if !is_grpc_request(req.method, req.headers) {
            return self.begin(req);
        }
        self.begin_claimed_grpc(req)
    }

    /// [`begin_http`](Self::begin_http) for a request whose head says gRPC: out of line,
    /// so every other request's path stays as short as [`begin`](Self::begin)'s.
    #[cold]
    #[inline(never)]
    fn begin_claimed_grpc(&self, req: &RequestView<'_>) -> RequestGuard {
        let mut guard = match req.route {
            // A route of the router's own keeps the request (its status is still read
            // as gRPC when the answer is gRPC: a hand-written router may name each
            // method's path as its template).
            Some(route) if !route.contains("{*") => self.begin(req),
            _ => {
                let path = req.uri.split_once('?').map_or(req.uri, |(path, _)| path);
                self.begin_grpc(&RequestView {
                    route: Some(path),
                    ..*req
                })
            }
        };
        *guard.state.get_mut() |= GRPC;
        guard
    }
}

impl RequestGuard {
    /// [`finish`](Self::finish) or [`finish_grpc`](Self::finish_grpc), whichever the
    /// request began as under [`Diag::begin_http`]: the tap for the response body, when
    /// the request is in diagnostic mode, and the [`GrpcCall`] to hand the trailers,
    /// when it is a gRPC call whose status is still to come.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin_http(&RequestView {
    ///     method: "GET", route: Some("/cart"), uri: "/cart", headers: &(), peer: &|| None,
    /// });
    /// let mut head: Vec<(String, String)> = Vec::new();
    /// let (tap, call) = guard.finish_http(200, &mut head);
    /// assert!(tap.is_none() && call.is_none(), "plain HTTP, not in diagnostic mode");
    /// assert_eq!(head[0].0, "traceparent");
    /// ```
    #[inline]
    pub fn finish_http(
        mut self,
        status: u16,
        headers: &mut dyn ResponseHeaders,
    ) -> (Option<BodyTap>, Option<GrpcCall>) {
        if *self.state.get_mut() & GRPC != 0 {
            return self.finish_grpc(status, headers);
        }
        (self.finish(status, headers), None)
    }
}

impl RequestGuard {
    /// [`finish`](Self::finish) for a gRPC server's response. A response that is not
    /// gRPC (another `content-type`, or an HTTP status other than 200) is finished as
    /// any other. A gRPC response whose head carries `grpc-status` is recorded under
    /// that code now. Otherwise the status comes in the trailers: the returned
    /// [`GrpcCall`] records the call when the body hands it over, so its duration and
    /// its `in flight` count last until then.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let scrape = |diag: &diag_core::Diag| {
    /// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
    /// # };
    /// let guard = diag.begin_grpc(&RequestView {
    ///     method: "POST", route: Some("/shop.Cart/Add"), uri: "/shop.Cart/Add", headers: &(), peer: &|| None,
    /// });
    /// let mut head = vec![("content-type".to_owned(), "application/grpc".to_owned())];
    /// let (_tap, call) = guard.finish_grpc(200, &mut head);
    /// let call = call.expect("no grpc-status in the head: it comes in the trailers");
    /// call.trailers(&vec![("grpc-status".to_owned(), "0".to_owned())]);
    /// assert!(scrape(&diag).contains(r#"route="/shop.Cart/Add",status="OK"} 1"#));
    /// ```
    pub fn finish_grpc(
        mut self,
        status: u16,
        headers: &mut dyn ResponseHeaders,
    ) -> (Option<BodyTap>, Option<GrpcCall>) {
        let grpc = status == 200
            && headers
                .get("content-type")
                .is_some_and(is_grpc_content_type);
        if !grpc {
            return (self.finish(status, headers), None);
        }
        let code = headers.get("grpc-status").map(GrpcCode::from_header);
        self.respond(headers, code.is_some_and(|code| code != GrpcCode::OK));
        match code {
            Some(code) => self.record(Outcome::Grpc(code)),
            // A gRPC head without a status: the server took the call (an unknown method
            // is answered with UNIMPLEMENTED in the head), so the method exists. Count
            // the call under it from now on: a stream may stay open for hours.
            None => {
                if let Some(route) = self.learning.take() {
                    self.learn(&route);
                }
            }
        }
        let tap = self.debug_response(status, headers);
        let pending = code.is_none().then(|| GrpcCall {
            guard: Some(Box::new(self)),
        });
        (tap, pending)
    }
}

/// A gRPC call whose response head has been sent and whose status is still to come, in
/// the trailers. Dropping it before [`trailers`](Self::trailers) or
/// [`ended_without_status`](Self::ended_without_status) records the call as
/// `CANCELLED` (the client went away, or the server gave up on the body).
///
/// ```
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// # let scrape = |diag: &diag_core::Diag| {
/// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
/// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
/// # };
/// let guard = diag.begin_grpc(&RequestView {
///     method: "POST", route: Some("/shop.Cart/Add"), uri: "/shop.Cart/Add", headers: &(), peer: &|| None,
/// });
/// let mut head = vec![("content-type".to_owned(), "application/grpc+proto".to_owned())];
/// let (_tap, call) = guard.finish_grpc(200, &mut head);
/// // The response body wrapper keeps the call and hands it the trailers at the end:
/// call.unwrap().trailers(&vec![("grpc-status".to_owned(), "8".to_owned())]);
/// assert!(scrape(&diag).contains(r#"status="RESOURCE_EXHAUSTED"} 1"#));
/// ```
#[must_use = "hand the call the response's trailers"]
pub struct GrpcCall {
    guard: Option<Box<RequestGuard>>,
}

impl GrpcCall {
    /// The response body's trailers arrived: records the call under their
    /// `grpc-status` (`UNKNOWN` when there is none).
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let scrape = |diag: &diag_core::Diag| {
    /// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
    /// # };
    /// let guard = diag.begin_grpc(&RequestView {
    ///     method: "POST", route: Some("/shop.Cart/Get"), uri: "/shop.Cart/Get", headers: &(), peer: &|| None,
    /// });
    /// let mut head = vec![("content-type".to_owned(), "application/grpc".to_owned())];
    /// let (_tap, call) = guard.finish_grpc(200, &mut head);
    /// call.unwrap().trailers(&vec![("grpc-status".to_owned(), "5".to_owned())]);
    /// assert!(scrape(&diag).contains(r#"route="/shop.Cart/Get",status="NOT_FOUND"} 1"#));
    /// ```
    pub fn trailers(mut self, trailers: &dyn HeaderView) {
        let code = trailers
            .get("grpc-status")
            .map_or(GrpcCode::UNKNOWN, GrpcCode::from_header);
        self.complete(code);
    }

    /// The response body ended without trailers (or failed): records the call as
    /// `UNKNOWN`, as a gRPC client sees it.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let scrape = |diag: &diag_core::Diag| {
    /// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
    /// # };
    /// let guard = diag.begin_grpc(&RequestView {
    ///     method: "POST", route: Some("/shop.Cart/Get"), uri: "/shop.Cart/Get", headers: &(), peer: &|| None,
    /// });
    /// let mut head = vec![("content-type".to_owned(), "application/grpc".to_owned())];
    /// let (_tap, call) = guard.finish_grpc(200, &mut head);
    /// call.unwrap().ended_without_status(); // the body ended, no trailers came
    /// assert!(scrape(&diag).contains(r#"route="/shop.Cart/Get",status="UNKNOWN"} 1"#));
    /// ```
    pub fn ended_without_status(mut self) {
        self.complete(GrpcCode::UNKNOWN);
    }

    fn complete(&mut self, code: GrpcCode) {
        if let Some(mut guard) = self.guard.take() {
            guard.record(Outcome::Grpc(code));
        }
    }
}

impl Drop for GrpcCall {
    fn drop(&mut self) {
        self.complete(GrpcCode::CANCELLED);
    }
}

impl std::fmt::Debug for GrpcCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcCall").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        for (i, name) in NAMES.iter().enumerate() {
            let code = GrpcCode::from_header(i.to_string().as_bytes());
            assert_eq!(code.code() as usize, i);
            assert_eq!(code.name(), *name);
        }
        for junk in [&b""[..], b"17", b"-1", b"00", b" 0", b"100"] {
            assert_eq!(GrpcCode::from_header(junk), GrpcCode::UNKNOWN, "{junk:?}");
        }
    }

    #[test]
    fn method_paths() {
        for ok in ["/a.B/C", "/helloworld.Greeter/SayHello", "/x/y_z"] {
            assert!(is_method_path(ok), "{ok}");
        }
        let long = format!("/a/{}", "m".repeat(MAX_GRPC_ROUTE_LEN));
        for bad in [
            "", "/", "/a", "/a/", "//b", "/a/b/c", "/a b/c", "a/b", "/a/b?x", &long,
        ] {
            assert!(!is_method_path(bad), "{bad}");
        }
    }

    /// Which methods a `Diag` has learned: its `(POST, path)` active series.
    fn learned(diag: &Diag, path: &str) -> bool {
        diag.inner
            .metrics
            .http
            .active
            .find(["POST", path])
            .is_some()
    }

    fn call(diag: &Diag, path: &str, status: u16, head: &[(&str, &str)]) -> Option<GrpcCall> {
        let guard = diag.begin_grpc(&RequestView {
            method: "POST",
            route: Some(path),
            uri: path,
            headers: &(),
            peer: &|| None,
        });
        let mut head = crate::test_support::headers(head);
        guard.finish_grpc(status, &mut head).1
    }

    /// Without a `traceparent` on every response, a call that failed in its head (tonic
    /// answers a handler's `Err(Status)` so) still names its trace; a success, or a head
    /// whose status is still to come, does not.
    #[test]
    fn a_failed_call_s_head_names_its_trace() {
        let diag = Diag::builder()
            .traceparent_on_every_response(false)
            .build()
            .unwrap();
        let named = |head: &[(&str, &str)]| {
            let guard = diag.begin_grpc(&RequestView {
                method: "POST",
                route: Some("/a.B/C"),
                uri: "/a.B/C",
                headers: &(),
                peer: &|| None,
            });
            let mut head = crate::test_support::headers(head);
            drop(guard.finish_grpc(200, &mut head));
            head.iter().any(|(name, _)| name == "traceparent")
        };
        let grpc = ("content-type", "application/grpc");
        assert!(named(&[grpc, ("grpc-status", "14")]));
        assert!(named(&[grpc, ("grpc-status", "not a code")]), "UNKNOWN");
        assert!(!named(&[grpc, ("grpc-status", "0")]));
        assert!(!named(&[grpc]), "the status comes in the trailers");
    }

    #[test]
    fn only_a_success_or_a_streaming_answer_teaches_a_method() {
        let diag = Diag::builder().build().unwrap();
        let grpc = ("content-type", "application/grpc");
        // Not gRPC answers: a proxy's 503, a plain-text 200.
        assert!(call(&diag, "/a.B/Proxy", 503, &[grpc]).is_none());
        assert!(call(&diag, "/a.B/Plain", 200, &[("content-type", "text/plain")]).is_none());
        // The method does not exist.
        assert!(call(&diag, "/a.B/Nope", 200, &[grpc, ("grpc-status", "12")]).is_none());
        // Trailers to come, then dropped: the call was cancelled, the method exists.
        drop(call(&diag, "/a.B/Gone", 200, &[grpc]).expect("status in the trailers"));
        // Errors say nothing: an interceptor in front of the router answers them to
        // made-up paths too.
        for code in ["13", "16", "7", "5", "3"] {
            assert!(call(&diag, "/a.B/Fails", 200, &[grpc, ("grpc-status", code)]).is_none());
        }
        assert!(call(&diag, "/a.B/Works", 200, &[grpc, ("grpc-status", "0")]).is_none());
        for (path, known) in [
            ("/a.B/Proxy", false),
            ("/a.B/Plain", false),
            ("/a.B/Nope", false),
            ("/a.B/Gone", true),
            ("/a.B/Fails", false),
            ("/a.B/Works", true),
        ] {
            assert_eq!(learned(&diag, path), known, "{path}");
        }
    }

    #[test]
    fn content_types() {
        for ok in [
            &b"application/grpc"[..],
            b"application/grpc+proto",
            b"application/grpc;x=1",
        ] {
            assert!(is_grpc_content_type(ok));
        }
        for bad in [
            &b"application/grpc-web"[..],
            b"application/grpc-web+proto",
            b"text/plain",
            b"",
        ] {
            assert!(!is_grpc_content_type(bad));
        }
    }

    /// A gRPC `content-type` on a request the router matched to a route of its own keeps
    /// it under that route (its status a gRPC one when the answer is gRPC); under a
    /// catch-all (a gRPC service merged into the router) or no route, it is a gRPC call
    /// under its method path.
    #[test]
    fn a_grpc_content_type_does_not_move_a_request_off_its_route() {
        let diag = Diag::builder().build().unwrap();
        let headers = crate::test_support::headers(&[("content-type", "application/grpc")]);
        let finish = |route: Option<&str>, uri: &str, answer: &[(&str, &str)]| {
            let guard = diag.begin_http(&RequestView {
                method: "POST",
                route,
                uri,
                headers: &headers,
                peer: &|| None,
            });
            let mut head = crate::test_support::headers(answer);
            let (_tap, call) = guard.finish_http(200, &mut head);
            assert!(call.is_none());
        };
        let grpc_ok = [("content-type", "application/grpc"), ("grpc-status", "0")];
        finish(Some("/echo"), "/echo", &[("content-type", "text/plain")]);
        finish(Some("/shop.Cart/{*rest}"), "/shop.Cart/Add", &grpc_ok);
        finish(None, "/shop.Cart/Add", &grpc_ok);
        // A hand-written router's template for one method: kept, with its gRPC status.
        finish(
            Some("/shop.Cart/Remove"),
            "/shop.Cart/Remove",
            &[("content-type", "application/grpc"), ("grpc-status", "5")],
        );
        let text = crate::test_support::metrics_text(&diag);
        assert!(
            text.contains(
                r#"http_server_requests_total{method="POST",route="/echo",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_server_requests_total{method="POST",route="/shop.Cart/Remove",status="NOT_FOUND"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_server_requests_total{method="POST",route="/shop.Cart/Add",status="OK"} 2"#
            ),
            "{text}"
        );
    }
}
