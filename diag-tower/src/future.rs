use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use diag_core::request::RequestGuard;
use http::Response;
use pin_project_lite::pin_project;

use crate::{DiagBody, HttpHeadersMut};

pin_project! {
    /// The response future of [`DiagService`](crate::DiagService).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let mut svc = diag_tower::DiagLayer::new(&diag).layer(service_fn(
    ///     |_req: http::Request<diag_tower::DiagBody<String>>| async {
    ///         let res = http::Response::builder().status(404).body(String::new()).unwrap();
    ///         Ok::<_, std::convert::Infallible>(res)
    ///     },
    /// ));
    /// let future: diag_tower::ResponseFuture<_> =
    ///     svc.ready().await.unwrap().call(http::Request::new(String::new()));
    /// let res = future.await.unwrap();
    /// assert_eq!(res.status(), 404);
    /// assert!(res.headers().contains_key("traceparent"));
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn passthrough(inner: F) -> Self {
        ResponseFuture { inner, guard: None }
    }

    pub(crate) fn watched(inner: F, guard: RequestGuard) -> Self {
        ResponseFuture {
            inner,
            guard: Some(guard),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<Response<DiagBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        RequestGuard::poll_response(
            this.guard,
            || this.inner.poll(cx),
            |guard, mut res| {
                let Some(guard) = guard else {
                    return res.map(DiagBody::new);
                };
                let status = res.status().as_u16();
                let (tap, call) = guard.finish_http(status, &mut HttpHeadersMut(res.headers_mut()));
                res.map(|body| DiagBody::tapped(body, tap).with_grpc(call))
            },
        )
    }
}
