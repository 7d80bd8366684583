//! The service's own metrics, registered through [`Diag`]; exemplars come from the
//! request the calling thread is working for (see [`crate::request::with_current`]).
//!
//! Registration is idempotent: asking again for a name with the same type and labels
//! returns the same metric (help text and buckets of the first registration win), so
//! handlers may call `diag.counter(..)` where they use it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::histogram::{LATENCY_BUCKETS, validate_buckets};
use super::name::{MetricError, check_label_names, counter_name, plain_name};
use super::{Counter, Family, Gauge, Histogram};
use crate::Diag;
use crate::clock::MonoTime;
use crate::request::with_current;
use crate::trace::TraceContext;

impl Diag {
    /// A counter named `name` (exposed as `<name>_total`; a trailing `_total` in
    /// `name` is not doubled).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let sent = diag.counter("emails_sent_total", "Emails handed to the relay.").unwrap();
    /// sent.inc();
    /// // Same name, same counter.
    /// assert_eq!(diag.counter("emails_sent", "").unwrap().get(), 1);
    /// ```
    pub fn counter(&self, name: &str, help: &str) -> Result<Arc<Counter>, MetricError> {
        let name = counter_name(name)?;
        self.inner
            .metrics
            .single(name, &|| help.to_owned(), Counter::new)
    }

    /// A gauge named `name`.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let backlog = diag.gauge("worker_backlog", "Jobs waiting for a worker.").unwrap();
    /// backlog.set(12.0);
    /// // Same name, same gauge.
    /// assert_eq!(diag.gauge("worker_backlog", "").unwrap().get(), 12.0);
    /// ```
    pub fn gauge(&self, name: &str, help: &str) -> Result<Arc<Gauge>, MetricError> {
        let name = plain_name(name, false)?;
        self.inner
            .metrics
            .single(name, &|| help.to_owned(), Gauge::new)
    }

    /// A histogram named `name` with these bucket upper bounds (`+Inf` is implied;
    /// [`LATENCY_BUCKETS`] suits durations in seconds).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let h = diag
    ///     .histogram("payload_bytes", "Request payload sizes.", &[1e3, 1e4, 1e5])
    ///     .unwrap();
    /// h.observe(2048.0);
    /// assert_eq!(h.snapshot().cumulative, vec![0, 1, 1, 1]);
    /// ```
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Arc<Histogram>, MetricError> {
        let name = plain_name(name, true)?;
        validate_buckets(buckets)?;
        let bounds: Arc<[f64]> = buckets.into();
        self.inner
            .metrics
            .single(name, &|| help.to_owned(), || Histogram::with_bounds(bounds))
    }

    /// A counter per label set; label names are fixed here, values given per use
    /// (see [`Family::with`]). The family keeps at most the builder's
    /// `max_label_sets` label sets.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let calls = diag
    ///     .counter_family("upstream_calls", "Calls by upstream and outcome.", ["upstream", "outcome"])
    ///     .unwrap();
    /// calls.with(["pricing", "ok"]).inc();
    /// calls.with(["pricing", "timeout"]).inc();
    /// assert_eq!(calls.len(), 2);
    /// assert_eq!(calls.with(["pricing", "ok"]).get(), 1);
    /// ```
    pub fn counter_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<Arc<Family<Counter, N>>, MetricError> {
        let name = counter_name(name)?;
        check_label_names(&label_names, false)?;
        self.inner
            .metrics
            .family(name, &|| help.to_owned(), label_names, Counter::new)
    }

