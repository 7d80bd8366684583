//! A capture as plain text, for a person in a terminal: the request line, a waterfall of
//! spans (indented by parent, an ASCII bar scaled to the total) with log lines at their
//! offsets inside their span, then the redacted request and response.
//!
//! Whatever came from outside (a logged value, a header, a body) is written through
//! [`Safe`]: control characters are shown as escapes, so nothing a client sent or a
//! handler logged can drive the reader's terminal (move the cursor, recolour, retitle,
//! write the clipboard) or forge a row of this view.

use std::collections::HashMap;
use std::fmt::Write;

use super::capture::{Capture, CapturedBody, CapturedLog, CapturedResponse, CapturedSpan};

/// Width of the bar column, in characters.
const BAR: usize = 40;

/// Text from outside, made safe to print on a terminal: control characters (C0, DEL,
/// C1) and the bidirectional overrides that reorder what a reader sees are written as
/// escapes (`\n`, `\u{1b}`); in a body (`Safe::lines`) line feeds and tabs stay.
///
/// ```
/// use diag_core::debug::Safe;
/// assert_eq!(Safe("a\x1b[2Jb\nc").to_string(), "a\\u{1b}[2Jb\\nc");
/// assert_eq!(Safe::lines("a\tb\r\nc\u{9b}").to_string(), "a\tb\r\nc\\u{9b}");
/// assert_eq!(Safe("plain, été").to_string(), "plain, été");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Safe<'a>(pub &'a str);

/// [`Safe`] keeping line breaks and tabs (bodies).
///
/// ```
/// use diag_core::debug::{Safe, SafeLines};
/// let body: SafeLines<'_> = Safe::lines("line 1\nline 2\x1b]0;pwned\x07");
/// assert_eq!(body.to_string(), "line 1\nline 2\\u{1b}]0;pwned\\u{7}");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SafeLines<'a>(&'a str);

impl<'a> Safe<'a> {
    /// `text` with its line feeds, carriage returns before them, and tabs kept.
    ///
    /// ```
    /// use diag_core::debug::Safe;
    /// assert_eq!(Safe::lines("a\nb\tc").to_string(), "a\nb\tc");
    /// assert_eq!(Safe("a\nb\tc").to_string(), "a\\nb\\tc");
    /// // A lone carriage return could overwrite a line on the terminal: escaped.
    /// assert_eq!(Safe::lines("ok\rFAKE").to_string(), "ok\\rFAKE");
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
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    let mut rest = text;
    while let Some(at) = rest.find(needs) {
        f.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        let next = rest[at + c.len_utf8()..].chars().next();
        match c {
            '\n' | '\t' if lines => f.write_char(c)?,
            '\r' if lines && next == Some('\n') => f.write_char(c)?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    f.write_str(rest)
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
    render_on(capture, None)
}

/// [`render`], its second line naming the instance that kept the capture (debug ids
/// are numbered per instance: behind a load balancer, id 1 exists on every one).
pub(crate) fn render_on(capture: &Capture, instance: Option<&str>) -> String {
    let mut out = String::with_capacity(4096);
    let status = capture
        .response
        .as_ref()
        .map_or_else(|| "no response".to_owned(), status_line);
    let _ = writeln!(
        out,
        "{} {} -> {}   total {:.3} ms   {}",
        Safe(&capture.request.method),
        Safe(&capture.request.uri),
        status,
        capture.duration_ms,
        if capture.complete {
            "complete"
        } else if capture.panicked {
            "INCOMPLETE (the handler panicked)"
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
        "   trace {}   level {}   route {}",
        capture.trace_id,
        capture.level.as_str(),
        Safe(capture.request.route.as_deref().unwrap_or("(unmatched)"))
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
    out.push('\n');
    waterfall(&mut out, capture);
    out.push('\n');
    let req = &capture.request;
    let _ = writeln!(out, "== request: {} {}", Safe(&req.method), Safe(&req.uri));
    headers(&mut out, &req.headers);
    body(&mut out, &req.body);
    match &capture.response {
        Some(resp) => {
            let _ = writeln!(out, "== response: {}", status_line(resp));
            headers(&mut out, &resp.headers);
            body(&mut out, &resp.body);
            if !resp.trailers.is_empty() {
                out.push_str("-- trailers\n");
                headers(&mut out, &resp.trailers);
            }
        }
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
        let _ = writeln!(out, "{}: {}", Safe(k), Safe(v));
    }
}

fn body(out: &mut String, b: &CapturedBody) {
    let _ = write!(
        out,
        "-- body: {} of {} bytes",
        b.captured_bytes, b.total_bytes
    );
    if b.truncated {
        out.push_str(", truncated");
    }
    if !b.ended {
        out.push_str(", end not seen");
    }
    if let Some(how) = b.redaction {
        let _ = write!(out, ", redacted ({how:?})");
    }
    out.push('\n');
    if let Some(text) = &b.text {
        let _ = write!(out, "{}", Safe::lines(text));
        if !text.ends_with('\n') && !text.is_empty() {
            out.push('\n');
        }
    } else if let Some(b64) = &b.base64 {
        let _ = writeln!(out, "(binary, base64) {b64}");
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
            .filter(|&c| c != '\n' && c != '\r' && (c.is_control() || c == '\u{202e}'))
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
        // A body keeps its lines.
        assert!(
            text.contains("line one\r\n\\u{0}\\u{0}\\u{7}line two\n"),
            "{text}"
        );
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
