//! "Never break the host", over HTTP protocol edge cases, through `DiagLayer` on a plain
//! hyper server (HTTP/1.1 and h2c on one port, as `hyper_util`'s auto builder serves
//! them): the same handlers are served bare and behind diag, and what a client gets
//! must be the same apart from diag's own response headers (and `date`), in and out of
//! diagnostic mode. Every body goes through `DiagBody` here, debug request or not.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use diag_conformance::TOKEN;
use diag_conformance::raw::{
    Pair, answered_before_body, assert_same_unread_body_answers, captures_complete,
    closing_request, debug, diag, header_values, is_diag_field, same_answer, show,
    unchanged_answers,
};
use diag_core::Diag;
use diag_tower::DiagLayer;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tower::{Layer, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ResBody = UnsyncBoxBody<Bytes, BoxError>;

fn full(text: &'static str) -> ResBody {
    Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|e| match e {})
        .boxed_unsync()
}

fn frames(frames: Vec<Frame<Bytes>>) -> ResBody {
    StreamBody::new(futures_util::stream::iter(
        frames.into_iter().map(Ok::<_, BoxError>),
    ))
    .boxed_unsync()
}

fn data(parts: &[&'static str]) -> Vec<Frame<Bytes>> {
    parts
        .iter()
        .map(|p| Frame::data(Bytes::from_static(p.as_bytes())))
        .collect()
}

fn with_status(status: StatusCode, body: ResBody) -> Response<ResBody> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res
}

/// The handlers, the same bare and behind diag (whose request body is a `DiagBody`).
async fn handle<B>(req: Request<B>) -> Result<Response<ResBody>, Infallible>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut res = match req.uri().path() {
        "/fixed" => {
            let mut res = Response::new(full("hello world"));
            res.headers_mut()
                .insert("x-app", HeaderValue::from_static("1"));
            res
        }
        "/empty" => Response::new(Empty::new().map_err(|e| match e {}).boxed_unsync()),
        "/no-content" => with_status(
            StatusCode::NO_CONTENT,
            Empty::new().map_err(|e| match e {}).boxed_unsync(),
        ),
        "/not-modified" => {
            let mut res = with_status(
                StatusCode::NOT_MODIFIED,
                Empty::new().map_err(|e| match e {}).boxed_unsync(),
            );
            res.headers_mut()
                .insert("etag", HeaderValue::from_static("\"v1\""));
            res
        }
        "/chunked" => Response::new(frames(data(&["one,", "two,", "three"]))),
        "/sized-stream" => {
            let mut res = Response::new(frames(data(&["abc", "defg", "hij"])));
            res.headers_mut()
                .insert("content-length", HeaderValue::from_static("10"));
            res
        }
        "/trailers" => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", HeaderValue::from_static("abc123"));
            let mut f = data(&["part one,", "part two"]);
            f.push(Frame::trailers(trailers));
            let mut res = Response::new(frames(f));
            res.headers_mut()
                .insert("trailer", HeaderValue::from_static("x-checksum"));
            res
        }
        // A long stream, for a client to give up on half-way.
        "/long" => {
            let chunks =
                (0..10_000).map(|_| Ok::<_, BoxError>(Frame::data(Bytes::from(vec![b'x'; 1024]))));
            let slow =
                futures_util::StreamExt::then(futures_util::stream::iter(chunks), |c| async {
                    tokio::task::yield_now().await;
                    c
                });
            Response::new(StreamBody::new(slow).boxed_unsync())
        }
        "/echo" => Response::new(req.into_body().map_err(Into::into).boxed_unsync()),
        // Answers without reading the request body.
        "/ignore" => Response::new(full("ignored")),
        _ => with_status(StatusCode::NOT_FOUND, full("no such route")),
    };
    res.headers_mut()
        .insert("x-handler", HeaderValue::from_static("yes"));
    Ok(res)
}

/// Serves the handlers on a fresh loopback port, HTTP/1.1 and h2c, behind diag when
/// `diag` is given.
async fn serve(diag: Option<Diag>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let diag = diag.clone();
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let io = TokioIo::new(stream);
                let _ = match diag {
                    None => {
                        builder
                            .serve_connection(io, hyper::service::service_fn(handle::<Incoming>))
                            .await
                    }
                    Some(diag) => {
                        let svc = DiagLayer::new(&diag).layer(tower::service_fn(handle));
                        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                            req.extensions_mut().insert(peer);
                            svc.clone().oneshot(req)
                        });
                        builder.serve_connection(io, svc).await
                    }
                };
            });
        }
    });
    addr
}

