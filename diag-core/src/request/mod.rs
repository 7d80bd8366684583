//! One request's path through diag: [`Diag::begin`] when it arrives, a
//! [`RequestGuard`] while the handler runs, [`RequestGuard::finish`] when the response
//! head is ready. Dropping the guard unfinished (the client went away, the handler
//! panicked) still leaves every gauge and record right.

mod scope;

pub use scope::{Entered, RequestScope, with_current};

use std::net::SocketAddr;
use std::time::Instant;

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
    in_flight: crate::state::in_flight::InFlightTicket,
}

impl Diag {
    /// Starts tracking a request. Cheap when no debug request is in flight.
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
    pub fn begin(&self, _req: &RequestView<'_>) -> RequestGuard {
        let start = Instant::now();
        let in_flight =
            self.inner
                .in_flight
                .enter(_req.method, _req.route.unwrap_or(UNMATCHED_ROUTE), start);
        RequestGuard {
            diag: self.clone(),
            start,
            finished: false,
            in_flight,
        }
    }
}

impl RequestGuard {
    /// When the request arrived.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// Calls `f` with each header diag adds to the response (trace context, and for
    /// debug requests `Server-Timing` and `X-Debug-Id`).
    pub fn response_headers(&self, _f: impl FnMut(&'static str, &str)) {}

    /// Records the response status once the response head is ready.
    pub fn finish(mut self, _status: u16) {
        self.finished = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.diag.inner.in_flight.leave(self.in_flight);
        if !self.finished {
            // The response never came: the client went away or the handler panicked.
        }
    }
}
