//! [`StoredCapture`]: a debug request as the flight recorder keeps it, raw, and its
//! redaction into the [`Capture`] every reader gets.
//!
//! Redaction happens when a capture is read, not when it is stored: storing is on the
//! request path of every debug request, reading is a person at `/debug/requests`. The
//! raw bytes (credentials included) live only in this type, inside the bounded recorder;
//! the recorder hands out nothing but [`StoredCapture::redacted`], and this type's
//! `Debug` shows no header, URI, body or field.

use std::time::{Duration, SystemTime};

use super::DebugLevel;
use super::capture::{self, BodyCapture, Capture, CapturedRequest, CapturedResponse};
use super::redact::Redactor;
use super::session::{LogLine, SpanTiming, StaticText};
use crate::trace::{SpanId, TraceId};

/// Header lines in one buffer: names and values back to back, with where each ends.
/// Two allocations however many lines, so storing and freeing them is cheap.
#[derive(Clone, Default)]
pub(crate) struct HeaderLines {
    text: String,
    /// Where the first line starts in `text` (a [`RequestHead`] puts its request line first).
    start: u32,
    /// For each line: where its name ends and where its value ends, in `text`.
    ends: Vec<(u32, u32)>,
}

impl HeaderLines {
    /// Copies every line of `headers`, as they are (values as lossy UTF-8). Sized in a
    /// first pass, so the copy is two allocations and no reallocation.
    pub(crate) fn copy(headers: &dyn crate::HeaderView) -> Self {
        Self::copy_after(&[], headers).0
    }

    /// Copies the `lead` texts, then every line of `headers`, into one buffer; returns
    /// it with where each lead text ends.
    fn copy_after<const N: usize>(
        lead: &[&str; N],
        headers: &dyn crate::HeaderView,
    ) -> (Self, [u32; N]) {
        let (mut count, mut len) = (0usize, lead.iter().map(|t| t.len()).sum::<usize>());
        headers.for_each(&mut |name, value| {
            count += 1;
            len += name.len() + value.len();
        });
        let mut lines = HeaderLines {
            text: String::with_capacity(len),
            start: 0,
            ends: Vec::with_capacity(count),
        };
        let mut lead_ends = [0u32; N];
        for (text, end) in lead.iter().zip(&mut lead_ends) {
            lines.text.push_str(text);
            *end = u32::try_from(lines.text.len()).unwrap_or(u32::MAX);
        }
        lines.start = lead_ends.last().copied().unwrap_or(0);
        headers.for_each(&mut |name, value| {
            lines.text.push_str(name);
            let name_end = lines.text.len();
            match std::str::from_utf8(value) {
                Ok(v) => lines.text.push_str(v),
                Err(_) => lines.text.push_str(&String::from_utf8_lossy(value)),
            }
            // A header block past 4 GiB is not a header block: lines past it are left out.
            if let (Ok(n), Ok(v)) = (u32::try_from(name_end), u32::try_from(lines.text.len())) {
                lines.ends.push((n, v));
            }
        });
        (lines, lead_ends)
    }

    /// The lines, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = self.start as usize;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let line = (
                self.text.get(start..name_end).unwrap_or(""),
                self.text.get(name_end..value_end).unwrap_or(""),
            );
            start = value_end;
            line
        })
    }

    /// The first value of `name` (any case).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

impl crate::HeaderView for HeaderLines {
    fn get(&self, name: &str) -> Option<&[u8]> {
        HeaderLines::get(self, name).map(str::as_bytes)
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for (name, value) in self.iter() {
            f(name, value.as_bytes());
        }
    }
}

/// The request line (method, URI as received, route) and header lines, in one buffer:
/// two allocations per capture for all of them.
#[derive(Clone, Default)]
pub(crate) struct RequestHead {
    lines: HeaderLines,
    /// Where the method, the URI and the route end in `lines.text`.
    ends: [u32; 3],
    has_route: bool,
}

impl RequestHead {
    /// Copies the request line and every header line.
    pub(crate) fn copy(
        method: &str,
        uri: &str,
        route: Option<&str>,
        headers: &dyn crate::HeaderView,
    ) -> Self {
        let (lines, ends) = HeaderLines::copy_after(&[method, uri, route.unwrap_or("")], headers);
        RequestHead {
            lines,
            ends,
            has_route: route.is_some(),
        }
    }

    /// The same head with the route the framework matched once routing ran.
    pub(crate) fn with_route(&self, route: &str) -> Self {
        RequestHead::copy(self.method(), self.uri(), Some(route), self.headers())
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.lines
            .text
            .get(start..self.ends[i] as usize)
            .unwrap_or("")
    }

    /// `GET`, `POST`, ...
    pub(crate) fn method(&self) -> &str {
        self.part(0)
    }

    /// Path and query as received (not redacted).
    pub(crate) fn uri(&self) -> &str {
        self.part(1)
    }

    /// The matched route template, if a route matched.
    pub(crate) fn route(&self) -> Option<&str> {
        self.has_route.then(|| self.part(2))
    }

