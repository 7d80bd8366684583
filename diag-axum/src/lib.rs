//! # diag-axum
//!
//! [diag](diag_core) for axum in one line: [`DiagRouterExt::with_diag`] wraps every route
//! in the [`DiagAxumLayer`] (route templates from [`MatchedPath`]) and
//! mounts the diagnostics endpoints (`/metrics`, `/debug`, `/debug/...`).
//!
//! One dependency: the core comes with it, as [`diag_axum::diag_core`](diag_core) (with
//! [`Diag`] at the top), and the admin listener as [`diag_axum::admin`](admin).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use diag_axum::DiagRouterExt;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let diag = diag_axum::Diag::from_env()?.service("checkout").build()?;
//! let app = Router::new()
//!     .route("/products/{id}", get(|| async { "a product" }))
//!     .with_diag(&diag);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // ConnectInfo gives diag the peer address (loopback-only access without a token).
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod layer;

pub use layer::{AxumResponseFuture, DiagAxumLayer, DiagAxumService};

/// diag's framework-neutral core, so that this crate is the only dependency a service
/// needs: `use diag_axum::diag_core;` and every `diag_core::...` path works.
pub use diag_core;
/// The handle and its builder, from the core.
pub use diag_core::{ConfigError, Diag, DiagBuilder, shutdown_signal};
/// The diagnostics endpoints on a listener of their own (diag-tower's).
pub use diag_tower::admin;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath};
use diag_tower::DiagEndpoints;

/// The route template axum matched, from [`MatchedPath`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::{Router, body::Body, extract::Request, routing::get};
/// use tower::ServiceExt;
///
/// let app: Router = Router::new().route("/users/{id}", get(|req: Request| async move {
///     diag_axum::matched_route(req.extensions()).unwrap_or("none").to_owned()
/// }));
/// let res = app.oneshot(Request::get("/users/7").body(Body::empty()).unwrap()).await.unwrap();
/// let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
/// assert_eq!(body, "/users/{id}");
/// # }
/// ```
pub fn matched_route(ext: &http::Extensions) -> Option<&str> {
    ext.get::<MatchedPath>().map(MatchedPath::as_str)
}

/// The peer address from axum's [`ConnectInfo`], or a bare `SocketAddr` extension.
///
/// ```
/// use axum::extract::ConnectInfo;
/// use std::net::SocketAddr;
///
/// let peer: SocketAddr = "203.0.113.7:41000".parse().unwrap();
/// let mut ext = http::Extensions::new();
/// assert_eq!(diag_axum::connect_info_peer(&ext), None);
/// // What `into_make_service_with_connect_info::<SocketAddr>()` gives every request.
/// ext.insert(ConnectInfo(peer));
/// assert_eq!(diag_axum::connect_info_peer(&ext), Some(peer));
/// ```
pub fn connect_info_peer(ext: &http::Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<SocketAddr>().copied())
}

/// diag's layer for an axum [`Router`] whose endpoints you mount yourself (what
/// [`DiagRouterExt::with_diag`] applies): route templates from [`MatchedPath`], the peer
/// from [`ConnectInfo`], and axum's own [`Body`](axum::body::Body) kept on both sides.
///
/// Apply it with [`Router::layer`] after adding your routes, so [`MatchedPath`] is set.
/// (The generic [`DiagLayer`](diag_tower::DiagLayer) works inside axum too, but axum
/// boxes its `DiagBody` into a `Body` again, and the extra error wrapping hides a
/// `RequestBodyLimitLayer`'s 413 from axum's extractors: they answer 400.)
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::{Router, body::Body, routing::get};
/// use tower::ServiceExt;
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "a user" }))
///     .layer(diag_axum::layer(&diag));
/// app.oneshot(http::Request::get("/users/7").body(Body::empty()).unwrap()).await.unwrap();
///
/// # let scrape = diag_core::EndpointRequest {
/// #     method: "GET".into(), path: "/metrics".into(), ..Default::default()
/// # };
/// let metrics = String::from_utf8(diag.serve(scrape).await.body).unwrap();
/// assert!(metrics.contains(r#"route="/users/{id}""#));
/// # }
/// ```
pub fn layer(diag: &Diag) -> DiagAxumLayer {
    DiagAxumLayer::new(diag)
}

