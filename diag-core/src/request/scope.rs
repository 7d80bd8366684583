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
#[must_use]
pub struct Entered<'a> {
    previous: *const RequestScope,
    _scope: std::marker::PhantomData<&'a RequestScope>,
}

impl RequestScope {
    /// Makes this the current scope on this thread until the guard drops.
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
