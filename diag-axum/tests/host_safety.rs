//! "Never break the host", over HTTP/1.1 edge cases, through `with_diag`: the same
//! router is served bare and with diag, the same raw bytes are sent to both over a
//! plain TCP socket, and what comes back must be the same bytes once diag's own
//! response headers (and `date`) are taken out, in and out of diagnostic mode. A debug
//! request must also leave a stored capture and nothing in flight.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::serve;
use diag_axum::DiagRouterExt;
use diag_conformance::raw::{
    Pair, answered_before_body, assert_same_unread_body_answers, captures_complete, debug, diag,
    header_values, same_answer, show, unchanged_answers, with_debug_line,
};
use http_body_util::StreamBody;
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn chunks(parts: &'static [&'static str]) -> Body {
    Body::from_stream(futures_util::stream::iter(
        parts
            .iter()
            .map(|p| Ok::<_, Infallible>(Bytes::from_static(p.as_bytes()))),
    ))
}

/// The service under test, the same with and without diag.
fn app() -> Router {
    Router::new()
        .route(
            "/fixed",
            get(|| async {
                (
                    [("x-app", "1"), ("cache-control", "no-store")],
                    "hello world",
                )
            }),
        )
        .route("/empty", get(|| async { StatusCode::OK }))
        .route("/no-content", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/not-modified",
            get(|| async {
                let mut res = (StatusCode::NOT_MODIFIED, [("etag", "\"v1\"")]).into_response();
                // What a cache answers: the length of the representation it validated.
                res.headers_mut()
                    .insert("content-length", HeaderValue::from_static("11"));
                res
            }),
        )
        .route(
            "/chunked",
            get(|| async { chunks(&["one,", "two,", "three"]) }),
        )
        .route(
            "/sized-stream",
            get(|| async {
                let mut res = chunks(&["abc", "defg", "hij"]).into_response();
                res.headers_mut()
                    .insert("content-length", HeaderValue::from_static("10"));
                res
            }),
        )
        .route(
            "/trailers",
            get(|| async {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-checksum", HeaderValue::from_static("abc123"));
                let frames = vec![
                    Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"part one,"))),
                    Ok(Frame::data(Bytes::from_static(b"part two"))),
                    Ok(Frame::trailers(trailers)),
                ];
                let body = Body::new(StreamBody::new(futures_util::stream::iter(frames)));
                ([("trailer", "x-checksum")], body)
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        // Answers without reading the request body.
        .route("/ignore", post(|| async { "ignored" }))
        .route(
            "/p/{x}",
            get(
                |axum::extract::Path(x): axum::extract::Path<String>| async move {
                    format!("{:?}", x.as_bytes())
                },
            ),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let mut out = String::new();
                for (name, value) in &headers {
                    out.push_str(&format!("{name}={:?};", value.as_bytes().len()));
                }
                out
            }),
        )
}

async fn pair() -> Pair {
    let handle = diag();
    Pair {
        name: "with_diag",
        bare: serve(app()).await,
        diag: serve(app().with_diag(&handle)).await,
        handle,
    }
}

