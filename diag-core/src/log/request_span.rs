//! [`request_span`]: the root span of one request.

use tracing::Span;

use crate::request::RequestScope;

/// The root span of the request `scope` describes: target `diag`, name `request`, level
/// DEBUG, one field, `trace_id` (32 hex digits).
///
/// For a debug request the span is always enabled (the per-request filter lets it
/// through) and carries the request's debug mark, which every span opened inside it
/// inherits; since `fmt` prints the fields of the spans an event is in, every log line
/// of a debug request shows `request{trace_id=…}`. The debug id is not a field: it is
/// in the response's `X-Debug-Id` and at the top of the capture, and each field on this
/// span is formatted by every log layer of the service for every debug request. For
/// other requests the span exists only when the service's own filter enables
/// `diag=debug`, and is otherwise [`Span::none`], which costs one filter check.
///
/// The request path instruments the handler's future with it, inside the request's
/// scope: `scope.enter()` around each poll, and the span entered by `.instrument(span)`.
/// Work the handler spawns stays part of the request when it is instrumented with a
/// child span (or `Span::current()`).
///
/// ```
/// use diag_core::request::RequestScope;
/// use diag_core::trace::{SpanId, TraceContext, TraceId};
/// let scope = RequestScope::new(
///     TraceContext { trace_id: TraceId([7; 16]), span_id: SpanId([1; 8]), sampled: true },
///     None,
///     None,
/// );
/// let span = diag_core::log::request_span(&scope);
/// let _entered = span.enter();
/// ```
pub fn request_span(scope: &RequestScope) -> Span {
    // Created with the scope current, so the filters see a debug request and mark it.
    let _current = scope.enter();
    tracing::debug_span!(target: "diag", "request", trace_id = %scope.trace.trace_id)
}
