//! What one debug request's capture holds: the request and response heads, the first
//! bytes of each body, and the session's spans and log lines, all redacted. A [`Capture`]
//! is made, redacted, each time one is read from the flight recorder (see `stored.rs`).

use serde::Serialize;

use super::DebugLevel;
use super::base64::{STANDARD, encode};
use super::redact::{BodyRedaction, Redactor};
use super::session::{LogLine, SpanTiming};

/// The first `cap` bytes of a body fed frame by frame, and how many bytes went by.
/// It copies what fits and never holds on to a frame. The default keeps nothing.
#[derive(Clone, Default)]
pub(crate) struct BodyCapture {
    bytes: Vec<u8>,
    cap: usize,
    seen: u64,
    ended: bool,
}

/// Sizes only: the bytes are not redacted yet.
impl std::fmt::Debug for BodyCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyCapture")
            .field("captured", &self.bytes.len())
            .field("seen", &self.seen)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl BodyCapture {
    pub(crate) fn new(cap: usize) -> Self {
        BodyCapture {
            bytes: Vec::new(),
            cap,
            seen: 0,
            ended: false,
        }
    }

    /// Copies what of `chunk` still fits under the cap, and counts all of it.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        let room = self.cap.saturating_sub(self.bytes.len());
        if room > 0 {
            let take = room.min(chunk.len());
            let needed = self.bytes.len() + take;
            if needed > self.bytes.capacity() {
                // Doubling, as `Vec` grows, but never past the cap: a 64 KiB capture
                // would otherwise end in a 128 KiB buffer.
                let grown = (self.bytes.capacity() * 2).max(needed).min(self.cap);
                self.bytes.reserve_exact(grown - self.bytes.len());
            }
            self.bytes.extend_from_slice(&chunk[..take]);
        }
    }

    /// Counts `n` bytes that went by without being seen, and stops copying: what is
    /// kept must stay a prefix of the body.
    pub(crate) fn skip(&mut self, n: u64) {
        self.seen = self.seen.saturating_add(n);
        self.cap = self.bytes.len();
    }

    /// Marks the body as read to its end.
    pub(crate) fn end(&mut self) {
        self.ended = true;
    }

    /// The memory the copy holds.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The captured body, redacted, for a reader; `content_type` and `content_encoding`
    /// are its head's.
    pub(crate) fn finish(
        &self,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        redactor: &Redactor,
    ) -> CapturedBody {
        let truncated = self.seen > self.bytes.len() as u64;
        let complete = self.ended && !truncated;
        let sizes = CapturedBody {
            text: None,
            base64: None,
            withheld: None,
            captured_bytes: self.bytes.len(),
            total_bytes: self.seen,
            truncated,
            ended: self.ended,
            redaction: None,
        };
        // Compressed bytes cannot be redacted, and base64 would hand them out whole: a
        // gzip response's `"token"` decodes in one command.
        if let Some(encoding) = content_encoding.map(str::trim)
            && !encoding.is_empty()
            && !encoding.eq_ignore_ascii_case("identity")
        {
            return CapturedBody {
                withheld: Some(format!(
                    "content-encoding {encoding}: an encoded body cannot be redacted, so it is \
                     not shown (put diag's layer inside the compression layer, or ask without \
                     Accept-Encoding)"
                )),
                ..sizes
            };
        }
        // A cut may land inside a multi-byte character: keep the valid prefix as text.
        let text = match std::str::from_utf8(&self.bytes) {
            Ok(t) => Some(std::borrow::Cow::Borrowed(t)),
            Err(e) if e.error_len().is_none() => {
                std::str::from_utf8(&self.bytes[..e.valid_up_to()])
                    .ok()
                    .map(std::borrow::Cow::Borrowed)
            }
            Err(_) => None,
        };
        let binary = is_binary_type(content_type);
        let text = match text {
            Some(t) => t,
            // A binary format: shown as base64, as captured (documented: no field names).
            None if binary => {
                return CapturedBody {
                    base64: Some(encode(&self.bytes, STANDARD, true)),
                    ..sizes
                };
            }
            // Text with a stray byte (Latin-1 in JSON, say): redacted as text, the byte
            // shown as U+FFFD.
            None if !self.bytes.contains(&0) => String::from_utf8_lossy(&self.bytes),
            // UTF-16, or binary under a text type or none: no pass could find a secret
            // in it, and base64 would hand it out whole.
            None => {
                return CapturedBody {
                    withheld: Some(
                        "neither UTF-8 text nor a binary content type, so it cannot be \
                         redacted and is not shown"
                            .to_owned(),
                    ),
                    ..sizes
                };
            }
        };
        // The passes run on every text body, but a binary format's (protobuf that happens
        // to be UTF-8) is not claimed redacted: its field names are not in the bytes.
        let (text, how) = redactor.body_text(content_type, &text, complete);
        let redaction = if binary { None } else { how };
        CapturedBody {
            text: Some(text),
            redaction,
            ..sizes
        }
    }
}

