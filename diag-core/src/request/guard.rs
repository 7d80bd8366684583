//! [`RequestGuard`]: one request from [`Diag::begin`](crate::Diag::begin) to its
//! response, and [`RequestEntered`], the request made current around each poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;
use std::time::Instant;

use crate::clock::MonoTime;
use crate::debug::{BodySide, BodyTap, DebugRequest, Decision};
use crate::log::DebugInFlight;
use crate::metrics::{Outcome, SeriesRef};
use crate::state::in_flight::InFlightTicket;
use crate::trace::{SpanId, TraceContext};
use crate::{Diag, ResponseHeaders};

use super::{Entered, GrpcCode, RequestScope};

/// Tracks one request from [`Diag::begin`] to [`RequestGuard::finish`].
///
/// ```
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/cart"), uri: "/cart", headers: &(), peer: &|| None,
/// });
/// {
///     let _entered = guard.enter(); // around each poll of the handler
///     assert!(diag_core::trace::outgoing_traceparent().is_some());
/// }
/// let mut response_headers: Vec<(String, String)> = Vec::new();
/// let _tap = guard.finish(503, &mut response_headers);
/// assert_eq!(response_headers[0].0, "traceparent", "an error names its trace");
/// ```
#[must_use = "call finish() with the response status"]
pub struct RequestGuard {
    pub(super) diag: Diag,
    pub(super) start: MonoTime,
    /// [`FINISHED`] once the response head is recorded; [`PANICKED`] when the handler
    /// panicked while the request was current (see [`RequestEntered`]); [`GRPC`] for a
    /// gRPC call [`Diag::begin_http`] recognised. One byte for all three: the guard is
    /// moved with every future that holds it.
    pub(super) state: AtomicU8,
    /// The request's trace and, in diagnostic mode, its debug session.
    pub(super) scope: RequestScope,
    /// The caller's span, when the request continued its trace (the parent of its
    /// server span, when that is sent to an OTLP collector).
    pub(super) parent: Option<SpanId>,
    /// This request's `http_server_active_requests` series.
    pub(super) active: SeriesRef,
    /// This request's place in the `requests` state provider.
    pub(super) in_flight: InFlightTicket,
    /// Present only for a request in diagnostic mode; boxed so the guard every request
    /// carries (and every future holding it moves) stays small.
    pub(super) debug: Option<Box<DebugParts>>,
    /// The debug decision, for the `X-Debug-Status` of a request that asked for
    /// diagnostic mode and did not get it.
    pub(super) decision: Decision,
    /// A gRPC method no call has been recorded under yet: the request counts under
    /// [`UNMATCHED_ROUTE`](super::UNMATCHED_ROUTE) and is recorded under this route once its status shows that
    /// the method exists (see [`Diag::begin_grpc`]).
    pub(super) learning: Option<Box<str>>,
}

/// [`RequestGuard`]'s state: the response head is recorded.
const FINISHED: u8 = 1;
/// [`RequestGuard`]'s state: the handler panicked while the request was current.
const PANICKED: u8 = 2;
/// [`RequestGuard`]'s state: a gRPC call, begun by [`Diag::begin_http`].
pub(super) const GRPC: u8 = 4;

/// What only a debug request carries.
pub(super) struct DebugParts {
    pub(super) request: Arc<DebugRequest>,
    /// The root span that marks the request's spans and puts its trace id on its lines.
    pub(super) span: tracing::Span,
    /// Counts the request in the log filter's "debug requests in flight" until the
    /// response body is done.
    pub(super) in_flight: DebugInFlight,
    /// A `HEAD` request: its response has no body whatever its `Content-Length` says.
    pub(super) head: bool,
}

/// A request made current on this thread; see [`RequestGuard::enter`].
///
/// ```
/// use diag_core::request::{RequestView, with_current};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
/// });
/// let entered = guard.enter();
/// assert_eq!(with_current(|s| s.map(|s| s.trace.trace_id)), Some(guard.trace().trace_id));
/// drop(entered);
/// assert!(with_current(|s| s.is_none()));
/// ```
#[must_use]
pub struct RequestEntered<'a> {
    _span: Option<tracing::span::Entered<'a>>,
    _scope: Entered<'a>,
    guard: &'a RequestGuard,
}

