//! # diag-tower
//!
//! [diag](diag_core) for any [`tower::Service`] over `http` 1.x requests (axum, hyper,
//! tonic): [`DiagLayer`] watches every request, [`DiagEndpoints`] serves the diagnostics
//! endpoints as a tower service, and [`admin::serve`] runs them on a listener of their own.
//! On the client side, [`PropagateLayer`] carries the current request's trace to the
//! services it calls.
//!
//! ```
//! use diag_tower::DiagLayer;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let diag = diag_core::Diag::builder().service("api").build().unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(DiagLayer::new(diag.clone()))
//!     .service(service_fn(|_req: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
//!     }));
//! # let _ = svc;
//! ```

#![warn(missing_docs)]

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
