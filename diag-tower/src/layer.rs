use std::net::SocketAddr;

use diag_core::Diag;
use tower::Layer;

use crate::DiagService;

/// Finds the route template of a request in its extensions (axum's `MatchedPath`, for
/// example). `None` means the request matched no route.
///
/// ```
/// /// The template your router stored in the request.
/// #[derive(Clone)]
/// struct Template(&'static str);
///
/// let route: diag_tower::RouteFn = |ext| ext.get::<Template>().map(|t| t.0);
/// let mut ext = http::Extensions::new();
/// assert_eq!(route(&ext), None);
/// ext.insert(Template("/users/{id}"));
/// assert_eq!(route(&ext), Some("/users/{id}"));
/// ```
pub type RouteFn = for<'a> fn(&'a http::Extensions) -> Option<&'a str>;

/// Finds the TCP peer of a request in its extensions (axum's `ConnectInfo`, for example).
///
/// ```
/// use std::net::SocketAddr;
///
/// /// What your server stored about the connection.
/// #[derive(Clone)]
/// struct Conn {
///     remote: SocketAddr,
/// }
///
/// let peer: diag_tower::PeerFn = |ext| ext.get::<Conn>().map(|c| c.remote);
/// let mut ext = http::Extensions::new();
/// ext.insert(Conn { remote: "203.0.113.7:41000".parse().unwrap() });
/// assert_eq!(peer(&ext), Some("203.0.113.7:41000".parse().unwrap()));
/// ```
pub type PeerFn = fn(&http::Extensions) -> Option<SocketAddr>;

/// Watches every request of the wrapped service: trace context, RED metrics, and
/// diagnostic mode for requests that carry a valid `X-Debug` credential.
///
/// Requests and response bodies pass through untouched: the handler sees exactly the
/// bytes the client sent.
///
/// ```
/// /// The template your router matched, stored in the request before this layer.
/// #[derive(Clone, Copy)]
/// struct Route(&'static str);
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let layer = diag_tower::DiagLayer::new(&diag)
///     .with_route(|ext| ext.get::<Route>().map(|r| r.0))
///     .with_peer(|ext| ext.get::<std::net::SocketAddr>().copied());
/// # let _ = layer;
/// ```
///
/// # gRPC
///
/// gRPC calls (a `POST` with a gRPC `content-type`, see
/// [`is_grpc_request`](diag_core::request::is_grpc_request)) are recognised by
/// themselves, so a tonic server, a router that serves gRPC beside plain HTTP, or
/// gRPC-Web through tonic-web's `GrpcWebLayer` (added before this layer, so that this
/// one sees the translated calls) needs nothing more: the route of a call is its method path (`/helloworld.Greeter/SayHello`)
/// and its `status` label the gRPC status name (`OK`, `NOT_FOUND`, `UNAVAILABLE`), read
/// from the response head or, after the last message, from the trailers; the call's
/// duration runs until then. A method becomes a label only once a call to it has
/// succeeded (or its answer starts streaming), so clients calling made-up methods cannot
/// mint series, even through an interceptor that answers them (see [`Diag::begin_grpc`](diag_core::Diag::begin_grpc)).
/// A route template from [`with_route`](Self::with_route) without a catch-all (`{*...}`)
/// is kept for a gRPC call too, with its gRPC status.
/// tonic keeps the peer address in a `TcpConnectInfo` extension: give it to
/// [`with_peer`](Self::with_peer) for `X-Debug: 1` from trusted networks. A port that
/// serves only gRPC cannot serve diag's endpoints: give them their own listener
/// ([`admin::serve`](crate::admin::serve)).
///
/// ```no_run
/// # async fn serve(diag: diag_core::Diag, greeter: impl tonic::server::NamedService
/// #     + tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>,
/// #       Error = std::convert::Infallible, Future: Send + 'static> + Clone + Send + Sync + 'static)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use tonic::transport::server::TcpConnectInfo;
/// diag_tower::admin::serve(&diag, "127.0.0.1:9901".parse()?).await?;
/// let layer = diag_tower::DiagLayer::new(&diag)
///     .with_peer(|ext| ext.get::<TcpConnectInfo>()?.remote_addr());
/// tonic::transport::Server::builder()
///     .layer(layer)
///     .add_service(greeter)
///     .serve("127.0.0.1:50051".parse()?)
///     .await?;
/// # Ok(()) }
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let svc = diag_tower::DiagLayer::new(&diag).layer(service_fn(
    ///     |_req: http::Request<diag_tower::DiagBody<String>>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
    ///     },
    /// ));
    /// let res = svc.oneshot(http::Request::new(String::new())).await.unwrap();
    /// assert!(res.headers().contains_key("traceparent"));
    /// # }
    /// ```
    pub fn new(diag: &Diag) -> Self {
        DiagLayer {
            diag: diag.clone(),
            route: |_| None,
            peer: |ext| ext.get::<SocketAddr>().copied(),
        }
    }

    /// How to find the route template (never the raw path: it would explode metric
    /// cardinality). It is read once, from the request's extensions, when the request
    /// reaches this layer: whatever knows the template must put it there before (outside)
    /// `DiagLayer`. A template the handler inserts comes too late, and the request counts
    /// as `unmatched`. With a hand-written router on hyper, match in the service you give
    /// `serve_connection` (see the crate docs' "With hyper").
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # let handler = service_fn(|_req: http::Request<diag_tower::DiagBody<String>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    ///
    /// #[derive(Clone)]
    /// struct Template(&'static str);
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let layer = diag_tower::DiagLayer::new(&diag)
    ///     .with_route(|ext| ext.get::<Template>().map(|t| t.0));
    /// let mut req = http::Request::get("/users/7").body(String::new()).unwrap();
    /// req.extensions_mut().insert(Template("/users/{id}")); // what your router matched
    /// layer.layer(handler).oneshot(req).await.unwrap();
    ///
    /// let scrape = diag_core::EndpointRequest {
    ///     method: "GET".into(),
    ///     path: "/metrics".into(),
    ///     ..Default::default()
    /// };
    /// let metrics = String::from_utf8(diag.serve(scrape).await.body).unwrap();
    /// assert!(metrics.contains(r#"route="/users/{id}""#));
    /// # }
    /// ```
    pub fn with_route(mut self, route: RouteFn) -> Self {
        self.route = route;
        self
    }

    /// How to find the TCP peer address: it decides `X-Debug: 1` from trusted networks
    /// and whether `X-Forwarded-For` comes from a trusted proxy. By default, a
    /// `SocketAddr` extension; hyper sets none by itself (insert the accepted
    /// connection's address, as the crate docs' "With hyper" does).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::net::SocketAddr;
    /// use tower::{Layer, ServiceExt, service_fn};
    /// # let handler = service_fn(|_req: http::Request<diag_tower::DiagBody<String>>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    ///
    /// #[derive(Clone)]
    /// struct Conn(SocketAddr);
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let layer =
    ///     diag_tower::DiagLayer::new(&diag).with_peer(|ext| ext.get::<Conn>().map(|c| c.0));
    /// let mut req = http::Request::get("/").header("x-debug", "1").body(String::new()).unwrap();
    /// req.extensions_mut().insert(Conn(SocketAddr::from(([127, 0, 0, 1], 41000))));
    /// let res = layer.layer(handler).oneshot(req).await.unwrap();
    /// // `X-Debug: 1` is honoured from loopback (the default trusted network).
    /// assert!(res.headers().contains_key("x-debug-id"));
    /// # }
    /// ```
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
