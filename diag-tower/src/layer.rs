use std::net::SocketAddr;

use diag_core::Diag;
use tower::Layer;

use crate::DiagService;

/// Finds the route template of a request in its extensions (axum's `MatchedPath`, for
/// example). `None` means the request matched no route.
pub type RouteFn = for<'a> fn(&'a http::Extensions) -> Option<&'a str>;

/// Finds the TCP peer of a request in its extensions (axum's `ConnectInfo`, for example).
pub type PeerFn = fn(&http::Extensions) -> Option<SocketAddr>;

/// Watches every request of the wrapped service: trace context, RED metrics, and
/// diagnostic mode for requests that carry a valid `X-Debug` credential.
///
/// Requests and response bodies pass through untouched: the handler sees exactly the
/// bytes the client sent.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let layer = diag_tower::DiagLayer::new(diag)
///     .with_route(|ext| ext.get::<&'static str>().copied())
///     .with_peer(|ext| ext.get::<std::net::SocketAddr>().copied());
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct DiagLayer {
    pub(crate) diag: Diag,
    pub(crate) route: RouteFn,
    pub(crate) peer: PeerFn,
}

impl DiagLayer {
    /// A layer reporting to `diag`. By default every request counts as unmatched (set
    /// [`with_route`](Self::with_route)) and the peer is taken from a
    /// `std::net::SocketAddr` extension, if any.
    pub fn new(diag: Diag) -> Self {
        DiagLayer {
            diag,
            route: |_| None,
            peer: |ext| ext.get::<SocketAddr>().copied(),
        }
    }

    /// How to find the route template (never the raw path: it would explode metric
    /// cardinality).
    pub fn with_route(mut self, route: RouteFn) -> Self {
        self.route = route;
        self
    }

    /// How to find the TCP peer address.
    pub fn with_peer(mut self, peer: PeerFn) -> Self {
        self.peer = peer;
        self
    }
}

impl<S> Layer<S> for DiagLayer {
    type Service = DiagService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DiagService {
            inner,
            layer: self.clone(),
        }
    }
}
