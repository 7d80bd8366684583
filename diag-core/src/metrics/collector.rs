//! Collectors: values read when `/metrics` is scraped rather than kept in a metric.
//!
//! Some numbers already live somewhere else (a queue's counters, a pool's idle
//! connections, diag's own bookkeeping); copying them into gauges on every change
//! would cost the hot path and could go stale. A collector is a function registered
//! with the metrics registry and called during each scrape; it writes counter and
//! gauge samples through a [`ScrapeWriter`], which groups them into families with the
//! right `# HELP` / `# TYPE` / `# UNIT` lines, in OpenMetrics and classic text alike.
//! No background task runs: an unscraped collector costs nothing.
//!
//! A scrape never breaks because of a collector: samples under an invalid or already
//! taken family name, with labels other than the family's first sample's, repeating a
//! series, or past [`MAX_COLLECTED_SERIES`] per family are left out and counted in the
//! gauge `diag_metrics_collector_dropped_samples`; a collector that panics loses this
//! scrape's samples and counts in `diag_metrics_collector_panics_total`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use super::encode::{Encoder, Format, Kind};
use super::name::{MetricError, check_label_names, collected_name};
use crate::Diag;

/// The most collectors a service may register with [`Diag::register_collector`].
///
/// ```
/// use diag_core::metrics::{MAX_COLLECTORS, MetricError};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// for _ in 0..MAX_COLLECTORS {
///     diag.register_collector(|_| {}).unwrap();
/// }
/// let refused = diag.register_collector(|_| {});
/// assert_eq!(refused, Err(MetricError::TooManyCollectors(MAX_COLLECTORS)));
/// ```
pub const MAX_COLLECTORS: usize = 64;

/// The most series one collected family writes per scrape; further samples are left
/// out and counted in `diag_metrics_collector_dropped_samples`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::metrics::MAX_COLLECTED_SERIES;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.register_collector(|w| {
///     for shard in 0..=MAX_COLLECTED_SERIES {
///         w.gauge("shard_lag", "Lag per shard.", &[("shard", &shard.to_string())], 0.0);
///     }
/// })
/// .unwrap();
/// let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
/// let text = String::from_utf8(diag.serve(req).await.body).unwrap();
/// assert!(text.contains(&format!("shard_lag{{shard=\"{}\"}}", MAX_COLLECTED_SERIES - 1)));
/// assert!(!text.contains(&format!("shard_lag{{shard=\"{MAX_COLLECTED_SERIES}\"}}")));
/// assert!(text.contains("diag_metrics_collector_dropped_samples 1"));
/// # }
/// ```
pub const MAX_COLLECTED_SERIES: usize = 1024;

/// The function a collector is.
pub(crate) type CollectFn = dyn Fn(&mut ScrapeWriter) + Send + Sync;

/// A registered collector.
pub(crate) struct Collector {
    pub(crate) collect: Box<CollectFn>,
    /// diag's own collectors may write `diag_*` families.
    pub(crate) own: bool,
}

/// What a collector writes its samples into during one scrape.
///
/// The first sample of a family declares it: its help text, type and label names;
/// later samples of the same family (in any order, interleaved with other families)
/// must have the same label names in the same order. Counter names may be given with
/// or without `_total`; the exposition writes `<name>_total`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::metrics::ScrapeWriter;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.register_collector(|w: &mut ScrapeWriter| {
///     w.gauge("cache_entries", "Entries per cache.", &[("cache", "users")], 12.0);
///     w.counter("cache_evictions", "Evictions.", &[], 4);
///     w.gauge("cache_entries", "Entries per cache.", &[("cache", "carts")], 3.0);
/// })
/// .unwrap();
/// let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
/// let text = String::from_utf8(diag.serve(req).await.body).unwrap();
/// // Grouped by family, in the order the samples were written.
/// assert!(text.contains("cache_entries{cache=\"users\"} 12.0\ncache_entries{cache=\"carts\"} 3.0\n"));
/// # }
/// ```
pub struct ScrapeWriter {
    format: Format,
    own: bool,
    families: Vec<CollectedFamily>,
    /// Family name → index in `families`, or `None` for a name refused this scrape.
    index: HashMap<String, Option<usize>>,
    dropped: u64,
}

struct CollectedFamily {
    name: String,
    help: String,
    kind: Kind,
    label_names: Vec<String>,
    /// The series written, keyed by their label values.
    series: HashSet<String>,
    samples: Encoder,
}

