//! Where a request begins: [`Diag::watches`] and [`Diag::begin`].

use std::sync::atomic::AtomicU8;

use crate::Diag;
use crate::clock::MonoTime;
use crate::debug::Decision;
use crate::log::DebugInFlight;
use crate::metrics::{SeriesRef, method_label};

use super::guard::{DebugParts, RequestGuard};
use super::{RequestScope, RequestView, UNMATCHED_ROUTE};

impl Diag {
    /// Whether the middleware should watch a request for `path`: not when the kill
    /// switch is on, and never diag's own endpoints (a scrape is not traffic).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert!(diag.watches("/products/7"));
    /// assert!(!diag.watches("/metrics"));
    /// diag.set_disabled(true);
    /// assert!(!diag.watches("/products/7"));
    /// ```
    pub fn watches(&self, path: &str) -> bool {
        !self.is_disabled() && !self.is_endpoint(path)
    }

    /// Starts tracking a request. Cheap when it does not ask for diagnostic mode.
    ///
    /// Decides diagnostic mode (credential, trusted network, budget), picks the trace
    /// context (an incoming valid `traceparent` is continued with a new span id;
    /// otherwise a new trace, sampled by the builder's `sampling_ratio`; a debug
    /// request's trace is always sampled), and counts the request as in flight.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET",
    ///     route: Some("/products/{id}"),
    ///     uri: "/products/7",
    ///     headers: &(),
    ///     peer: &|| None,
    /// });
    /// let mut response_headers: Vec<(String, String)> = Vec::new();
    /// let tap = guard.finish(200, &mut response_headers);
    /// assert!(tap.is_none(), "not a debug request");
    /// assert_eq!(response_headers[0].0, "traceparent");
    /// ```
    pub fn begin(&self, req: &RequestView<'_>) -> RequestGuard {
        let route = req.route.unwrap_or(UNMATCHED_ROUTE);
        self.begin_counted(req, route, |method| {
            self.inner.metrics.http.begin(method, route)
        })
    }

    /// [`begin`](Self::begin) once the request's `(method, route)` series is known:
    /// `count` finds it and counts the request as active there; `route` labels the
    /// request in the in-flight tracker.
    #[inline(always)]
    pub(crate) fn begin_counted(
        &self,
        req: &RequestView<'_>,
        route: &str,
        count: impl FnOnce(&'static str) -> SeriesRef,
    ) -> RequestGuard {
        let start = MonoTime::now();
        let decision = self.decide_debug(req.headers, req.peer);
        let (trace, parent) = self
            .inner
            .sampler
            .context_for(req.headers, decision.is_debug());
        let active = count(method_label(req.method));
        let in_flight = match self.inner.metrics.http.in_flight_memo(active) {
            Some(memo) => self
                .inner
                .in_flight
                .enter_remembered(req.method, route, start, memo),
            None => self.inner.in_flight.enter(req.method, route, start),
        };
        // Only a continued trace has a caller's `tracestate` to pass on.
        let tracestate = match parent {
            Some(_) => self.inner.tracestate.read(req.headers),
            None => None,
        };
        let mut scope = RequestScope::new(trace, None, tracestate);
        let debug = match decision {
            Decision::Debug(level) => {
                let request = self.start_debug_traced(
                    level,
                    req,
                    trace.trace_id,
                    trace.span_id,
                    parent,
                    scope.tracestate.clone(),
                );
                scope.debug = Some(request.session().clone());
                let in_flight = DebugInFlight::begin(level);
                let span = crate::log::request_span(&scope);
                // The request's own DEBUG span: disabled when the subscriber drops DEBUG
                // events before diag's filter sees them.
                self.debug_mode()
                    .note_logs(request.session(), span.is_disabled());
                Some(Box::new(DebugParts {
                    request,
                    span,
                    in_flight,
                    head: req.method == "HEAD",
                }))
            }
            _ => None,
        };
        RequestGuard {
            diag: self.clone(),
            start,
            state: AtomicU8::new(0),
            scope,
            parent,
            active,
            in_flight,
            debug,
            decision,
            learning: None,
        }
    }
}
