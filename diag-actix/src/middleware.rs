use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::HttpMessage;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::web::Bytes;
use diag_core::Diag;
use diag_core::body::Polled;
use diag_core::debug::BodyTap;
use diag_core::request::{RequestGuard, RequestView};
use futures_util::Stream;

use crate::{ActixHeaders, ActixHeadersMut};

/// actix-web middleware: trace context, RED metrics per route pattern, and diagnostic
/// mode for requests that carry a valid `X-Debug` credential. Bodies pass through
/// untouched; diag's own endpoints are not watched.
///
/// ```
/// # #[actix_web::main] async fn main() {
/// use actix_web::{App, test, web};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let app = test::init_service(
///     App::new()
///         .wrap(diag_actix::DiagMiddleware::new(&diag))
///         .configure(diag_actix::configure(&diag))
///         .route("/users/{id}", web::get().to(|| async { "ok" })),
/// )
/// .await;
/// let res = test::call_service(&app, test::TestRequest::get().uri("/users/7").to_request()).await;
/// assert!(res.headers().contains_key("traceparent"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DiagMiddleware {
    diag: Diag,
}

impl DiagMiddleware {
    /// Middleware reporting to `diag`.
    ///
    /// ```
    /// # #[actix_web::main] async fn main() {
    /// use actix_web::{App, test, web};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let app = test::init_service(
    ///     App::new()
    ///         .wrap(diag_actix::DiagMiddleware::new(&diag))
    ///         .configure(diag_actix::configure(&diag))
    ///         .route("/orders/{id}", web::get().to(|| async { "an order" })),
    /// )
    /// .await;
    /// test::call_service(&app, test::TestRequest::get().uri("/orders/1").to_request()).await;
    /// let scrape = test::TestRequest::get().uri("/metrics").to_request();
    /// let metrics = test::call_and_read_body(&app, scrape).await;
    /// assert!(String::from_utf8_lossy(&metrics).contains(r#"route="/orders/{id}""#));
    /// # }
    /// ```
    pub fn new(diag: &Diag) -> Self {
        DiagMiddleware { diag: diag.clone() }
    }
}

impl<S, B> Transform<S, ServiceRequest> for DiagMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<DiagActixBody<B>>;
    type Error = actix_web::Error;
    type Transform = DiagMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DiagMiddlewareService {
            service: Rc::new(service),
            diag: self.diag.clone(),
        }))
    }
}

/// The service [`DiagMiddleware`] produces.
///
/// ```
/// # #[actix_web::main] async fn main() {
/// use actix_web::dev::{Service, Transform};
/// use actix_web::test::{self, TestRequest};
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let svc: diag_actix::DiagMiddlewareService<_> =
///     diag_actix::DiagMiddleware::new(&diag).new_transform(test::ok_service()).await.unwrap();
/// let res = svc.call(TestRequest::get().uri("/orders/1").to_srv_request()).await.unwrap();
/// assert!(res.headers().contains_key("traceparent"));
/// let res = svc.call(TestRequest::get().uri("/metrics").to_srv_request()).await.unwrap();
/// assert!(!res.headers().contains_key("traceparent"), "a scrape is not traffic");
/// # }
/// ```
#[derive(Debug)]
pub struct DiagMiddlewareService<S> {
    service: Rc<S>,
    diag: Diag,
}

