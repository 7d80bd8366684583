//! Raw HTTP/1.1 comparisons for the adapters' host-safety tests: the same service is
//! served bare and behind diag (a [`Pair`]), the same bytes are written to both over a
//! plain TCP socket ([`exchange`]), and the transcripts must match once diag's own
//! response headers ([`DIAG_HEADERS`]) are taken out ([`same_answer`]). Serving is the
//! adapter's part; everything here is framework-neutral.

use std::net::SocketAddr;
use std::time::Duration;

use diag_core::Diag;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::TOKEN;

/// Response headers diag adds (and `date`, which differs between any two responses).
pub const DIAG_HEADERS: [&str; 7] = [
    "date",
    "traceparent",
    "server-timing",
    "x-debug-id",
    "x-trace-id",
    "x-debug-instance",
    "x-debug-status",
];

/// A plain handle for the diag side of a [`Pair`]: token [`TOKEN`] and a generous debug
/// budget; no providers and no `tracing` subscriber (unlike [`crate::diag`]).
pub fn diag() -> Diag {
    Diag::builder()
        .service("host-safety")
        .token(TOKEN)
        .debug_budget(1000.0, 1000)
        .build()
        .unwrap()
}

/// The `x-debug` header line that turns diagnostic mode on for a request.
pub fn debug() -> String {
    format!("x-debug: {TOKEN}\r\n")
}

/// The same service served twice: bare, and behind diag with `handle`.
pub struct Pair {
    /// Which setup this is, for failure messages.
    pub name: &'static str,
    /// The service without diag.
    pub bare: SocketAddr,
    /// The service behind diag.
    pub diag: SocketAddr,
    /// The `Diag` the diag side uses.
    pub handle: Diag,
}

/// Writes `request` (one or more requests, the last with `connection: close`) and
/// reads until the server closes the connection; fails after 5 s.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut got))
        .await
        .unwrap_or_else(|_| panic!("no end after 5 s; so far: {}", show(&got)))
        .unwrap();
    got
}

/// `bytes` as text, for messages and searches (invalid UTF-8 replaced).
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `line` is a header line diag adds ([`is_diag_field`]).
pub fn is_diag_header(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    is_diag_field(&line[..colon], &line[colon + 1..])
}

/// Whether a header field is one of [`DIAG_HEADERS`] (any case), the `vary: x-debug`
/// diag adds to the answer to a request that asked for diagnostic mode, or the
/// `cache-control: no-store` it adds in diagnostic mode.
pub fn is_diag_field(name: &[u8], value: &[u8]) -> bool {
    let value = value.trim_ascii();
    (name.eq_ignore_ascii_case(b"vary") && value.eq_ignore_ascii_case(b"x-debug"))
        || (name.eq_ignore_ascii_case(b"cache-control") && value.eq_ignore_ascii_case(b"no-store"))
        || DIAG_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

/// `raw` without diag's header lines (the bodies compared never hold such lines).
pub fn without_diag_headers(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |i| i + 2);
        let (line, tail) = rest.split_at(end);
        if !is_diag_header(line) {
            out.extend_from_slice(line);
        }
        rest = tail;
    }
    out
}

/// Values of header `name` in a raw transcript, in order.
pub fn header_values(raw: &[u8], name: &str) -> Vec<String> {
    show(raw)
        .split("\r\n")
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .collect()
}

/// Sends `request` to both sides of `p`: the transcripts must match byte for byte apart
/// from diag's header lines, and the bare one must not be empty. Returns the transcript
/// with diag.
pub async fn same_answer(p: &Pair, request: &[u8]) -> Vec<u8> {
    let bare = exchange(p.bare, request).await;
    let with = exchange(p.diag, request).await;
    assert_eq!(
        show(&without_diag_headers(&with)),
        show(&without_diag_headers(&bare)),
        "{}: request:\n{}\nwith diag:\n{}",
        p.name,
        show(request),
        show(&with)
    );
    assert!(!bare.is_empty(), "{}", show(request));
    with
}

