//! The headers a debug request's response carries: `Server-Timing` (W3C), `X-Debug-Id`
//! and `X-Trace-Id`.
//!
//! `X-Trace-Id` is sent explicitly (32 hex digits) because no response `traceparent`
//! is standard and a person with curl wants the id to paste into the tracing backend.

use std::borrow::Cow;
use std::fmt::Write;
use std::time::Duration;

use super::session::{DebugSession, SpanTiming};
use crate::trace::TraceId;

/// How many span entries `Server-Timing` lists (the longest, by name), before `total`.
///
/// ```
/// use std::time::Duration;
/// use diag_core::debug::{MAX_TIMINGS, SpanTiming, server_timing};
/// let spans: Vec<SpanTiming> = (0..30u64)
///     .map(|i| SpanTiming {
///         id: i, parent: None, name: format!("step{i}").into(), target: "app".into(),
///         start_offset: Duration::ZERO, duration: Duration::from_millis(i), fields: vec![],
///     })
///     .collect();
/// let header = server_timing(&spans, Duration::from_millis(500));
/// assert_eq!(header.split(", ").count(), MAX_TIMINGS + 1, "the 10 longest, then total");
/// assert!(header.starts_with("step29;dur=29, "));
/// ```
pub const MAX_TIMINGS: usize = 10;

const MAX_NAME: usize = 64;
const MAX_DESC: usize = 100;

/// The header pairs for a debug response: `server-timing`, `x-debug-id`, `x-trace-id`.
/// `elapsed` is the time from the request's arrival to the response head.
///
/// ```
/// use std::time::Duration;
/// use diag_core::debug::{DebugLevel, DebugSession, debug_response_headers};
/// use diag_core::trace::TraceId;
/// let session = DebugSession::new(7, DebugLevel::Debug);
/// let h = debug_response_headers(&session, Duration::from_millis(12), TraceId([0xab; 16]));
/// assert_eq!(h[0], ("server-timing", "total;dur=12".to_owned()));
/// assert_eq!(h[1], ("x-debug-id", "7".to_owned()));
/// assert_eq!(h[2].1, "ab".repeat(16));
/// // Which level applied (an `X-Debug-Level` other than `trace` means DEBUG).
/// assert_eq!(h[3], ("x-debug-status", "active; level=debug".to_owned()));
/// ```
pub fn debug_response_headers(
    session: &DebugSession,
    elapsed: Duration,
    trace_id: TraceId,
) -> [(&'static str, String); 4] {
    let level = session.level.as_str();
    [
        (
            "server-timing",
            session.with_spans(|spans| server_timing(spans, elapsed)),
        ),
        ("x-debug-id", session.id.to_string()),
        ("x-trace-id", trace_id.to_string()),
        (
            "x-debug-status",
            if session.logs_blocked() {
                format!("active; level={level}; logs=blocked")
            } else {
                format!("active; level={level}")
            },
        ),
    ]
}

/// A `Server-Timing` value: spans grouped by name (durations summed), the
/// [`MAX_TIMINGS`] longest first, then `total`.
///
/// ```
/// use std::time::Duration;
/// use diag_core::debug::{SpanTiming, server_timing};
/// let span = |name: &'static str, ms| SpanTiming {
///     id: 1, parent: None, name: name.into(), target: "checkout".into(),
///     start_offset: Duration::ZERO, duration: Duration::from_millis(ms), fields: vec![],
/// };
/// let spans = [span("db", 4), span("pricing_fetch", 28), span("db", 3)];
/// let header = server_timing(&spans, Duration::from_millis(40));
/// assert_eq!(header, r#"pricing_fetch;dur=28, db;dur=7;desc="(2 spans)", total;dur=40"#);
/// ```
pub fn server_timing(spans: &[SpanTiming], total: Duration) -> String {
    let mut by_name: Vec<(&str, Duration, usize)> = Vec::new();
    for s in spans {
        match by_name.iter_mut().find(|(n, _, _)| *n == s.name) {
            Some(entry) => {
                entry.1 += s.duration;
                entry.2 += 1;
            }
            None => by_name.push((&s.name, s.duration, 1)),
        }
    }
    by_name.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut out = String::with_capacity(64);
    for (name, dur, count) in by_name.into_iter().take(MAX_TIMINGS) {
        let token = token(name);
        let renamed = token != name;
        out.push_str(&token);
        out.push_str(";dur=");
        push_millis(&mut out, dur);
        if renamed || count > 1 {
            let mut desc = String::new();
            if renamed {
                desc.push_str(name);
            }
            if count > 1 {
                if !desc.is_empty() {
                    desc.push(' ');
                }
                let _ = write!(desc, "({count} spans)");
            }
            out.push_str(";desc=");
            push_quoted(&mut out, &desc);
        }
        out.push_str(", ");
    }
    out.push_str("total;dur=");
    push_millis(&mut out, total);
    out
}

/// A metric name that is an RFC 7230 token; `total` is kept for the total. Borrowed
/// when `name` already is one (the usual case).
fn token(name: &str) -> Cow<'_, str> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name.chars().all(is_tchar)
        && !name.eq_ignore_ascii_case("total");
    if valid {
        return Cow::Borrowed(name);
    }
    let mut t: String = name
        .chars()
        .take(MAX_NAME)
        .map(|c| if is_tchar(c) { c } else { '_' })
        .collect();
    if t.is_empty() {
        t.push_str("span");
    }
    if t.eq_ignore_ascii_case("total") {
        t.insert_str(0, "span_");
    }
    Cow::Owned(t)
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Appends a quoted-string of visible ASCII: `"` and `\\` escaped, anything else replaced.
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars().take(MAX_DESC) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
}

