//! [`DebugRequest`]: one request in diagnostic mode, from activation to the flight
//! recorder. The adapter's body wrappers feed it frame by frame; it copies at most the
//! body cap and never holds a frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::DebugLevel;
use super::capture::BodyCapture;
use super::server_timing::debug_response_headers;
use super::session::DebugSession;
use super::stored::{HeaderLines, RequestHead, StoredCapture, StoredResponse};
use crate::request::{RequestScope, RequestView};
use crate::trace::{SpanId, TraceContext, TraceId, TraceState};
use crate::{Diag, HeaderView};

/// One request running in diagnostic mode.
///
/// Shared (`Arc`) between the request-body wrapper, the response-body wrapper and the
/// request guard. The capture is stored in the flight recorder exactly once: by
/// [`response_end`](Self::response_end) (complete), by
/// [`finish_incomplete`](Self::finish_incomplete), or, failing both, when the last
/// handle drops (incomplete). It is stored as recorded and redacted when it is read:
/// the flight recorder hands out only redacted captures.
///
/// ```
/// use diag_core::debug::{Decision, DebugLevel};
/// use diag_core::request::RequestView;
/// use diag_core::trace::TraceId;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let headers = vec![("x-debug".to_owned(), "1".to_owned())];
/// let peer = Some("127.0.0.1:5000".parse().unwrap());
/// let Decision::Debug(level) = diag.debug_decision(&headers, peer) else { panic!() };
/// let view = RequestView { method: "POST", route: Some("/cart"), uri: "/cart?x=1", headers: &headers, peer: &|| peer };
/// let debug = diag.start_debug(level, &view, TraceId([7; 16]));
/// debug.request_chunk(b"{\"sku\":");
/// debug.request_chunk(b"42}");
/// debug.request_end();
/// let extra = debug.response_head(201, &vec![("content-type".to_owned(), "text/plain".to_owned())]);
/// assert!(extra.iter().any(|(name, _)| *name == "server-timing"));
/// debug.response_chunk(b"created");
/// debug.response_end();
/// let stored = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert!(stored.complete);
/// assert_eq!(stored.request.body.text.as_deref(), Some("{\"sku\":42}"));
/// assert_eq!(stored.request.headers[0].1, "[redacted]");
/// ```
pub struct DebugRequest {
    diag: Diag,
    session: Arc<DebugSession>,
    /// The request's trace (its own span id, sampled), its session as `debug` and the
    /// caller's `tracestate`: what its body taps make current while a body is polled.
    scope: RequestScope,
    /// The caller's span, when the request came with a `traceparent` of this trace.
    parent_span_id: Option<SpanId>,
    request: Mutex<RequestSide>,
    response: Mutex<ResponseSide>,
    /// Set as the capture starts being stored (once: the first ending wins).
    stored: AtomicBool,
    /// Set once the capture is in the flight recorder (or refused there as too large).
    kept: AtomicBool,
}

/// The request as received: moved into the capture when it is stored.
#[derive(Default)]
struct RequestSide {
    head: RequestHead,
    body: BodyCapture,
}

struct ResponseSide {
    head: Option<ResponseHead>,
    body: BodyCapture,
    /// The body's trailers (gRPC's status lives there), if it sent any.
    trailers: HeaderLines,
}

struct ResponseHead {
    status: u16,
    headers: HeaderLines,
    at: std::time::Duration,
}

impl Diag {
    /// Starts capturing a request that [`Diag::debug_decision`] admitted at `level`.
    /// `trace_id` is the request's trace.
    /// Put [`DebugRequest::session`] in the request's
    /// [`RequestScope`](crate::request::RequestScope) so its spans and logs are recorded.
    ///
    /// ```
    /// use diag_core::debug::Decision;
    /// use diag_core::request::RequestView;
    /// use diag_core::trace::TraceId;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// let Decision::Debug(level) = diag.debug_decision(&headers, None) else { panic!() };
    /// let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None };
    /// let debug = diag.start_debug(level, &view, TraceId::random());
    /// assert_eq!(debug.session().level, level);
    /// assert_eq!(diag.debug_mode().in_flight(), 1);
    /// ```
    pub fn start_debug(
        &self,
        level: DebugLevel,
        req: &RequestView<'_>,
        trace_id: TraceId,
    ) -> Arc<DebugRequest> {
        // The caller's span, when the request continues its trace.
        let parent = req
            .headers
            .get("traceparent")
            .and_then(TraceContext::from_traceparent)
            .filter(|caller| caller.trace_id == trace_id)
            .map(|caller| caller.span_id);
        self.start_debug_traced(level, req, trace_id, SpanId::random(), parent, None)
    }