impl<S, B> Service<ServiceRequest> for DiagMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<DiagActixBody<B>>;
    type Error = actix_web::Error;
    type Future = DiagFuture<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        if !self.diag.watches(req.path()) {
            return DiagFuture {
                inner: self.service.call(req),
                guard: None,
                route_after_routing: false,
            };
        }
        // actix resolves the pattern from its resource map, here before routing: a path
        // a `NormalizePath` inside diag rewrites, or one that matches only once
        // percent-decoded, finds its pattern only once routing has run (asked again then).
        let route = req.match_pattern();
        let route_after_routing = route.is_none();
        let guard = self.diag.begin(&RequestView {
            method: req.method().as_str(),
            route: route.as_deref(),
            uri: req.uri().path_and_query().map_or("/", |pq| pq.as_str()),
            headers: &ActixHeaders(req.headers()),
            peer: &|| req.peer_addr(),
        });
        // A request without a body (no `Content-Length`, not chunked) has no payload at
        // all, which no handler polls: its capture's body is over from the start.
        let empty = matches!(req.parts().1, Payload::None).then_some(0);
        if let Some(tap) = guard.request_tap().map(|t| t.with_exact_size(empty)) {
            let payload = req.take_payload();
            req.set_payload(Payload::Stream {
                payload: Box::pin(TappedPayload {
                    inner: payload,
                    tap,
                }),
            });
        }
        let inner = {
            let _entered = guard.enter();
            self.service.call(req)
        };
        DiagFuture {
            inner,
            guard: Some(guard),
            route_after_routing,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`DiagMiddlewareService`].
    ///
    /// ```
    /// # #[actix_web::main] async fn main() {
    /// use actix_web::dev::{Service, Transform};
    /// use actix_web::{http::StatusCode, test};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let inner = test::status_service(StatusCode::NOT_FOUND);
    /// let svc = diag_actix::DiagMiddleware::new(&diag).new_transform(inner).await.unwrap();
    /// let future: diag_actix::DiagFuture<_> = svc.call(test::TestRequest::get().to_srv_request());
    /// let res = future.await.unwrap();
    /// assert_eq!(res.status(), StatusCode::NOT_FOUND);
    /// assert!(res.headers().contains_key("traceparent"));
    /// # }
    /// ```
    pub struct DiagFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
        route_after_routing: bool,
    }
}

impl<F, B> Future for DiagFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<DiagActixBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        RequestGuard::poll_response_with(
            this.guard,
            || this.inner.poll(cx),
            |guard, mut res| {
                let Some(mut guard) = guard else {
                    return res.map_body(|_, body| DiagActixBody::new(body, None));
                };
                if *this.route_after_routing
                    && let Some(route) = res.request().match_pattern()
                {
                    guard.routed(&route);
                }
                let status = res.status().as_u16();
                let tap = guard.finish(status, &mut ActixHeadersMut(res.headers_mut()));
                res.map_body(|_, body| DiagActixBody::new(body, tap))
            },
            // An error from inside diag (a middleware's `ErrorUnauthorized`, say) is
            // answered by actix-web with its `error_response()`, after diag: record that
            // response's status (an error type may override only `error_response`, and
            // its `status_code()` then still says 500). diag cannot make that response
            // itself, with its headers: a `ServiceResponse` needs the `HttpRequest`, and a
            // clone of it kept across the call makes actix's router panic (it routes
            // through `Rc::get_mut`), so the answer carries no diag header.
            |e| e.error_response().status().as_u16(),
        )
    }
}

pin_project_lite::pin_project! {
    /// A response body passed through [`DiagMiddleware`]: unchanged, and for a debug
    /// request copied into its capture as it is sent.
    ///
    /// ```
    /// # #[actix_web::main] async fn main() {
    /// use actix_web::body::{BodySize, MessageBody};
    /// use actix_web::{App, dev::ServiceResponse, test, web};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let app = test::init_service(
    ///     App::new()
    ///         .wrap(diag_actix::DiagMiddleware::new(&diag))
    ///         .route("/", web::get().to(|| async { "hello" })),
    /// )
    /// .await;
    /// let res: ServiceResponse<diag_actix::DiagActixBody<_>> =
    ///     test::call_service(&app, test::TestRequest::get().to_request()).await;
    /// assert_eq!(res.response().body().size(), BodySize::Sized(5)); // the inner body's size
    /// assert_eq!(test::read_body(res).await, "hello");
    /// # }
    /// ```
    pub struct DiagActixBody<B> {
        #[pin]
        inner: B,
        tap: Option<BodyTap>,
    }
}

impl<B: MessageBody> DiagActixBody<B> {
    fn new(inner: B, tap: Option<BodyTap>) -> Self {
        // actix stops polling a body of known size once it is sent (and never polls an
        // empty one), so the tap must know the size to see the end.
        let exact_size = match inner.size() {
            BodySize::None => Some(0),
            BodySize::Sized(n) => Some(n),
            BodySize::Stream => None,
        };
        DiagActixBody {
            tap: tap.map(|tap| tap.with_exact_size(exact_size)),
            inner,
        }
    }
}

