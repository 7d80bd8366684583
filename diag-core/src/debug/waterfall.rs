//! A capture as plain text, for a person in a terminal: the request line, a waterfall of
//! spans (indented by parent, an ASCII bar scaled to the total) with log lines at their
//! offsets inside their span, then the redacted request and response.
//!
//! Whatever came from outside (a logged value, a header, a body) is written through
//! [`Safe`]: control characters are shown as escapes, so nothing a client sent or a
//! handler logged can drive the reader's terminal (move the cursor, recolour, retitle,
//! write the clipboard) or forge a row of this view. Only a body keeps its line breaks,
//! and every line of it is written behind a gutter (`  | `), so a body line
//! cannot pass for a line of the view (`== response: 500`, a header).

use std::collections::HashMap;
use std::fmt::Write;

use super::capture::{Capture, CapturedBody, CapturedLog, CapturedResponse, CapturedSpan};

/// Width of the bar column, in characters.
const BAR: usize = 40;

/// What starts every line of a body in the text view: body text, however it is made,
/// is never at the start of a line there.
const BODY_GUTTER: &str = "  | ";

/// Text from outside, made safe to print on a terminal: control characters (C0, DEL,
/// C1), the Unicode line and paragraph separators, and the bidirectional overrides
/// that reorder what a reader sees are written as escapes (`\n`, `\u{1b}`); with
/// [`Safe::lines`] line feeds and tabs stay.
///
/// ```
/// use diag_core::debug::Safe;
/// assert_eq!(Safe("a\x1b[2Jb\nc").to_string(), "a\\u{1b}[2Jb\\nc");
/// assert_eq!(Safe::lines("a\tb\r\nc\u{9b}").to_string(), "a\tb\\r\nc\\u{9b}");
/// assert_eq!(Safe("a\u{2028}b").to_string(), "a\\u{2028}b");
/// assert_eq!(Safe("plain, été").to_string(), "plain, été");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Safe<'a>(pub &'a str);

/// [`Safe`] keeping line feeds and tabs. Every other control character, a carriage
/// return too (before a line feed or not: it could overwrite what the line began with),
/// is escaped. Whoever prints it must still mark the lines it makes as what they are:
/// the text view writes each behind a gutter (`  | `).
///
/// ```
/// use diag_core::debug::{Safe, SafeLines};
/// let body: SafeLines<'_> = Safe::lines("line 1\r\nline 2\x1b]0;pwned\x07");
/// assert_eq!(body.to_string(), "line 1\\r\nline 2\\u{1b}]0;pwned\\u{7}");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SafeLines<'a>(&'a str);

impl<'a> Safe<'a> {
    /// `text` with its line feeds and tabs kept.
    ///
    /// ```
    /// use diag_core::debug::Safe;
    /// assert_eq!(Safe::lines("a\nb\tc").to_string(), "a\nb\tc");
    /// assert_eq!(Safe("a\nb\tc").to_string(), "a\\nb\\tc");
    /// // A carriage return could overwrite a line on the terminal: escaped.
    /// assert_eq!(Safe::lines("ok\rFAKE").to_string(), "ok\\rFAKE");
    /// assert_eq!(Safe::lines("ok\r\n").to_string(), "ok\\r\n");
    /// ```
    pub fn lines(text: &'a str) -> SafeLines<'a> {
        SafeLines(text)
    }
}

impl std::fmt::Display for Safe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_safe(f, self.0, false)
    }
}

impl std::fmt::Display for SafeLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_safe(f, self.0, true)
    }
}

fn write_safe(f: &mut std::fmt::Formatter<'_>, text: &str, lines: bool) -> std::fmt::Result {
    let needs = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            )
    };
    let mut rest = text;
    while let Some(at) = rest.find(needs) {
        f.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '\n' | '\t' if lines => f.write_char(c)?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    f.write_str(rest)
}

/// A header name as the view prints it at the start of a line: a real one (an HTTP
/// token) as it is; anything else a token may not hold (a space, `=`, `:`) escaped, so
/// no name can read as a line of the view (`== response: 500`).
struct HeaderName<'a>(&'a str);

impl std::fmt::Display for HeaderName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if !self.0.is_empty() && self.0.chars().all(token) {
            return f.write_str(self.0);
        }
        for c in self.0.chars() {
            if token(c) {
                f.write_char(c)?;
            } else {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            }
        }
        Ok(())
    }
}