async fn pair() -> Pair {
    let handle = diag();
    Pair {
        name: "DiagLayer",
        bare: serve(None).await,
        diag: serve(Some(handle.clone())).await,
        handle,
    }
}

// ---- HTTP/1.1, raw bytes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_responses_are_byte_identical_apart_from_diag_headers() {
    let p = pair().await;
    let cases: &[(&str, &str, &str)] = &[
        ("GET", "/fixed", ""),
        ("GET", "/empty", ""),
        ("HEAD", "/fixed", ""),
        ("HEAD", "/chunked", ""),
        ("HEAD", "/sized-stream", ""),
        ("GET", "/no-content", ""),
        ("GET", "/not-modified", "if-none-match: \"v1\"\r\n"),
        ("GET", "/chunked", ""),
        ("GET", "/sized-stream", ""),
        ("GET", "/trailers", "te: trailers\r\n"),
        ("GET", "/trailers", ""),
        ("GET", "/nowhere", ""),
        ("GET", "/fixed", "x-debug: nope\r\n"),
    ];
    unchanged_answers(&p, cases).await;
}

/// Pipelined keep-alive requests, debug ones between normal ones, with request bodies
/// read, echoed and ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_pipelining_mixes_debug_and_normal_requests() {
    let p = pair().await;
    let mut req = String::new();
    let paths = [
        "/fixed",
        "/trailers",
        "/empty",
        "/chunked",
        "/no-content",
        "/sized-stream",
    ];
    for (i, path) in paths.iter().enumerate() {
        let extra = if i % 2 == 0 { debug() } else { String::new() };
        req.push_str(&format!("GET {path} HTTP/1.1\r\nhost: x\r\n{extra}\r\n"));
        req.push_str(&format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{extra}\r\n3\r\nab{i}\r\n0\r\n\r\n"
        ));
        // Not read by the handler: hyper skips it to get to the next request.
        req.push_str(&format!(
            "POST /ignore HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n{extra}\r\nskip"
        ));
        req.push_str(&format!("HEAD {path} HTTP/1.1\r\nhost: x\r\n{extra}\r\n"));
    }
    req.push_str("GET /fixed HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let with = same_answer(&p, req.as_bytes()).await;
    assert_eq!(
        header_values(&with, "traceparent").len(),
        paths.len() * 4 + 1,
        "{}",
        show(&with)
    );
    captures_complete(&p, &with, paths.len() / 2 * 4);
}

/// `Expect: 100-continue` to a handler that answers without reading the body: no
/// `100 Continue` (the body is never asked for), the same answers as without diag
/// (the connection then reused or closed, as hyper's race decides, with or without
/// diag), and the debug capture stored at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_expect_continue_unread_body() {
    let p = pair().await;
    for extra in [String::new(), debug()] {
        let head = format!(
            "POST /ignore HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n{extra}\r\n"
        );
        let mut answers = Vec::new();
        let next = format!("hello{}", closing_request("GET", "/fixed", &extra, false));
        for addr in [p.bare, p.diag] {
            answers.push(
                answered_before_body(addr, head.as_bytes(), "ignored", next.as_bytes()).await,
            );
        }
        assert_same_unread_body_answers(&answers[0], &answers[1], "ignored", "hello world");
        assert!(!show(&answers[1]).contains("100 Continue"));
        let ids = header_values(&answers[1], "x-debug-id").len();
        assert_eq!(ids > 0, !extra.is_empty(), "{}", show(&answers[1]));
        captures_complete(&p, &answers[1], ids);
    }
}

// ---- HTTP/2 (h2c, prior knowledge) ----

type H2Sender<B> = hyper::client::conn::http2::SendRequest<B>;

async fn h2<B>(addr: SocketAddr) -> H2Sender<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// Status, headers (without diag's) and the body's data and trailers.
struct Got {
    status: StatusCode,
    headers: Vec<(String, Vec<u8>)>,
    /// Trailers and data, or the error reading them.
    body: Result<(Option<HeaderMap>, Bytes), String>,
    debug_id: Option<u64>,
}