    /// The header lines (not redacted).
    pub(crate) fn headers(&self) -> &HeaderLines {
        &self.lines
    }
}

/// The response side of a stored capture.
#[derive(Clone)]
pub(crate) struct StoredResponse {
    pub(crate) status: u16,
    pub(crate) headers: HeaderLines,
    pub(crate) body: BodyCapture,
    /// The body's trailers (empty when it sent none).
    pub(crate) trailers: HeaderLines,
    /// From arrival to the response head.
    pub(crate) at: Duration,
}

impl StoredResponse {
    /// A gRPC call's status name, from the `grpc-status` trailer, or the header of a
    /// trailers-only response; `None` for a response that is not a gRPC call's.
    pub(crate) fn grpc_status(&self) -> Option<&'static str> {
        let value = self
            .trailers
            .get("grpc-status")
            .or_else(|| self.headers.get("grpc-status"))?;
        Some(crate::request::GrpcCode::from_header(value.as_bytes()).name())
    }
}

impl StoredCapture {
    /// Its gRPC status name, as the metrics count the call: the one the response sent;
    /// for a gRPC response that sent none, `CANCELLED` when the client went away
    /// mid-call, `UNKNOWN` when the body ended or failed without one (what a client
    /// sees); `None` for a call still running, or a response that is not a gRPC call's.
    pub(crate) fn grpc_status(&self) -> Option<&'static str> {
        let response = self.response.as_ref()?;
        if let Some(status) = response.grpc_status() {
            return Some(status);
        }
        // A gRPC call as the metrics tell one: a 200 with gRPC's content type (not
        // gRPC-Web's, whose status is in its body).
        let grpc = response.status == 200
            && response
                .headers
                .get("content-type")
                .is_some_and(|t| crate::request::grpc::is_grpc_content_type(t.as_bytes()));
        if !grpc || self.in_flight {
            return None;
        }
        let left = !self.complete && !self.failed && !self.panicked;
        let code = if left {
            crate::request::GrpcCode::CANCELLED
        } else {
            crate::request::GrpcCode::UNKNOWN
        };
        Some(code.name())
    }
}

/// One finished debug request as the flight recorder keeps it: unredacted, moved out of
/// the [`DebugRequest`](super::DebugRequest) without copying. Read it only through
/// [`redacted`](Self::redacted).
pub(crate) struct StoredCapture {
    pub(crate) id: u64,
    pub(crate) started_at: SystemTime,
    pub(crate) trace_id: TraceId,
    /// The request's own span (the one in its `traceparent` and exemplars).
    pub(crate) span_id: SpanId,
    /// The caller's span, from an incoming `traceparent` of the same trace.
    pub(crate) parent_span_id: Option<SpanId>,
    /// The caller's `tracestate`, passed on as the server span's in OTLP.
    pub(crate) tracestate: Option<crate::trace::TraceState>,
    pub(crate) level: DebugLevel,
    pub(crate) complete: bool,
    /// A look at a request still running, not a stored capture.
    pub(crate) in_flight: bool,
    /// The handler panicked while the request was current.
    pub(crate) panicked: bool,
    /// The service answered with an error instead of a response.
    pub(crate) failed: bool,
    pub(crate) duration: Duration,
    pub(crate) request: RequestHead,
    pub(crate) request_body: BodyCapture,
    pub(crate) response: Option<StoredResponse>,
    pub(crate) spans: Vec<SpanTiming>,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) dropped_spans: u64,
    pub(crate) dropped_logs: u64,
    pub(crate) cut_fields: u64,
    pub(crate) logs_blocked: bool,
}

impl StoredCapture {
    /// The capture as it may be shown: secret headers, query parameters, body fields
    /// and span and log fields redacted.
    pub(crate) fn redacted(&self, redactor: &Redactor) -> Capture {
        let head = &self.request;
        let request_type = head.headers().get("content-type");
        Capture {
            id: self.id,
            time_unix: self.time_unix(),
            trace_id: self.trace_id.to_string(),
            span_id: self.span_id.to_string(),
            level: self.level,
            complete: self.complete,
            in_flight: self.in_flight,
            panicked: self.panicked,
            failed: self.failed,
            duration_ms: self.duration_ms(),
            response_head_ms: self.response.as_ref().map(|r| capture::ms(r.at)),
            request: CapturedRequest {
                method: head.method().to_owned(),
                uri: self.redacted_uri(redactor),
                route: head.route().map(str::to_owned),
                headers: redactor.headers(head.headers()),
                body: self.request_body.finish(
                    request_type,
                    head.headers().get("content-encoding"),
                    redactor,
                ),
            },
            response: self.response.as_ref().map(|r| CapturedResponse {
                status: r.status,
                grpc_status: self.grpc_status(),
                headers: redactor.headers(&r.headers),
                body: r.body.finish(
                    r.headers.get("content-type"),
                    r.headers.get("content-encoding"),
                    redactor,
                ),
                trailers: redactor.headers(&r.trailers),
            }),
            spans: self
                .spans
                .iter()
                .map(|s| capture::span(s, redactor))
                .collect(),
            logs: self
                .logs
                .iter()
                .map(|l| capture::log(l, redactor))
                .collect(),
            dropped_spans: self.dropped_spans,
            dropped_logs: self.dropped_logs,
            cut_fields: self.cut_fields,
            logs_blocked: self.logs_blocked,
        }
    }

