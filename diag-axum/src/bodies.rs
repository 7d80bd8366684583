//! [`DiagAxumLayer`]: diag's layer with axum's own [`Body`] on both sides.
//!
//! Inside a [`Router`](axum::Router), every route takes and returns [`Body`]; a service
//! that changes the body type makes axum box the body again (`Body::new`) on the way in
//! and on the way out, two allocations per request. Only a request in diagnostic mode
//! needs its bodies wrapped (to copy them into the capture), so this layer hands the
//! `Body` through unchanged otherwise.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use diag_core::Diag;
use diag_tower::{DiagBody, DiagLayer, DiagService};
use http::{Request, Response};
use tower::{Layer, Service};

/// The layer [`DiagRouterExt::with_diag`](crate::DiagRouterExt::with_diag) applies:
/// [`layer`](crate::layer)'s [`DiagLayer`] (route templates from `MatchedPath`, peer from
/// `ConnectInfo`), with bodies kept as axum's [`Body`] unless a debug request taps them.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hi" }))
///     .layer(diag_axum::DiagAxumLayer::new(&diag));
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct DiagAxumLayer {
    inner: DiagLayer,
}

impl DiagAxumLayer {
    /// The layer for `diag`.
    pub fn new(diag: &Diag) -> Self {
        DiagAxumLayer {
            inner: crate::layer(diag),
        }
    }
}

impl<S> Layer<S> for DiagAxumLayer {
    type Service = DiagAxumService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DiagAxumService {
            inner: self.inner.layer(AxumBodies { inner }),
        }
    }
}

/// The service [`DiagAxumLayer`] produces.
#[derive(Clone, Debug)]
pub struct DiagAxumService<S> {
    inner: DiagService<AxumBodies<S>>,
}

/// Between diag's service and the route: the request body back as a plain [`Body`].
#[derive(Clone, Debug)]
pub struct AxumBodies<S> {
    inner: S,
}

/// `body` as a [`Body`]: itself when untapped, boxed only when a debug request copies it.
fn axum_body(body: DiagBody<Body>) -> Body {
    match body.into_untapped() {
        Ok(body) => body,
        Err(tapped) => Body::new(tapped),
    }
}

impl<S> Service<Request<DiagBody<Body>>> for AxumBodies<S>
where
    S: Service<Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<DiagBody<Body>>) -> Self::Future {
        self.inner.call(req.map(axum_body))
    }
}

impl<S> Service<Request<Body>> for DiagAxumService<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = AxumResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        AxumResponseFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`DiagAxumService`].
    pub struct AxumResponseFuture<F> {
        #[pin]
        inner: diag_tower::ResponseFuture<F>,
    }
}

impl<F, E> Future for AxumResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map(|r| r.map(|res| res.map(axum_body)))
    }
}
