//! W3C trace context: the ids every request carries, and whether its trace is sampled.

mod context;
pub(crate) mod hex;
mod id;
mod sampler;
mod state;

pub(crate) use state::IncomingTraceState;

pub use context::{SpanId, TraceContext, TraceId, Traceparent};
pub use sampler::Sampler;
pub use state::{MAX_TRACESTATE_LEN, MAX_TRACESTATE_MEMBERS, TraceState, TraceStateError};

/// The `traceparent` an outgoing call should carry when it is made for the request this
/// thread is working for (see [`crate::request::with_current`]): the request's trace,
/// its server span as the caller, and its sampled flag, which a request in diagnostic
/// mode always has set, so the services it calls record their part of its trace too.
/// `None` outside a request, for example in a task spawned by the handler: read it
/// before spawning and move it in.
///
/// `diag_tower::PropagateLayer` adds it to a tower client's requests; with any other
/// client (`reqwest`, for one), add the header yourself. The `X-Debug` credential is
/// never forwarded: diagnostic mode stays with the service that was asked for it.
///
/// ```
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// assert!(diag_core::trace::outgoing_traceparent().is_none(), "no request");
///
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
/// });
/// let _entered = guard.enter();
/// let tp = diag_core::trace::outgoing_traceparent().unwrap();
/// // e.g. reqwest: client.get(url).header("traceparent", tp.as_str())
/// assert_eq!(tp.as_str(), guard.trace().to_traceparent());
/// ```
pub fn outgoing_traceparent() -> Option<Traceparent> {
    crate::request::with_current(|scope| scope.map(|s| s.trace.traceparent()))
}

/// The `tracestate` an outgoing call should carry beside
/// [`outgoing_traceparent`]: the one the request this thread is working for arrived
/// with, when it continued its caller's trace (validated, at most
/// [`MAX_TRACESTATE_LEN`] bytes). `None` outside a request, or when the request brought
/// none. The W3C spec asks every service that continues a trace to pass it on.
///
/// ```
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let headers = vec![
///     ("traceparent".to_owned(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
///     ("tracestate".to_owned(), "congo=t61rcWkgMzE".to_owned()),
/// ];
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None,
/// });
/// let _entered = guard.enter();
/// let state = diag_core::trace::outgoing_tracestate().unwrap();
/// assert_eq!(state.as_str(), "congo=t61rcWkgMzE");
/// ```
pub fn outgoing_tracestate() -> Option<TraceState> {
    crate::request::with_current(|scope| scope.and_then(|s| s.tracestate.clone()))
}
