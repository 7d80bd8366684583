//! "Never break the host", over HTTP/1.1 edge cases, through `DiagMiddleware`: the same
//! routes are served bare and behind diag, the same raw bytes are sent to both over a
//! plain TCP socket, and each response must come back the same apart from diag's own
//! headers (and `date`), in and out of diagnostic mode. actix-web writes a response's
//! headers in its header map's order, which is not the order they were set in, so the
//! header lines of each response are compared as a sorted list; status lines and body
//! bytes (chunk framing included) exactly.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use diag_conformance::raw::{
    Pair, closing_request, debug, diag, exchange, is_diag_header, show, with_debug_line,
};
use diag_core::Diag;

fn chunks(
    parts: &'static [&'static str],
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures_util::stream::iter(
        parts
            .iter()
            .map(|p| Ok(web::Bytes::from_static(p.as_bytes()))),
    )
}

/// The routes, the same bare and behind diag. Resources answer every method (HEAD too).
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(8))
        .service(web::resource("/fixed").to(|| async {
            HttpResponse::Ok()
                .insert_header(("x-app", "1"))
                .insert_header(("cache-control", "no-store"))
                .body("hello world")
        }))
        .service(web::resource("/empty").to(|| async { HttpResponse::Ok().finish() }))
        .service(web::resource("/no-content").to(|| async { HttpResponse::NoContent().finish() }))
        .service(web::resource("/not-modified").to(|| async {
            HttpResponse::NotModified()
                .insert_header(("etag", "\"v1\""))
                .finish()
        }))
        .service(
            web::resource("/chunked")
                .to(|| async { HttpResponse::Ok().streaming(chunks(&["one,", "two,", "three"])) }),
        )
        .service(web::resource("/sized-stream").to(|| async {
            HttpResponse::Ok()
                .no_chunking(10)
                .streaming(chunks(&["abc", "defg", "hij"]))
        }))
        // Streams the payload back as it comes.
        .service(web::resource("/echo").to(|body: web::Payload| async move {
            HttpResponse::Ok()
                .content_type("application/octet-stream")
                .streaming(body)
        }))
        // Reads the whole payload, with the 8-byte limit above (413 beyond it).
        .service(
            web::resource("/bytes")
                .to(|body: web::Bytes| async move { HttpResponse::Ok().body(body) }),
        )
        // A stream that fails after its first chunk: actix ends the connection.
        .service(web::resource("/fails").to(|| async {
            HttpResponse::Ok().streaming(futures_util::stream::iter([
                Ok(web::Bytes::from_static(b"first;")),
                Err(std::io::Error::other("the backend went away")),
            ]))
        }))
        // Answers without reading the payload.
        .service(web::resource("/ignore").to(|| async { "ignored" }))
        .service(
            web::resource("/p/{x}")
                .to(|x: web::Path<String>| async move { format!("{:?}", x.as_bytes()) }),
        )
        .service(
            web::resource("/headers").to(|req: actix_web::HttpRequest| async move {
                let mut names: Vec<String> = req
                    .headers()
                    .iter()
                    .map(|(n, v)| format!("{n}={}", v.as_bytes().len()))
                    .collect();
                names.sort();
                names.join(";")
            }),
        )
        .service(
            web::resource("/status/{code}").to(|code: web::Path<u16>| async move {
                HttpResponse::build(StatusCode::from_u16(*code).unwrap()).body("status")
            }),
        );
}

/// Serves the routes on a fresh loopback port from a thread of its own, behind diag
/// when `diag` is given.
fn start_server(diag: Option<Diag>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = match diag {
                None => HttpServer::new(|| App::new().configure(routes))
                    .workers(1)
                    .listen(listener)
                    .unwrap()
                    .run(),
                Some(diag) => HttpServer::new(move || {
                    App::new()
                        .wrap(diag_actix::DiagMiddleware::new(&diag))
                        .configure(diag_actix::configure(&diag))
                        .configure(routes)
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run(),
            };
            server.await.unwrap();
        });
    });
    addr
}

fn pair() -> Pair {
    let handle = diag();
    Pair {
        name: "DiagMiddleware",
        bare: start_server(None),
        diag: start_server(Some(handle.clone())),
        handle,
    }
}