impl std::fmt::Debug for ScrapeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeWriter")
            .field("families", &self.families.len())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl ScrapeWriter {
    pub(crate) fn new(format: Format, own: bool) -> Self {
        ScrapeWriter {
            format,
            own,
            families: Vec::new(),
            index: HashMap::new(),
            dropped: 0,
        }
    }

    /// Writes one counter sample: `value` is the count since the process started
    /// (a counter only goes up; a restart resets it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.register_collector(|w| {
    ///     w.counter("jobs_done", "Jobs finished.", &[("queue", "mail")], 42);
    /// })
    /// .unwrap();
    /// let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// let text = String::from_utf8(diag.serve(req).await.body).unwrap();
    /// assert!(text.contains("# TYPE jobs_done_total counter\njobs_done_total{queue=\"mail\"} 42\n"));
    /// # }
    /// ```
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        if let Some(family) = self.series(name, help, Kind::Counter, labels) {
            family.samples.raw_counter(&family.name, labels, value);
        }
    }

    /// Writes one counter sample whose value is not a whole number, such as seconds of
    /// CPU time. A negative, infinite or NaN value is left out (and counted): a counter
    /// only goes up from zero.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.register_collector(|w| {
    ///     w.counter_float("gc_pause_seconds_total", "Time spent in pauses.", &[], 1.25);
    /// })
    /// .unwrap();
    /// let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// let text = String::from_utf8(diag.serve(req).await.body).unwrap();
    /// assert!(text.contains("gc_pause_seconds_total 1.25\n"));
    /// # }
    /// ```
    pub fn counter_float(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if !value.is_finite() || value < 0.0 {
            self.dropped += 1;
            return;
        }
        if let Some(family) = self.series(name, help, Kind::Counter, labels) {
            family
                .samples
                .raw_counter_float(&family.name, labels, value);
        }
    }

    /// Writes one gauge sample.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.register_collector(|w| {
    ///     w.gauge("board_temperature_celsius", "Board temperature.", &[("sensor", "cpu")], 61.5);
    /// })
    /// .unwrap();
    /// let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// let text = String::from_utf8(diag.serve(req).await.body).unwrap();
    /// assert!(text.contains("board_temperature_celsius{sensor=\"cpu\"} 61.5\n"));
    /// # }
    /// ```
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(family) = self.series(name, help, Kind::Gauge, labels) {
            family.samples.raw_gauge(&family.name, labels, value);
        }
    }

    /// The family a new series of `name` goes into, declaring it on first use; `None`
    /// (and counted) when the sample cannot be written.
    fn series(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[(&str, &str)],
    ) -> Option<&mut CollectedFamily> {
        let slot = match self.index.get(name) {
            Some(slot) => *slot,
            None => {
                let declared = self.declare(name, help, kind, labels);
                self.index.insert(name.to_owned(), declared);
                declared
            }
        };
        let Some(family) = slot.and_then(|i| self.families.get_mut(i)) else {
            self.dropped += 1;
            return None;
        };
        let same_labels = family.kind == kind
            && family.label_names.len() == labels.len()
            && family
                .label_names
                .iter()
                .zip(labels)
                .all(|(a, (b, _))| a == b);
        let mut key = String::new();
        for (_, v) in labels {
            let _ = write!(key, "{}:{v}", v.len());
        }
        if !same_labels || family.series.len() >= MAX_COLLECTED_SERIES || !family.series.insert(key)
        {
            self.dropped += 1;
            return None;
        }
        Some(family)
    }

    fn declare(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[(&str, &str)],
    ) -> Option<usize> {
        let base = collected_name(name, kind == Kind::Counter, self.own).ok()?;
        let label_names: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
        check_label_names(&label_names, false).ok()?;
        // `jobs` and `jobs_total` name the same counter family.
        if let Some(Some(i)) = self.index.get(base) {
            return Some(*i);
        }
        self.families.push(CollectedFamily {
            name: base.to_owned(),
            help: help.to_owned(),
            kind,
            label_names: label_names.iter().map(|s| (*s).to_owned()).collect(),
            series: HashSet::new(),
            samples: Encoder::fragment(self.format),
        });
        let i = self.families.len() - 1;
        if base != name {
            self.index.insert(base.to_owned(), Some(i));
        }
        Some(i)
    }

    /// Writes the families into the exposition; returns how many samples were left
    /// out (a family already declared there loses all of its samples).
    pub(crate) fn finish(self, enc: &mut Encoder) -> u64 {
        let mut dropped = self.dropped;
        for family in self.families {
            if enc.is_declared(&family.name) {
                dropped += family.series.len() as u64;
                continue;
            }
            enc.family(&family.name, &family.help, family.kind);
            enc.append_samples(family.samples);
        }
        dropped
    }

    /// How many samples this writer holds or refused, for a collector that panicked.
    pub(crate) fn discard(self) -> u64 {
        self.dropped
            + self
                .families
                .iter()
                .map(|f| f.series.len() as u64)
                .sum::<u64>()
    }
}