    /// A gauge per label set.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let idle = diag
    ///     .gauge_family("pool_idle_connections", "Idle connections per pool.", ["pool"])
    ///     .unwrap();
    /// idle.with(["primary"]).set(4.0);
    /// idle.with(["replica"]).set(9.0);
    /// assert_eq!(idle.with(["replica"]).get(), 9.0);
    /// ```
    pub fn gauge_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label_names: [&str; N],
    ) -> Result<Arc<Family<Gauge, N>>, MetricError> {
        let name = plain_name(name, false)?;
        check_label_names(&label_names, false)?;
        self.inner
            .metrics
            .family(name, &|| help.to_owned(), label_names, Gauge::new)
    }

    /// A histogram per label set, all with these bucket bounds.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let calls = diag
    ///     .histogram_family(
    ///         "upstream_call_duration_seconds",
    ///         "Calls to upstreams.",
    ///         diag_core::metrics::LATENCY_BUCKETS,
    ///         ["upstream"],
    ///     )
    ///     .unwrap();
    /// calls.with(["pricing"]).observe(0.012);
    /// ```
    pub fn histogram_family<const N: usize>(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
        label_names: [&str; N],
    ) -> Result<Arc<Family<Histogram, N>>, MetricError> {
        let name = plain_name(name, true)?;
        validate_buckets(buckets)?;
        check_label_names(&label_names, true)?;
        let bounds: Arc<[f64]> = buckets.into();
        self.inner
            .metrics
            .family(name, &|| help.to_owned(), label_names, move || {
                Histogram::with_bounds(bounds.clone())
            })
    }

    /// Times a piece of work: when the returned guard drops, its duration is observed
    /// in the histogram `<name>_duration_seconds` ([`LATENCY_BUCKETS`]), with the
    /// current request's trace as exemplar. Never fails: with an invalid `name`, the
    /// timing is dropped and counted in `diag_metrics_rejected_total`.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// {
    ///     let _t = diag.timer("pricing_fetch");
    ///     // ... the work ...
    /// }
    /// let h = diag.histogram("pricing_fetch_duration_seconds", "", &[1.0]).unwrap();
    /// assert_eq!(h.snapshot().cumulative.last(), Some(&1));
    /// ```
    pub fn timer(&self, name: &str) -> Timer {
        let metrics = &self.inner.metrics;
        // The read guard must be gone before the miss path takes the write lock.
        let known = metrics.timers.read().get(name).cloned();
        let histogram = known.or_else(|| {
            let full = format!("{name}_duration_seconds");
            match self.histogram(&full, &format!("Duration of {name}."), LATENCY_BUCKETS) {
                Ok(h) => {
                    metrics.timers.write().insert(name.into(), h.clone());
                    Some(h)
                }
                Err(e) => {
                    tracing::debug!(error = %e, "diag timer dropped");
                    count_rejected(metrics, &e);
                    None
                }
            }
        });
        Timer {
            histogram,
            trace: with_current(|s| s.map(|s| s.trace)),
            start: MonoTime::now(),
        }
    }

    /// Counts one pass through a code path: increments the counter `name` (exposed as
    /// `<name>_total`), with the current request's trace as exemplar. Never fails:
    /// with an invalid `name`, the hit is dropped and counted in
    /// `diag_metrics_rejected_total`.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.hit("cache_miss");
    /// diag.hit("cache_miss");
    /// assert_eq!(diag.counter("cache_miss", "").unwrap().get(), 2);
    /// ```
    pub fn hit(&self, name: &str) {
        let counter = counter_name(name).and_then(|base| {
            self.inner
                .metrics
                .single(base, &|| format!("Passes through {base}."), Counter::new)
        });
        match counter {
            Ok(c) => c.inc(),
            Err(e) => {
                tracing::debug!(error = %e, "diag hit dropped");
                count_rejected(&self.inner.metrics, &e);
            }
        }
    }
}

/// Counts a dropped observation in `diag_metrics_rejected_total`, unless the registry
/// counted it already (a metric past the most the service may register).
fn count_rejected(metrics: &super::registry::MetricsRegistry, e: &MetricError) {
    if !matches!(e, MetricError::TooManyMetrics(_)) {
        metrics.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

/// Observes the time from [`Diag::timer`] to its drop.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// fn render(diag: &diag_core::Diag) -> String {
///     let _timer = diag.timer("report_render"); // observed when it drops
///     "<html>...</html>".to_owned()
/// }
/// render(&diag);
/// let h = diag.histogram("report_render_duration_seconds", "", &[1.0]).unwrap();
/// assert_eq!(h.snapshot().cumulative.last(), Some(&1));
/// ```
#[must_use = "the timer measures until it is dropped"]
#[derive(Debug)]
pub struct Timer {
    histogram: Option<Arc<Histogram>>,
    trace: Option<TraceContext>,
    start: MonoTime,
}

impl Timer {
    /// Stops the timer now (same as dropping it).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let timer = diag.timer("cache_warmup");
    /// // ... the work ...
    /// timer.stop();
    /// let h = diag.histogram("cache_warmup_duration_seconds", "", &[1.0]).unwrap();
    /// assert_eq!(h.snapshot().cumulative.last(), Some(&1));
    /// ```
    pub fn stop(self) {}
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(h) = &self.histogram {
            h.record_since(self.start, self.trace.as_ref());
        }
    }
}
