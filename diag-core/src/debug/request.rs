//! [`DebugRequest`]: one request in diagnostic mode, from activation to the flight
//! recorder. The adapter's body wrappers feed it frame by frame; it copies at most the
//! body cap and never holds a frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;

use super::DebugLevel;
use super::capture::{self, BodyCapture, Capture, CapturedRequest, CapturedResponse};
use super::server_timing::debug_response_headers;
use super::session::DebugSession;
use crate::request::RequestView;
use crate::trace::TraceId;
use crate::{Diag, HeaderView};

/// One request running in diagnostic mode.
///
/// Shared (`Arc`) between the request-body wrapper, the response-body wrapper and the
/// request guard. The capture is stored in the flight recorder exactly once: by
/// [`response_end`](Self::response_end) (complete), by
/// [`finish_incomplete`](Self::finish_incomplete), or, failing both, when the last
/// handle drops (incomplete).
///
/// ```
/// use diag_core::debug::{Decision, DebugLevel};
/// use diag_core::request::RequestView;
/// use diag_core::trace::TraceId;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let headers = vec![("x-debug".to_owned(), "1".to_owned())];
/// let peer = Some("127.0.0.1:5000".parse().unwrap());
/// let Decision::Debug(level) = diag.debug_decision(&headers, peer) else { panic!() };
/// let view = RequestView { method: "POST", route: Some("/cart"), headers: &headers, peer };
/// let debug = diag.start_debug(level, &view, "/cart?x=1", TraceId([7; 16]));
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
/// ```
pub struct DebugRequest {
    diag: Diag,
    session: Arc<DebugSession>,
    trace_id: TraceId,
    method: String,
    uri: String,
    route: Option<String>,
    request_headers: Vec<(String, String)>,
    request_content_type: Option<String>,
    request_body: Mutex<BodyCapture>,
    response: Mutex<ResponseSide>,
    stored: AtomicBool,
}

struct ResponseSide {
    head: Option<ResponseHead>,
    body: BodyCapture,
}

struct ResponseHead {
    status: u16,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    at: std::time::Duration,
}

impl Diag {
    /// Starts capturing a request that [`Diag::debug_decision`] admitted at `level`.
    /// `uri` is the path and query as received; `trace_id` the request's trace.
    /// Put [`DebugRequest::session`] in the request's
    /// [`RequestScope`](crate::request::RequestScope) so its spans and logs are recorded.
    pub fn start_debug(
        &self,
        level: DebugLevel,
        req: &RequestView<'_>,
        uri: &str,
        trace_id: TraceId,
    ) -> Arc<DebugRequest> {
        let mode = self.debug_mode();
        mode.in_flight.fetch_add(1, Ordering::Relaxed);
        let redactor = &mode.redactor;
        Arc::new(DebugRequest {
            session: Arc::new(DebugSession::new(mode.next_id(), level)),
            trace_id,
            method: req.method.to_owned(),
            uri: redactor.uri(uri),
            route: req.route.map(str::to_owned),
            request_headers: redactor.headers(req.headers),
            request_content_type: req.headers.get_str("content-type").map(str::to_owned),
            request_body: Mutex::new(BodyCapture::new(mode.body_limit)),
            response: Mutex::new(ResponseSide {
                head: None,
                body: BodyCapture::new(mode.body_limit),
            }),
            stored: AtomicBool::new(false),
            diag: self.clone(),
        })
    }
}

impl DebugRequest {
    /// The debug id, as in `X-Debug-Id` and `/debug/requests/{id}`.
    pub fn id(&self) -> u64 {
        self.session.id
    }

    /// The session the tracing layer fills; share it through `RequestScope::debug`.
    pub fn session(&self) -> &Arc<DebugSession> {
        &self.session
    }

    /// Call with every request-body frame's data as the handler reads it.
    pub fn request_chunk(&self, chunk: &[u8]) {
        self.request_body.lock().push(chunk);
    }

    /// Call when the request body reports its end.
    pub fn request_end(&self) {
        self.request_body.lock().end();
    }

    /// Call once the response head is ready, with its status and headers. Returns the
    /// headers to add to the response: `server-timing`, `x-debug-id`, `x-trace-id`.
    pub fn response_head(
        &self,
        status: u16,
        headers: &dyn HeaderView,
    ) -> Vec<(&'static str, String)> {
        let at = self.session.started.elapsed();
        let redactor = &self.diag.debug_mode().redactor;
        let head = ResponseHead {
            status,
            headers: redactor.headers(headers),
            content_type: headers.get_str("content-type").map(str::to_owned),
            at,
        };
        self.response.lock().head = Some(head);
        debug_response_headers(&self.session, at, self.trace_id)
    }

    /// Call with every response-body frame's data as it is sent.
    pub fn response_chunk(&self, chunk: &[u8]) {
        self.response.lock().body.push(chunk);
    }

    /// Call when the response body reports its end (also for an empty body, right
    /// after [`response_head`](Self::response_head)): stores the capture as complete.
    pub fn response_end(&self) {
        let complete = {
            let mut response = self.response.lock();
            response.body.end();
            response.head.is_some()
        };
        self.store(complete);
    }

    /// Stores the capture as incomplete (the client went away, the handler failed);
    /// does nothing if it was already stored. Dropping the last handle does the same.
    pub fn finish_incomplete(&self) {
        self.store(false);
    }

    fn store(&self, complete: bool) {
        if self.stored.swap(true, Ordering::AcqRel) {
            return;
        }
        let mode = self.diag.debug_mode();
        let redactor = &mode.redactor;
        let (dropped_spans, dropped_logs) = self.session.dropped();
        let request_body = self
            .request_body
            .lock()
            .finish(self.request_content_type.as_deref(), redactor);
        let (response, head_ms) = {
            let side = self.response.lock();
            match &side.head {
                Some(h) => (
                    Some(CapturedResponse {
                        status: h.status,
                        headers: h.headers.clone(),
                        body: side.body.finish(h.content_type.as_deref(), redactor),
                    }),
                    Some(capture::ms(h.at)),
                ),
                None => (None, None),
            }
        };
        let capture = Capture {
            id: self.session.id,
            time_unix: self
                .session
                .started_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            trace_id: self.trace_id.to_string(),
            level: self.session.level,
            complete,
            duration_ms: capture::ms(self.session.started.elapsed()),
            response_head_ms: head_ms,
            request: CapturedRequest {
                method: self.method.clone(),
                uri: self.uri.clone(),
                route: self.route.clone(),
                headers: self.request_headers.clone(),
                body: request_body,
            },
            response,
            spans: self
                .session
                .spans()
                .iter()
                .map(|s| capture::span(s, redactor))
                .collect(),
            logs: self
                .session
                .logs()
                .iter()
                .map(|l| capture::log(l, redactor))
                .collect(),
            dropped_spans,
            dropped_logs,
        };
        mode.recorder().store(capture);
    }
}

impl Drop for DebugRequest {
    fn drop(&mut self) {
        self.store(false);
        self.diag
            .debug_mode()
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for DebugRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugRequest")
            .field("id", &self.session.id)
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}