impl Diag {
    /// Registers a collector: a function called on every scrape of `/metrics` that
    /// writes counter and gauge samples read from wherever the numbers live. At most
    /// [`MAX_COLLECTORS`]. Its family names follow the same rules as
    /// [`Diag::counter`] and [`Diag::gauge`] (no `diag_` prefix); a name another
    /// metric already uses is left out of the scrape and counted in
    /// `diag_metrics_collector_dropped_samples`.
    ///
    /// Capture what the collector reads, not the `Diag` itself (a `Diag` inside its
    /// own registry would never be freed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let idle = Arc::new(AtomicU64::new(3));
    /// let seen = idle.clone();
    /// diag.register_collector(move |w| {
    ///     w.gauge("db_pool_idle_connections", "Idle connections.", &[], seen.load(Ordering::Relaxed) as f64);
    ///     w.counter("db_pool_waits_total", "Checkouts that waited.", &[("pool", "primary")], 7);
    /// })
    /// .unwrap();
    ///
    /// let req = diag_core::EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
    /// let text = String::from_utf8(diag.serve(req).await.body).unwrap();
    /// assert!(text.contains("# TYPE db_pool_idle_connections gauge\ndb_pool_idle_connections 3.0\n"));
    /// assert!(text.contains("db_pool_waits_total{pool=\"primary\"} 7\n"));
    /// # }
    /// ```
    pub fn register_collector<F>(&self, collector: F) -> Result<(), MetricError>
    where
        F: Fn(&mut ScrapeWriter) + Send + Sync + 'static,
    {
        self.inner.metrics.add_collector(Collector {
            collect: Box::new(collector),
            own: false,
        })
    }
}

