use std::task::{Context, Poll};

use diag_core::request::RequestView;
use http::{Request, Response};

use crate::{DiagBody, DiagLayer, HttpHeaders, ResponseFuture};

/// The service [`DiagLayer`] produces.
#[derive(Clone, Debug)]
pub struct DiagService<S> {
    pub(crate) inner: S,
    pub(crate) layer: DiagLayer,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for DiagService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<DiagBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let diag = &self.layer.diag;
        if diag.is_disabled() {
            return ResponseFuture::passthrough(self.inner.call(req));
        }
        let headers = HttpHeaders(req.headers());
        let guard = diag.begin(&RequestView {
            method: req.method().as_str(),
            route: (self.layer.route)(req.extensions()),
            headers: &headers,
            peer: (self.layer.peer)(req.extensions()),
        });
        let future = {
            // The handler may run code synchronously in `call`: it belongs to the request.
            let _entered = guard.enter();
            self.inner.call(req)
        };
        ResponseFuture::watched(future, guard)
    }
}