    /// [`start_debug`](Self::start_debug) for a request whose own span id and
    /// caller's span id are known.
    pub(crate) fn start_debug_traced(
        &self,
        level: DebugLevel,
        req: &RequestView<'_>,
        trace_id: TraceId,
        span_id: SpanId,
        parent_span_id: Option<SpanId>,
        tracestate: Option<TraceState>,
    ) -> Arc<DebugRequest> {
        let mode = self.debug_mode();
        mode.in_flight.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(DebugSession::new(mode.next_id(), level));
        let request = Arc::new(DebugRequest {
            scope: RequestScope::new(
                TraceContext {
                    trace_id,
                    span_id,
                    sampled: true,
                },
                Some(session.clone()),
                tracestate,
            ),
            session,
            parent_span_id,
            request: Mutex::new(RequestSide {
                head: RequestHead::copy(req.method, req.uri, req.route, req.headers),
                body: BodyCapture::new(mode.body_limit),
            }),
            response: Mutex::new(ResponseSide {
                head: None,
                body: BodyCapture::new(mode.body_limit),
                trailers: HeaderLines::default(),
            }),
            stored: AtomicBool::new(false),
            kept: AtomicBool::new(false),
            diag: self.clone(),
        });
        mode.track(&request);
        request
    }
}

impl DebugRequest {
    /// Names the route of a request that began without one, once the framework's
    /// routing found it (see [`RequestGuard::routed`](crate::request::RequestGuard::routed)).
    pub(crate) fn routed(&self, route: &str) {
        let mut side = self.request.lock();
        if side.head.route().is_none() {
            side.head = side.head.with_route(route);
        }
    }

    /// The debug id, as in `X-Debug-Id` and `/debug/requests/{id}`.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// let next = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// assert_eq!(next.id(), debug.id() + 1);
    /// let [_, (name, value), ..] = debug.response_head(200, &());
    /// assert_eq!((name, value), ("x-debug-id", debug.id().to_string()));
    /// ```
    pub fn id(&self) -> u64 {
        self.session.id
    }

