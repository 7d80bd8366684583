//! The request a thread is working for right now.
//!
//! While an adapter polls the handler's future it holds an [`Entered`] guard, which puts
//! the request's [`RequestScope`] in a thread-local slot. Code running in that poll (the
//! handler, the log filter, user metrics) finds its request with [`with_current`]: one
//! thread-local read, no lock, no allocation, and no dependency on how the service set
//! up `tracing`. Work moved to another task carries the scope only through a `tracing`
//! span (see the `log` module).

use std::cell::Cell;
use std::ptr;
use std::sync::Arc;

use crate::debug::DebugSession;
use crate::trace::{TraceContext, TraceState};

/// What code running for a request may ask about it.
///
/// ```
/// use diag_core::request::{RequestView, with_current};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
/// });
/// let _entered = guard.enter();
/// // Deep in the handler, with no request passed down:
/// let trace_id = with_current(|scope| scope.map(|s| s.trace.trace_id.to_string()));
/// assert_eq!(trace_id, Some(guard.trace().trace_id.to_string()));
/// ```
#[derive(Debug)]
pub struct RequestScope {
    /// The request's trace context.
    pub trace: TraceContext,
    /// Present only for a request in diagnostic mode.
    pub debug: Option<Arc<DebugSession>>,
    /// The caller's `tracestate`, when the request continued its trace with one.
    pub tracestate: Option<TraceState>,
    /// Set by [`request_body_failed`]: it travels with the request, whichever thread
    /// polls it next (it fits in the padding after `trace`).
    pub(crate) body_failed: std::sync::atomic::AtomicBool,
}

impl RequestScope {
    /// A request's scope, as [`Diag::begin`](crate::Diag::begin) makes it; for tests
    /// and for adapters that make their own.
    ///
    /// ```
    /// use diag_core::request::RequestScope;
    /// use diag_core::trace::{SpanId, TraceContext, TraceId};
    /// let trace = TraceContext { trace_id: TraceId([7; 16]), span_id: SpanId([1; 8]), sampled: true };
    /// let scope = RequestScope::new(trace, None, None);
    /// assert!(scope.debug.is_none());
    /// ```
    pub fn new(
        trace: TraceContext,
        debug: Option<Arc<DebugSession>>,
        tracestate: Option<TraceState>,
    ) -> Self {
        RequestScope {
            trace,
            debug,
            tracestate,
            body_failed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

thread_local! {
    static CURRENT: Cell<*const RequestScope> = const { Cell::new(ptr::null()) };
}

/// Marks the request current on this thread (see [`with_current`]) as one whose request
/// body failed while the handler read it: the client went away mid-upload, or a layer
/// cut the body short. When its handler then answers with an error instead of a
/// response, the request counts as abandoned by the client (as one whose client left
/// before the response), not as a 500. Adapters call it from their request body
/// wrapper; nothing happens when no request is current.
///
/// ```
/// use diag_core::request::{RequestGuard, RequestView, request_body_failed};
/// use std::task::Poll;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guard = diag.begin(&RequestView {
///     method: "POST", route: Some("/upload"), uri: "/upload", headers: &(), peer: &|| None,
/// });
/// let mut slot = Some(guard);
/// let polled: Poll<Result<Result<(), ()>, &str>> = RequestGuard::poll_response(
///     &mut slot,
///     || {
///         request_body_failed(); // what the body wrapper saw while the handler read it
///         Poll::Ready(Err("connection reset"))
///     },
///     |_guard, res| Ok(res),
/// );
/// assert!(polled.is_ready());
/// # let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let metrics = String::from_utf8(rt.block_on(diag.serve(req)).body).unwrap();
/// assert!(metrics.contains(r#"http_server_requests_abandoned_total{method="POST",route="/upload"} 1"#));
/// assert!(!metrics.contains(r#"status="500""#));
/// ```
pub fn request_body_failed() {
    let current = CURRENT.with(Cell::get);
    // SAFETY: as in `with_current`.
    if let Some(scope) = unsafe { current.as_ref() } {
        scope
            .body_failed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether [`request_body_failed`] marked the request of `scope`.
pub(crate) fn body_failed(scope: &RequestScope) -> bool {
    scope.body_failed.load(std::sync::atomic::Ordering::Relaxed)
}

/// Restores the previous scope when dropped (also on unwind).
///
/// ```
/// use diag_core::request::{RequestScope, with_current};
/// use diag_core::trace::{SpanId, TraceContext, TraceId};
/// let scope = |n| {
///     let trace = TraceContext { trace_id: TraceId([n; 16]), span_id: SpanId([n; 8]), sampled: true };
///     RequestScope::new(trace, None, None)
/// };
/// let (outer, inner) = (scope(1), scope(2));
/// let _outer = outer.enter();
/// {
///     let _inner = inner.enter();
///     assert_eq!(with_current(|s| s.unwrap().trace.trace_id), TraceId([2; 16]));
/// }
/// assert_eq!(with_current(|s| s.unwrap().trace.trace_id), TraceId([1; 16]), "restored");
/// ```
#[must_use]
pub struct Entered<'a> {
    previous: *const RequestScope,
    _scope: std::marker::PhantomData<&'a RequestScope>,
}

impl RequestScope {
    /// Makes this the current scope on this thread until the guard drops.
    ///
    /// ```
    /// use diag_core::request::{RequestScope, with_current};
    /// use diag_core::trace::{SpanId, TraceContext, TraceId};
    /// let scope = RequestScope::new(
    ///     TraceContext { trace_id: TraceId::random(), span_id: SpanId::random(), sampled: false },
    ///     None,
    ///     None,
    /// );
    /// let entered = scope.enter();
    /// assert!(with_current(|s| s.is_some_and(|s| !s.trace.sampled)));
    /// drop(entered);
    /// assert!(with_current(|s| s.is_none()));
    /// ```
    pub fn enter(&self) -> Entered<'_> {
        let previous = CURRENT.with(|c| c.replace(self as *const RequestScope));
        Entered {
            previous,
            _scope: std::marker::PhantomData,
        }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Calls `f` with the scope of the request this thread is polling, if any.
///
/// ```
/// use diag_core::request::{RequestScope, with_current};
/// use diag_core::trace::{SpanId, TraceContext, TraceId};
/// let scope = RequestScope::new(
///     TraceContext { trace_id: TraceId([1; 16]), span_id: SpanId([2; 8]), sampled: true },
///     None,
///     None,
/// );
/// assert!(with_current(|s| s.is_none()));
/// {
///     let _in = scope.enter();
///     assert!(with_current(|s| s.unwrap().trace.sampled));
/// }
/// assert!(with_current(|s| s.is_none()));
/// ```
pub fn with_current<R>(f: impl FnOnce(Option<&RequestScope>) -> R) -> R {
    CURRENT.with(|c| {
        let p = c.get();
        // SAFETY: a non-null pointer was set by `enter` from a live `&RequestScope` whose
        // `Entered` guard borrows it, and the guard resets the slot before that borrow
        // ends. The slot is thread-local, so no other thread sees the pointer.
        let scope = unsafe { p.as_ref() };
        f(scope)
    })
}