impl Drop for RequestEntered<'_> {
    /// Dropped while unwinding: the handler panicked inside this poll. Whatever catches
    /// the panic (tower-http's `CatchPanicLayer` answers 500; without one the connection
    /// closes), the request counts as a 500 when its guard goes.
    #[inline]
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.guard.state.fetch_or(PANICKED, Ordering::Relaxed);
        }
    }
}

impl RequestGuard {
    /// When the request arrived.
    ///
    /// ```
    /// use std::time::Instant;
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
    /// });
    /// assert!(guard.started() <= Instant::now());
    /// ```
    pub fn started(&self) -> Instant {
        self.start.to_instant()
    }

    /// The request's scope: its trace and, in diagnostic mode, its debug session.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
    /// });
    /// let scope = guard.scope();
    /// assert!(scope.debug.is_none(), "not in diagnostic mode");
    /// assert_eq!(scope.trace, *guard.trace());
    /// ```
    pub fn scope(&self) -> &RequestScope {
        &self.scope
    }

    /// The request's trace context.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let headers = vec![(
    ///     "traceparent".to_owned(),
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    /// )];
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None,
    /// });
    /// // The caller's trace is continued, with a span of this request's own.
    /// assert_eq!(guard.trace().trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_ne!(guard.trace().span_id.to_string(), "00f067aa0ba902b7");
    /// ```
    pub fn trace(&self) -> &TraceContext {
        &self.scope.trace
    }

    /// The capture id, for a request in diagnostic mode.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let begin = |headers: &Vec<(String, String)>| diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers, peer: &|| None,
    /// });
    /// assert_eq!(begin(&vec![]).debug_id(), None);
    /// let debug = begin(&vec![("x-debug".to_owned(), "s3cret".to_owned())]);
    /// assert!(debug.debug_id().is_some());
    /// ```
    pub fn debug_id(&self) -> Option<u64> {
        self.debug.as_ref().map(|d| d.request.id())
    }

