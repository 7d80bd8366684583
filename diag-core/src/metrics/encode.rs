//! Text exposition: OpenMetrics 1.0 (with exemplars) and the classic Prometheus text
//! format 0.0.4 (without: it has no syntax for them).
//!
//! Written by hand rather than with prometheus-client's encoder: that encoder needs its
//! own metric types (`EncodeMetric` over its registry), and diag's sharded metrics
//! would have to be copied into them on every scrape. The syntax is small; the tests
//! below and `promtool check metrics` hold it to the spec.

use std::collections::HashSet;
use std::fmt::Write;
use std::time::SystemTime;

use super::exemplar::{Exemplar, exemplar_labels_fit};
use super::{Counter, Gauge, HistogramSnapshot};

/// Which text format to write.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::EndpointRequest;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let scrape = |accept: &str| {
///     let headers = vec![("accept".to_owned(), accept.to_owned())];
///     let path = "/metrics".into();
///     diag.serve(EndpointRequest { method: "GET".into(), path, headers, ..Default::default() })
/// };
/// // Prometheus asks for OpenMetrics; curl and browsers get the classic format.
/// assert!(scrape("application/openmetrics-text").await.body.ends_with(b"# EOF\n"));
/// assert!(!scrape("*/*").await.body.ends_with(b"# EOF\n"));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// OpenMetrics 1.0: `# EOF` terminated, exemplars included.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Classic,
}

/// The metric type of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The OpenMetrics units diag recognises from a family name's suffix (`_seconds`,
/// `_bytes`); the `# UNIT` line must repeat the suffix exactly.
const UNITS: [&str; 2] = ["seconds", "bytes"];

/// Accumulates one exposition.
pub(crate) struct Encoder {
    out: String,
    format: Format,
    /// Family names declared so far: a collector may not declare one twice.
    declared: HashSet<Box<str>>,
}

impl Encoder {
    pub(crate) fn new(format: Format) -> Self {
        Encoder {
            out: String::with_capacity(16 * 1024),
            format,
            declared: HashSet::new(),
        }
    }

    /// A buffer for one family's samples, written into an exposition later with
    /// [`Encoder::append_samples`] (a collector may write its families interleaved).
    pub(crate) fn fragment(format: Format) -> Self {
        Encoder {
            out: String::new(),
            format,
            declared: HashSet::new(),
        }
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Whether a family of this name was declared in this exposition.
    pub(crate) fn is_declared(&self, name: &str) -> bool {
        self.declared.contains(name)
    }

    /// Appends the samples a [`Encoder::fragment`] holds.
    pub(crate) fn append_samples(&mut self, fragment: Encoder) {
        self.out.push_str(&fragment.out);
    }

    /// The `# HELP` / `# TYPE` (/ `# UNIT`) lines of a family. `name` is the family
    /// name (a counter's without `_total`).
    pub(crate) fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let suffix = match (self.format, kind) {
            // Classic text names a counter by its sample name.
            (Format::Classic, Kind::Counter) => "_total",
            _ => "",
        };
        let _ = write!(self.out, "# HELP {name}{suffix} ");
        self.escape(help, self.format == Format::OpenMetrics);
        let _ = writeln!(self.out, "\n# TYPE {name}{suffix} {}", kind.as_str());
        if self.format == Format::OpenMetrics
            && let Some(unit) = UNITS.iter().find(|u| {
                name.strip_suffix(**u)
                    .is_some_and(|stem| stem.ends_with('_') && stem.len() > 1)
            })
        {
            let _ = writeln!(self.out, "# UNIT {name} {unit}");
        }
        self.declared.insert(name.into());
    }

    pub(crate) fn counter(&mut self, name: &str, labels: &[(&str, &str)], c: &Counter) {
        self.counter_value(name, labels, c.get(), c.exemplar());
    }

    /// A counter sample from a plain number (diag's own bookkeeping).
    pub(crate) fn raw_counter(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.counter_value(name, labels, value, None);
    }

    pub(crate) fn counter_value(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: u64,
        e: Option<Exemplar>,
    ) {
        self.sample(name, "_total", labels, None);
        let _ = write!(self.out, " {value}");
        self.exemplar(e);
        self.out.push('\n');
    }

    pub(crate) fn gauge(&mut self, name: &str, labels: &[(&str, &str)], g: &Gauge) {
        self.raw_gauge(name, labels, g.get());
    }

    /// A gauge sample from a plain number (diag's own bookkeeping, collectors).
    /// A counter whose value is not a whole number (seconds of CPU time, say).
    pub(crate) fn raw_counter_float(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(name, "_total", labels, None);
        self.out.push(' ');
        push_float(&mut self.out, value);
        self.out.push('\n');
    }

    pub(crate) fn raw_gauge(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample(name, "", labels, None);
        self.out.push(' ');
        push_float(&mut self.out, value);
        self.out.push('\n');
    }