async fn h2_get(sender: &mut H2Sender<Empty<Bytes>>, method: &str, path: &str, debug: bool) -> Got {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://x{path}"));
    if debug {
        req = req.header("x-debug", TOKEN);
    }
    let res = sender
        .send_request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let debug_id = res
        .headers()
        .get("x-debug-id")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let headers = res
        .headers()
        .iter()
        .filter(|(n, v)| !is_diag_field(n.as_str().as_bytes(), v.as_bytes()))
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let collected = tokio::time::timeout(Duration::from_secs(5), res.into_body().collect())
        .await
        .expect("the body never ends");
    // The error too (hyper's h2 server sends a HEAD response's body, which the client
    // takes for a protocol error): it must be the same with diag.
    let body = collected
        .map(|c| (c.trailers().cloned(), c.to_bytes()))
        .map_err(|e| format!("{e:?}"));
    Got {
        status,
        headers,
        body,
        debug_id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_responses_are_the_same_apart_from_diag_headers() {
    let p = pair().await;
    let mut bare = h2(p.bare).await;
    let mut with = h2(p.diag).await;
    let cases = [
        ("GET", "/fixed"),
        ("GET", "/empty"),
        ("HEAD", "/fixed"),
        ("HEAD", "/chunked"),
        ("GET", "/no-content"),
        ("GET", "/not-modified"),
        ("GET", "/chunked"),
        ("GET", "/sized-stream"),
        ("GET", "/trailers"),
        ("GET", "/nowhere"),
    ];
    for debug in [false, true] {
        for (method, path) in cases {
            let a = h2_get(&mut bare, method, path, debug).await;
            let b = h2_get(&mut with, method, path, debug).await;
            let what = format!("{method} {path} debug={debug}");
            assert_eq!(b.status, a.status, "{what}");
            assert_eq!(b.headers, a.headers, "{what}");
            assert_eq!(b.body, a.body, "{what}");
            assert_eq!(b.debug_id.is_some(), debug, "{what}");
            if let Some(id) = b.debug_id {
                let capture = p.handle.debug_mode().recorder().get(id);
                let capture = capture.unwrap_or_else(|| panic!("{what}: capture not stored"));
                assert!(capture.complete, "{what}: capture incomplete");
            }
        }
    }
    assert_eq!(p.handle.debug_mode().in_flight(), 0);
}

/// A stream reset by the client in the middle of its request body (a debug request
/// whose body the handler echoes), and one reset in the middle of a long response:
/// each capture is stored incomplete, nothing stays in flight, and the connection goes
/// on serving other streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_streams_reset_mid_body_leave_the_connection_usable() {
    type ReqBody = StreamBody<
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send>>,
    >;
    let p = pair().await;
    let mut sender: H2Sender<ReqBody> = h2(p.diag).await;

    // 1. The request body fails after its first chunk: the client resets the stream.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
    tx.send(Ok(Frame::data(Bytes::from_static(b"first chunk;"))))
        .await
        .unwrap();
    let stream = futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|frame| (frame, rx))
    });
    let req = Request::post("http://x/echo")
        .header("x-debug", TOKEN)
        .body(StreamBody::new(Box::pin(stream) as _))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let echo_id: u64 = res.headers()["x-debug-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first chunk;");
    tx.send(Err("the client gives up".into())).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the reset stream never ends");
    assert!(rest.is_err(), "the stream was reset");

    // 2. A long response the client stops reading and drops: a reset the other way.
    let empty = || StreamBody::new(Box::pin(futures_util::stream::empty()) as _);
    let req = Request::get("http://x/long")
        .header("x-debug", TOKEN)
        .body(empty())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let long_id: u64 = res.headers()["x-debug-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut body = res.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);

    // 3. The connection still serves, debug requests and others.
    for debug in [true, false] {
        let mut req = Request::get("http://x/fixed");
        if debug {
            req = req.header("x-debug", TOKEN);
        }
        let res = sender
            .send_request(req.body(empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let got = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, "hello world");
    }

    // Both reset streams' captures are stored incomplete, once the server has seen
    // the resets (it learns of the second one asynchronously).
    let recorder = p.handle.debug_mode().recorder();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while (recorder.get(echo_id).is_none() || recorder.get(long_id).is_none())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for id in [echo_id, long_id] {
        let capture = recorder
            .get(id)
            .unwrap_or_else(|| panic!("capture {id} not stored"));
        assert!(!capture.complete, "capture {id}");
    }
    let echo = recorder.get(echo_id).unwrap();
    assert_eq!(
        echo.request.body.text.as_deref(),
        Some("first chunk;"),
        "what the handler read before the reset"
    );
    while p.handle.debug_mode().in_flight() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(p.handle.debug_mode().in_flight(), 0);
}