/// A router holding only the diagnostics endpoints, to merge into your own or to serve
/// on a separate listener: diag's paths ([`diag_core::endpoint::roots`]) and what is below
/// them, each on its own, so any other `/debug/...` path is the service's (its own route,
/// or its fallback).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::body::Body;
/// use tower::ServiceExt;
///
/// let diag = diag_core::Diag::builder().token("t0k").build().unwrap();
/// let app: axum::Router = diag_axum::endpoints(&diag);
/// let get = |uri: &str| http::Request::get(uri).body(Body::empty()).unwrap();
/// let state = app.clone().oneshot(get("/debug/state")).await.unwrap();
/// assert_eq!(state.status(), 401, "diag's, behind its token");
/// let other = app.oneshot(get("/debug/pprof")).await.unwrap();
/// assert_eq!(other.status(), 404, "not diag's: the router's fallback");
/// assert!(other.headers().get("www-authenticate").is_none());
/// # }
/// ```
pub fn endpoints<S: Clone + Send + Sync + 'static>(diag: &Diag) -> Router<S> {
    let svc = DiagEndpoints::new(diag).with_peer(connect_info_peer);
    let mut router = Router::new();
    for (root, below_is_ours) in diag_core::endpoint::roots() {
        router = router
            .route_service(root, svc.clone())
            .route_service(&format!("{root}/"), svc.clone());
        // Nothing below `/metrics` or `/debug` itself: a service's `/metrics/{job}`
        // still mounts.
        if below_is_ours {
            router = router.route_service(&format!("{root}/{{*rest}}"), svc.clone());
        }
    }
    router
}

/// One-line setup on an axum [`Router`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::{Router, body::Body, routing::get};
/// use diag_axum::DiagRouterExt;
/// use tower::ServiceExt;
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let app: Router = Router::new().route("/", get(|| async { "hi" })).with_diag(&diag);
/// // The endpoints are mounted; `/metrics` is public by default.
/// let scrape = http::Request::get("/metrics").body(Body::empty()).unwrap();
/// assert_eq!(app.oneshot(scrape).await.unwrap().status(), 200);
/// # }
/// ```
pub trait DiagRouterExt {
    /// Mounts the endpoints and wraps every route added so far, and the fallback, in
    /// diag's layer (which does not count diag's own endpoints as traffic).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use axum::{Router, body::Body, routing::get};
    /// use diag_axum::DiagRouterExt;
    /// use tower::ServiceExt;
    /// # let get_req = |uri| http::Request::get(uri).body(Body::empty()).unwrap();
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let app: Router = Router::new().route("/", get(|| async { "hi" })).with_diag(&diag);
    /// let res = app.clone().oneshot(get_req("/nowhere")).await.unwrap();
    /// assert_eq!(res.status(), 404);
    /// assert!(res.headers().contains_key("traceparent"), "the fallback is watched too");
    ///
    /// let scrape = app.oneshot(get_req("/metrics")).await.unwrap();
    /// let metrics = axum::body::to_bytes(scrape.into_body(), 1 << 20).await.unwrap();
    /// assert!(String::from_utf8_lossy(&metrics).contains(r#"route="unmatched",status="404""#));
    /// # }
    /// ```
    fn with_diag(self, diag: &Diag) -> Self;
}

impl<S: Clone + Send + Sync + 'static> DiagRouterExt for Router<S> {
    fn with_diag(self, diag: &Diag) -> Self {
        // The service's router merged into the endpoints', not the other way: axum keeps
        // the fallback of the router merged in when both have the default one, so the
        // service's (with the layers it applied before this call) keeps answering
        // unmatched paths. Then diag's layer over all of it, so those are counted too;
        // it passes diag's own endpoints straight through.
        endpoints(diag).merge(self).layer(DiagAxumLayer::new(diag))
    }
}
