//! [`PropagateLayer`]: the current request's trace on a tower HTTP client's calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use diag_core::Diag;
use diag_core::metrics::ClientCall;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::instrument::{Instrument, Instrumented};

use crate::headers::TRACEPARENT;

const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// For an HTTP client built on tower (hyper-util's `Client`, a tonic channel, ...):
/// every request sent while the service is working for a request gets that request's
/// `traceparent` ([`diag_core::trace::outgoing_traceparent`]), so the services it calls
/// continue its trace (and record it whenever it is sampled, which a request in
/// diagnostic mode always is), and the `tracestate` its caller sent, if any
/// ([`diag_core::trace::outgoing_tracestate`]), as W3C Trace Context asks of every
/// service that continues a trace. A `traceparent` the caller set is left alone (and
/// then so is `tracestate`: they belong together). Each call
/// also runs in a DEBUG span `http_client` (fields `method`, `host`), so in diagnostic
/// mode the capture's waterfall and `Server-Timing` show how long each call took; at any
/// other time the span is disabled and costs a level check.
///
/// Calls are matched to the request through the thread that makes them: a call made
/// from a task the handler spawned is not (read `outgoing_traceparent` before spawning
/// and set the header yourself). The `X-Debug` credential is never forwarded.
///
/// ```
/// use diag_tower::PropagateLayer;
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// // Stands in for hyper_util's Client: answers with the traceparent it was sent.
/// let mut client = ServiceBuilder::new().layer(PropagateLayer::new()).service(service_fn(
///     |req: http::Request<String>| async move {
///         let sent = req.headers().get("traceparent").cloned();
///         Ok::<_, std::convert::Infallible>(http::Response::new(sent))
///     },
/// ));
/// let req = http::Request::get("http://pricing.internal/quote").body(String::new()).unwrap();
/// // Outside a request there is nothing to propagate.
/// let res = client.ready().await.unwrap().call(req).await.unwrap();
/// assert_eq!(res.into_body(), None);
/// # });
/// ```
#[derive(Clone, Debug, Default)]
pub struct PropagateLayer {
    metrics: Option<Diag>,
}

impl PropagateLayer {
    /// The layer.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    ///
    /// let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    /// let client = tower::ServiceBuilder::new()
    ///     .layer(diag_tower::PropagateLayer::new())
    ///     .service(http);
    /// # let _ = client;
    /// ```
    pub fn new() -> Self {
        PropagateLayer::default()
    }

    /// Also records each call in `diag`'s `http_client_request_duration_seconds`
    /// (`method`, `server_address`, `status`; see [`Diag::client_call`]), with the
    /// request it was made for as exemplar: which dependency is slow or failing, and
    /// for which request.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let pricing = diag_tower::PropagateLayer::new().with_metrics(&diag).layer(service_fn(
    ///     |_req: http::Request<()>| async {
    ///         let res = http::Response::builder().status(503).body(()).unwrap();
    ///         Ok::<_, std::convert::Infallible>(res)
    ///     },
    /// ));
    /// let req = http::Request::get("http://pricing:8080/quote/7").body(()).unwrap();
    /// assert_eq!(pricing.oneshot(req).await.unwrap().status(), 503);
    ///
    /// let scrape = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// let text = String::from_utf8(diag.serve(scrape).await.body).unwrap();
    /// assert!(text.contains(r#"_count{method="GET",server_address="pricing:8080",status="503"} 1"#));
    /// # }
    /// ```
    pub fn with_metrics(mut self, diag: &Diag) -> Self {
        self.metrics = Some(diag.clone());
        self
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`PropagateLayer`] produces.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_tower::{DiagBody, DiagLayer, Propagate, PropagateLayer};
/// use tower::{Layer, ServiceExt, service_fn};
/// # type Infallible = std::convert::Infallible;
///
/// // Stands in for the pricing service: answers with the traceparent it was sent.
/// let pricing: Propagate<_> = PropagateLayer::new().layer(service_fn(|req: http::Request<()>| {
///     async move { Ok::<_, Infallible>(http::Response::new(req.headers()["traceparent"].clone())) }
/// }));
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let api = DiagLayer::new(&diag).layer(service_fn(move |_req: http::Request<DiagBody<String>>| {
///     let pricing = pricing.clone();
///     async move {
///         let sent = pricing.oneshot(http::Request::new(())).await?.into_body();
///         let res = http::Response::builder().header("x-sent", sent);
///         Ok::<_, Infallible>(res.body(String::new()).unwrap())
///     }
/// }));
/// let res = api.oneshot(http::Request::new(String::new())).await.unwrap();
/// // The call pricing got continued this request's trace.
/// assert_eq!(res.headers()["x-sent"], res.headers()["traceparent"]);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Propagate<S> {
    inner: S,
    metrics: Option<Diag>,
}

/// `host`, or `host:port` when the URI names a port: the `server_address` label (never
/// user information, never the path).
fn server_address(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("unknown");
    match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

impl<S, B, ResBody> Service<Request<B>> for Propagate<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = PropagateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(tp) = diag_core::trace::outgoing_traceparent()
            && !req.headers().contains_key(TRACEPARENT)
            // Lower-case hex and `-` only: always a valid header value.
            && let Ok(value) = HeaderValue::from_bytes(tp.as_bytes())
        {
            req.headers_mut().insert(TRACEPARENT, value);
            // Checked to be visible ASCII when it arrived: a valid header value.
            if let Some(state) = diag_core::trace::outgoing_tracestate()
                && let Ok(value) = HeaderValue::from_str(state.as_str())
            {
                req.headers_mut().insert(TRACESTATE, value);
            }
        }
        let span = tracing::debug_span!(
            "http_client",
            method = req.method().as_str(),
            host = req.uri().host().unwrap_or(""),
        );
        let call = self
            .metrics
            .as_ref()
            .map(|diag| diag.client_call(req.method().as_str(), &server_address(req.uri())));
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        PropagateFuture {
            inner: future.instrument(span),
            call,
        }
    }
}

pin_project! {
    /// The response future of [`Propagate`]: the call, in its `http_client` span, and
    /// its timing when the layer records metrics.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower::{Layer, Service, service_fn};
    ///
    /// let mut client = diag_tower::PropagateLayer::new().layer(service_fn(
    ///     |_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) },
    /// ));
    /// let future: diag_tower::PropagateFuture<_> = client.call(http::Request::new(()));
    /// assert_eq!(future.await.unwrap().status(), 200);
    /// # }
    /// ```
    pub struct PropagateFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        call: Option<ClientCall>,
    }
}

impl<F, ResBody, E> Future for PropagateFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Some(call) = this.call.take() {
            match &out {
                Ok(res) => call.finish(res.status().as_u16()),
                Err(_) => call.fail(),
            }
        }
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diag_core::request::RequestScope;
    use diag_core::trace::{SpanId, TraceContext, TraceId};
    use tower::service_fn;