    /// When the request arrived, in seconds since the Unix epoch.
    pub(crate) fn time_unix(&self) -> f64 {
        crate::clock::unix_seconds(self.started_at)
    }

    /// From arrival to the end of the response body (or to the abandonment), in ms.
    pub(crate) fn duration_ms(&self) -> f64 {
        capture::ms(self.duration)
    }

    /// The URI with secret query parameters redacted (what the capture list shows).
    pub(crate) fn redacted_uri(&self, redactor: &Redactor) -> String {
        redactor.uri(self.request.uri())
    }

    /// Roughly how much memory the capture holds, for the recorder's byte cap.
    pub(crate) fn approx_bytes(&self) -> usize {
        fn fields(p: &[(StaticText, String)]) -> usize {
            p.iter().map(|(a, b)| a.len() + b.len() + 48).sum()
        }
        let mut n = std::mem::size_of::<StoredCapture>();
        n += self.request.lines.bytes() + self.request_body.bytes();
        if let Some(r) = &self.response {
            n += std::mem::size_of::<StoredResponse>()
                + r.headers.bytes()
                + r.trailers.bytes()
                + r.body.bytes();
        }
        n += self
            .spans
            .iter()
            .map(|s| {
                std::mem::size_of::<SpanTiming>()
                    + s.name.len()
                    + s.target.len()
                    + fields(&s.fields)
            })
            .sum::<usize>();
        n += self
            .logs
            .iter()
            .map(|l| {
                std::mem::size_of::<LogLine>()
                    + l.level.len()
                    + l.target.len()
                    + l.message.len()
                    + fields(&l.fields)
            })
            .sum::<usize>();
        n
    }
}

/// Names only what is safe to print: the stored capture holds credentials.
impl std::fmt::Debug for StoredCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCapture")
            .field("id", &self.id)
            .field("method", &self.request.method())
            .field("route", &self.request.route())
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::headers;

    /// A complete `GET /` capture with a `body_len`-byte text request body.
    pub(crate) fn stored(id: u64, body_len: usize) -> StoredCapture {
        let mut body = BodyCapture::new(body_len.max(64));
        body.push("x".repeat(body_len).as_bytes());
        body.end();
        StoredCapture {
            id,
            started_at: SystemTime::UNIX_EPOCH,
            trace_id: TraceId([0; 16]),
            span_id: SpanId([1; 8]),
            parent_span_id: None,
            tracestate: None,
            level: DebugLevel::Debug,
            complete: true,
            in_flight: false,
            panicked: false,
            failed: false,
            duration: Duration::from_millis(1),
            request: RequestHead::copy("GET", "/", None, &headers(&[])),
            request_body: body,
            response: None,
            spans: vec![],
            logs: vec![],
            dropped_spans: 0,
            dropped_logs: 0,
            cut_fields: 0,
            logs_blocked: false,
        }
    }

    #[test]
    fn header_lines_keep_order_values_and_case_insensitive_lookup() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("x-a", ""),
            ("x-b", "two words"),
        ]);
        let lines = HeaderLines::copy(&h);
        let all: Vec<(&str, &str)> = lines.iter().collect();
        assert_eq!(
            all,
            [
                ("content-type", "application/json"),
                ("x-a", ""),
                ("x-b", "two words")
            ]
        );
        assert_eq!(lines.get("Content-Type"), Some("application/json"));
        assert_eq!(lines.get("x-c"), None);
        assert_eq!(HeaderLines::default().iter().count(), 0);
    }

    #[test]
    fn request_head_keeps_its_line_apart_from_the_headers() {
        let h = headers(&[("accept", "*/*"), ("x-a", "1")]);
        let head = RequestHead::copy("POST", "/cart?x=1", Some("/cart"), &h);
        assert_eq!(
            (head.method(), head.uri(), head.route()),
            ("POST", "/cart?x=1", Some("/cart"))
        );
        let lines: Vec<(&str, &str)> = head.headers().iter().collect();
        assert_eq!(lines, [("accept", "*/*"), ("x-a", "1")]);
        let bare = RequestHead::copy("GET", "/", None, &headers(&[]));
        assert_eq!(
            (bare.method(), bare.uri(), bare.route()),
            ("GET", "/", None)
        );
        assert_eq!(bare.headers().iter().count(), 0);
    }

    #[test]
    fn debug_output_shows_no_uri_header_or_body() {
        let mut s = stored(3, 0);
        s.request = RequestHead::copy(
            "GET",
            "/login?token=SECRET-Q",
            Some("/login"),
            &headers(&[("authorization", "SECRET-H")]),
        );
        s.request_body.push(b"SECRET-B");
        let shown = format!("{s:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("id: 3"));
    }
}
