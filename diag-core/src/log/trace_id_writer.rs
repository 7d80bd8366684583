//! [`TraceIdWriter`]: every log line a request writes carries its trace id, not only a
//! debug request's.
//!
//! A debug request's lines carry the trace id through its root span
//! ([`request_span`](crate::log::request_span)). Other requests have no span (one would
//! cost every request the span's life cycle in the subscriber), so their INFO, WARN and
//! ERROR lines could not be matched with the trace id that the response's `traceparent`,
//! an exemplar or the `errors` provider names. This writer adds it when the line is
//! written: `fmt` formats each event into one buffer and writes it with one `write_all`,
//! so the writer sees whole lines, whatever the format and with its colours intact.

use std::cell::RefCell;
use std::io;

use tracing_subscriber::fmt::MakeWriter;

use crate::request::with_current;
use crate::trace::TraceId;
use crate::trace::hex::hex16;

/// A [`MakeWriter`] that appends ` trace_id=<32 hex>` to each line written while a
/// request is current on the thread (see [`with_current`]), or, for a JSON line
/// (`fmt::layer().json()`), adds a `"trace_id"` member first in the object. A line that
/// already shows the id (a debug request's, through its root span) and a line written
/// outside any request pass through unchanged.
///
/// The id is taken when the line's writer is made, on the thread that logs, so a
/// non-blocking writer (such as `tracing-appender`'s) wrapped by this one works too.
/// Work a request moved to another task or thread carries no request scope, and its
/// lines no id (instrument it with a span that records the id if it needs one).
///
/// Cost: outside a request, one thread-local read a line. Inside one, a search of the
/// line for the id and one copy of the line into a per-thread buffer.
///
/// ```
/// use std::io::Write;
/// use std::sync::{Arc, Mutex};
/// use diag_core::log::TraceIdWriter;
/// use diag_core::request::RequestView;
/// use tracing_subscriber::fmt::{self, MakeWriter};
///
/// // A writer that keeps what it is given, standing in for stdout.
/// #[derive(Clone, Default)]
/// struct Lines(Arc<Mutex<Vec<u8>>>);
/// impl Write for Lines {
///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
/// impl<'a> MakeWriter<'a> for Lines {
///     type Writer = Lines;
///     fn make_writer(&'a self) -> Lines { self.clone() }
/// }
///
/// let lines = Lines::default();
/// let subscriber = fmt::fmt()
///     .with_writer(TraceIdWriter::new(lines.clone()))
///     .without_time()
///     .with_ansi(false)
///     .finish();
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
/// });
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!("outside any request");
///     let _entered = guard.enter();
///     tracing::warn!(dependency = "inventory", "lookup failed");
/// });
/// let out = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
/// let trace_id = guard.trace().trace_id.to_string();
/// let lines: Vec<&str> = out.lines().collect();
/// assert!(lines[0].ends_with("outside any request"), "{out}");
/// assert!(
///     lines[1].ends_with(&format!(r#"lookup failed dependency="inventory" trace_id={trace_id}"#)),
///     "{out}"
/// );
/// ```
#[derive(Clone, Debug, Default)]
pub struct TraceIdWriter<M> {
    inner: M,
}