/// Runs `collectors` into `enc`; returns the samples left out and the panics.
pub(crate) fn run(collectors: &[Arc<Collector>], enc: &mut Encoder) -> (u64, u64) {
    let (mut dropped, mut panics) = (0, 0);
    for c in collectors {
        let mut writer = ScrapeWriter::new(enc.format(), c.own);
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (c.collect)(&mut writer)));
        match outcome {
            Ok(()) => dropped += writer.finish(enc),
            Err(_) => {
                tracing::warn!("diag: a metrics collector panicked; its samples are left out");
                panics += 1;
                dropped += writer.discard();
            }
        }
    }
    (dropped, panics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(collect: impl Fn(&mut ScrapeWriter), format: Format, own: bool) -> (String, u64) {
        let mut enc = Encoder::new(format);
        let mut w = ScrapeWriter::new(format, own);
        collect(&mut w);
        let dropped = w.finish(&mut enc);
        (enc.finish(), dropped)
    }

    #[test]
    fn interleaved_samples_are_grouped_by_family() {
        let (out, dropped) = text(
            |w| {
                for q in ["a", "b"] {
                    w.gauge("queue_depth", "Depth.", &[("queue", q)], 2.0);
                    w.counter("queue_in_total", "In.", &[("queue", q)], 5);
                }
            },
            Format::Classic,
            false,
        );
        assert_eq!(dropped, 0);
        assert_eq!(
            out,
            "# HELP queue_depth Depth.\n# TYPE queue_depth gauge\n\
             queue_depth{queue=\"a\"} 2.0\nqueue_depth{queue=\"b\"} 2.0\n\
             # HELP queue_in_total In.\n# TYPE queue_in_total counter\n\
             queue_in_total{queue=\"a\"} 5\nqueue_in_total{queue=\"b\"} 5\n"
        );
    }

    #[test]
    fn float_counters_take_only_finite_non_negative_values() {
        let (out, dropped) = text(
            |w| {
                w.counter_float("busy_seconds", "Busy.", &[("w", "0")], 0.25);
                for bad in [-1.0, f64::NAN, f64::INFINITY] {
                    w.counter_float("busy_seconds", "Busy.", &[("w", "1")], bad);
                }
            },
            Format::Classic,
            false,
        );
        assert_eq!(dropped, 3);
        assert_eq!(
            out,
            "# HELP busy_seconds_total Busy.\n# TYPE busy_seconds_total counter\n\
             busy_seconds_total{w=\"0\"} 0.25\n"
        );
    }

    #[test]
    fn openmetrics_families_carry_their_unit() {
        let (out, _) = text(
            |w| {
                w.gauge("cache_size_bytes", "Size.", &[], 10.0);
                w.counter("sent_bytes", "Sent.", &[], 3);
                w.gauge("bytes", "Not a unit: no stem.", &[], 1.0);
            },
            Format::OpenMetrics,
            false,
        );
        assert!(out.contains("# TYPE cache_size_bytes gauge\n# UNIT cache_size_bytes bytes\n"));
        assert!(
            out.contains(
                "# TYPE sent_bytes counter\n# UNIT sent_bytes bytes\nsent_bytes_total 3\n"
            )
        );
        assert!(!out.contains("# UNIT bytes"));
        crate::metrics::conformance::check_openmetrics(&out).unwrap();
    }

    #[test]
    fn bad_samples_are_left_out_and_counted() {
        let (out, dropped) = text(
            |w| {
                w.gauge("bad name", "", &[], 1.0); // invalid name
                w.gauge("diag_mine", "", &[], 1.0); // reserved for diag
                w.gauge("ok", "Fine.", &[("a", "1")], 1.0);
                w.gauge("ok", "", &[("b", "1")], 1.0); // other label names
                w.gauge("ok", "", &[("a", "1")], 2.0); // same series again
                w.counter("ok", "", &[("a", "2")], 1); // other type
                w.gauge("labels", "", &[("__x", "1")], 1.0); // reserved label
                w.counter("jobs", "Jobs.", &[], 1);
                w.counter("jobs_total", "", &[], 2); // the same series
            },
            Format::Classic,
            false,
        );
        assert_eq!(dropped, 7, "{out}");
        assert!(out.contains("ok{a=\"1\"} 1.0\n"));
        assert!(out.contains("jobs_total 1\n"));
        assert!(!out.contains("diag_mine"));
    }

    #[test]
    fn own_collectors_may_use_the_diag_prefix() {
        let (out, dropped) = text(
            |w| w.gauge("diag_thing", "Thing.", &[], 1.0),
            Format::Classic,
            true,
        );
        assert_eq!(dropped, 0);
        assert!(out.contains("diag_thing 1.0"));
    }

    #[test]
    fn series_per_family_are_capped() {
        let (out, dropped) = text(
            |w| {
                for i in 0..MAX_COLLECTED_SERIES + 3 {
                    w.counter("many", "Many.", &[("i", &i.to_string())], 1);
                }
            },
            Format::Classic,
            false,
        );
        assert_eq!(dropped, 3);
        assert_eq!(
            out.lines().filter(|l| l.starts_with("many_total")).count(),
            MAX_COLLECTED_SERIES
        );
    }

    #[test]
    fn a_family_declared_before_loses_its_samples() {
        let mut enc = Encoder::new(Format::Classic);
        enc.family("taken", "First.", Kind::Gauge);
        enc.raw_gauge("taken", &[], 1.0);
        let mut w = ScrapeWriter::new(Format::Classic, false);
        w.gauge("taken", "Second.", &[("x", "1")], 2.0);
        w.gauge("taken", "Second.", &[("x", "2")], 2.0);
        assert_eq!(w.finish(&mut enc), 2);
        assert_eq!(
            enc.finish(),
            "# HELP taken First.\n# TYPE taken gauge\ntaken 1.0\n"
        );
    }

    fn scrape(diag: &Diag) -> String {
        let req = crate::EndpointRequest {
            method: "GET".into(),
            path: "/metrics".into(),
            headers: vec![(
                "accept".into(),
                "application/openmetrics-text;version=1.0.0".into(),
            )],
            ..Default::default()
        };
        let resp = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(diag.serve(req));
        let text = String::from_utf8(resp.body).unwrap();
        if let Err(e) = crate::metrics::conformance::check_openmetrics(&text) {
            panic!("{e}\n{text}");
        }
        text
    }

    #[test]
    fn a_collector_that_panics_or_collides_does_not_break_the_scrape() {
        let diag = Diag::builder().build().unwrap();
        diag.gauge("pool_idle", "Registered the usual way.")
            .unwrap()
            .set(4.0);
        diag.register_collector(|w| {
            w.gauge("pool_idle", "Taken by the gauge above.", &[], 1.0);
            w.gauge("pool_busy", "Fine.", &[], 2.0);
        })
        .unwrap();
        diag.register_collector(|w| {
            w.gauge("half_written", "Lost with the panic.", &[], 1.0);
            panic!("collector bug");
        })
        .unwrap();
        let text = scrape(&diag);
        assert!(text.contains("\npool_idle 4.0\n"), "{text}");
        assert!(!text.contains("pool_idle 1.0"));
        assert!(text.contains("\npool_busy 2.0\n"));
        assert!(!text.contains("half_written"));
        // One collided, one lost with the panic.
        assert!(text.contains("\ndiag_metrics_collector_dropped_samples 2.0\n"));
        assert!(text.contains("\ndiag_metrics_collector_panics_total 1\n"));
        let text = scrape(&diag);
        assert!(text.contains("\ndiag_metrics_collector_panics_total 2\n"));
    }

    #[test]
    fn collectors_are_capped() {
        let diag = Diag::builder().build().unwrap();
        for _ in 0..MAX_COLLECTORS {
            diag.register_collector(|_| {}).unwrap();
        }
        assert_eq!(
            diag.register_collector(|_| {}),
            Err(MetricError::TooManyCollectors(MAX_COLLECTORS))
        );
        // diag's own collector does not count against the cap: its samples are there.
        assert!(scrape(&diag).contains("\ndiag_debug_in_flight 0.0\n"));
    }
}