/// A content type whose bodies hold no field names a text pass could find: gRPC and
/// protobuf messages, other binary formats.
fn is_binary_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let ct = ct.trim().to_ascii_lowercase();
    [
        "application/grpc",
        "application/protobuf",
        "application/x-protobuf",
        "application/octet-stream",
        "application/pdf",
        "application/zip",
        "image/",
        "audio/",
        "video/",
        "font/",
    ]
    .iter()
    .any(|t| ct.starts_with(t))
        && !ct.contains("json")
}

/// A body as a reader gets it: text (redacted) when it is text; base64 when it is not
/// UTF-8 and its content type is a binary one (an image, protobuf, `octet-stream`);
/// otherwise `withheld`, with the reason (a compressed body, or bytes under a text type
/// that no redaction pass could read).
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let jpeg = vec![("content-type".to_owned(), "image/jpeg".to_owned())];
/// # let view = RequestView { method: "POST", route: None, uri: "/upload", headers: &jpeg, peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.request_chunk(&[0xff, 0xd8, 0xff]); // not UTF-8
/// debug.request_end();
/// debug.finish_incomplete();
/// let body = diag.debug_mode().recorder().get(debug.id()).unwrap().request.body.clone();
/// assert_eq!((body.text, body.base64.as_deref()), (None, Some("/9j/")));
/// assert_eq!((body.captured_bytes, body.total_bytes, body.ended), (3, 3, true));
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CapturedBody {
    /// The captured bytes as text (redacted), when they are text (a stray byte that is
    /// not UTF-8 shown as U+FFFD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The captured bytes in base64, when they are not UTF-8 and the content type is a
    /// binary one (not redacted: no field names to find).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// Why the bytes are not shown (neither `text` nor `base64`): a compressed body
    /// (`Content-Encoding`), or bytes that are not text under a text type or none (UTF-16,
    /// say): no pass can redact them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
    /// How many bytes were kept (at most the body cap).
    pub captured_bytes: usize,
    /// How many bytes went by in all.
    pub total_bytes: u64,
    /// Whether more went by than was kept.
    pub truncated: bool,
    /// Whether the body was read to its end.
    pub ended: bool,
    /// How the text was redacted, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redaction: Option<BodyRedaction>,
}

/// The request side of a capture.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let view = RequestView {
///     method: "GET", route: Some("/products/{id}"), uri: "/products/7", headers: &(), peer: &|| None,
/// };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.finish_incomplete();
/// let request = diag.debug_mode().recorder().get(debug.id()).unwrap().request.clone();
/// assert_eq!((request.method.as_str(), request.uri.as_str()), ("GET", "/products/7"));
/// assert_eq!(request.route.as_deref(), Some("/products/{id}"));
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CapturedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, secret query parameters redacted.
    pub uri: String,
    /// The matched route template, if a route matched.
    pub route: Option<String>,
    /// Header lines, secret ones redacted.
    pub headers: Vec<(String, String)>,
    /// The first bytes of the body.
    pub body: CapturedBody,
}

