//! # diag-tower
//!
//! [diag](diag_core) for any [`tower::Service`] over `http` 1.x requests (axum, hyper,
//! tonic): [`DiagLayer`] watches every request, [`DiagEndpoints`] serves the diagnostics
//! endpoints as a tower service, and [`admin::serve`] runs them on a listener of their own.
//! On the client side, [`PropagateLayer`] carries the current request's trace to the
//! services it calls.
//!
//! The wrapped service receives `Request<DiagBody<B>>`: a hyper handler's
//! `Request<Incoming>` becomes `Request<DiagBody<Incoming>>` (the same bytes, teed into a
//! debug request's capture).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use diag_tower::{DiagBody, DiagLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let diag = diag_core::Diag::builder().service("api").build().unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(DiagLayer::new(&diag))
//!     .service(service_fn(|_req: http::Request<DiagBody<String>>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
//!     }));
//! let res = svc.oneshot(http::Request::new(String::new())).await.unwrap();
//! assert!(res.headers().contains_key("traceparent"));
//! # }
//! ```
//!
//! ## With hyper
//!
//! hyper gives a service neither the peer address nor a route template: put both into
//! the request's extensions *before* [`DiagLayer`] sees it. Without the peer, token-less
//! `/debug/*` answers 403 to everyone and `X-Debug: 1` is refused; without a template,
//! every request counts under `route="unmatched"`. Serve [`DiagEndpoints`] for the paths
//! [`Diag::is_endpoint`](diag_core::Diag::is_endpoint) accepts (not your own
//! `/debug/pprof`); inside the layer is fine, it passes them through unwatched.
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use diag_tower::{DiagBody, DiagEndpoints, DiagLayer};
//! use http_body_util::Full;
//! use hyper::body::Incoming;
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::server::conn::auto;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! /// The template your router matched, stored before `DiagLayer` sees the request.
//! #[derive(Clone, Copy)]
//! struct Route(&'static str);
//!
//! fn route_of(method: &http::Method, path: &str) -> Option<&'static str> {
//!     match (method.as_str(), path) {
//!         ("GET", "/healthz") => Some("/healthz"),
//!         ("GET", p) if p.strip_prefix("/users/").is_some_and(|id| id.parse::<u64>().is_ok()) => {
//!             Some("/users/{id}")
//!         }
//!         _ => None,
//!     }
//! }
//!
//! async fn app(req: http::Request<DiagBody<Incoming>>) -> Result<http::Response<Full<Bytes>>, Infallible> {
//!     let body = match req.extensions().get::<Route>().map(|r| r.0) {
//!         Some("/healthz") => "ok",
//!         Some("/users/{id}") => "a user",
//!         _ => "not found",
//!     };
//!     Ok(http::Response::new(Full::from(body)))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//!     let diag = diag_core::Diag::from_env()?.service("users").build()?.leak();
//!     let endpoints = DiagEndpoints::new(&diag);
//!     let owns = diag.clone();
//!     let svc = DiagLayer::new(&diag)
//!         .with_route(|ext| ext.get::<Route>().map(|r| r.0))
//!         .layer(service_fn(move |req: http::Request<DiagBody<Incoming>>| {
//!             let endpoints = owns.is_endpoint(req.uri().path()).then(|| endpoints.clone());
//!             async move {
//!                 match endpoints {
//!                     Some(endpoints) => endpoints.oneshot(req).await,
//!                     None => app(req).await,
//!                 }
//!             }
//!         }));
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     loop {
//!         let (stream, peer) = listener.accept().await?;
//!         let svc = svc.clone();
//!         let per_request = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
//!             // What hyper does not record: the peer (loopback-only access, `X-Debug: 1`)
//!             // and the route template (the `route` label).
//!             req.extensions_mut().insert(peer);
//!             if let Some(template) = route_of(req.method(), req.uri().path()) {
//!                 req.extensions_mut().insert(Route(template));
//!             }
//!             svc.clone().oneshot(req)
//!         });
//!         tokio::spawn(async move {
//!             // HTTP/1 and h2c; hyper-util's `GracefulShutdown` can watch this connection.
//!             let _ = auto::Builder::new(TokioExecutor::new())
//!                 .serve_connection(TokioIo::new(stream), per_request)
//!                 .await;
//!         });
//!     }
//! }
//! ```

#![warn(missing_docs)]

/// diag's framework-neutral core, so that this crate is the only dependency a service
/// needs: `use diag_tower::diag_core;` and every `diag_core::...` path works.
pub use diag_core;
/// The handle and its builder, from the core.
pub use diag_core::{ConfigError, Diag, DiagBuilder, shutdown_signal};

pub mod admin;
mod body;
mod endpoints;
mod future;
mod headers;
mod layer;
mod propagate;
mod service;

pub use body::DiagBody;
pub use endpoints::DiagEndpoints;
pub use future::ResponseFuture;
pub use headers::{HttpHeaders, HttpHeadersMut};
pub use layer::{DiagLayer, PeerFn, RouteFn};
pub use propagate::{Propagate, PropagateFuture, PropagateLayer};
pub use service::DiagService;