/// One response of a transcript: status line, header lines (sorted, without diag's),
/// body bytes as sent (chunk framing included), and diag's debug id, if any.
#[derive(Debug, PartialEq)]
struct Answer {
    status: String,
    headers: Vec<String>,
    body: String,
    #[allow(dead_code)]
    debug_id: Option<u64>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a transcript into responses. actix-web sends a `HEAD` response's body too
/// (bare or not), so a body's length is what the head says, whatever the method.
fn answers(raw: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let end = find(rest, b"\r\n\r\n").unwrap_or_else(|| panic!("no head end: {}", show(rest)));
        let head = show(&rest[..end]);
        rest = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let mut headers = Vec::new();
        let mut debug_id = None;
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            let name = name.to_ascii_lowercase();
            let value = value.trim();
            match name.as_str() {
                "x-debug-id" => debug_id = Some(value.parse().unwrap()),
                "content-length" => length = Some(value.parse::<usize>().unwrap()),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                _ => {}
            }
            if !is_diag_header(line.as_bytes()) {
                headers.push(line.to_owned());
            }
        }
        headers.sort();
        let code: u16 = status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status:?} in\n{}", show(raw)));
        let no_body = matches!(code, 100..=199 | 204 | 304);
        let len = if no_body {
            0
        } else if chunked {
            // What the last chunk and the trailers end (or all that is left: a `HEAD`
            // response may say chunked and send nothing).
            chunked_len(rest).unwrap_or(rest.len())
        } else {
            length.unwrap_or(rest.len())
        };
        let len = len.min(rest.len());
        out.push(Answer {
            status,
            headers,
            body: show(&rest[..len]),
            debug_id,
        });
        rest = &rest[len..];
    }
    out
}

/// The length of the chunked body at the start of `raw`, up to the end of its trailers.
fn chunked_len(raw: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + find(&raw[at..], b"\r\n")?;
        let size = usize::from_str_radix(show(&raw[at..line_end]).trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let line_end = at + find(&raw[at..], b"\r\n")?;
                let empty = line_end == at;
                at = line_end + 2;
                if empty {
                    return Some(at);
                }
            }
        }
        at += size + 2;
    }
}

/// Sends `request` to both servers: the answers must match apart from diag's headers.
async fn same_answers(p: &Pair, request: &[u8]) -> Vec<Answer> {
    let bare_raw = exchange(p.bare, request).await;
    let with_raw = exchange(p.diag, request).await;
    let bare = answers(&bare_raw);
    let with = answers(&with_raw);
    assert_eq!(
        with,
        bare.into_iter()
            .zip(&with)
            .map(|(a, w)| Answer {
                debug_id: w.debug_id,
                ..a
            })
            .collect::<Vec<_>>(),
        "{}: request:\n{}\nwith diag:\n{}",
        p.name,
        show(request),
        show(&with_raw)
    );
    assert!(!with.is_empty(), "{}", show(request));
    assert_eq!(
        with_raw
            .windows(13)
            .filter(|w| w.eq_ignore_ascii_case(b"\r\ntraceparent"))
            .count(),
        with.iter().filter(|a| !a.status.contains(" 100 ")).count(),
        "a traceparent on every final response: {}",
        show(&with_raw)
    );
    with
}

/// Every debug id names a stored, complete capture; `expected` debug responses; no
/// debug request left in flight (actix ends a request's work before the next).
fn captures_complete(p: &Pair, got: &[Answer], expected: usize) {
    let ids: Vec<u64> = got.iter().filter_map(|a| a.debug_id).collect();
    assert_eq!(ids.len(), expected, "{got:?}");
    for id in ids {
        let capture = p.handle.debug_mode().recorder().get(id);
        let capture = capture.unwrap_or_else(|| panic!("capture {id} not stored: {got:?}"));
        assert!(capture.complete, "capture {id} incomplete: {got:?}");
    }
    assert_eq!(p.handle.debug_mode().in_flight(), 0, "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_unchanged_in_and_out_of_diagnostic_mode() {
    let p = pair();
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
        ("GET", "/status/205", ""),
        ("GET", "/status/418", ""),
        ("GET", "/nowhere", ""),
        ("GET", "/fixed", "x-debug: nope\r\n"),
    ];
    for debug_mode in [false, true] {
        // A body that fails half-way: the connection ends as without diag, and the
        // capture says incomplete.
        let req = closing_request("GET", "/fails", "", debug_mode);
        let (bare, with) = (
            exchange(p.bare, req.as_bytes()).await,
            exchange(p.diag, req.as_bytes()).await,
        );
        let strip = |raw: &[u8]| {
            let Some(end) = find(raw, b"\r\n\r\n") else {
                return (Vec::new(), raw.to_vec());
            };
            let mut head: Vec<String> = show(&raw[..end])
                .split("\r\n")
                .filter(|l| !is_diag_header(l.as_bytes()))
                .map(str::to_owned)
                .collect();
            head.sort();
            (head, raw[end..].to_vec())
        };
        assert_eq!(strip(&with), strip(&bare), "{}", show(&with));
        if debug_mode {
            // actix sends nothing of it (bare too): the capture is found by its URI,
            // once the failed body is dropped (about when the connection closes).
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let capture = loop {
                let recent = p.handle.debug_mode().recorder().recent();
                if let Some(c) = recent.into_iter().find(|c| c.request.uri == "/fails") {
                    break c;
                }
                assert!(std::time::Instant::now() < deadline, "never stored");
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            assert!(!capture.complete);
        }
        for (method, path, extra) in cases {
            let req = closing_request(method, path, extra, debug_mode);
            let got = same_answers(&p, req.as_bytes()).await;
            let debugged = debug_mode && !extra.contains("nope");
            captures_complete(&p, &got, usize::from(debugged));
        }
    }
}

/// Request bodies: echoed as they stream, read whole under and over the extractor's
/// limit (with and without `content-length`), and not read at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_read_or_not_are_handled_as_without_diag() {
    let p = pair();
    let bodies = [
        ("/echo", "content-length: 5\r\n", "hello"),
        (
            "/echo",
            "transfer-encoding: chunked\r\n",
            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ),
        ("/bytes", "content-length: 4\r\n", "abcd"),
        ("/bytes", "content-length: 20\r\n", "01234567890123456789"),
        (
            "/bytes",
            "transfer-encoding: chunked\r\n",
            "14\r\n01234567890123456789\r\n0\r\n\r\n",
        ),
        ("/ignore", "content-length: 5\r\n", "hello"),
        (
            "/ignore",
            "transfer-encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    for extra in [String::new(), debug()] {
        for (path, framing, body) in bodies {
            let req = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\n{framing}{extra}connection: close\r\n\r\n{body}"
            );
            let got = same_answers(&p, req.as_bytes()).await;
            captures_complete(&p, &got, usize::from(!extra.is_empty()));
        }
    }
}