    /// Makes this request current on this thread (and, in diagnostic mode, enters its
    /// root span) while the returned guard lives. Adapters hold it around every poll of
    /// the handler, so logs and metrics find their request.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
    /// });
    /// assert!(diag_core::trace::outgoing_traceparent().is_none());
    /// let _entered = guard.enter();
    /// let tp = diag_core::trace::outgoing_traceparent().unwrap();
    /// assert_eq!(tp.as_str(), guard.trace().to_traceparent());
    /// ```
    pub fn enter(&self) -> RequestEntered<'_> {
        RequestEntered {
            _span: self.debug.as_ref().map(|d| d.span.enter()),
            _scope: self.scope.enter(),
            guard: self,
        }
    }

    /// One poll of the handler's response future, for the request whose guard is in
    /// `slot` (`None` for a request the middleware does not watch): `poll` runs with the
    /// request current ([`enter`](Self::enter)); once it is ready with a response,
    /// `respond` gets the guard (taken out of `slot`) and the response, to
    /// [`finish`](Self::finish) it and wrap its body; when it is ready with an error,
    /// the guard is dropped unfinished, which records the failure. Every adapter's
    /// response future is this call plus its framework's types.
    ///
    /// ```
    /// use std::task::Poll;
    /// use diag_core::request::{RequestGuard, RequestView};
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
    /// });
    /// let mut slot = Some(guard);
    /// let polled = RequestGuard::poll_response(
    ///     &mut slot,
    ///     || Poll::Ready(Ok::<_, ()>(Vec::<(String, String)>::new())),
    ///     |guard, mut headers| {
    ///         if let Some(guard) = guard {
    ///             let _tap = guard.finish(502, &mut headers);
    ///         }
    ///         headers
    ///     },
    /// );
    /// let Poll::Ready(Ok(headers)) = polled else { panic!() };
    /// assert_eq!(headers[0].0, "traceparent", "an error names its trace");
    /// assert!(slot.is_none());
    /// ```
    #[inline]
    pub fn poll_response<R, E, Out>(
        slot: &mut Option<RequestGuard>,
        poll: impl FnOnce() -> Poll<Result<R, E>>,
        respond: impl FnOnce(Option<RequestGuard>, R) -> Out,
    ) -> Poll<Result<Out, E>> {
        Self::poll_response_with(slot, poll, respond, |_| 500)
    }

    /// [`poll_response`](Self::poll_response) for a framework whose errors carry the
    /// status they will be answered with (actix-web's `ResponseError`): a service that
    /// fails with an error instead of a response is recorded under `error_status(&e)`
    /// ([`fail`](Self::fail)). `poll_response` records it as a 500: with hyper, an
    /// error closes the connection (or resets the stream), a server failure.
    ///
    /// ```
    /// use std::task::Poll;
    /// use diag_core::request::{RequestGuard, RequestView};
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let scrape = |diag: &diag_core::Diag| {
    /// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
    /// # };
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/limited"), uri: "/limited", headers: &(), peer: &|| None,
    /// });
    /// let mut slot = Some(guard);
    /// let polled = RequestGuard::poll_response_with(
    ///     &mut slot,
    ///     || Poll::Ready(Err::<(), u16>(429)),
    ///     |_guard, response| response,
    ///     |status| *status,
    /// );
    /// assert!(matches!(polled, Poll::Ready(Err(429))));
    /// let text = scrape(&diag);
    /// assert!(text.contains(r#"route="/limited",status="429"} 1"#), "{text}");
    /// ```
    #[inline]
    pub fn poll_response_with<R, E, Out>(
        slot: &mut Option<RequestGuard>,
        poll: impl FnOnce() -> Poll<Result<R, E>>,
        respond: impl FnOnce(Option<RequestGuard>, R) -> Out,
        error_status: impl FnOnce(&E) -> u16,
    ) -> Poll<Result<Out, E>> {
        let result = match slot.as_ref() {
            None => std::task::ready!(poll()),
            Some(guard) => {
                let _entered = guard.enter();
                std::task::ready!(poll())
            }
        };
        let guard = slot.take();
        Poll::Ready(match result {
            Ok(response) => Ok(respond(guard, response)),
            Err(e) => {
                match guard {
                    // The handler gave up because the request body failed (the client
                    // left mid-upload): dropped unfinished, it counts as abandoned.
                    Some(guard) if super::scope::body_failed(&guard.scope) => drop(guard),
                    Some(guard) => guard.fail(error_status(&e)),
                    None => {}
                }
                Err(e)
            }
        })
    }

    /// Records a request the service failed with an error instead of a response: under
    /// `status` (what the framework will answer, or 500 where the connection closes),
    /// with its duration and span; a debug request's capture is stored as incomplete,
    /// `failed`. Before this, such a request counted as abandoned by its client, and an
    /// inner `timeout` or `load_shed` layer's failures went uncounted as errors.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let scrape = |diag: &diag_core::Diag| {
    /// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
    /// # };
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/slow"), uri: "/slow", headers: &(), peer: &|| None,
    /// });
    /// guard.fail(500); // a tower `timeout` inside diag elapsed
    /// let text = scrape(&diag);
    /// assert!(text.contains(r#"route="/slow",status="500"} 1"#), "{text}");
    /// assert!(text.contains(r#"http_server_requests_abandoned_total{method="GET",route="/slow"} 0"#));
    /// ```
    pub fn fail(mut self, status: u16) {
        *self.state.get_mut() |= FINISHED;
        self.record(Outcome::Http(status));
        if let Some(debug) = self.debug.take() {
            debug.request.finish_after_error();
        }
    }

    /// Names the route of a request begun without one (counted as `unmatched`), for a
    /// framework that knows the route only once its routing has run: actix-web, when a
    /// `NormalizePath` inside the middleware rewrote the path, or the path matches only
    /// once percent-decoded. From now on the request counts under `route` (in flight,
    /// and its duration and status), and a debug request's capture names it. A request
    /// begun with a route keeps it. Call before the response head is recorded.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// # let scrape = |diag: &diag_core::Diag| {
    /// #     let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap()
    /// # };
    /// let mut guard = diag.begin(&RequestView {
    ///     method: "GET", route: None, uri: "/users/7/", headers: &(), peer: &|| None,
    /// });
    /// guard.routed("/users/{id}");
    /// let _ = guard.finish(200, &mut Vec::<(String, String)>::new());
    /// let text = scrape(&diag);
    /// assert!(text.contains(r#"route="/users/{id}",status="200"} 1"#), "{text}");
    /// assert!(!text.contains(r#"route="unmatched",status"#), "{text}");
    /// ```
    pub fn routed(&mut self, route: &str) {
        let http = &self.diag.inner.metrics.http;
        let [_, current] = http.active.labels(self.active);
        if current != super::UNMATCHED_ROUTE
            || route == super::UNMATCHED_ROUTE
            || self.learning.is_some()
            || *self.state.get_mut() & FINISHED != 0
        {
            return;
        }
        self.learn(route);
        if let Some(debug) = &self.debug {
            debug.request.routed(route);
        }
    }

    /// For a request in diagnostic mode, the tap that copies the request body into the
    /// capture as the handler reads it; `None` otherwise. Call once.
    ///
    /// ```
    /// use diag_core::body::Polled;
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// let guard = diag.begin(&RequestView {
    ///     method: "POST", route: Some("/cart"), uri: "/cart", headers: &headers, peer: &|| None,
    /// });
    /// let mut tap = guard.request_tap().expect("a debug request");
    /// tap.observe(Polled::Data(b"{\"sku\":42}"));
    /// tap.observe(Polled::End);
    /// let id = guard.debug_id().unwrap();
    /// drop(guard);
    /// let capture = diag.debug_mode().recorder().get(id).unwrap();
    /// assert_eq!(capture.request.body.text.as_deref(), Some("{\"sku\":42}"));
    /// ```
    #[inline]
    pub fn request_tap(&self) -> Option<BodyTap> {
        self.debug
            .as_ref()
            .map(|d| BodyTap::new(d.request.clone(), BodySide::Request).entering(d.span.clone()))
    }

    /// Records the response once its head is ready: duration and count under
    /// `(method, route, status)`, with the trace as exemplar when sampled. Adds diag's
    /// headers to `headers`: `traceparent` (with
    /// [`traceparent_on_every_response(false)`](crate::DiagBuilder::traceparent_on_every_response),
    /// only on an error, `status` 400 or more, and a debug request's response); for a
    /// debug request `server-timing`, `x-debug-id`, `x-trace-id`, `x-debug-instance` and
    /// a `cache-control: no-store` line; `x-debug-status` when
    /// diagnostic mode was asked for and refused; `vary` naming the debug header whenever
    /// the request sent it. For a debug request, returns the tap the response body must
    /// be wrapped in: the capture is stored when the body ends, or as incomplete when it is
    /// dropped first.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None,
    /// });
    /// let mut response_headers = vec![("content-type".to_owned(), "text/plain".to_owned())];
    /// let tap = guard.finish(200, &mut response_headers);
    /// assert!(tap.is_some(), "a debug request's response body must be wrapped");
    /// let names: Vec<&str> = response_headers.iter().map(|(n, _)| n.as_str()).collect();
    /// for name in ["traceparent", "server-timing", "x-debug-id", "x-trace-id"] {
    ///     assert!(names.contains(&name), "{name}");
    /// }
    /// ```
    pub fn finish(mut self, status: u16, headers: &mut dyn ResponseHeaders) -> Option<BodyTap> {
        self.respond(headers, status >= 400);
        self.record(Outcome::Http(status));
        // Checked here, in line: every request but a debug one stops at it.
        self.debug.as_ref()?;
        self.debug_response(status, headers)
    }

    /// diag's headers on a response: `traceparent` (unless configured for debug and
    /// `error` responses only), `x-debug-status` when diagnostic mode was asked for and
    /// refused, and `vary: <debug header>` whenever it was asked for. Marks the guard
    /// finished.
    #[inline]
    pub(super) fn respond(&mut self, headers: &mut dyn ResponseHeaders, error: bool) {
        *self.state.get_mut() |= FINISHED;
        if error || self.debug.is_some() || self.diag.inner.traceparent_every_response {
            headers.insert_traceparent(&self.scope.trace.traceparent());
        }
        if let Some((name, value)) = self.decision.status_header() {
            headers.insert(name, value);
        }
        if !matches!(self.decision, Decision::NotRequested) {
            // diag's headers make this answer differ from the one the same request
            // without the debug header gets: a shared cache must not hand it (its
            // `Server-Timing`, its capture id) to anyone else.
            headers.append("vary", &self.diag.inner.debug.header);
        }
    }

    /// Records the request's duration and outcome, and queues its span for export.
    #[inline(always)]
    pub(super) fn record(&mut self, outcome: Outcome) {
        // Only a call that succeeded says the method exists: any error may come from a
        // layer in front of the router (an auth interceptor answers UNAUTHENTICATED to
        // every path, made-up ones too), and a plain HTTP answer says nothing about it.
        if outcome == Outcome::Grpc(GrpcCode::OK)
            && let Some(route) = self.learning.take()
        {
            self.learn(&route);
        }
        let http = &self.diag.inner.metrics.http;
        let end = http.finish(self.active, outcome, self.start, &self.scope.trace);
        let (status, grpc) = match outcome {
            Outcome::Http(status) => (status, None),
            Outcome::Grpc(code) => (200, Some(code)),
        };
        self.export_span(self.active, Some(status), grpc, end);
    }

    /// A debug request's response headers (`server-timing`, `x-debug-id`, ...) and the
    /// tap its response body must be wrapped in; `None` for any other request.
    pub(super) fn debug_response(
        &mut self,
        status: u16,
        headers: &mut dyn ResponseHeaders,
    ) -> Option<BodyTap> {
        let debug = self.debug.take()?;
        // The body's length is known from the head: a server stops polling once it has
        // sent that much, so the tap must not wait for an end it will never see.
        let size = if debug.head || matches!(status, 100..=199 | 204 | 304) {
            Some(0)
        } else {
            headers
                .get("content-length")
                .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
        };
        for (name, value) in debug.request.response_head(status, &*headers) {
            // `x-trace-id` is a name services use for ids of their own: theirs is kept
            // (the trace id is in `traceparent` and in the capture too).
            if name == "x-trace-id" && headers.get(name).is_some() {
                continue;
            }
            // The handler's own `Server-Timing` lines stay as they are (a list header:
            // browsers read every line); diag's entries come in a line of their own.
            if name == "server-timing" && headers.get(name).is_some() {
                headers.append(name, &value);
                continue;
            }
            headers.insert(name, &value);
        }
        // The capture stays in this process: say which one, for a load-balanced service.
        headers.insert("x-debug-instance", &self.diag.inner.instance);
        // One request's diagnostics: a cache that kept them would answer the next debug
        // request with this one's capture id (and `no-store` outranks any directive of
        // the handler's own).
        headers.append("cache-control", "no-store");
        Some(
            BodyTap::new(debug.request, BodySide::Response)
                .holding(debug.in_flight)
                .entering(debug.span)
                .with_exact_size(size),
        )
    }

    /// With an OTLP collector, queues the server span of a sampled request outside
    /// diagnostic mode (a debug request's whole capture is sent instead).
    fn export_span(
        &self,
        series: SeriesRef,
        status: Option<u16>,
        grpc: Option<GrpcCode>,
        end: MonoTime,
    ) {
        // A debug request's whole capture is sent instead (its debug parts may already
        // be handed to the response body's tap, so ask the decision).
        if !self.scope.trace.sampled || self.decision.is_debug() {
            return;
        }
        if let Some(otlp) = &self.diag.inner.otlp {
            otlp.export_span(crate::otlp::RequestSpan {
                trace: self.scope.trace,
                tracestate: self.scope.tracestate.clone(),
                parent: self.parent,
                series,
                status,
                grpc,
                start: self.start,
                end,
            });
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.diag.inner.in_flight.leave(self.in_flight);
        let state = *self.state.get_mut();
        if state & FINISHED == 0 {
            if state & PANICKED != 0 {
                // A panic is a server error whoever answers it: count it as the 500 a
                // catch-panic layer sends (without one the client sees the connection
                // close), with its duration and its span.
                self.record(Outcome::Http(500));
            } else {
                // The response never came: the client went away. No status to record;
                // the in-flight gauge must still come down.
                self.diag.inner.metrics.http.abandon(self.active);
                self.export_span(self.active, None, None, MonoTime::now());
            }
            // Either way a debug request's capture is stored as incomplete.
            if let Some(debug) = &self.debug {
                if state & PANICKED != 0 {
                    debug.request.finish_after_panic();
                } else {
                    debug.request.finish_incomplete();
                }
            }
        }
    }
}