    /// The session the tracing layer fills; share it through `RequestScope::debug`.
    ///
    /// ```
    /// use diag_core::request::RequestScope;
    /// use diag_core::trace::{SpanId, TraceContext, TraceId};
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let trace = TraceContext { trace_id: TraceId::random(), span_id: SpanId::random(), sampled: true };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, trace.trace_id);
    /// let scope = RequestScope::new(trace, Some(debug.session().clone()), None);
    /// assert_eq!(scope.debug.as_ref().unwrap().id, debug.id());
    /// ```
    pub fn session(&self) -> &Arc<DebugSession> {
        &self.session
    }

    /// The request's scope (its trace, this session), made current around each poll
    /// of its bodies.
    pub(crate) fn scope(&self) -> &RequestScope {
        &self.scope
    }

    /// Call with every request-body frame's data as the handler reads it.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.request_chunk(b"{\"qty\":");
    /// debug.request_chunk(b"3}");
    /// debug.request_end();
    /// debug.finish_incomplete();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert_eq!(capture.request.body.text.as_deref(), Some("{\"qty\":3}"));
    /// ```
    pub fn request_chunk(&self, chunk: &[u8]) {
        self.request.lock().body.push(chunk);
    }

    /// Call for request body bytes that went by unseen (see [`Polled::Unseen`]).
    ///
    /// [`Polled::Unseen`]: crate::body::Polled::Unseen
    pub(crate) fn request_skipped(&self, n: u64) {
        self.request.lock().body.skip(n);
    }

    /// Call for response body bytes that went by unseen.
    pub(crate) fn response_skipped(&self, n: u64) {
        self.response.lock().body.skip(n);
    }

    /// Call when the request body reports its end.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.request_chunk(b"abc");
    /// debug.request_end();
    /// debug.finish_incomplete();
    /// let body = diag.debug_mode().recorder().get(debug.id()).unwrap().request.body.clone();
    /// assert!(body.ended && !body.truncated);
    /// ```
    pub fn request_end(&self) {
        self.request.lock().body.end();
    }

    /// Call when the request body reports an error: the client's stream broke off.
    /// A service that then fails (an echo streaming the request body back, a handler
    /// returning the read's error) failed because of the client, so its capture is
    /// stored as the client's leaving ([`finish_incomplete`](Self::finish_incomplete)),
    /// not as the service's failure.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.request_chunk(b"the first part of an upload");
    /// debug.request_broke_off();
    /// debug.finish_after_error();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert!(!capture.complete && !capture.failed, "the client went away");
    /// assert!(!capture.request.body.ended);
    /// ```
    pub fn request_broke_off(&self) {
        // The flag `request_body_failed` sets on the request path's scope, on this one.
        self.scope.body_failed.store(true, Ordering::Relaxed);
    }

    /// Call once the response head is ready, with its status and headers. Returns the
    /// headers to add to the response: `server-timing`, `x-debug-id`, `x-trace-id`.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let trace = TraceId::random();
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, trace);
    /// let extra = debug.response_head(200, &vec![("content-type".to_owned(), "text/html".to_owned())]);
    /// let names: Vec<&str> = extra.iter().map(|(name, _)| *name).collect();
    /// assert_eq!(names, ["server-timing", "x-debug-id", "x-trace-id", "x-debug-status"]);
    /// assert_eq!(extra[2].1, trace.to_string());
    /// ```
    pub fn response_head(
        &self,
        status: u16,
        headers: &dyn HeaderView,
    ) -> [(&'static str, String); 4] {
        let at = self.session.elapsed();
        let head = ResponseHead {
            status,
            headers: HeaderLines::copy(headers),
            at,
        };
        self.response.lock().head = Some(head);
        debug_response_headers(&self.session, at, self.scope.trace.trace_id)
    }

    /// Call with every response-body frame's data as it is sent.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_head(200, &());
    /// debug.response_chunk(b"hello, ");
    /// debug.response_chunk(b"world");
    /// debug.response_end();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert_eq!(capture.response.as_ref().unwrap().body.total_bytes, 12);
    /// ```
    pub fn response_chunk(&self, chunk: &[u8]) {
        self.response.lock().body.push(chunk);
    }

    /// Call with the response body's trailers, when it sends any (kept with the
    /// response, redacted like its headers when read).
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/shop.Cart/Add", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_head(200, &vec![("content-type".to_owned(), "application/grpc".to_owned())]);
    /// debug.response_trailers(&vec![("grpc-status".to_owned(), "0".to_owned())]);
    /// debug.response_end();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert_eq!(capture.response.as_ref().unwrap().trailers[0].1, "0");
    /// ```
    pub fn response_trailers(&self, trailers: &dyn crate::HeaderView) {
        self.response.lock().trailers = HeaderLines::copy(trailers);
    }

    /// Call when the response body reports its end (also for an empty body, right
    /// after [`response_head`](Self::response_head)): stores the capture as complete.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_head(204, &());
    /// debug.response_end(); // an empty body ends right after its head
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert!(capture.complete);
    /// assert_eq!(capture.response.as_ref().unwrap().status, 204);
    /// ```
    pub fn response_end(&self) {
        let complete = {
            let mut response = self.response.lock();
            response.body.end();
            response.head.is_some()
        };
        self.store(complete, Ending::Ended);
    }

    /// Stores the capture as incomplete (the client went away, the handler failed);
    /// does nothing if it was already stored. Dropping the last handle does the same.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.response_head(200, &());
    /// debug.response_chunk(b"half of it");
    /// debug.finish_incomplete(); // the client went away
    /// debug.response_end(); // already stored: does nothing
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert!(!capture.complete);
    /// assert_eq!(diag.debug_mode().recorder().stats().stored, 1);
    /// ```
    pub fn finish_incomplete(&self) {
        self.store(false, Ending::Abandoned);
    }

    /// Stores the capture as incomplete because the handler panicked (the guard of a
    /// request whose handler panicked calls it).
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.finish_after_panic();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert!(capture.panicked && !capture.complete);
    /// ```
    pub fn finish_after_panic(&self) {
        self.store(false, Ending::Panicked);
    }

    /// Stores the capture as incomplete because the service failed with an error
    /// instead of a response (the guard of such a request calls it), or in the middle
    /// of its response body. After [`request_broke_off`](Self::request_broke_off), the
    /// failure is the client's: stored as [`finish_incomplete`](Self::finish_incomplete).
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.finish_after_error();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert!(capture.failed && !capture.complete && !capture.panicked);
    /// ```
    pub fn finish_after_error(&self) {
        let ending = if self.scope.body_failed.load(Ordering::Relaxed) {
            Ending::Abandoned
        } else {
            Ending::Failed
        };
        self.store(false, ending);
    }

    /// A capture of this request with what names it (ids, trace, level, start, time
    /// so far) and nothing recorded: what [`look`](Self::look),
    /// [`look_head`](Self::look_head) and [`store`](Self::store) fill in.
    fn frame(&self) -> StoredCapture {
        StoredCapture {
            id: self.session.id,
            started_at: self.session.started_at,
            trace_id: self.scope.trace.trace_id,
            span_id: self.scope.trace.span_id,
            parent_span_id: self.parent_span_id,
            tracestate: self.scope.tracestate.clone(),
            level: self.session.level,
            complete: false,
            in_flight: false,
            panicked: false,
            failed: false,
            duration: self.session.elapsed(),
            request: RequestHead::default(),
            request_body: BodyCapture::default(),
            response: None,
            spans: Vec::new(),
            logs: Vec::new(),
            dropped_spans: 0,
            dropped_logs: 0,
            cut_fields: 0,
            logs_blocked: false,
        }
    }

    /// What the request recorded so far, as a capture marked `in_flight`: read by
    /// `/debug/requests/{id}` while it runs (a hung request never stores one). Copies;
    /// the request goes on recording. Read [`is_ending`](Self::is_ending) after it: a
    /// request that began storing meanwhile may have left the copy partial.
    pub(crate) fn look(&self) -> StoredCapture {
        let (spans, logs, open_over_cap) = self.session.copy_records();
        let (dropped_spans, dropped_logs) = self.session.dropped();
        let dropped_spans = dropped_spans + open_over_cap;
        let request = {
            let side = self.request.lock();
            (side.head.clone(), side.body.clone())
        };
        let response = {
            let side = self.response.lock();
            side.head.as_ref().map(|h| StoredResponse {
                status: h.status,
                headers: h.headers.clone(),
                body: side.body.clone(),
                trailers: side.trailers.clone(),
                at: h.at,
            })
        };
        StoredCapture {
            in_flight: true,
            request: request.0,
            request_body: request.1,
            response,
            spans,
            logs,
            dropped_spans,
            dropped_logs,
            cut_fields: self.session.fields_cut(),
            logs_blocked: self.session.logs_blocked(),
            ..self.frame()
        }
    }

    /// Only what the `/debug/requests` list shows of a running request: its head and
    /// times, no records or bodies (a list read must not copy every running request
    /// whole, holding the locks its recording needs).
    pub(crate) fn look_head(&self) -> StoredCapture {
        let request = self.request.lock().head.clone();
        let status = self.response.lock().head.as_ref().map(|h| (h.status, h.at));
        StoredCapture {
            in_flight: true,
            request,
            response: status.map(|(status, at)| StoredResponse {
                status,
                headers: HeaderLines::default(),
                body: BodyCapture::default(),
                trailers: HeaderLines::default(),
                at,
            }),
            ..self.frame()
        }
    }

    /// Whether the request ended and its capture is being stored or is stored.
    pub(crate) fn is_ending(&self) -> bool {
        self.stored.load(Ordering::Acquire)
    }

    /// Whether its capture reached the flight recorder (or was refused there).
    pub(crate) fn is_kept(&self) -> bool {
        self.kept.load(Ordering::Acquire)
    }

    /// [`is_kept`](Self::is_kept)'s flag, which the recorder sets under its lock.
    pub(crate) fn kept_flag(&self) -> &AtomicBool {
        &self.kept
    }

    /// For a request that ended and is being stored: waits (at most about 10 ms; storing
    /// takes microseconds) until its capture is in the recorder. Whether it got there.
    pub(crate) fn settle(&self) -> bool {
        for _ in 0..100 {
            if self.is_kept() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        self.is_kept()
    }

    /// Whether this request is in the trace `trace_id` names.
    pub(crate) fn is_trace(&self, trace_id: &TraceId) -> bool {
        self.scope.trace.trace_id == *trace_id
    }

    /// Moves what was recorded into the flight recorder, unredacted (it redacts on
    /// read): nothing is copied or rendered here.
    fn store(&self, complete: bool, ending: Ending) {
        if self.stored.swap(true, Ordering::AcqRel) {
            return;
        }
        // Records first: a span still open over the cap counts as dropped.
        let (spans, logs) = self.session.take_records();
        let (dropped_spans, dropped_logs) = self.session.dropped();
        let totals = &self.diag.debug_mode().records_dropped;
        totals[0].fetch_add(dropped_spans, Ordering::Relaxed);
        totals[1].fetch_add(dropped_logs, Ordering::Relaxed);
        let cut_fields = self.session.fields_cut();
        totals[2].fetch_add(cut_fields, Ordering::Relaxed);
        let request = std::mem::take(&mut *self.request.lock());
        let response = {
            let mut side = self.response.lock();
            let body = std::mem::take(&mut side.body);
            let trailers = std::mem::take(&mut side.trailers);
            side.head.take().map(|h| StoredResponse {
                status: h.status,
                headers: h.headers,
                body,
                trailers,
                at: h.at,
            })
        };
        let capture = StoredCapture {
            complete,
            panicked: ending == Ending::Panicked,
            failed: ending == Ending::Failed,
            request: request.head,
            request_body: request.body,
            response,
            spans,
            logs,
            dropped_spans,
            dropped_logs,
            cut_fields,
            logs_blocked: self.session.logs_blocked(),
            ..self.frame()
        };
        let capture = Arc::new(capture);
        if let Some(otlp) = &self.diag.inner.otlp {
            otlp.export(capture.clone());
        }
        // Sets `kept`, under the recorder's lock.
        self.diag.debug_mode().recorder().store(capture, &self.kept);
    }
}

/// How a debug request's exchange ended, as its capture says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The response body ended (complete when its head was seen).
    Ended,
    /// The client went away, or nothing answered.
    Abandoned,
    /// The handler panicked.
    Panicked,
    /// The service failed with an error instead of a response.
    Failed,
}

