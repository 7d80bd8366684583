//! [`PropagateLayer`]: the current request's trace on a tower HTTP client's calls.

use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use tower::{Layer, Service};
use tracing::instrument::{Instrument, Instrumented};

use crate::headers::TRACEPARENT;

/// For an HTTP client built on tower (hyper-util's `Client`, a tonic channel, ...):
/// every request sent while the service is working for a request gets that request's
/// `traceparent` ([`diag_core::trace::outgoing_traceparent`]), so the services it calls
/// continue its trace (and record it whenever it is sampled, which a request in
/// diagnostic mode always is). A `traceparent` the caller set is left alone. Each call
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
        let mut client = PropagateLayer::new().layer(service_fn(|req: Request<()>| async move {
            let tp = req
                .headers()
                .get(TRACEPARENT)
                .map(|v| v.to_str().unwrap().to_owned());
            Ok::<_, std::convert::Infallible>(tp)
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
}