/// The response side of a capture.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.response_head(404, &vec![("set-cookie".to_owned(), "session=abc".to_owned())]);
/// debug.response_chunk(b"no such product");
/// debug.response_end();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// let response = capture.response.as_ref().unwrap();
/// assert_eq!(response.status, 404);
/// assert_eq!(response.headers[0].1, "[redacted]");
/// assert_eq!(response.body.text.as_deref(), Some("no such product"));
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CapturedResponse {
    /// The status code.
    pub status: u16,
    /// A gRPC call's status (`NOT_FOUND`), from its `grpc-status` trailer (or header,
    /// for a trailers-only response): its HTTP status is 200 whether it failed or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<&'static str>,
    /// Header lines, secret ones redacted.
    pub headers: Vec<(String, String)>,
    /// The first bytes of the body.
    pub body: CapturedBody,
    /// Trailer lines sent after the body (a gRPC call's `grpc-status`), secret ones
    /// redacted; absent when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trailers: Vec<(String, String)>,
}

/// A span of the request, as stored.
///
/// ```
/// # use std::time::Duration;
/// # use diag_core::debug::{DebugLevel, SpanTiming};
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.session().record_span(SpanTiming {
///     id: 1, parent: None, name: "login".into(), target: "auth".into(),
///     start_offset: Duration::from_millis(2), duration: Duration::from_millis(5),
///     fields: vec![("user".into(), "ada".to_owned()), ("password".into(), "hunter2".to_owned())],
/// });
/// debug.finish_incomplete();
/// let span = diag.debug_mode().recorder().get(debug.id()).unwrap().spans[0].clone();
/// assert_eq!((span.start_ms, span.duration_ms), (2.0, 5.0));
/// assert_eq!(span.fields[1], ("password".to_owned(), "[redacted]".to_owned()));
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CapturedSpan {
    /// Id within the request.
    pub id: u64,
    /// Enclosing span within the request.
    pub parent: Option<u64>,
    /// Span name.
    pub name: String,
    /// Span target.
    pub target: String,
    /// Opened at, in ms from the request's start.
    pub start_ms: f64,
    /// Open for, in ms.
    pub duration_ms: f64,
    /// Recorded fields, secret ones redacted (and secret pairs inside the others: a
    /// `uri` field's query).
    pub fields: Vec<(String, String)>,
}

/// A log line of the request, as stored.
///
/// ```
/// # use std::time::Duration;
/// # use diag_core::debug::{DebugLevel, LogLine};
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.session().record_log(LogLine {
///     offset: Duration::from_micros(1500), level: "DEBUG".into(), target: "auth".into(),
///     message: "token refreshed".to_owned(), fields: vec![("token".into(), "t0k".to_owned())],
///     span: None,
/// });
/// debug.finish_incomplete();
/// let log = diag.debug_mode().recorder().get(debug.id()).unwrap().logs[0].clone();
/// assert_eq!((log.offset_ms, log.level.as_str()), (1.5, "DEBUG"));
/// assert_eq!(log.fields[0].1, "[redacted]");
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CapturedLog {
    /// When, in ms from the request's start.
    pub offset_ms: f64,
    /// `ERROR` .. `TRACE`.
    pub level: String,
    /// Event target.
    pub target: String,
    /// The message, with the values of secret-looking pairs in it (`token=…`,
    /// `password: …`) redacted.
    pub message: String,
    /// Other fields, secret ones redacted (and secret pairs inside the others).
    pub fields: Vec<(String, String)>,
    /// The span it was emitted in.
    pub span: Option<u64>,
}

/// One finished debug request, redacted, as the flight recorder hands it out (it keeps
/// the raw record and redacts it on each read) and `/debug/requests/{id}` serves it.
///
/// ```
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/cart"), uri: "/cart", headers: &headers, peer: &|| None,
/// });
/// let (id, trace) = (guard.debug_id().unwrap(), guard.trace().trace_id.to_string());
/// drop(guard); // the client went away before any response
/// let capture = diag.debug_mode().recorder().get(id).unwrap();
/// assert_eq!(capture.trace_id, trace);
/// assert!(!capture.complete && capture.response.is_none());
/// let json = serde_json::to_value(&*capture).unwrap();
/// assert_eq!(json["request"]["route"], "/cart");
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Capture {
    /// The debug id (`X-Debug-Id`), increasing.
    pub id: u64,
    /// When the request arrived, in seconds since the Unix epoch.
    pub time_unix: f64,
    /// The request's trace id (32 hex digits).
    pub trace_id: String,
    /// The request's own span id (16 hex digits): the one in its `traceparent`, its
    /// exemplars and, when traces are sent to a collector, its server span.
    pub span_id: String,
    /// The log level the request ran at.
    pub level: DebugLevel,
    /// `false` when the exchange ended early: the client went away before the response
    /// body ended, or the handler never answered.
    pub complete: bool,
    /// A look at a debug request still running (`/debug/requests/{id}` asked before it
    /// ended): what it recorded so far, its open spans marked `diag.still_open`, and
    /// `complete` `false`. Absent from the JSON otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_flight: bool,
    /// The handler panicked (then `complete` is `false`). Absent from the JSON otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub panicked: bool,
    /// The service failed with an error: instead of a response (a tower `timeout` or
    /// `load_shed` inside diag, a handler's `Err`: hyper then closes the connection;
    /// `response` is absent), or in the middle of its response body (a stream that
    /// yielded an error; `response` is present). Then `complete` is `false`. Absent from
    /// the JSON otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// From arrival to the end of the response body (or to the abandonment).
    pub duration_ms: f64,
    /// From arrival to the response head.
    pub response_head_ms: Option<f64>,
    /// The request.
    pub request: CapturedRequest,
    /// The response, when a head was produced.
    pub response: Option<CapturedResponse>,
    /// Closed spans, in the order they closed.
    pub spans: Vec<CapturedSpan>,
    /// Log lines, in order.
    pub logs: Vec<CapturedLog>,
    /// Spans dropped over the session's cap.
    pub dropped_spans: u64,
    /// Log lines dropped over the session's cap.
    pub dropped_logs: u64,
    /// Fields of the spans and log lines kept that were left out (over 32 a record, or
    /// past the session's byte budget) or had their value cut at 1 KiB.
    pub cut_fields: u64,
    /// The service's subscriber dropped this request's DEBUG events before diag's
    /// filter saw them: the capture has none (see `/debug` hints).
    pub logs_blocked: bool,
}

impl Capture {
    /// Roughly how much memory the capture holds, for the recorder's byte cap.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "POST", route: None, uri: "/", headers: &(), peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.request_chunk(&[b'x'; 10_000]);
    /// debug.finish_incomplete();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert!(capture.approx_bytes() > 10_000, "the body counts");
    /// ```
    pub fn approx_bytes(&self) -> usize {
        fn pairs(p: &[(String, String)]) -> usize {
            p.iter().map(|(a, b)| a.len() + b.len() + 48).sum()
        }
        fn body(b: &CapturedBody) -> usize {
            b.text.as_ref().map_or(0, String::len) + b.base64.as_ref().map_or(0, String::len)
        }
        let mut n = std::mem::size_of::<Capture>() + self.trace_id.len();
        n += self.request.method.len() + self.request.uri.len();
        n += self.request.route.as_ref().map_or(0, String::len);
        n += pairs(&self.request.headers) + body(&self.request.body);
        if let Some(r) = &self.response {
            n += pairs(&r.headers) + body(&r.body);
        }
        n += self
            .spans
            .iter()
            .map(|s| {
                std::mem::size_of::<CapturedSpan>()
                    + s.name.len()
                    + s.target.len()
                    + pairs(&s.fields)
            })
            .sum::<usize>();
        n += self
            .logs
            .iter()
            .map(|l| {
                std::mem::size_of::<CapturedLog>()
                    + l.level.len()
                    + l.target.len()
                    + l.message.len()
                    + pairs(&l.fields)
            })
            .sum::<usize>();
        n
    }
}

/// A recorded span as a reader gets it, secret fields redacted.
pub(crate) fn span(s: &SpanTiming, redactor: &Redactor) -> CapturedSpan {
    CapturedSpan {
        id: s.id,
        parent: s.parent,
        name: s.name.to_string(),
        target: s.target.to_string(),
        start_ms: ms(s.start_offset),
        duration_ms: ms(s.duration),
        fields: redactor.fields(&s.fields),
    }
}

/// A recorded log line as a reader gets it, secret fields redacted, and pairs in its
/// message too: `debug!("retrying with token={t}")` formats the secret into the text.
pub(crate) fn log(l: &LogLine, redactor: &Redactor) -> CapturedLog {
    CapturedLog {
        offset_ms: ms(l.offset),
        level: l.level.to_string(),
        target: l.target.to_string(),
        message: redactor.text(&l.message),
        fields: redactor.fields(&l.fields),
        span: l.span,
    }
}

/// Milliseconds, as a float with microsecond resolution.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Redactor {
        Redactor::new("x-debug", &[], &[])
    }

    #[test]
    fn a_renamed_debug_header_and_the_old_one_are_both_redacted() {
        let redactor = Redactor::new("X-Diag", &[], &[]);
        let headers: Vec<(String, String)> = [("x-diag", "new-secret"), ("X-Debug", "old-secret")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let copied = redactor.headers(&headers);
        assert!(
            copied.iter().all(|(_, v)| v == crate::debug::REDACTED),
            "{copied:?}"
        );
    }

    #[test]
    fn the_copy_never_holds_more_than_its_cap() {
        for chunk in [1, 1000, 4096, 70_000] {
            let mut b = BodyCapture::new(64 * 1024);
            for _ in 0..=2 * 64 * 1024 / chunk {
                b.push(&vec![b'x'; chunk]);
            }
            assert_eq!(b.bytes(), 64 * 1024, "chunks of {chunk}");
        }
    }

    #[test]
    fn frame_by_frame_up_to_the_cap() {
        let mut b = BodyCapture::new(10);
        b.push(b"hello ");
        b.push(b"world, ");
        b.push(b"and more");
        b.end();
        let c = b.finish(Some("text/plain"), None, &plain());
        assert_eq!(c.text.as_deref(), Some("hello worl"));
        assert_eq!(c.captured_bytes, 10);
        assert_eq!(c.total_bytes, 21);
        assert!(c.truncated && c.ended);
    }

    #[test]
    fn exact_fit_is_not_truncated_and_unended_is_reported() {
        let mut b = BodyCapture::new(4);
        b.push(b"ab");
        b.push(b"cd");
        let c = b.finish(None, None, &plain());
        assert!(!c.truncated);
        assert!(!c.ended);
        assert_eq!(c.text.as_deref(), Some("abcd"));
    }

    #[test]
    fn cut_inside_a_character_stays_text_and_binary_is_base64() {
        let mut b = BodyCapture::new(4);
        b.push("abcé".as_bytes()); // é is two bytes; the cap cuts it in half
        let c = b.finish(None, None, &plain());
        assert_eq!(c.text.as_deref(), Some("abc"));
        let mut b = BodyCapture::new(8);
        b.push(&[0xff, 0x00, 0xfe]);
        b.end();
        let c = b.finish(Some("application/octet-stream"), None, &plain());
        assert_eq!(c.text, None);
        assert_eq!(c.base64.as_deref(), Some("/wD+"));
    }

    /// Bytes that are not UTF-8 under a text type (or none) are never handed out as
    /// base64, which no pass redacts: a stray byte is shown as U+FFFD in redacted text,
    /// and what is not text at all (UTF-16, NULs) is withheld.
    #[test]
    fn bytes_that_are_not_utf8_are_redacted_as_text_or_withheld() {
        let redactor = Redactor::new("x-debug", &[], &["password".to_owned()]);
        let mut b = BodyCapture::new(64);
        b.push(b"{\"password\":\"hunter2\",\"n\":\"caf\xe9\"}");
        b.end();
        let c = b.finish(Some("application/json"), None, &redactor);
        assert_eq!(c.base64, None);
        assert_eq!(
            c.text.as_deref(),
            Some("{\"password\":\"[redacted]\",\"n\":\"caf\u{fffd}\"}")
        );
        let utf16: Vec<u8> = "\u{feff}{\"password\":\"hunter2\"}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        for ct in [
            Some("application/json"),
            None,
            Some("multipart/form-data; boundary=x"),
        ] {
            let mut b = BodyCapture::new(128);
            b.push(&utf16);
            b.end();
            let c = b.finish(ct, None, &redactor);
            assert_eq!(
                (c.text.as_deref(), c.base64.as_deref()),
                (None, None),
                "{ct:?}"
            );
            assert!(c.withheld.is_some(), "{ct:?}");
        }
    }

    /// A compressed body is neither text nor base64: its secrets would decode in one
    /// command. Sizes stay.
    #[test]
    fn encoded_bodies_are_withheld() {
        let redactor = Redactor::new("x-debug", &[], &["token".to_owned()]);
        let mut b = BodyCapture::new(64);
        b.push(b"{\"token\":\"t-1\"}");
        b.end();
        for encoding in ["gzip", "br", " deflate ", "zstd"] {
            let c = b.finish(Some("application/json"), Some(encoding), &redactor);
            assert_eq!(
                (c.text.as_deref(), c.base64.as_deref()),
                (None, None),
                "{encoding}"
            );
            let why = c.withheld.unwrap();
            assert!(why.contains(encoding.trim()), "{why}");
            assert_eq!((c.captured_bytes, c.total_bytes, c.ended), (15, 15, true));
        }
        let c = b.finish(Some("application/json"), Some("identity"), &redactor);
        assert_eq!(c.text.as_deref(), Some(r#"{"token":"[redacted]"}"#));
        assert_eq!(c.withheld, None);
    }

    /// A protobuf message that happens to be UTF-8 is shown as it is, and not claimed
    /// to be redacted: no text pass can find its fields.
    #[test]
    fn binary_types_are_not_claimed_redacted() {
        let redactor = Redactor::new("x-debug", &[], &["name".to_owned()]);
        let mut b = BodyCapture::new(64);
        b.push(b"\x00\x00\x00\x00\x05\x0a\x03ada");
        b.end();
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/x-protobuf",
        ] {
            let c = b.finish(Some(ct), None, &redactor);
            assert_eq!(c.redaction, None, "{ct}");
            assert!(c.text.unwrap().ends_with("ada"));
        }
        let c = b.finish(Some("text/plain"), None, &redactor);
        assert_eq!(c.redaction, Some(BodyRedaction::Textual));
    }

    #[test]
    fn zero_cap_keeps_nothing_but_counts() {
        let mut b = BodyCapture::new(0);
        b.push(b"abc");
        let c = b.finish(None, None, &plain());
        assert_eq!((c.captured_bytes, c.total_bytes, c.truncated), (0, 3, true));
    }

    /// An XML body cut by the cap inside a secret element shows none of it, and is
    /// reported as redacted as XML.
    #[test]
    fn xml_cut_inside_a_secret_element() {
        let redactor = Redactor::new("x-debug", &[], &["password".to_owned()]);
        let body = "<login><user>ada</user><password>hunter2</password></login>";
        let cut = body.find("hunter2").unwrap() + 3;
        let mut b = BodyCapture::new(cut);
        b.push(body.as_bytes());
        b.end();
        let c = b.finish(Some("application/soap+xml; charset=utf-8"), None, &redactor);
        assert!(c.truncated);
        assert_eq!(c.redaction, Some(BodyRedaction::Xml));
        assert_eq!(
            c.text.as_deref(),
            Some("<login><user>ada</user><password>[redacted]")
        );
    }

    /// A log message that formats a secret into its text is redacted like a text body;
    /// a span field's value too (a `TraceLayer` span's `uri` carries the query).
    #[test]
    fn secrets_in_log_messages_and_field_values() {
        let redactor = Redactor::new("x-debug", &[], &["token".to_owned()]);
        let line = LogLine {
            offset: std::time::Duration::ZERO,
            level: "DEBUG".into(),
            target: "auth".into(),
            message: "retrying with token=t0k; attempt 2".to_owned(),
            fields: vec![("uri".into(), "/cb?token=t1&x=1".to_owned())],
            span: None,
        };
        let captured = log(&line, &redactor);
        assert_eq!(
            captured.message,
            "retrying with token=[redacted]; attempt 2"
        );
        assert_eq!(captured.fields[0].1, "/cb?token=[redacted]&x=1");
    }
}
