//! [`PropagateLayer`]: the current request's trace on a tower HTTP client's calls.

use std::task::{Context, Poll};

use http::{HeaderValue, Request};
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
///         Ok::<_, std::convert::Infallible>(req.headers().get("traceparent").cloned())
///     },
/// ));
/// let req = http::Request::get("http://pricing.internal/quote").body(String::new()).unwrap();
/// // Outside a request there is nothing to propagate.
/// assert_eq!(client.ready().await.unwrap().call(req).await.unwrap(), None);
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateLayer {
    _private: (),
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
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate { inner }
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
///     async move { Ok::<_, Infallible>(req.headers()["traceparent"].clone()) }
/// }));
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let api = DiagLayer::new(diag).layer(service_fn(move |_req: http::Request<DiagBody<String>>| {
///     let pricing = pricing.clone();
///     async move {
///         let sent = pricing.oneshot(http::Request::new(())).await?;
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
}

impl<S, B> Service<Request<B>> for Propagate<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

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
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        future.instrument(span)
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
            Ok::<_, std::convert::Infallible>((get(TRACEPARENT), get(TRACESTATE)))
        }));
        let future = {
            let _entered = scope.map(RequestScope::enter);
            client.call(req)
        };
        future.await.unwrap()
    }

    fn scope(sampled: bool) -> RequestScope {
        RequestScope {
            trace: TraceContext {
                trace_id: TraceId([0xab; 16]),
                span_id: SpanId([0x12; 8]),
                sampled,
            },
            debug: None,
            tracestate: None,
        }
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
        let with_state = RequestScope {
            tracestate: Some(state),
            ..scope(true)
        };
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
