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
}

thread_local! {
    static CURRENT: Cell<*const RequestScope> = const { Cell::new(ptr::null()) };
}

/// Restores the previous scope when dropped (also on unwind).
///
/// ```
/// use diag_core::request::{RequestScope, with_current};
/// use diag_core::trace::{SpanId, TraceContext, TraceId};
/// let scope = |n| RequestScope {
///     trace: TraceContext { trace_id: TraceId([n; 16]), span_id: SpanId([n; 8]), sampled: true },
///     debug: None,
///     tracestate: None,
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
    /// let scope = RequestScope {
    ///     trace: TraceContext { trace_id: TraceId::random(), span_id: SpanId::random(), sampled: false },
    ///     debug: None,
    ///     tracestate: None,
    /// };
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
/// let scope = RequestScope {
///     trace: TraceContext { trace_id: TraceId([1; 16]), span_id: SpanId([2; 8]), sampled: true },
///     debug: None,
///     tracestate: None,
/// };
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
