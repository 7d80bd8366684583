//! [`DiagAxumLayer`]: diag's middleware for axum, with axum's own [`Body`] on both sides.
//!
//! Inside a [`Router`](axum::Router), every route takes and returns [`Body`]. The generic
//! [`DiagLayer`](diag_tower::DiagLayer) changes the body type (`DiagBody<Body>`), so axum
//! boxes the body again (`Body::new`) on the way in and out, and each `Request::map`
//! moves the request head twice: about 60 ns a request. Only a request in diagnostic
//! mode needs its bodies wrapped (to copy them into the capture), and a gRPC call whose
//! status comes in the trailers its response body (to read them); this layer follows
//! the adapter sequence of `diag_core::request` with axum's types and hands every other
//! request's `Body` through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use diag_core::Diag;
use diag_core::request::{RequestGuard, RequestView};
use diag_tower::{DiagBody, HttpHeaders, HttpHeadersMut};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::{connect_info_peer, matched_route};

/// The layer [`DiagRouterExt::with_diag`](crate::DiagRouterExt::with_diag) and
/// [`layer`](crate::layer) apply: what the generic [`DiagLayer`](diag_tower::DiagLayer)
/// does (route templates from `MatchedPath`, peer from `ConnectInfo`; gRPC calls, such as a tonic service
/// merged with `Routes::into_axum_router`, under their method path and gRPC status),
/// with bodies kept as axum's [`Body`] unless a debug request taps them or a gRPC
/// call's trailers must be read.
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
    diag: Diag,
}

impl DiagAxumLayer {
    /// The layer for `diag`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use axum::{Router, body::Body, routing::get};
    /// use tower::ServiceExt;
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hi" }))
    ///     .layer(diag_axum::DiagAxumLayer::new(&diag));
    /// let res = app.oneshot(http::Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    /// assert!(res.headers().contains_key("traceparent"));
    /// # }
    /// ```
    pub fn new(diag: &Diag) -> Self {
        DiagAxumLayer { diag: diag.clone() }
    }
}

impl<S> Layer<S> for DiagAxumLayer {
    type Service = DiagAxumService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DiagAxumService {
            inner,
            diag: self.diag.clone(),
        }
    }
}

/// The service [`DiagAxumLayer`] produces.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use axum::body::Body;
/// use diag_axum::{DiagAxumLayer, DiagAxumService};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let echo: DiagAxumService<_> =
///     DiagAxumLayer::new(&diag).layer(service_fn(|req: http::Request<Body>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
///     }));
/// let req = http::Request::post("/echo").body(Body::from("ping")).unwrap();
/// let res = echo.oneshot(req).await.unwrap();
/// assert_eq!(axum::body::to_bytes(res.into_body(), 1024).await.unwrap(), "ping");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DiagAxumService<S> {
    inner: S,
    diag: Diag,
}

/// `body` wrapped in the capture's tap, boxed as a [`Body`], when there is a tap.
fn tapped(body: Body, tap: Option<diag_core::debug::BodyTap>) -> Body {
    match tap {
        None => body,
        Some(tap) => Body::new(SameErrors {
            inner: DiagBody::tapped(body, Some(tap)),
        }),
    }
}

pin_project! {
    /// A wrapped axum body whose errors reach its reader as without the wrapper.
    ///
    /// `Body::new` boxes the errors of any body but a `Body` in one more `axum::Error`,
    /// and axum's extractors look through exactly two of them for a
    /// `LengthLimitError` (the one of `RequestBodyLimitLayer`, say, outside diag): a
    /// body over the limit was answered 400 instead of 413 in diagnostic mode. The inner
    /// `axum::Error` is unwrapped here, so `Body::new` adds back the one it removes.
    struct SameErrors<B> {
        #[pin]
        inner: B,
    }
}

impl<B: HttpBody<Error = axum::Error>> HttpBody for SameErrors<B> {
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project()
            .inner
            .poll_frame(cx)
            .map_err(axum::Error::into_inner)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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
        if !self.diag.watches(req.uri().path()) {
            return AxumResponseFuture {
                inner: self.inner.call(req),
                guard: None,
            };
        }
        let guard = self.diag.begin_http(&RequestView {
            method: req.method().as_str(),
            route: matched_route(req.extensions()),
            uri: req.uri().path_and_query().map_or("/", |pq| pq.as_str()),
            headers: &HttpHeaders(req.headers()),
            peer: &|| connect_info_peer(req.extensions()),
        });
        let req = match guard.request_tap() {
            None => req,
            tap => req.map(|body| tapped(body, tap)),
        };
        let inner = {
            // The handler may run code synchronously in `call`: it belongs to the request.
            let _entered = guard.enter();
            self.inner.call(req)
        };
        AxumResponseFuture {
            inner,
            guard: Some(guard),
        }
    }
}

pin_project! {
    /// The response future of [`DiagAxumService`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use axum::body::Body;
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let mut svc = diag_axum::DiagAxumLayer::new(&diag).layer(service_fn(
    ///     |_req: http::Request<Body>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("hi")))
    ///     },
    /// ));
    /// let future: diag_axum::AxumResponseFuture<_> =
    ///     svc.ready().await.unwrap().call(http::Request::new(Body::empty()));
    /// let res = future.await.unwrap();
    /// assert!(res.headers().contains_key("traceparent"));
    /// # }
    /// ```
    pub struct AxumResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
    }
}

impl<F, E> Future for AxumResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        RequestGuard::poll_response(
            this.guard,
            || this.inner.poll(cx),
            |guard, mut res| {
                let Some(guard) = guard else { return res };
                let status = res.status().as_u16();
                match guard.finish_http(status, &mut HttpHeadersMut(res.headers_mut())) {
                    (None, None) => res,
                    (tap, call) => res.map(|body| {
                        Body::new(SameErrors {
                            inner: DiagBody::tapped(body, tap).with_grpc(call),
                        })
                    }),
                }
            },
        )
    }
}