enum Row<'a> {
    Span(usize, &'a CapturedSpan),
    Log(&'a CapturedLog),
}

impl Row<'_> {
    fn offset(&self) -> f64 {
        match self {
            Row::Span(_, s) => s.start_ms,
            Row::Log(l) => l.offset_ms,
        }
    }
}

/// `200`, or for a gRPC call `200 (gRPC NOT_FOUND)`: how the call ended, which its HTTP
/// status does not say.
fn status_line(resp: &CapturedResponse) -> String {
    match resp.grpc_status {
        Some(grpc) => format!("{} (gRPC {grpc})", resp.status),
        None => resp.status.to_string(),
    }
}

/// Renders `capture` as the plain-text view of `/debug/requests/{id}`.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::render_waterfall;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "GET", route: Some("/products/{id}"), uri: "/products/8", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.response_head(200, &());
/// debug.response_end();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// let text = render_waterfall(&capture);
/// assert!(text.starts_with("GET /products/8 -> 200   total "));
/// assert!(text.lines().next().unwrap().ends_with("complete"));
/// ```
pub fn render(capture: &Capture) -> String {
    render_on(capture, None, false)
}

/// [`render`], its second line naming the instance that kept the capture (debug ids
/// are numbered per instance: behind a load balancer, id 1 exists on every one).
pub(crate) fn render_on(capture: &Capture, instance: Option<&str>, pinned: bool) -> String {
    let mut out = String::with_capacity(4096);
    let status = capture.response.as_ref().map_or_else(
        || {
            if capture.in_flight {
                "no response yet".to_owned()
            } else {
                "no response".to_owned()
            }
        },
        status_line,
    );
    let _ = writeln!(
        out,
        "{} {} -> {}   total {:.3} ms   {}",
        Safe(&capture.request.method),
        Safe(&capture.request.uri),
        status,
        capture.duration_ms,
        if capture.complete {
            "complete"
        } else if capture.in_flight {
            "STILL RUNNING (what it recorded so far)"
        } else if capture.panicked {
            "INCOMPLETE (the handler panicked)"
        } else if capture.failed && capture.response.is_some() {
            "INCOMPLETE (the response body failed with an error mid-way)"
        } else if capture.failed {
            "INCOMPLETE (the service failed with an error instead of a response)"
        } else {
            "INCOMPLETE (client went away or no response)"
        }
    );
    let _ = write!(out, "debug id {}", capture.id);
    if let Some(instance) = instance {
        let _ = write!(out, " on {}", Safe(instance));
    }
    let _ = writeln!(
        out,
        "   trace {}   level {}   route {}{}",
        capture.trace_id,
        capture.level.as_str(),
        Safe(capture.request.route.as_deref().unwrap_or("(unmatched)")),
        if pinned { "   pinned" } else { "" }
    );
    if let Some(head) = capture.response_head_ms {
        let _ = writeln!(out, "response head after {head:.3} ms");
    }
    if capture.dropped_spans > 0 || capture.dropped_logs > 0 {
        let _ = writeln!(
            out,
            "note: {} spans and {} log lines were dropped over the session caps",
            capture.dropped_spans, capture.dropped_logs
        );
    }
    if capture.logs_blocked {
        let _ = writeln!(
            out,
            "note: no DEBUG lines: the service's subscriber drops DEBUG events before diag's \
             filter sees them (see /debug, hints)"
        );
    }
    if capture.cut_fields > 0 {
        let _ = writeln!(
            out,
            "note: {} fields were left out (over 32 a record) or cut (at 1 KiB)",
            capture.cut_fields
        );
    }
    if capture.response.as_ref().is_some_and(|r| r.status == 101) {
        let _ = writeln!(
            out,
            "note: the connection was upgraded (101, a WebSocket say): what it carried \
             after the response head is not captured"
        );
    }
    out.push('\n');
    waterfall(&mut out, capture);
    out.push('\n');
    let req = &capture.request;
    let _ = writeln!(out, "== request: {} {}", Safe(&req.method), Safe(&req.uri));
    headers(&mut out, &req.headers);
    body(&mut out, &req.body, Side::Request, &req.headers);
    match &capture.response {
        Some(resp) => {
            let _ = writeln!(out, "== response: {}", status_line(resp));
            headers(&mut out, &resp.headers);
            body(&mut out, &resp.body, Side::Response, &resp.headers);
            if !resp.trailers.is_empty() {
                out.push_str("-- trailers\n");
                headers(&mut out, &resp.trailers);
            }
        }
        None if capture.in_flight => out.push_str("== response: none yet\n"),
        None => out.push_str("== response: none was produced\n"),
    }
    out
}

