//! The gRPC checks every adapter that serves gRPC runs: a tonic service ([`Echo`],
//! `test.Echo`) behind the adapter's middleware, called by a real tonic client over
//! HTTP/2 on loopback. Calls count under their method and gRPC status (from the
//! response head or the trailers), made-up methods never become labels, a streaming
//! call lasts until its trailers, a cancelled one counts as `CANCELLED`, and diagnostic
//! mode works through gRPC metadata.
//!
//! No protobuf code generation: the messages are raw bytes ([`Raw`], a codec of a few
//! lines), the framing, HTTP/2 and status handling are tonic's own.
//!
//! Each check wants a fresh [`Diag`] (it counts exact series) and a channel to a
//! service serving [`Echo`] with that `Diag`'s middleware.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use diag_core::{Diag, EndpointRequest};
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::TOKEN;
pub use crate::sample;

/// Messages as raw bytes.
#[derive(Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type MessageStream = Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, Status>> + Send>>;

/// A unary method as tonic's `UnaryService`.
#[derive(Clone)]
struct Unary(fn(Bytes) -> Result<Bytes, Status>);

impl tower::Service<Request<Bytes>> for Unary {
    type Response = Response<Bytes>;
    type Error = Status;
    type Future = std::future::Ready<Result<Response<Bytes>, Status>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        std::future::ready((self.0)(req.into_inner()).map(Response::new))
    }
}

/// `/test.Echo/Stream`: "one", then "two" after `gap`, then `ABORTED` in the trailers.
#[derive(Clone)]
struct Stream {
    gap: Duration,
}

impl tower::Service<Request<Bytes>> for Stream {
    type Response = Response<MessageStream>;
    type Error = Status;
    type Future = std::future::Ready<Result<Response<MessageStream>, Status>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: Request<Bytes>) -> Self::Future {
        let gap = self.gap;
        let stream = futures_util::stream::unfold(0, move |n| async move {
            match n {
                0 => Some((Ok(Bytes::from_static(b"one")), 1)),
                1 => {
                    tokio::time::sleep(gap).await;
                    Some((Ok(Bytes::from_static(b"two")), 2))
                }
                2 => Some((Err(Status::aborted("gave up")), 3)),
                _ => None,
            }
        });
        std::future::ready(Ok(Response::new(Box::pin(stream) as MessageStream)))
    }
}

/// The service `test.Echo`, routed by hand as generated code would: `Ok` echoes its
/// message, `NotFound` fails at once (status in the response head), `Stream` sends two
/// messages 150 ms apart and then `ABORTED` in the trailers, `Hang` waits 30 s between
/// them; any other method is `UNIMPLEMENTED`.
#[derive(Clone, Debug)]
pub struct Echo;

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