    /// The `traceparent` a client behind the layer is sent for `req`, called while
    /// `scope` (if any) is the current request.
    async fn sent(scope: Option<&RequestScope>, req: Request<()>) -> Option<String> {
        sent_both(scope, req).await.0
    }

    /// The `traceparent` and `tracestate` a client behind the layer is sent.
    async fn sent_both(
        scope: Option<&RequestScope>,
        req: Request<()>,
    ) -> (Option<String>, Option<String>) {
        let mut client = PropagateLayer::new().layer(service_fn(|req: Request<()>| async move {
            let get = |name| {
                req.headers()
                    .get(name)
                    .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
            };
            Ok::<_, std::convert::Infallible>(http::Response::new((
                get(TRACEPARENT),
                get(TRACESTATE),
            )))
        }));
        let future = {
            let _entered = scope.map(RequestScope::enter);
            client.call(req)
        };
        future.await.unwrap().into_body()
    }

    fn scope(sampled: bool) -> RequestScope {
        RequestScope::new(
            TraceContext {
                trace_id: TraceId([0xab; 16]),
                span_id: SpanId([0x12; 8]),
                sampled,
            },
            None,
            None,
        )
    }

    #[tokio::test]
    async fn a_call_made_for_a_request_carries_its_trace() {
        let req = || Request::get("http://pricing.internal/").body(()).unwrap();
        let tp = |flags| format!("00-{}-{}-{flags}", "ab".repeat(16), "12".repeat(8));
        assert_eq!(sent(Some(&scope(true)), req()).await, Some(tp("01")));
        assert_eq!(sent(Some(&scope(false)), req()).await, Some(tp("00")));
        assert_eq!(sent(None, req()).await, None);
    }

    #[tokio::test]
    async fn a_traceparent_the_caller_set_is_kept() {
        let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let req = Request::get("http://pricing.internal/")
            .header(TRACEPARENT, own)
            .body(())
            .unwrap();
        assert_eq!(sent(Some(&scope(true)), req).await.as_deref(), Some(own));
    }

    #[tokio::test]
    async fn the_callers_tracestate_goes_on_with_the_trace() {
        let req = || Request::get("http://pricing.internal/").body(()).unwrap();
        let (state, _) = diag_core::trace::TraceState::parse(b"congo=t61rcWkgMzE")
            .unwrap()
            .unwrap();
        let mut with_state = scope(true);
        with_state.tracestate = Some(state);
        let (tp, ts) = sent_both(Some(&with_state), req()).await;
        assert!(tp.is_some());
        assert_eq!(ts.as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(sent_both(Some(&scope(true)), req()).await.1, None);
        // A caller-set traceparent keeps its own tracestate (none here).
        let own = Request::get("http://pricing.internal/")
            .header(
                TRACEPARENT,
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(())
            .unwrap();
        assert_eq!(sent_both(Some(&with_state), own).await.1, None);
    }
}