/// Appends milliseconds with at most three decimals (to the nearest microsecond),
/// trailing zeros dropped.
fn push_millis(out: &mut String, d: Duration) {
    let micros = u64::try_from(d.as_nanos().saturating_add(500) / 1000).unwrap_or(u64::MAX);
    let _ = write!(out, "{}", micros / 1000);
    let mut frac = micros % 1000;
    if frac != 0 {
        out.push('.');
        let mut digits = 3;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, "{frac:0digits$}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, ms: u64) -> SpanTiming {
        SpanTiming {
            id: 1,
            parent: None,
            name: name.to_owned().into(),
            target: "t".into(),
            start_offset: Duration::ZERO,
            duration: Duration::from_millis(ms),
            fields: vec![],
        }
    }

    #[test]
    fn syntax_order_grouping_and_escaping() {
        let spans = [
            span("db.query", 5),
            span("render", 7),
            span("db.query", 4),
            span("weird name \"q\"", 1),
            span("total", 2),
        ];
        let v = server_timing(&spans, Duration::from_micros(12_345));
        assert_eq!(
            v,
            "db.query;dur=9;desc=\"(2 spans)\", render;dur=7, span_total;dur=2;desc=\"total\", \
             weird_name__q_;dur=1;desc=\"weird name \\\"q\\\"\", total;dur=12.345"
        );
        // Every entry is token[;dur=number][;desc=quoted].
        for entry in v.split(", ") {
            let mut parts = entry.split(';');
            assert!(parts.next().unwrap().chars().all(is_tchar), "{entry}");
            let dur = parts.next().unwrap();
            assert!(dur.strip_prefix("dur=").unwrap().parse::<f64>().is_ok());
        }
    }

    #[test]
    fn keeps_the_longest_ten_and_total() {
        let spans: Vec<_> = (1..=15).map(|i| span(&format!("s{i}"), i)).collect();
        let v = server_timing(&spans, Duration::from_millis(100));
        let names: Vec<&str> = v
            .split(", ")
            .map(|e| e.split(';').next().unwrap())
            .collect();
        assert_eq!(names.len(), MAX_TIMINGS + 1);
        assert_eq!(names[0], "s15");
        assert_eq!(names[9], "s6");
        assert_eq!(names[10], "total");
    }

    #[test]
    fn millis_round_to_the_microsecond_without_trailing_zeros() {
        let cases = [
            (Duration::ZERO, "0"),
            (Duration::from_millis(12), "12"),
            (Duration::from_micros(12_300), "12.3"),
            (Duration::from_micros(12_030), "12.03"),
            (Duration::from_micros(12_345), "12.345"),
            (Duration::from_nanos(1_499), "0.001"),
            (Duration::from_nanos(999_600), "1"),
            (Duration::from_secs(90), "90000"),
        ];
        for (d, want) in cases {
            let mut out = String::new();
            push_millis(&mut out, d);
            assert_eq!(out, want, "{d:?}");
        }
    }

    #[test]
    fn long_names_are_cut_to_a_token() {
        let long = "n".repeat(MAX_NAME + 5);
        let v = server_timing(&[span(&long, 1)], Duration::from_millis(1));
        let token = v.split(';').next().unwrap();
        assert_eq!(token, "n".repeat(MAX_NAME));
        assert!(v.contains(&format!(";desc=\"{long}\"")), "{v}");
    }

    #[test]
    fn non_ascii_desc_is_replaced() {
        let v = server_timing(&[span("é", 1)], Duration::from_millis(1));
        assert!(v.starts_with("_;dur=1;desc=\"?\""), "{v}");
        assert!(v.is_ascii());
    }
}
