use std::task::{Context, Poll};

use diag_core::debug::BodyTap;
use diag_core::request::RequestView;
use http::{Request, Response};

use crate::{DiagBody, DiagLayer, HttpHeaders, ResponseFuture};

/// The service [`DiagLayer`] produces.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_tower::{DiagBody, DiagLayer, DiagService};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let svc: DiagService<_> = DiagLayer::new(&diag).layer(service_fn(
///     |_req: http::Request<DiagBody<String>>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
///     },
/// ));
/// let res = svc.oneshot(http::Request::get("/").body(String::new()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 200);
/// assert!(res.headers().contains_key("traceparent"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DiagService<S> {
    pub(crate) inner: S,
    pub(crate) layer: DiagLayer,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for DiagService<S>
where
    S: tower::Service<Request<DiagBody<ReqBody>>, Response = Response<ResBody>>,
    ReqBody: http_body::Body,
    ResBody: http_body::Body,
{
    type Response = Response<DiagBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let diag = &self.layer.diag;
        if !diag.watches(req.uri().path()) {
            return ResponseFuture::passthrough(self.inner.call(req.map(DiagBody::new)));
        }
        let guard = diag.begin_http(&RequestView {
            method: req.method().as_str(),
            route: (self.layer.route)(req.extensions()),
            uri: req.uri().path_and_query().map_or("/", |pq| pq.as_str()),
            headers: &HttpHeaders(req.headers()),
            peer: &|| (self.layer.peer)(req.extensions()),
        });
        let tap: Option<BodyTap> = guard.request_tap();
        let req = req.map(|body| DiagBody::request(body, tap));
        let future = {
            // The handler may run code synchronously in `call`: it belongs to the request.
            let _entered = guard.enter();
            self.inner.call(req)
        };
        ResponseFuture::watched(future, guard)
    }
}
