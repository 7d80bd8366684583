//! Which debug request a span belongs to.
//!
//! A span created while a debug request's [`RequestScope`](crate::request::RequestScope)
//! is current on the thread, or whose parent carries a mark, gets a [`DebugMark`] in its
//! registry extensions. Work the handler moves to other tasks with
//! `.instrument(span)` is then still recognised: the thread-local scope is gone there,
//! but the entered span still says which request it serves.

use std::sync::Arc;

use tracing::Level;
use tracing::Subscriber;
use tracing::span;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::in_flight;
use crate::debug::DebugSession;
use crate::request::with_current;

/// The debug session a span belongs to, kept in the span's extensions, and what the
/// recording layer keeps of the span while it is open (one extension for both: one
/// allocation and one lookup fewer per span of a debug request).
pub(crate) struct DebugMark {
    pub(crate) session: Arc<DebugSession>,
    /// Set by the recording layer when the span opens, taken when it closes.
    pub(crate) open: Option<OpenSpan>,
}

/// A span's state while it is open (its name, parent and fields wait in the session,
/// which a capture stored before the span closes takes them from).
pub(crate) struct OpenSpan {
    pub(crate) opened: crate::clock::MonoTime,
}

impl std::fmt::Debug for DebugMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugMark")
            .field("session", &self.session.id)
            .field("open", &self.open.is_some())
            .finish()
    }
}

/// The session of the debug request of the thread's current request scope, if any.
pub(crate) fn scope_session() -> Option<Arc<DebugSession>> {
    with_current(|s| s.and_then(|s| s.debug.clone()))
}

/// Whether something at `level`, at this point, belongs to a debug request that logs
/// that level. The fast path (no debug request anywhere) is one relaxed load.
#[inline]
pub(crate) fn debug_admits<S>(level: &Level, cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !in_flight::any() {
        return false;
    }
    debug_admits_slow(level, cx)
}

#[cold]
fn debug_admits_slow<S>(level: &Level, cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Some(admits) =
        with_current(|s| s.and_then(|s| s.debug.as_ref().map(|d| d.admits(level))))
    {
        return admits;
    }
    // Logging a panic that may have come from inside the subscriber: no span lookup
    // (its extensions may be held by the layer that panicked).
    if super::panic::in_panic_hook() {
        return false;
    }
    cx.lookup_current().is_some_and(|span| {
        span.extensions()
            .get::<DebugMark>()
            .is_some_and(|m| m.session.admits(level))
    })
}

/// Marks a just-created span when it belongs to a debug request. Cheap when no debug
/// request is in flight; idempotent, so several of diag's filters may call it.
pub(crate) fn mark_new_span<S>(id: &span::Id, cx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Nor while the panic hook logs: the parent's extensions may be held.
    if !in_flight::any() || super::panic::in_panic_hook() {
        return;
    }
    let Some(span) = cx.span(id) else { return };
    if span.extensions().get::<DebugMark>().is_some() {
        return;
    }
    let session = with_current(|s| s.and_then(|s| s.debug.clone()))
        .or_else(|| span.parent().and_then(|p| marked(&p)));
    if let Some(session) = session {
        let mut ext = span.extensions_mut();
        if ext.get_mut::<DebugMark>().is_none() {
            ext.insert(DebugMark {
                session,
                open: None,
            });
        }
    }
}

/// The session a span is marked with, if any.
pub(crate) fn marked<S>(span: &SpanRef<'_, S>) -> Option<Arc<DebugSession>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    span.extensions()
        .get::<DebugMark>()
        .map(|m| m.session.clone())
}