    pub(crate) fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut le = String::new();
        for (i, count) in h.cumulative.iter().enumerate() {
            le.clear();
            push_float(&mut le, h.bounds.get(i).copied().unwrap_or(f64::INFINITY));
            self.sample(name, "_bucket", labels, Some(("le", &le)));
            let _ = write!(self.out, " {count}");
            self.exemplar(h.exemplars.get(i).copied().flatten());
            self.out.push('\n');
        }
        let total = h.cumulative.last().copied().unwrap_or(0);
        self.sample(name, "_count", labels, None);
        let _ = writeln!(self.out, " {total}");
        self.sample(name, "_sum", labels, None);
        self.out.push(' ');
        push_float(&mut self.out, h.sum);
        self.out.push('\n');
    }

    pub(crate) fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }

    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        extra: Option<(&str, &str)>,
    ) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        if labels.is_empty() && extra.is_none() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().chain(extra.as_ref()).enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.escape(v, true);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// ` # {trace_id="…",span_id="…"} value timestamp`, OpenMetrics only.
    fn exemplar(&mut self, e: Option<Exemplar>) {
        let Some(e) = e else { return };
        if self.format != Format::OpenMetrics {
            return;
        }
        let (trace, span) = (e.trace_id.to_string(), e.span_id.to_string());
        if !exemplar_labels_fit(&[("trace_id", &trace), ("span_id", &span)]) {
            return;
        }
        let _ = write!(self.out, " # {{trace_id=\"{trace}\",span_id=\"{span}\"}} ");
        push_float(&mut self.out, e.value);
        let t = e
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = write!(self.out, " {}.{:03}", t.as_secs(), t.subsec_millis());
    }

    /// Label values (and OpenMetrics help) escape `\`, `"` and newline; classic help
    /// escapes only `\` and newline.
    fn escape(&mut self, s: &str, quote: bool) {
        for c in s.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '"' if quote => self.out.push_str("\\\""),
                c => self.out.push(c),
            }
        }
    }
}

/// Floats as both formats want them: `+Inf`, `-Inf`, `NaN`, and otherwise Rust's
/// shortest round-trip form with a `.0` on integers (`1.0`, `0.005`, `1e-7`), which is
/// also OpenMetrics' canonical form for `le`.
fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ExemplarTime;
    use crate::metrics::Histogram;
    use crate::trace::{SpanId, TraceContext, TraceId};

    fn sampled() -> TraceContext {
        TraceContext {
            trace_id: TraceId([0xab; 16]),
            span_id: SpanId([0xcd; 8]),
            sampled: true,
        }
    }

    #[test]
    fn floats() {
        let mut s = String::new();
        for v in [1.0, 0.005, 10.0, f64::INFINITY, f64::NAN, 1e-7, -2.5] {
            push_float(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "1.0 0.005 10.0 +Inf NaN 1e-7 -2.5 ");
    }

    #[test]
    fn openmetrics_histogram_with_exemplar() {
        let h = Histogram::new(&[0.1, 1.0]).unwrap();
        h.observe_with_exemplar(0.5, &sampled(), ExemplarTime::now());
        h.record(0.05, None);
        let mut e = Encoder::new(Format::OpenMetrics);
        e.family("work_seconds", "Work \"done\"\nhere.", Kind::Histogram);
        e.histogram("work_seconds", &[("route", "/a\"b")], &h.snapshot());
        let text = e.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"# HELP work_seconds Work \"done\"\nhere."#);
        assert_eq!(lines[1], "# TYPE work_seconds histogram");
        assert_eq!(lines[2], "# UNIT work_seconds seconds");
        assert_eq!(lines[3], r#"work_seconds_bucket{route="/a\"b",le="0.1"} 1"#);
        let trace = "ab".repeat(16);
        let span = "cd".repeat(8);
        let prefix = format!(
            r#"work_seconds_bucket{{route="/a\"b",le="1.0"}} 2 # {{trace_id="{trace}",span_id="{span}"}} 0.5 "#
        );
        assert!(lines[4].starts_with(&prefix), "{}", lines[4]);
        assert_eq!(
            lines[5],
            r#"work_seconds_bucket{route="/a\"b",le="+Inf"} 2"#
        );
        assert_eq!(lines[6], r#"work_seconds_count{route="/a\"b"} 2"#);
        assert_eq!(lines[7], r#"work_seconds_sum{route="/a\"b"} 0.55"#);
        assert_eq!(lines[8], "# EOF");
    }

    #[test]
    fn classic_counter_has_total_name_and_no_exemplar() {
        let c = Counter::new();
        c.inc_with_exemplar(3, &sampled(), ExemplarTime::now());
        let mut e = Encoder::new(Format::Classic);
        e.family("jobs", "Jobs \"run\".", Kind::Counter);
        e.counter("jobs", &[], &c);
        assert_eq!(
            e.finish(),
            "# HELP jobs_total Jobs \"run\".\n# TYPE jobs_total counter\njobs_total 3\n"
        );
    }
}