fn get_req(path: &str, extra: &str, close: bool) -> String {
    let close = if close { "connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nhost: x\r\n{extra}{close}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_heads_and_bodies_are_unchanged_in_and_out_of_diagnostic_mode() {
    let p = pair().await;
    let cases: &[(&str, &str, &str)] = &[
        ("GET", "/fixed", ""),
        ("GET", "/empty", ""),
        ("HEAD", "/fixed", ""),
        ("HEAD", "/chunked", ""),
        ("GET", "/no-content", ""),
        ("GET", "/not-modified", "if-none-match: \"v1\"\r\n"),
        ("GET", "/chunked", ""),
        ("GET", "/sized-stream", ""),
        ("GET", "/trailers", "te: trailers\r\n"),
        ("GET", "/trailers", ""),
        ("GET", "/nowhere", ""),
        ("DELETE", "/fixed", ""),
    ];
    unchanged_answers(&p, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_keep_alive_requests_mixing_debug_and_normal_ones() {
    let p = pair().await;
    let mut req = String::new();
    let paths = [
        "/fixed",
        "/chunked",
        "/empty",
        "/trailers",
        "/sized-stream",
        "/no-content",
    ];
    for (i, path) in paths.iter().enumerate() {
        let extra = if i % 2 == 1 { debug() } else { String::new() };
        req.push_str(&get_req(path, &extra, false));
        req.push_str(&format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n{extra}\r\nab{i}de"
        ));
        req.push_str(&format!("HEAD {path} HTTP/1.1\r\nhost: x\r\n{extra}\r\n"));
    }
    req.push_str(&get_req("/fixed", &debug(), true));
    let with = same_answer(&p, req.as_bytes()).await;
    assert_eq!(
        header_values(&with, "traceparent").len(),
        paths.len() * 3 + 1,
        "{}",
        show(&with)
    );
    captures_complete(&p, &with, paths.len() / 2 * 3 + 1);
}

/// `Expect: 100-continue` to a handler that answers without reading the body: no
/// `100 Continue` may be sent (the client would send a body nobody reads), and the
/// connection behaves as without diag after the answer; a handler that reads the body
/// gets it after the `100`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_with_a_handler_that_does_not_read_the_body() {
    let p = pair().await;
    for extra in [String::new(), debug()] {
        let head = format!(
            "POST /ignore HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n{extra}\r\n"
        );
        // The answer comes without the body being sent. Then the client sends the body
        // anyway and a second request: the connection is reused or closed, as without
        // diag.
        let next = format!("hello{}", get_req("/fixed", &extra, true));
        let mut answers = Vec::new();
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

        // A handler that reads the body: `100 Continue`, then the echo.
        let req = format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n{extra}connection: close\r\n\r\n"
        );
        for addr in [p.bare, p.diag] {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            conn.write_all(req.as_bytes()).await.unwrap();
            let mut got = vec![0u8; 25];
            tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut got))
                .await
                .expect("no 100 Continue")
                .unwrap();
            assert_eq!(show(&got), "HTTP/1.1 100 Continue\r\n\r\n");
            conn.write_all(b"hello").await.unwrap();
            let mut rest = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
                .await
                .expect("no answer")
                .unwrap();
            assert!(show(&rest).ends_with("\r\n\r\nhello"), "{}", show(&rest));
        }
    }
    assert_eq!(p.handle.debug_mode().in_flight(), 0);
}

/// Odd requests a client may send: each answered as without diag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_are_answered_as_without_diag() {
    let p = pair().await;
    let big = "v".repeat(16 * 1024);
    let cases: Vec<Vec<u8>> = vec![
        // A header value that is not UTF-8.
        b"GET /headers HTTP/1.1\r\nhost: x\r\nx-note: caf\xe9 \xff\r\nconnection: close\r\n\r\n"
            .to_vec(),
        // A 16 KiB header.
        get_req("/headers", &format!("x-big: {big}\r\n"), true).into_bytes(),
        // A 16 KiB cookie.
        get_req("/headers", &format!("cookie: a={big}\r\n"), true).into_bytes(),
        // A 16 KiB X-Debug: refused, served normally.
        get_req("/fixed", &format!("x-debug: {big}\r\n"), true).into_bytes(),
        // X-Debug twice, a wrong value first and the token second, and the other way.
        get_req("/fixed", &format!("x-debug: nope\r\n{}", debug()), true).into_bytes(),
        // A non-UTF-8 X-Debug.
        b"GET /fixed HTTP/1.1\r\nhost: x\r\nx-debug: \xff\xfe\r\nconnection: close\r\n\r\n".to_vec(),
        // Percent-encoded bytes in the path and query, some of them not UTF-8.
        get_req("/p/%E2%82%AC%2F%20x?q=%ff%00&password=hunter2", "", true).into_bytes(),
        get_req("/p/%ff%fe", "", true).into_bytes(),
        get_req("/p/%zz", "", true).into_bytes(),
        // An absolute-form request target.
        get_req("http://example.com/fixed?a=1", "", true).into_bytes(),
        // The asterisk form.
        b"OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        // The authority form.
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\nconnection: close\r\n\r\n"
            .to_vec(),
        // HTTP/1.0 without keep-alive.
        b"GET /fixed HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /chunked HTTP/1.0\r\n\r\n".to_vec(),
        // A chunked request body with trailers.
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\n".to_vec(),
    ];
    for debug_mode in [false, true] {
        for case in &cases {
            let case = if debug_mode {
                with_debug_line(case)
            } else {
                case.clone()
            };
            let with = same_answer(&p, &case).await;
            let ids = header_values(&with, "x-debug-id").len();
            captures_complete(&p, &with, ids);
        }
    }
}