impl<B: MessageBody> MessageBody for DiagActixBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let Some(tap) = this.tap.as_mut() else {
            return this.inner.poll_next(cx);
        };
        // A debug request's body: what its stream logs belongs to the request.
        let polled = tap.in_scope(|| this.inner.poll_next(cx));
        if let Poll::Ready(item) = &polled {
            tap.observe(polled_item(item));
        }
        polled
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        let DiagActixBody { inner, mut tap } = self;
        match inner.try_into_bytes() {
            Ok(bytes) => {
                if let Some(tap) = tap.as_mut() {
                    tap.observe(Polled::Data(&bytes));
                    tap.observe(Polled::End);
                }
                Ok(bytes)
            }
            Err(inner) => Err(DiagActixBody { inner, tap }),
        }
    }
}

/// The request payload of a debug request, copied into its capture as the handler reads it.
struct TappedPayload<S> {
    inner: S,
    tap: BodyTap,
}

impl<S, E> Stream for TappedPayload<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // Read in a task of the handler's own, too: what is logged belongs to the request.
        let polled = this
            .tap
            .in_scope(|| Pin::new(&mut this.inner).poll_next(cx));
        if let Poll::Ready(item) = &polled {
            this.tap.observe(polled_item(item));
        }
        polled
    }
}

/// An actix body or payload item, in the tap's words.
fn polled_item<E>(item: &Option<Result<Bytes, E>>) -> Polled<'_> {
    match item {
        Some(Ok(chunk)) => Polled::Data(chunk),
        Some(Err(_)) => Polled::Error,
        None => Polled::End,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::{BodyStream, SizedStream};
    use diag_core::debug::{BodySide, DebugLevel};
    use diag_core::trace::TraceId;

    /// The response tap of a debug request whose head was sent, and its capture id.
    fn response_tap(diag: &Diag) -> (BodyTap, u64) {
        let view = RequestView {
            method: "GET",
            route: Some("/file"),
            uri: "/file",
            headers: &(),
            peer: &|| None,
        };
        let dbg = diag.start_debug(DebugLevel::Debug, &view, TraceId([9; 16]));
        dbg.response_head(200, &());
        let id = dbg.id();
        (BodyTap::new(dbg, BodySide::Response), id)
    }

    /// Whether the capture was stored complete, or `None` while it is not stored.
    fn stored_complete(diag: &Diag, id: u64) -> Option<bool> {
        diag.debug_mode().recorder().get(id).map(|c| c.complete)
    }

    /// One poll, as actix's dispatcher makes it.
    fn poll_once<B: MessageBody + Unpin>(body: &mut B) -> Poll<Option<Result<Bytes, B::Error>>> {
        let waker = futures_util::task::noop_waker();
        Pin::new(body).poll_next(&mut Context::from_waker(&waker))
    }

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_sized_body_is_complete_once_its_bytes_are_sent() {
        let diag = Diag::builder().build().unwrap();
        let (tap, id) = response_tap(&diag);
        let mut body = DiagActixBody::new(SizedStream::new(5, chunks(&[b"abc", b"de"])), Some(tap));
        assert_eq!(body.size(), BodySize::Sized(5));
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(b))) if b == "abc"));
        assert_eq!(stored_complete(&diag, id), None);
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(b))) if b == "de"));
        // actix stops polling here: the final `None` never comes.
        assert_eq!(stored_complete(&diag, id), Some(true));
    }

    #[test]
    fn an_empty_body_is_complete_unpolled_and_a_stream_dropped_early_is_not() {
        let diag = Diag::builder().build().unwrap();
        let (tap, empty) = response_tap(&diag);
        let _body = DiagActixBody::new((), Some(tap));
        assert_eq!(stored_complete(&diag, empty), Some(true));

        let (tap, dropped) = response_tap(&diag);
        let mut body = DiagActixBody::new(BodyStream::new(chunks(&[b"ab", b"cd"])), Some(tap));
        assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(_)))));
        drop(body);
        assert_eq!(stored_complete(&diag, dropped), Some(false));
    }

    #[test]
    fn a_body_taken_whole_is_captured_and_complete() {
        let diag = Diag::builder().build().unwrap();
        let (tap, id) = response_tap(&diag);
        let body = DiagActixBody::new(Bytes::from_static(b"whole"), Some(tap));
        let Ok(bytes) = body.try_into_bytes() else {
            panic!("a `Bytes` body is taken whole");
        };
        assert_eq!(bytes, "whole");
        let capture = diag.debug_mode().recorder().get(id).unwrap();
        assert!(capture.complete);
        let text = capture.response.as_ref().unwrap().body.text.clone();
        assert_eq!(text.as_deref(), Some("whole"));
    }
}