impl tower::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(Raw);
            Ok(match req.uri().path() {
                "/test.Echo/Ok" => grpc.unary(Unary(Ok), req).await,
                "/test.Echo/NotFound" => {
                    grpc.unary(Unary(|_| Err(Status::not_found("no such thing"))), req)
                        .await
                }
                "/test.Echo/Stream" => {
                    let gap = Duration::from_millis(150);
                    grpc.server_streaming(Stream { gap }, req).await
                }
                "/test.Echo/Hang" => {
                    let gap = Duration::from_secs(30);
                    grpc.server_streaming(Stream { gap }, req).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// A unary call to `path` with `metadata`.
pub async fn unary(
    channel: &Channel,
    path: &'static str,
    metadata: &[(&'static str, &str)],
) -> Result<Response<Bytes>, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    let mut req = Request::new(Bytes::from_static(b"ping"));
    for (name, value) in metadata {
        req.metadata_mut().insert(*name, value.parse().unwrap());
    }
    client
        .unary(req, PathAndQuery::from_static(path), Raw)
        .await
}

/// A server-streaming call to `path`.
pub async fn stream(channel: &Channel, path: &'static str) -> Streaming<Bytes> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    let req = Request::new(Bytes::from_static(b"go"));
    client
        .server_streaming(req, PathAndQuery::from_static(path), Raw)
        .await
        .unwrap()
        .into_inner()
}

/// The `/metrics` page of `diag`.
pub async fn metrics(diag: &Diag) -> String {
    let req = EndpointRequest {
        method: "GET".into(),
        path: "/metrics".into(),
        ..Default::default()
    };
    String::from_utf8(diag.serve(req).await.body).unwrap()
}

/// `http_server_requests_total` of a `POST` to `route` with `status`.
pub fn requests(text: &str, route: &str, status: &str) -> Option<f64> {
    let labels = format!(r#"method="POST",route="{route}",status="{status}""#);
    sample(text, "http_server_requests_total", &labels)
}

/// Waits (up to 10 s) until `check` holds for the scraped metrics.
async fn eventually(diag: &Diag, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(diag).await;
        if check(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs every check, each against a service of its own: `serve` starts one with the
/// middleware of the [`Diag`] it is given (and [`Echo`]) and returns a channel to it.
pub async fn run_all<F, Fut>(serve: F)
where
    F: Fn(Diag) -> Fut,
    Fut: Future<Output = Channel>,
{
    let plain = || Diag::builder().build().expect("diag");
    let diag = plain();
    calls_count_under_their_method_and_grpc_status(&diag, &serve(diag.clone()).await).await;
    let diag = plain();
    a_call_the_client_cancels_counts_as_cancelled(&diag, &serve(diag.clone()).await).await;
    let diag = Diag::builder().token(TOKEN).build().expect("diag");
    diagnostic_mode_through_grpc_metadata(&diag, &serve(diag.clone()).await).await;
    let diag = Diag::builder()
        .token(TOKEN)
        .traceparent_on_every_response(false)
        .build()
        .expect("diag");
    failed_and_debug_calls_name_their_trace(&serve(diag).await).await;
}

/// With `traceparent_on_every_response(false)`: a call that failed in its head (tonic
/// answers a handler's `Err(Status)` so) and a call in diagnostic mode carry
/// `traceparent`; a successful one (its status comes in the trailers) does not.
pub async fn failed_and_debug_calls_name_their_trace(channel: &Channel) {
    let ok = unary(channel, "/test.Echo/Ok", &[]).await.unwrap();
    assert!(ok.metadata().get("traceparent").is_none(), "a success");
    let failed = unary(channel, "/test.Echo/NotFound", &[])
        .await
        .unwrap_err();
    assert_eq!(failed.code(), tonic::Code::NotFound);
    let tp = failed.metadata().get("traceparent").expect("a failure's");
    assert_eq!(tp.len(), 55, "{tp:?}");
    let debug = unary(channel, "/test.Echo/Ok", &[("x-debug", TOKEN)])
        .await
        .unwrap();
    assert!(debug.metadata().get("x-debug-id").is_some());
    assert!(
        debug.metadata().get("traceparent").is_some(),
        "a debug call"
    );
}

/// Calls count under their method and gRPC status once the method has succeeded (or
/// streamed); made-up methods, and methods that have only failed, under `unmatched`.
pub async fn calls_count_under_their_method_and_grpc_status(diag: &Diag, channel: &Channel) {
    for _ in 0..2 {
        let reply = unary(channel, "/test.Echo/Ok", &[]).await.unwrap();
        assert_eq!(reply.into_inner(), Bytes::from_static(b"ping"));
    }
    // Fails at once: tonic answers with grpc-status in the response head.
    let err = unary(channel, "/test.Echo/NotFound", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    // Two messages, then the status in the trailers.
    let started = Instant::now();
    let mut s = stream(channel, "/test.Echo/Stream").await;
    assert_eq!(
        s.message().await.unwrap().unwrap(),
        Bytes::from_static(b"one")
    );
    assert_eq!(
        s.message().await.unwrap().unwrap(),
        Bytes::from_static(b"two")
    );
    assert_eq!(s.message().await.unwrap_err().code(), tonic::Code::Aborted);
    let stream_took = started.elapsed().as_secs_f64();
    // Made-up methods and services.
    for path in ["/test.Echo/Nope", "/test.Echo/Nope2", "/made.Up/Call"] {
        let err = unary(channel, path, &[]).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented, "{path}");
    }

    let text = eventually(diag, "every call recorded", |t| {
        requests(t, "/test.Echo/Stream", "ABORTED").is_some()
    })
    .await;
    assert_eq!(requests(&text, "/test.Echo/Ok", "OK"), Some(2.0), "{text}");
    // A method that has never succeeded is not known to exist: an error may come from
    // a layer in front of the router, for made-up paths too.
    assert_eq!(
        requests(&text, "unmatched", "NOT_FOUND"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests(&text, "/test.Echo/Stream", "ABORTED"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests(&text, "unmatched", "UNIMPLEMENTED"),
        Some(3.0),
        "{text}"
    );
    for absent in ["Nope", "made.Up", r#"status="200""#] {
        assert!(!text.contains(absent), "{absent} in\n{text}");
    }
    // The streaming call lasted until its trailers, not until its response head.
    let sum = sample(
        &text,
        "http_server_request_duration_seconds_sum",
        r#"method="POST",route="/test.Echo/Stream",status="ABORTED""#,
    )
    .unwrap();
    assert!(
        sum >= 0.15 && sum <= stream_took,
        "{sum} s, the client saw {stream_took} s"
    );
    // Nothing is left in flight.
    for route in ["/test.Echo/Ok", "/test.Echo/Stream", "unmatched"] {
        let labels = format!(r#"method="POST",route="{route}""#);
        assert_eq!(
            sample(&text, "http_server_active_requests", &labels),
            Some(0.0),
            "{route}\n{text}"
        );
    }
}

/// A streaming call the client drops counts as `CANCELLED`, and leaves nothing in flight.
pub async fn a_call_the_client_cancels_counts_as_cancelled(diag: &Diag, channel: &Channel) {
    // A method not seen before: once the server takes the call (its response head
    // carries no status), the call counts under the method, for as long as it streams.
    let mut s = stream(channel, "/test.Echo/Hang").await;
    assert_eq!(
        s.message().await.unwrap().unwrap(),
        Bytes::from_static(b"one")
    );
    let hang = r#"method="POST",route="/test.Echo/Hang""#;
    let unmatched = r#"method="POST",route="unmatched""#;
    let text = metrics(diag).await;
    assert_eq!(
        sample(&text, "http_server_active_requests", hang),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "http_server_active_requests", unmatched),
        Some(0.0),
        "{text}"
    );
    // The `requests` state provider (in flight per route) agrees.
    let report = diag
        .state()
        .collect("requests")
        .await
        .expect("requests provider");
    let state = serde_json::to_string(&report.value).unwrap();
    assert!(state.contains("/test.Echo/Hang"), "{state}");
    drop(s);
    let text = eventually(diag, "the cancelled call recorded", |t| {
        requests(t, "/test.Echo/Hang", "CANCELLED").is_some()
    })
    .await;
    for labels in [hang, unmatched] {
        assert_eq!(
            sample(&text, "http_server_active_requests", labels),
            Some(0.0),
            "{labels}\n{text}"
        );
    }
}

/// `x-debug` metadata puts a call in diagnostic mode; its capture keeps the trailers.
/// `diag` must have the token [`TOKEN`] and find the peer (for `X-Debug: 1`).
pub async fn diagnostic_mode_through_grpc_metadata(diag: &Diag, channel: &Channel) {
    let plain = unary(channel, "/test.Echo/Ok", &[]).await.unwrap();
    assert!(plain.metadata().get("x-debug-id").is_none());
    assert!(plain.metadata().get("traceparent").is_some());

    let reply = unary(channel, "/test.Echo/Ok", &[("x-debug", TOKEN)])
        .await
        .unwrap();
    let id: u64 = reply
        .metadata()
        .get("x-debug-id")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reply.metadata().get("server-timing").is_some());
    let deadline = Instant::now() + Duration::from_secs(10);
    let capture = loop {
        if let Some(c) = diag.debug_mode().recorder().get(id) {
            break c;
        }
        assert!(Instant::now() < deadline, "capture {id} never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let json = serde_json::to_string(&*capture).unwrap();
    assert!(json.contains("/test.Echo/Ok"), "{json}");
    assert!(!json.contains(TOKEN), "the credential is redacted: {json}");
    // The call's status travels in the trailers: the capture keeps them.
    let response = capture.response.as_ref().unwrap();
    assert!(
        response
            .trailers
            .iter()
            .any(|(n, v)| n == "grpc-status" && v == "0"),
        "{json}"
    );
    assert_eq!(response.grpc_status, Some("OK"), "{json}");
    assert!(capture.complete, "{json}");
    // `X-Debug: 1` from a trusted network (loopback by default), found through the peer.
    let reply = unary(channel, "/test.Echo/Ok", &[("x-debug", "1")])
        .await
        .unwrap();
    assert!(reply.metadata().get("x-debug-id").is_some());
    let text = metrics(diag).await;
    assert_eq!(requests(&text, "/test.Echo/Ok", "OK"), Some(3.0), "{text}");
}