/// Pipelined keep-alive requests, debug ones between normal ones, with payloads read
/// and not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_keep_alive_requests_mixing_debug_and_normal_ones() {
    let p = pair();
    let mut req = String::new();
    let paths = [
        "/fixed",
        "/chunked",
        "/empty",
        "/sized-stream",
        "/no-content",
        "/fixed",
    ];
    for (i, path) in paths.iter().enumerate() {
        let extra = if i % 2 == 1 { debug() } else { String::new() };
        req.push_str(&format!("GET {path} HTTP/1.1\r\nhost: x\r\n{extra}\r\n"));
        req.push_str(&format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n{extra}\r\nab{i}de"
        ));
        req.push_str(&format!(
            "POST /ignore HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n{extra}\r\nskip"
        ));
        req.push_str(&format!("HEAD {path} HTTP/1.1\r\nhost: x\r\n{extra}\r\n"));
    }
    req.push_str(&format!(
        "GET /fixed HTTP/1.1\r\nhost: x\r\n{}connection: close\r\n\r\n",
        debug()
    ));
    let got = same_answers(&p, req.as_bytes()).await;
    assert_eq!(got.len(), paths.len() * 4 + 1, "{got:?}");
    captures_complete(&p, &got, paths.len() / 2 * 4 + 1);
}

/// `Expect: 100-continue` to a handler that does not read the payload, and to one
/// that does: the same exchange as without diag, and the connection reused after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_read_or_not() {
    let p = pair();
    for extra in [String::new(), debug()] {
        for path in ["/ignore", "/echo", "/bytes"] {
            let req = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n{extra}\r\nhello\
                 GET /fixed HTTP/1.1\r\nhost: x\r\n{extra}connection: close\r\n\r\n"
            );
            let got = same_answers(&p, req.as_bytes()).await;
            let ids = got.iter().filter(|a| a.debug_id.is_some()).count();
            captures_complete(&p, &got, ids);
            assert_eq!(ids > 0, !extra.is_empty(), "{got:?}");
        }
    }
}

/// Odd requests a client may send: each answered as without diag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_are_answered_as_without_diag() {
    let p = pair();
    let big = "v".repeat(16 * 1024);
    let cases: Vec<Vec<u8>> = vec![
        b"GET /headers HTTP/1.1\r\nhost: x\r\nx-note: caf\xe9 \xff\r\nconnection: close\r\n\r\n"
            .to_vec(),
        format!("GET /headers HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\nconnection: close\r\n\r\n")
            .into_bytes(),
        format!("GET /headers HTTP/1.1\r\nhost: x\r\ncookie: a={big}\r\nconnection: close\r\n\r\n")
            .into_bytes(),
        format!("GET /fixed HTTP/1.1\r\nhost: x\r\nx-debug: {big}\r\nconnection: close\r\n\r\n")
            .into_bytes(),
        format!("GET /fixed HTTP/1.1\r\nhost: x\r\nx-debug: nope\r\n{}connection: close\r\n\r\n", debug())
            .into_bytes(),
        b"GET /fixed HTTP/1.1\r\nhost: x\r\nx-debug: \xff\xfe\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /p/%E2%82%AC%2F%20x?q=%ff%00&password=hunter2 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /p/%ff%fe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /p/%zz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET http://example.com/fixed?a=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /fixed HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /chunked HTTP/1.0\r\n\r\n".to_vec(),
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\n".to_vec(),
    ];
    for debug_mode in [false, true] {
        for case in &cases {
            let case = if debug_mode {
                with_debug_line(case)
            } else {
                case.clone()
            };
            let got = same_answers(&p, &case).await;
            let ids = got.iter().filter(|a| a.debug_id.is_some()).count();
            captures_complete(&p, &got, ids);
        }
    }
}
