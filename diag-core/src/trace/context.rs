use std::fmt;

use super::hex::{hex8, hex16};

/// A W3C trace id: 16 bytes, shown as 32 lower-case hex digits.
///
/// ```
/// use diag_core::trace::TraceId;
/// let id = TraceId([0x4b; 16]);
/// assert_eq!(id.to_string(), "4b".repeat(16));
/// assert_eq!(TraceId::from_hex(&id.to_string()), Some(id));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

impl TraceId {
    /// Parses 32 hex digits (either case), as exemplars and `X-Trace-Id` show a trace
    /// id; `None` for anything else, and for the all-zero id W3C calls invalid.
    ///
    /// ```
    /// use diag_core::trace::TraceId;
    /// let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    /// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(TraceId::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736"), Some(id));
    /// assert_eq!(TraceId::from_hex("4bf92f35"), None);
    /// assert_eq!(TraceId::from_hex(&"0".repeat(32)), None);
    /// ```
    pub fn from_hex(hex: &str) -> Option<TraceId> {
        let hex: [u8; 32] = hex.as_bytes().try_into().ok()?;
        let hex = hex.map(|c| c.to_ascii_lowercase());
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().enumerate() {
            *b = hex_byte(&hex[2 * i..2 * i + 2])?;
        }
        (id != [0; 16]).then_some(TraceId(id))
    }
}

/// A W3C span id: 8 bytes, shown as 16 lower-case hex digits.
///
/// ```
/// use diag_core::trace::SpanId;
/// let id = SpanId([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
/// assert_eq!(id.to_string(), "00f067aa0ba902b7");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

/// The trace context of one request: its trace, its own span, and whether the trace is
/// sampled (only sampled traces get exemplars: an exemplar that leads nowhere is worse
/// than none).
///
/// ```
/// use diag_core::trace::TraceContext;
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent = TraceContext::from_traceparent(tp.as_bytes()).unwrap();
/// assert!(parent.sampled);
/// assert_eq!(parent.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(parent.to_traceparent(), tp);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace this request belongs to.
    pub trace_id: TraceId,
    /// This request's own span.
    pub span_id: SpanId,
    /// Whether the trace is recorded (the W3C `sampled` flag).
    pub sampled: bool,
}

impl TraceContext {
    /// Parses a `traceparent` header value (version `00`; later versions are read
    /// by their first four fields, as the W3C spec asks). All-zero ids are invalid.
    ///
    /// ```
    /// use diag_core::trace::TraceContext;
    /// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let ctx = TraceContext::from_traceparent(tp).unwrap();
    /// assert_eq!(ctx.span_id.to_string(), "00f067aa0ba902b7");
    /// assert!(ctx.sampled);
    /// assert_eq!(TraceContext::from_traceparent(b"00-not-a-traceparent"), None);
    /// ```
    pub fn from_traceparent(value: &[u8]) -> Option<TraceContext> {
        let value = value.trim_ascii();
        if value.len() < 55 {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        if version == 0xff || (version == 0 && value.len() != 55) {
            return None;
        }
        if value[2] != b'-'
            || value[35] != b'-'
            || value[52] != b'-'
            || (value.len() > 55 && value[55] != b'-')
        {
            return None;
        }
        let mut trace = [0u8; 16];
        for (i, b) in trace.iter_mut().enumerate() {
            *b = hex_byte(&value[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span = [0u8; 8];
        for (i, b) in span.iter_mut().enumerate() {
            *b = hex_byte(&value[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&value[53..55])?;
        if trace == [0; 16] || span == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id: TraceId(trace),
            span_id: SpanId(span),
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header value, formatted on the stack (no allocation).
    ///
    /// ```
    /// use diag_core::trace::{SpanId, TraceContext, TraceId};
    /// let ctx = TraceContext { trace_id: TraceId::random(), span_id: SpanId::random(), sampled: true };
    /// let tp = ctx.traceparent();
    /// assert_eq!(tp.as_str(), ctx.to_traceparent());
    /// assert!(tp.as_str().ends_with("-01"));
    /// ```
    pub fn traceparent(&self) -> Traceparent {
        let mut buf = [b'-'; 55];
        buf[..2].copy_from_slice(b"00");
        buf[3..35].copy_from_slice(&hex16(self.trace_id.0));
        buf[36..52].copy_from_slice(&hex8(self.span_id.0));
        buf[53..].copy_from_slice(if self.sampled { b"01" } else { b"00" });
        Traceparent(buf)
    }

    /// The `traceparent` header value for this context.
    ///
    /// ```
    /// use diag_core::trace::{SpanId, TraceContext, TraceId};
    /// let ctx = TraceContext { trace_id: TraceId([0xab; 16]), span_id: SpanId([0xcd; 8]), sampled: false };
    /// let expected = format!("00-{}-{}-00", "ab".repeat(16), "cd".repeat(8));
    /// assert_eq!(ctx.to_traceparent(), expected);
    /// ```
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.span_id,
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// A `traceparent` value held on the stack.
///
/// ```
/// use diag_core::trace::TraceContext;
/// let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let tp = TraceContext::from_traceparent(value.as_bytes()).unwrap().traceparent();
/// assert_eq!(tp.as_str(), value);
/// assert_eq!(format!("{tp:?}"), value);
/// ```
#[derive(Clone, Copy)]
pub struct Traceparent([u8; 55]);

impl Traceparent {
    /// The header value as bytes: only lower-case hex digits and `-`, always a valid
    /// HTTP header value.
    ///
    /// ```
    /// use diag_core::trace::TraceContext;
    /// let value = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let tp = TraceContext::from_traceparent(value).unwrap().traceparent();
    /// assert_eq!(tp.as_bytes(), value);
    /// ```
    pub fn as_bytes(&self) -> &[u8; 55] {
        &self.0
    }

    /// The header value.
    ///
    /// ```
    /// use diag_core::trace::TraceContext;
    /// let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    /// let tp = TraceContext::from_traceparent(value.as_bytes()).unwrap().traceparent();
    /// assert_eq!(tp.as_str(), value);
    /// ```
    pub fn as_str(&self) -> &str {
        // Only ASCII was written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None, // W3C: lower-case only
        }
    }
    Some(nibble(two[0])? << 4 | nibble(two[1])?)
}

fn write_hex(f: &mut fmt::Formatter<'_>, digits: &[u8]) -> fmt::Result {
    // Only ASCII hex digits were written.
    f.write_str(std::str::from_utf8(digits).map_err(|_| fmt::Error)?)
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &hex16(self.0))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &hex8(self.0))
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(
                TraceContext::from_traceparent(bad.as_bytes()),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn stack_traceparent_matches_the_string_one() {
        for sampled in [true, false] {
            let c = TraceContext {
                trace_id: TraceId::random(),
                span_id: SpanId::random(),
                sampled,
            };
            assert_eq!(c.traceparent().as_str(), c.to_traceparent());
            assert_eq!(
                TraceContext::from_traceparent(c.traceparent().as_str().as_bytes()),
                Some(c)
            );
        }
    }

    #[test]
    fn future_versions_keep_known_fields() {
        let tp = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-whatever";
        let c = TraceContext::from_traceparent(tp.as_bytes()).unwrap();
        assert!(!c.sampled);
    }
}
