//! One request's path through diag: [`Diag::begin`] when it arrives, a
//! [`RequestGuard`] while the handler runs, [`RequestGuard::finish`] when the response
//! head is ready. Dropping the guard unfinished (the client went away, the handler
//! panicked) still leaves every gauge and record right.

mod scope;

pub use scope::{Entered, RequestScope, with_current};

use std::net::SocketAddr;
use std::time::Instant;

use crate::metrics::SeriesRef;
use crate::metrics::method_label;
use crate::trace::TraceContext;
use crate::{Diag, HeaderView};

/// The `route` every request that matched no route shares, so unknown paths never
/// become label values.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What the core needs to know about an incoming request. Adapters build it from
/// their framework's request without copying.
pub struct RequestView<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The route template the router matched (`/products/{id}`), or `None` when no route
    /// matched. Never the raw path.
    pub route: Option<&'a str>,
    /// The request headers.
    pub headers: &'a dyn HeaderView,
    /// The TCP peer, when known.
    pub peer: Option<SocketAddr>,
}

/// Tracks one request from [`Diag::begin`] to [`RequestGuard::finish`].
#[must_use = "call finish() with the response status"]
pub struct RequestGuard {
    #[allow(dead_code)] // read by the metrics and debug parts as they land
    diag: Diag,
    start: Instant,
    finished: bool,
    /// The request's trace (and, later, debug session); adapters `enter()` it while
    /// polling the handler.
    scope: RequestScope,
    /// This request's `http_server_active_requests` series.
    active: SeriesRef,
}

impl Diag {
    /// Starts tracking a request. Cheap when no debug request is in flight.
    ///
    /// Picks the trace context (an incoming valid `traceparent` is continued with a new
    /// span id; otherwise a new trace, sampled by the builder's `sampling_ratio`), and
    /// counts the request in `http_server_active_requests`.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let guard = diag.begin(&RequestView {
    ///     method: "GET",
    ///     route: Some("/products/{id}"),
    ///     headers: &(),
    ///     peer: None,
    /// });
    /// let mut extra = Vec::new();
    /// guard.response_headers(|name, value| extra.push((name, value.to_owned())));
    /// guard.finish(200);
    /// ```
    pub fn begin(&self, req: &RequestView<'_>) -> RequestGuard {
        let start = Instant::now();
        // force_sample: debug-mode requests must pass `true` here (their trace must exist).
        let trace = self.inner.sampler.trace_for(req.headers, false);
        let route = req.route.unwrap_or(UNMATCHED_ROUTE);
        let active = self
            .inner
            .metrics
            .http
            .begin(method_label(req.method), route);
        RequestGuard {
            diag: self.clone(),
            start,
            finished: false,
            scope: RequestScope { trace, debug: None },
            active,
        }
    }
}

impl RequestGuard {
    /// When the request arrived.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// The request's scope: enter it (`guard.scope().enter()`) around each poll of the
    /// handler so code inside finds its request with [`with_current`].
    pub fn scope(&self) -> &RequestScope {
        &self.scope
    }

    /// The request's trace context.
    pub fn trace(&self) -> &TraceContext {
        &self.scope.trace
    }

    /// Calls `f` with each header diag adds to the response (trace context, and for
    /// debug requests `Server-Timing` and `X-Debug-Id`).
    pub fn response_headers(&self, mut f: impl FnMut(&'static str, &str)) {
        f("traceparent", self.scope.trace.traceparent().as_str());
    }

    /// Records the response status once the response head is ready: the request's
    /// duration and count (with the trace as exemplar when sampled) under its
    /// `(method, route, status)`.
    pub fn finish(mut self, status: u16) {
        self.finished = true;
        self.diag
            .inner
            .metrics
            .http
            .finish(self.active, status, self.start, &self.scope.trace);
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if !self.finished {
            // The response never came: the client went away or the handler panicked.
            // No status to record; the in-flight gauge must still come down.
            self.diag.inner.metrics.http.abandon(self.active);
        }
    }
}
