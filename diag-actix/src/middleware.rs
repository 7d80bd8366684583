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
///         .wrap(diag_actix::DiagMiddleware::new(diag.clone()))
///         .configure(diag_actix::configure(diag))
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
    pub fn new(diag: Diag) -> Self {
        DiagMiddleware { diag }
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
            };
        }
        // actix resolves the pattern from its resource map, before routing.
        let route = req.match_pattern();
        let uri = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let guard = self.diag.begin(&RequestView {
            method: req.method().as_str(),
            route: route.as_deref(),
            uri: &uri,
            headers: &ActixHeaders(req.headers()),
            peer: req.peer_addr(),
        });
        if let Some(tap) = guard.request_tap() {
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
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`DiagMiddlewareService`].
    pub struct DiagFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
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
        let Some(guard) = this.guard.as_ref() else {
            return this
                .inner
                .poll(cx)
                .map(|r| r.map(|res| res.map_body(|_, b| DiagActixBody::new(b, None))));
        };
        let result = {
            let _entered = guard.enter();
            std::task::ready!(this.inner.poll(cx))
        };
        let Some(guard) = this.guard.take() else {
            return Poll::Pending;
        };
        Poll::Ready(result.map(|mut res| {
            let status = res.status().as_u16();
            let tap = guard.finish(status, &mut ActixHeadersMut(res.headers_mut()));
            res.map_body(|_, body| DiagActixBody::new(body, tap))
        }))
    }
}

pin_project_lite::pin_project! {
    /// A response body passed through [`DiagMiddleware`]: unchanged, and for a debug
    /// request copied into its capture as it is sent.
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
        let polled = this.inner.poll_next(cx);
        if let (Some(tap), Poll::Ready(item)) = (this.tap.as_mut(), &polled) {
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
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(item) = &polled {
            self.tap.observe(polled_item(item));
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