/// `raw` holds `expected` debug ids, each naming a stored, complete capture of
/// `p.handle`, and no debug request is left in flight.
pub fn captures_complete(p: &Pair, raw: &[u8], expected: usize) {
    let ids = header_values(raw, "x-debug-id");
    assert_eq!(ids.len(), expected, "{}", show(raw));
    for id in ids {
        let id: u64 = id.parse().unwrap();
        let capture = p
            .handle
            .debug_mode()
            .recorder()
            .get(id)
            .unwrap_or_else(|| panic!("capture {id} not stored:\n{}", show(raw)));
        assert!(capture.complete, "capture {id} incomplete:\n{}", show(raw));
    }
    assert_eq!(p.handle.debug_mode().in_flight(), 0, "{}", show(raw));
}

/// `method path` over HTTP/1.1 with `host: x`, the header lines `extra`, the [`debug`]
/// line when `debug_mode`, and `connection: close`; no body.
pub fn closing_request(method: &str, path: &str, extra: &str, debug_mode: bool) -> String {
    let debug = if debug_mode { debug() } else { String::new() };
    format!("{method} {path} HTTP/1.1\r\nhost: x\r\n{extra}{debug}connection: close\r\n\r\n")
}

/// `request` with the [`debug`] line inserted after its first line.
pub fn with_debug_line(request: &[u8]) -> Vec<u8> {
    let at = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a request line")
        + 2;
    let mut with = request[..at].to_vec();
    with.extend_from_slice(debug().as_bytes());
    with.extend_from_slice(&request[at..]);
    with
}

/// Writes `head` (a request whose body is held back), reads until the transcript holds
/// `answer` (5 s at the most for each read), then writes `rest` (the body, say, and more
/// requests; a write error is ignored) and reads until the server closes the connection
/// (a read error is ignored; 5 s at the most). The whole transcript.
pub async fn answered_before_body(
    addr: SocketAddr,
    head: &[u8],
    answer: &str,
    rest: &[u8],
) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(head).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !show(&got).contains(answer) {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no answer from {addr}: {}", show(&got)))
            .unwrap();
        assert!(n > 0, "closed: {}", show(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let _ = conn.write_all(rest).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut got))
        .await
        .expect("the connection hangs");
    got
}

/// Compares what [`answered_before_body`] got from the bare server and from diag's, for
/// a request whose handler answered (ending with `first`) without reading its body,
/// after which the client sent the body and a request answered with `second`. hyper
/// drains a small body that has already arrived when the answer is done and keeps the
/// connection, or closes it when the body is not there yet: a race between the
/// client's write and the server, with or without diag. So the first answers must be
/// the same; each server may then close or answer `second`; where both answered it, the
/// two answers must be the same too.
pub fn assert_same_unread_body_answers(bare: &[u8], diag: &[u8], first: &str, second: &str) {
    let (bare, diag) = (
        show(&without_diag_headers(bare)),
        show(&without_diag_headers(diag)),
    );
    let head = |s: &str| -> usize {
        s.find(first)
            .map(|i| i + first.len())
            .unwrap_or_else(|| panic!("no `{first}` in {s}"))
    };
    let (b, d) = (head(&bare), head(&diag));
    assert_eq!(diag[..d], bare[..b], "the first answer");
    for (who, rest) in [("bare", &bare[b..]), ("diag", &diag[d..])] {
        assert!(
            rest.is_empty() || rest.ends_with(second),
            "{who}: neither closed nor answered `{second}`: {rest}"
        );
    }
    if b < bare.len() && d < diag.len() {
        assert_eq!(diag[d..], bare[b..], "the second answer");
    }
}

/// Each of `cases` (method, path, extra header lines), out of and in diagnostic mode,
/// one request a connection: the same answer bare and with diag ([`same_answer`]), one
/// `traceparent`, and a complete capture for each request that ran in diagnostic mode
/// (a case whose extra lines send an `x-debug` of their own, a wrong one, gets none).
pub async fn unchanged_answers(p: &Pair, cases: &[(&str, &str, &str)]) {
    for debug_mode in [false, true] {
        for (method, path, extra) in cases {
            let req = closing_request(method, path, extra, debug_mode);
            let with = same_answer(p, req.as_bytes()).await;
            assert_eq!(
                header_values(&with, "traceparent").len(),
                1,
                "{}",
                show(&with)
            );
            let debugged = debug_mode && !extra.contains("x-debug:");
            captures_complete(p, &with, usize::from(debugged));
        }
    }
}