fn waterfall(out: &mut String, capture: &Capture) {
    let total = capture
        .spans
        .iter()
        .map(|s| s.start_ms + s.duration_ms)
        .chain(capture.logs.iter().map(|l| l.offset_ms))
        .fold(capture.duration_ms, f64::max)
        .max(0.001);
    let ids: HashMap<u64, usize> = capture
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id, i))
        .collect();
    // Rows grouped under the span they belong to (None: the top level).
    let mut children: HashMap<Option<u64>, Vec<Row<'_>>> = HashMap::new();
    for (i, s) in capture.spans.iter().enumerate() {
        let parent = s.parent.filter(|p| *p != s.id && ids.contains_key(p));
        children.entry(parent).or_default().push(Row::Span(i, s));
    }
    for l in &capture.logs {
        let parent = l.span.filter(|p| ids.contains_key(p));
        children.entry(parent).or_default().push(Row::Log(l));
    }
    for rows in children.values_mut() {
        rows.sort_by(|a, b| a.offset().total_cmp(&b.offset()));
    }
    let _ = writeln!(
        out,
        "{:>10} {:>10}  |{:<w$}|",
        "start ms",
        "dur ms",
        format!("0 .. {total:.3} ms"),
        w = BAR
    );
    let mut printed = vec![false; capture.spans.len()];
    let mut stack: Vec<(&Row<'_>, usize)> = Vec::new();
    if let Some(top) = children.get(&None) {
        stack.extend(top.iter().rev().map(|r| (r, 0)));
    }
    while let Some((row, depth)) = stack.pop() {
        match row {
            Row::Span(i, s) => {
                if std::mem::replace(&mut printed[*i], true) {
                    continue; // a reused id or a cycle: each span once
                }
                span_row(out, s, depth, total);
                if let Some(kids) = children.get(&Some(s.id)) {
                    stack.extend(kids.iter().rev().map(|r| (r, depth + 1)));
                }
            }
            Row::Log(l) => log_row(out, l, depth, total),
        }
    }
    if capture.spans.is_empty() && capture.logs.is_empty() {
        out.push_str("(no spans or log lines were recorded for this request)\n");
    }
}

fn column(ms: f64, total: f64) -> usize {
    ((ms / total) * BAR as f64).floor().clamp(0.0, BAR as f64) as usize
}

fn span_row(out: &mut String, s: &CapturedSpan, depth: usize, total: f64) {
    let from = column(s.start_ms, total).min(BAR - 1);
    let to = (((s.start_ms + s.duration_ms) / total) * BAR as f64)
        .ceil()
        .clamp(0.0, BAR as f64) as usize;
    let to = to.max(from + 1);
    let bar: String = (0..BAR)
        .map(|i| if i >= from && i < to { '#' } else { ' ' })
        .collect();
    let _ = write!(
        out,
        "{:>10.3} {:>10.3}  |{bar}|  {:indent$}{}",
        s.start_ms,
        s.duration_ms,
        "",
        Safe(&s.name),
        indent = depth * 2
    );
    for (k, v) in &s.fields {
        let _ = write!(out, " {}={}", Safe(k), Safe(v));
    }
    out.push('\n');
}

fn log_row(out: &mut String, l: &CapturedLog, depth: usize, total: f64) {
    let at = column(l.offset_ms, total).min(BAR - 1);
    let bar: String = (0..BAR).map(|i| if i == at { '*' } else { ' ' }).collect();
    let _ = write!(
        out,
        "{:>10.3} {:>10}  |{bar}|  {:indent$}{} {}: {}",
        l.offset_ms,
        "",
        "",
        Safe(&l.level),
        Safe(&l.target),
        Safe(&l.message),
        indent = depth * 2
    );
    for (k, v) in &l.fields {
        let _ = write!(out, " {}={}", Safe(k), Safe(v));
    }
    out.push('\n');
}