fn slow_panic_echo() -> Router {
    Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                panic!("a bug");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
}

/// A timeout (the future dropped mid-request), a panic caught, and a request body limit.
fn tower_http_layers(r: Router) -> Router {
    use tower_http::catch_panic::CatchPanicLayer;
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::timeout::TimeoutLayer;
    r.layer(TimeoutLayer::with_status_code(
        StatusCode::GATEWAY_TIMEOUT,
        Duration::from_millis(50),
    ))
    .layer(CatchPanicLayer::new())
    .layer(RequestBodyLimitLayer::new(8))
}

/// Requests for `slow_panic_echo`: timed out, panicking, over the body limit (with and
/// without `content-length`: without it, the limit shows as the body's read error),
/// under it.
fn layer_requests(extra: &str) -> [String; 5] {
    [
        get_req("/slow", extra, true),
        get_req("/panic", extra, true),
        format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\n{extra}connection: close\r\n\r\n01234567890123456789"
        ),
        format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{extra}connection: close\r\n\r\n14\r\n01234567890123456789\r\n0\r\n\r\n"
        ),
        format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n{extra}connection: close\r\n\r\nabcd"
        ),
    ]
}

/// tower-http layers inside and outside diag, with and without a debug request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_http_layers_around_and_inside_diag() {
    let handle = diag();
    let bare = serve(tower_http_layers(slow_panic_echo())).await;
    // diag outside the layers (as the README advises), and inside them.
    let diag_outside = serve(tower_http_layers(slow_panic_echo()).with_diag(&handle)).await;
    let diag_inside = serve(tower_http_layers(slow_panic_echo().with_diag(&handle))).await;
    let p_out = Pair {
        name: "diag outside the layers",
        bare,
        diag: diag_outside,
        handle: handle.clone(),
    };
    let p_in = Pair {
        name: "diag inside the layers",
        bare,
        diag: diag_inside,
        handle: handle.clone(),
    };
    for extra in [String::new(), debug()] {
        for req in &layer_requests(&extra) {
            for p in [&p_in, &p_out] {
                same_answer(p, req.as_bytes()).await;
            }
        }
    }
    // Timed out, panicked or answered: nothing stays in flight either way.
    assert_eq!(handle.debug_mode().in_flight(), 0);
}

/// `diag_axum::layer` inside a `RequestBodyLimitLayer`. It used to be the generic
/// `DiagLayer`: every request body became a `DiagBody<Body>`, which axum boxes into a
/// `Body` again, so a read error carried one more `axum::Error` than axum's extractors
/// look through, and a chunked body over the limit was answered 400 instead of 413,
/// debug request or not. It is now `DiagAxumLayer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_layer_inside_a_body_limit_keeps_the_413() {
    let handle = diag();
    let p = Pair {
        name: "diag_axum::layer inside the layers",
        bare: serve(tower_http_layers(slow_panic_echo())).await,
        diag: serve(tower_http_layers(
            slow_panic_echo().layer(diag_axum::layer(&handle)),
        ))
        .await,
        handle,
    };
    for req in &layer_requests("") {
        same_answer(&p, req.as_bytes()).await;
    }
}