impl<M> TraceIdWriter<M> {
    /// Wraps `inner` (`std::io::stdout`, a file, a non-blocking writer, ...); with a
    /// `fmt` layer, `fmt::layer().map_writer(TraceIdWriter::new)`.
    ///
    /// ```
    /// use tracing_subscriber::fmt;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.init_tracing(
    ///     fmt::layer().map_writer(diag_core::log::TraceIdWriter::new),
    ///     tracing_subscriber::EnvFilter::new("info"),
    /// )
    /// .unwrap();
    /// ```
    pub fn new(inner: M) -> Self {
        TraceIdWriter { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for TraceIdWriter<M> {
    type Writer = TraceIdLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        TraceIdLine::new(self.inner.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        TraceIdLine::new(self.inner.make_writer_for(meta))
    }
}

/// The writer [`TraceIdWriter`] makes for one line: the inner writer, and the trace id
/// of the request current when it was made.
///
/// ```
/// use std::io::Write;
/// use tracing_subscriber::fmt::MakeWriter;
/// let make = diag_core::log::TraceIdWriter::new(std::io::sink);
/// let mut line: diag_core::log::TraceIdLine<std::io::Sink> = make.make_writer();
/// line.write_all(b"no request here\n").unwrap();
/// ```
#[derive(Debug)]
pub struct TraceIdLine<W> {
    inner: W,
    trace_id: Option<TraceId>,
}

impl<W> TraceIdLine<W> {
    fn new(inner: W) -> Self {
        let trace_id = with_current(|scope| scope.map(|s| s.trace.trace_id));
        TraceIdLine { inner, trace_id }
    }
}

thread_local! {
    /// The line with its id, assembled so that it reaches the inner writer in one
    /// `write_all` (two would let another thread's line in between on a shared stdout).
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Lines longer than this are written without the id rather than copied.
const MAX_TAGGED_LINE: usize = 64 * 1024;
/// The per-thread buffer is given back above this size.
const KEEP_BUFFER: usize = 4 * 1024;

/// Whether `line` shows `hex` somewhere. Eight bytes compared as one word first: a
/// 32-byte slice compare at every offset cost ~1,200 instructions on a 200-byte line,
/// paid by every line a request writes (`memchr::memmem` costs as much to set up).
fn contains_id(line: &[u8], hex: &[u8; 32]) -> bool {
    let word = |b: &[u8]| u64::from_ne_bytes(b[..8].try_into().unwrap_or_default());
    let head = word(hex);
    line.windows(32)
        .any(|w| word(w) == head && w[8..] == hex[8..])
}

/// Whether `line` has a `trace_id` key of its own: `"trace_id":` in a JSON line, a
/// `trace_id=` that is not the end of a longer name (`otel_trace_id=`) in a text one.
/// One eight-byte comparison per offset, as in [`contains_id`]: every line a request
/// logs passes here.
fn has_trace_id_key(line: &[u8], json: bool) -> bool {
    const KEY: u64 = u64::from_ne_bytes(*b"trace_id");
    (0..line.len().saturating_sub(8)).any(|at| {
        let word = u64::from_ne_bytes(line[at..at + 8].try_into().unwrap_or_default());
        if word != KEY {
            return false;
        }
        let before = at.checked_sub(1).map(|i| line[i]);
        let after = &line[at + 8..];
        if json {
            before == Some(b'"') && after.starts_with(b"\":")
        } else {
            after.starts_with(b"=")
                && !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        }
    })
}

/// `line` with ` trace_id=<hex>` before its line end, or, when it is a JSON object,
/// `"trace_id":"<hex>"` as its first member, into `out`; false (and `out` unused) when
/// `line` already shows the id. A line with a `trace_id` of its own (another tracer's,
/// an event's field) gets `diag_trace_id` instead: a JSON object must not have the key
/// twice (parsers keep one, Elasticsearch refuses the line).
fn tag(line: &[u8], hex: &[u8; 32], out: &mut Vec<u8>) -> bool {
    if contains_id(line, hex) {
        return false;
    }
    out.clear();
    if let Some(rest) = line.strip_prefix(b"{") {
        let key: &[u8] = if has_trace_id_key(line, true) {
            b"{\"diag_trace_id\":\""
        } else {
            b"{\"trace_id\":\""
        };
        out.extend_from_slice(key);
        out.extend_from_slice(hex);
        out.push(b'"');
        if !rest.trim_ascii_start().starts_with(b"}") {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        return true;
    }
    let body_end = line.len()
        - line
            .iter()
            .rev()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
    out.extend_from_slice(&line[..body_end]);
    out.extend_from_slice(if has_trace_id_key(line, false) {
        b" diag_trace_id="
    } else {
        b" trace_id="
    });
    out.extend_from_slice(hex);
    out.extend_from_slice(&line[body_end..]);
    true
}

impl<W: io::Write> io::Write for TraceIdLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.trace_id.is_none() {
            return self.inner.write(buf);
        }
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // One id per line: the first write of an event is the whole line.
        let Some(id) = self.trace_id.take() else {
            return self.inner.write_all(buf);
        };
        if buf.len() > MAX_TAGGED_LINE {
            return self.inner.write_all(buf);
        }
        let hex = hex16(id.0);
        // Taken, not borrowed: a writer that logs while writing finds an empty buffer
        // of its own instead of a borrow error.
        let Ok(mut out) = LINE.try_with(|b| b.take()) else {
            return self.inner.write_all(buf);
        };
        let result = if tag(buf, &hex, &mut out) {
            self.inner.write_all(&out)
        } else {
            self.inner.write_all(buf)
        };
        if out.capacity() <= KEEP_BUFFER {
            let _ = LINE.try_with(|b| b.replace(out));
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

    fn tagged(line: &str) -> Option<String> {
        let mut out = Vec::new();
        tag(line.as_bytes(), HEX, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn text_lines_get_the_id_before_their_line_end() {
        assert_eq!(
            tagged("ERROR x: failed a=1\n").unwrap(),
            "ERROR x: failed a=1 trace_id=0123456789abcdef0123456789abcdef\n"
        );
        assert_eq!(
            tagged("no newline").unwrap(),
            "no newline trace_id=0123456789abcdef0123456789abcdef"
        );
        assert!(tagged("x\r\n").unwrap().ends_with("cdef\r\n"));
    }

    #[test]
    fn json_lines_get_a_first_member() {
        let line = tagged("{\"level\":\"INFO\",\"fields\":{\"message\":\"hi\"}}\n").unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["trace_id"], "0123456789abcdef0123456789abcdef");
        assert_eq!(value["fields"]["message"], "hi");
        let empty: serde_json::Value = serde_json::from_str(&tagged("{ }\n").unwrap()).unwrap();
        assert_eq!(empty.as_object().unwrap().len(), 1);
    }

    /// A line with a `trace_id` of its own (an OpenTelemetry bridge's, a flattened
    /// event field) keeps it; diag's is added under another key, never the same key twice.
    #[test]
    fn a_line_with_another_trace_id_gets_diag_trace_id() {
        let other = "ffffffffffffffffffffffffffffffff";
        let line = tagged(&format!(
            "{{\"level\":\"INFO\",\"trace_id\":\"{other}\",\"message\":\"hi\"}}\n"
        ))
        .unwrap();
        assert_eq!(line.matches("\"trace_id\"").count(), 1, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["trace_id"], other);
        assert_eq!(value["diag_trace_id"], "0123456789abcdef0123456789abcdef");
        let line = tagged(&format!("INFO hi trace_id={other}\n")).unwrap();
        assert!(
            line.ends_with(" diag_trace_id=0123456789abcdef0123456789abcdef\n"),
            "{line}"
        );
        // Another tracer's longer name is not the key.
        let line = tagged(&format!("INFO hi otel_trace_id={other}\n")).unwrap();
        assert!(
            line.ends_with(" trace_id=0123456789abcdef0123456789abcdef\n"),
            "{line}"
        );
        assert!(!has_trace_id_key(b"{\"trace_ids\":1}", true));
        assert!(!has_trace_id_key(b"trace_id", false), "no value");
    }

    #[test]
    fn the_id_is_found_anywhere_and_only_whole() {
        let hex = std::str::from_utf8(HEX).unwrap();
        for line in [hex.to_owned(), format!("x {hex}"), format!("{hex} y\n")] {
            assert!(contains_id(line.as_bytes(), HEX), "{line}");
        }
        // The same first eight bytes, then a difference; a line shorter than the id.
        let near = format!("{}X{}", &hex[..8], &hex[9..]);
        for line in [near.as_str(), &hex[..31], "", "trace_id="] {
            assert!(!contains_id(line.as_bytes(), HEX), "{line}");
        }
    }

    #[test]
    fn a_line_that_shows_the_id_already_is_left_alone() {
        assert_eq!(
            tagged("request{trace_id=0123456789abcdef0123456789abcdef}: x\n"),
            None
        );
    }

    #[test]
    fn lines_outside_a_request_and_after_the_first_write_pass_through() {
        use std::io::Write;
        let mut out = Vec::new();
        let mut line = TraceIdLine {
            inner: &mut out,
            trace_id: None,
        };
        line.write_all(b"plain\n").unwrap();
        let mut line = TraceIdLine {
            inner: &mut out,
            trace_id: Some(TraceId([0xab; 16])),
        };
        line.write_all(b"first\n").unwrap();
        line.write_all(b"second\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("plain\nfirst trace_id={}\nsecond\n", "ab".repeat(16))
        );
    }
}