fn headers(out: &mut String, headers: &[(String, String)]) {
    for (k, v) in headers {
        let _ = writeln!(out, "{}: {}", HeaderName(k), Safe(v));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// The `-- body:` line, then the body's lines, each behind [`BODY_GUTTER`].
fn body(out: &mut String, b: &CapturedBody, side: Side, heads: &[(String, String)]) {
    let declared = (!b.ended)
        .then(|| {
            heads
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        })
        .flatten()
        .map(|(_, v)| v.trim());
    out.push_str("-- body: ");
    if !b.ended && b.total_bytes == 0 {
        // Nothing went by and no end either: a handler that answered (a 415, a 401)
        // without reading the request's body, or a response cut before its first byte.
        out.push_str(match side {
            Side::Request => "not read by the handler",
            Side::Response => "none seen before the exchange ended",
        });
    } else {
        let _ = write!(out, "{} of {} bytes", b.captured_bytes, b.total_bytes);
        if b.truncated {
            out.push_str(", truncated");
        }
        if !b.ended {
            out.push_str(", end not seen");
        }
    }
    if let Some(length) = declared {
        let _ = write!(out, " (content-length {})", Safe(length));
    }
    if let Some(how) = b.redaction {
        let _ = write!(out, ", redacted ({how:?})");
    }
    if b.text.is_none() && b.base64.is_some() {
        out.push_str(", binary, in base64");
    }
    if let Some(why) = &b.withheld {
        let _ = write!(out, ", not shown: {}", Safe(why));
    }
    out.push('\n');
    if let Some(text) = b.text.as_deref().filter(|t| !t.is_empty()) {
        for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
            if line.is_empty() {
                let _ = writeln!(out, "{}", BODY_GUTTER.trim_end());
            } else {
                let _ = writeln!(out, "{BODY_GUTTER}{}", Safe::lines(line));
            }
        }
    } else if let Some(b64) = &b.base64 {
        let _ = writeln!(out, "{BODY_GUTTER}{b64}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debug::recorder::tests::capture;

    fn span(id: u64, parent: Option<u64>, name: &str, start: f64, dur: f64) -> CapturedSpan {
        CapturedSpan {
            id,
            parent,
            name: name.into(),
            target: "app".into(),
            start_ms: start,
            duration_ms: dur,
            fields: vec![],
        }
    }

    fn log(at: f64, span: Option<u64>, msg: &str) -> CapturedLog {
        CapturedLog {
            offset_ms: at,
            level: "DEBUG".into(),
            target: "app".into(),
            message: msg.into(),
            fields: vec![("rows".into(), "3".into())],
            span,
        }
    }

    /// A logged value, a header and a body holding terminal escapes and line breaks:
    /// none reaches the terminal raw, and no logged text makes a row of its own.
    #[test]
    fn nothing_from_outside_drives_the_terminal_or_forges_a_row() {
        let mut c = capture(7, 0);
        c.duration_ms = 10.0;
        c.spans = vec![span(1, None, "request", 0.0, 10.0)];
        let mut evil = log(
            1.0,
            Some(1),
            "user said \x1b]52;c;cGF5bG9hZA==\x07\n  9.000             |*|  ERROR app: forged",
        );
        evil.fields = vec![("name".into(), "\x1b[2J\u{9b}31m\u{202e}txt.exe".into())];
        c.logs = vec![evil];
        c.request.headers = vec![("x-note".into(), "a\u{9b}b".into())];
        c.request.body.text = Some("line one\r\n\0\0\x07line two\n".into());
        let text = render(&c);
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| c != '\n' && (c.is_control() || c == '\u{202e}'))
            .collect();
        assert!(raw.is_empty(), "raw control characters {raw:?} in:\n{text}");
        assert!(
            text.contains("user said \\u{1b}]52;c;cGF5bG9hZA==\\u{7}\\n  9.000"),
            "{text}"
        );
        assert!(
            text.contains("name=\\u{1b}[2J\\u{9b}31m\\u{202e}txt.exe"),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("9.000")),
            "{text}"
        );
        assert!(text.contains("x-note: a\\u{9b}b\n"), "{text}");
        // A body keeps its lines, each behind the gutter; its carriage return is shown.
        assert!(
            text.contains("\n  | line one\\r\n  | \\u{0}\\u{0}\\u{7}line two\n"),
            "{text}"
        );
    }

    /// The lines of the request and response part that are not body lines: each must
    /// be one the view wrote (a section, a `-- body:` line, a header).
    fn view_lines(text: &str) -> Vec<&str> {
        text.lines()
            .skip_while(|l| !l.starts_with("== request: "))
            .filter(|l| !l.starts_with(BODY_GUTTER) && *l != BODY_GUTTER.trim_end())
            .collect()
    }

    const FORGED: &str =
        "{\"a\":1}\n== response: 500\r\nset-cookie: fake\n\n-- body: 0 of 0 bytes\n";

    fn with_body(mut body: CapturedBody, text: &str) -> CapturedBody {
        body.text = Some(text.into());
        body.captured_bytes = text.len();
        body.total_bytes = text.len() as u64;
        body
    }

    /// A body holding what looks like lines of the view (a JSON body with raw line
    /// breaks): every one of its lines is marked as body, and its CR is escaped.
    #[test]
    fn a_body_cannot_fake_a_line_of_the_view() {
        let mut c = capture(7, 0);
        c.request.headers = vec![("content-type".into(), "application/json".into())];
        c.request.body = with_body(c.request.body.clone(), FORGED);
        c.response = Some(CapturedResponse {
            status: 200,
            grpc_status: None,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: with_body(c.request.body.clone(), FORGED),
            trailers: vec![],
        });
        let text = render(&c);
        assert!(!text.contains('\r'), "{text:?}");
        let body = "  | {\"a\":1}\n  | == response: 500\\r\n  | set-cookie: fake\n  |\n  | -- body: 0 of 0 bytes\n";
        assert_eq!(text.matches(body).count(), 2, "{text}");
        let n = FORGED.len();
        assert_eq!(
            view_lines(&text),
            [
                "== request: GET /",
                "content-type: application/json",
                &*format!("-- body: {n} of {n} bytes"),
                "== response: 200",
                "content-type: text/plain",
                &*format!("-- body: {n} of {n} bytes"),
            ],
            "{text}"
        );
    }

    /// Everything else a client (or a handler logging what a client sent) controls is
    /// printed inside a line the view starts: none of it can start a line.
    #[test]
    fn no_other_text_from_outside_starts_a_line() {
        let evil = "x\r\n== response: 500\nset-cookie: fake\u{2028}== request: GET /\u{85}-- body:";
        let mut c = capture(7, 0);
        c.duration_ms = 10.0;
        c.request.method = evil.into();
        c.request.uri = format!("/{evil}");
        c.request.route = Some(evil.into());
        c.request.headers = vec![
            ("x-note".into(), evil.into()),
            ("== response".into(), "500".into()),
            (evil.into(), "v".into()),
        ];
        c.request.body.text = Some(String::new());
        c.request.body.captured_bytes = 0;
        c.request.body.total_bytes = 0;
        let mut s = span(1, None, evil, 0.0, 10.0);
        s.fields = vec![(evil.into(), evil.into())];
        c.spans = vec![s];
        let mut l = log(1.0, Some(1), evil);
        l.level = evil.into();
        l.target = evil.into();
        l.fields = vec![(evil.into(), evil.into())];
        c.logs = vec![l];
        c.response = Some(CapturedResponse {
            status: 200,
            grpc_status: None,
            headers: vec![("x-echo".into(), evil.into())],
            body: c.request.body.clone(),
            trailers: vec![("grpc-message".into(), evil.into())],
        });
        let text = render_on(&c, Some(evil), false);
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| c != '\n' && (c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')))
            .collect();
        assert!(raw.is_empty(), "raw {raw:?} in:\n{text}");
        // 2 head lines, a blank, the bar header, a span, a log line, a blank, then the
        // request (a section, 3 headers, its body line), the response (a section, a
        // header, its body line, the trailers' line and one trailer).
        assert_eq!(text.lines().count(), 7 + 5 + 5, "{text}");
        for line in text.lines() {
            for forged in [
                "== response: 500",
                "set-cookie",
                "== request: GET /",
                "-- body:",
            ] {
                assert!(
                    !line.starts_with(forged) || line.starts_with("-- body: 0 of 0"),
                    "{line}\n{text}"
                );
            }
        }
        assert!(
            text.contains("\n\\u{3d}\\u{3d}\\u{20}response: 500\n"),
            "{text}"
        );
        assert!(
            text.contains("x-note: x\\r\\n== response: 500\\nset-cookie: fake\\u{2028}"),
            "{text}"
        );
    }

    /// A handler that refused the request (a 415) before reading its body: the view says
    /// so, with the length the client declared, not `0 of 0 bytes, end not seen`.
    #[test]
    fn an_unread_body_says_the_handler_did_not_read_it() {
        let mut c = capture(7, 0);
        c.request.method = "POST".into();
        c.request.headers = vec![
            ("content-type".into(), "application/xml".into()),
            ("Content-Length".into(), "50".into()),
        ];
        c.request.body.text = Some(String::new());
        c.request.body.captured_bytes = 0;
        c.request.body.total_bytes = 0;
        c.request.body.ended = false;
        c.response = Some(CapturedResponse {
            status: 415,
            grpc_status: None,
            headers: vec![],
            body: with_body(c.request.body.clone(), "unsupported media type"),
            trailers: vec![],
        });
        c.response.as_mut().unwrap().body.ended = true;
        let text = render(&c);
        assert!(
            text.contains(
                "\n-- body: not read by the handler (content-length 50)\n== response: 415\n"
            ),
            "{text}"
        );
        assert!(!text.contains("0 of 0 bytes"), "{text}");
        assert!(
            text.contains("\n-- body: 22 of 22 bytes\n  | unsupported media type\n"),
            "{text}"
        );

        // Without a declared length; and a body read in part.
        c.request.headers.pop();
        assert!(render(&c).contains("\n-- body: not read by the handler\n"));
        c.request
            .headers
            .push(("content-length".into(), "50".into()));
        c.request.body = with_body(c.request.body.clone(), "<a>");
        assert!(
            render(&c)
                .contains("\n-- body: 3 of 3 bytes, end not seen (content-length 50)\n  | <a>\n"),
            "{}",
            render(&c)
        );
        // A body that is not shown says why.
        let mut withheld = c.request.body.clone();
        withheld.text = None;
        withheld.withheld = Some("content-encoding gzip\n== response: 500".into());
        c.request.body = withheld;
        assert!(
            render(&c).contains(
                "\n-- body: 3 of 3 bytes, end not seen (content-length 50), not shown: \
                 content-encoding gzip\\n== response: 500\n== response: 415\n"
            ),
            "{}",
            render(&c)
        );
        // A response cut before its first byte.
        let resp = c.response.as_mut().unwrap();
        resp.body = with_body(resp.body.clone(), "");
        resp.body.ended = false;
        assert!(
            render(&c).contains("\n-- body: none seen before the exchange ended\n"),
            "{}",
            render(&c)
        );
    }

    #[test]
    fn an_upgraded_connection_says_its_traffic_is_not_captured() {
        let mut c = capture(8, 0);
        let note = "note: the connection was upgraded (101";
        c.response = Some(CapturedResponse {
            status: 200,
            grpc_status: None,
            headers: vec![],
            body: with_body(c.request.body.clone(), ""),
            trailers: vec![],
        });
        assert!(!render(&c).contains(note));
        c.response.as_mut().unwrap().status = 101;
        assert!(render(&c).contains(note), "{}", render(&c));
    }

    #[test]
    fn nested_spans_and_interleaved_logs() {
        let mut c = capture(7, 0);
        c.duration_ms = 100.0;
        // Closing order (children first), as a tracing layer records them.
        c.spans = vec![
            span(3, Some(2), "db.query", 10.0, 40.0),
            span(4, Some(1), "render", 60.0, 30.0),
            span(2, Some(1), "load_cart", 5.0, 50.0),
            span(1, None, "request", 0.0, 100.0),
        ];
        c.logs = vec![
            log(55.0, Some(1), "cart loaded"),
            log(20.0, Some(3), "query sent"),
            log(1.0, None, "outside any span"),
        ];
        let text = render(&c);
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("start ms"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        let names: Vec<String> = rows
            .iter()
            .map(|r| r.rsplit_once('|').unwrap().1[2..].to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "request",
                "  load_cart",
                "    db.query",
                "      DEBUG app: query sent rows=3",
                "  DEBUG app: cart loaded rows=3",
                "  render",
                "DEBUG app: outside any span rows=3",
            ],
            "{text}"
        );
        let bar = |row: &str| row.split('|').nth(1).unwrap().to_owned();
        // `request` spans the whole bar; db.query covers 10..50 ms = columns 4..20.
        assert_eq!(bar(rows[0]), "#".repeat(BAR));
        assert_eq!(
            bar(rows[2]),
            format!("{}{}{}", " ".repeat(4), "#".repeat(16), " ".repeat(20))
        );
        // The log at 20 ms sits at column 8.
        assert_eq!(bar(rows[3]).find('*'), Some(8));
        assert!(text.starts_with("GET / -> no response"));
    }

    #[test]
    fn empty_and_cyclic_sessions_render() {
        let c = capture(1, 0);
        assert!(render(&c).contains("no spans or log lines"));
        let mut c = capture(2, 0);
        c.spans = vec![span(5, Some(5), "self_parent", 0.0, 1.0)];
        assert!(render(&c).contains("self_parent"));
    }
}