impl Drop for DebugRequest {
    fn drop(&mut self) {
        self.store(false, Ending::Abandoned);
        self.diag
            .debug_mode()
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for DebugRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URI or headers: they are not redacted yet.
        f.debug_struct("DebugRequest")
            .field("id", &self.session.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{headers, secret_headers};
    use std::time::Duration;

    use super::*;
    use crate::debug::{Decision, LogLine, SpanTiming, render_waterfall};

    fn start(diag: &Diag, h: &Vec<(String, String)>, uri: &str) -> Arc<DebugRequest> {
        let Decision::Debug(level) = diag.debug_decision(h, None) else {
            panic!("not admitted")
        };
        let view = RequestView {
            method: "POST",
            route: Some("/login"),
            uri,
            headers: h,
            peer: &|| None,
        };
        diag.start_debug(level, &view, TraceId([0x4b; 16]))
    }

    #[test]
    fn no_secret_reaches_the_stored_capture_or_its_text() {
        let diag = Diag::builder()
            .token("SECRET-DEBUGTOKEN")
            .redact_header("X-Internal-Key")
            .redact_field("ssn")
            .capture_body_limit(128)
            .build()
            .unwrap();
        let h = secret_headers();
        let debug = start(&diag, &h, "/login?next=%2F&token=SECRET-QUERY");
        let session = debug.session().clone();
        session.record_span(SpanTiming {
            id: 2,
            parent: None,
            name: "check_password".into(),
            target: "app::auth".into(),
            start_offset: Duration::from_millis(1),
            duration: Duration::from_millis(3),
            fields: vec![("password".into(), "SECRET-SPANFIELD".into())],
        });
        session.record_log(LogLine {
            offset: Duration::from_millis(2),
            level: "DEBUG".into(),
            target: "app::auth".into(),
            message: "checking".into(),
            fields: vec![("api_key".into(), "SECRET-LOGFIELD".into())],
            span: Some(2),
        });
        for part in [
            r#"{"user":{"name":"ann","password":"SECRET-PW","#,
            r#""cards":[{"card_number":"SECRET-CARD"}]},"ssn":"SECRET-SSN"}"#,
        ] {
            debug.request_chunk(part.as_bytes());
        }
        debug.request_end();
        let resp = headers(&[
            ("set-cookie", "sid=SECRET-SETCOOKIE; HttpOnly"),
            ("content-type", "application/json"),
        ]);
        let extra = debug.response_head(200, &resp);
        assert!(extra[0].1.starts_with("check_password;dur=3, total;dur="));
        // A response body cut by the cap in the middle of a secret.
        let padding = "x".repeat(96);
        let first = format!(r#"{{"x":"{padding}","access_token":"SECRET-RESPONSE-"#);
        assert_eq!(
            first.find("SECRET"),
            Some(120),
            "the cap (128) cuts the secret"
        );
        debug.response_chunk(first.as_bytes());
        debug.response_chunk(br#"TOKEN-THAT-GOES-ON-AND-ON-FOR-A-WHILE"}"#);
        debug.response_end();

        let stored = diag.debug_mode().recorder().get(debug.id()).unwrap();
        assert!(stored.complete);
        assert!(!stored.request.body.truncated);
        assert_eq!(
            stored.request.body.redaction,
            Some(crate::debug::BodyRedaction::Json)
        );
        assert!(stored.response.as_ref().unwrap().body.truncated);
        let json = serde_json::to_string(&*stored).unwrap();
        let text = render_waterfall(&stored);
        for rendering in [&json, &text] {
            assert!(!rendering.contains("SECRET-"), "leak in:\n{rendering}");
        }
        let body = stored.request.body.text.as_deref().unwrap();
        assert!(body.contains(r#""name":"ann""#), "{body}");
        assert!(text.contains("check_password"));
        assert!(text.contains("DEBUG app::auth: checking"));
        assert_eq!(stored.request.uri, "/login?next=%2F&token=[redacted]");
    }

    #[test]
    fn bodies_are_capped_and_counted_frame_by_frame() {
        let diag = Diag::builder()
            .token("t")
            .capture_body_limit(10)
            .build()
            .unwrap();
        let h = headers(&[("x-debug", "t")]);
        let debug = start(&diag, &h, "/");
        for _ in 0..100 {
            debug.request_chunk(b"0123456789abcdef");
        }
        debug.request_end();
        debug.response_head(204, &headers(&[]));
        debug.response_end();
        let c = diag.debug_mode().recorder().get(debug.id()).unwrap();
        assert_eq!(c.request.body.text.as_deref(), Some("0123456789"));
        assert_eq!(c.request.body.total_bytes, 1600);
        assert!(c.request.body.truncated && c.request.body.ended);
        let r = c.response.as_ref().unwrap();
        assert_eq!(
            (r.status, r.body.total_bytes, r.body.truncated),
            (204, 0, false)
        );
    }

    #[test]
    fn response_trailers_are_kept_and_redacted() {
        let diag = Diag::builder().token("t").build().unwrap();
        let h = headers(&[("x-debug", "t")]);
        let debug = start(&diag, &h, "/shop.Cart/Add");
        debug.response_head(200, &headers(&[("content-type", "application/grpc")]));
        debug.response_chunk(b"\0\0\0\0\x02hi");
        debug.response_trailers(&headers(&[
            ("grpc-status", "5"),
            ("grpc-message", "no such cart"),
            ("authorization", "Bearer TRAILER-SECRET"),
        ]));
        debug.response_end();
        let c = diag.debug_mode().recorder().get(debug.id()).unwrap();
        let r = c.response.as_ref().unwrap();
        assert!(r.trailers.contains(&("grpc-status".into(), "5".into())));
        assert!(
            r.trailers
                .contains(&("grpc-message".into(), "no such cart".into()))
        );
        let json = serde_json::to_string(&*c).unwrap();
        assert!(json.contains(r#""trailers":"#), "{json}");
        assert!(!json.contains("TRAILER-SECRET"), "{json}");
        let text = crate::debug::waterfall::render(&c);
        assert!(text.contains("-- trailers\ngrpc-status: 5\n"), "{text}");
        assert!(!text.contains("TRAILER-SECRET"), "{text}");
        // How the call ended, where a reader looks first: its HTTP status is 200.
        assert_eq!(r.grpc_status, Some("NOT_FOUND"));
        assert!(
            text.starts_with("POST /shop.Cart/Add -> 200 (gRPC NOT_FOUND)"),
            "{text}"
        );
        assert!(
            text.contains("== response: 200 (gRPC NOT_FOUND)\n"),
            "{text}"
        );

        // A trailers-only response carries its status in the head.
        let only = start(&diag, &h, "/shop.Cart/Add");
        only.response_head(
            200,
            &headers(&[("content-type", "application/grpc"), ("grpc-status", "14")]),
        );
        only.response_end();
        let c = diag.debug_mode().recorder().get(only.id()).unwrap();
        assert_eq!(
            c.response.as_ref().unwrap().grpc_status,
            Some("UNAVAILABLE")
        );

        // No trailers: none shown, and no gRPC status.
        let plain = start(&diag, &h, "/");
        plain.response_head(204, &headers(&[]));
        plain.response_end();
        let c = diag.debug_mode().recorder().get(plain.id()).unwrap();
        let json = serde_json::to_string(&*c).unwrap();
        assert!(
            !json.contains("trailers") && !json.contains("grpc_status"),
            "{json}"
        );
        assert!(crate::debug::waterfall::render(&c).starts_with("POST / -> 204 "));
    }

    #[test]
    fn dropped_early_is_stored_once_as_incomplete() {
        let diag = Diag::builder().token("t").build().unwrap();
        let h = headers(&[("x-debug", "t")]);
        let debug = start(&diag, &h, "/slow");
        assert_eq!(diag.debug_mode().in_flight(), 1);
        debug.response_head(200, &headers(&[]));
        debug.response_chunk(b"partial");
        let id = debug.id();
        drop(debug); // the client went away mid-body
        assert_eq!(diag.debug_mode().in_flight(), 0);
        let c = diag.debug_mode().recorder().get(id).unwrap();
        assert!(!c.complete);
        assert!(!c.response.as_ref().unwrap().body.ended);

        // finish_incomplete after response_end changes nothing; ids increase.
        let second = start(&diag, &h, "/fast");
        assert!(second.id() > id);
        second.response_head(200, &headers(&[]));
        second.response_end();
        second.finish_incomplete();
        let id2 = second.id();
        drop(second);
        assert!(diag.debug_mode().recorder().get(id2).unwrap().complete);
        assert_eq!(diag.debug_mode().recorder().stats().stored, 2);

        // No response head at all (the handler panicked): incomplete, no response.
        let third = start(&diag, &h, "/boom");
        let id3 = third.id();
        third.response_end();
        let c = diag.debug_mode().recorder().get(id3).unwrap();
        assert!(!c.complete && c.response.is_none());
        assert!(render_waterfall(&c).contains("no response"));
    }
}
