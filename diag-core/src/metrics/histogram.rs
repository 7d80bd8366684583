//! A histogram with atomic buckets and one exemplar slot per bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::exemplar::{Exemplar, ExemplarSlot, ExemplarTime, newest};
use super::shard::{self, CacheLine};
use crate::request::with_current;
use crate::trace::TraceContext;

/// Bucket upper bounds for web latencies in seconds, as OpenTelemetry's HTTP semantic
/// conventions recommend for `http.server.request.duration`.
///
/// ```
/// use diag_core::metrics::LATENCY_BUCKETS;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let h = diag.histogram("checkout_duration_seconds", "Checkout time.", LATENCY_BUCKETS).unwrap();
/// h.observe(0.042);
/// assert_eq!(h.bounds()[3], 0.05);
/// assert_eq!(h.snapshot().cumulative[3], 1); // in the `le="0.05"` bucket
/// ```
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket bounds diag cannot use.
///
/// ```
/// use diag_core::metrics::{BucketsError, Histogram};
/// assert_eq!(Histogram::new(&[]).unwrap_err(), BucketsError::Empty);
/// assert_eq!(Histogram::new(&[0.5, 0.1]).unwrap_err(), BucketsError::NotIncreasing(0.1, 0.5));
/// let err = Histogram::new(&[1.0, f64::INFINITY]).unwrap_err();
/// assert_eq!(err.to_string(), "bucket bound inf is not finite (+Inf is implied)");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BucketsError {
    /// No bound at all.
    #[error("a histogram needs at least one bucket bound")]
    Empty,
    /// A bound is NaN or infinite (`+Inf` is always added).
    #[error("bucket bound {0} is not finite (+Inf is implied)")]
    NotFinite(f64),
    /// Bounds must strictly increase.
    #[error("bucket bounds must strictly increase ({0} follows {1})")]
    NotIncreasing(f64, f64),
    /// More bounds than [`Histogram::MAX_BUCKETS`].
    #[error("{0} bucket bounds; at most {max} are allowed", max = Histogram::MAX_BUCKETS)]
    TooMany(usize),
}

/// Checks bounds: non-empty, finite, strictly increasing, at most
/// [`Histogram::MAX_BUCKETS`].
///
/// ```
/// use diag_core::metrics::{BucketsError, LATENCY_BUCKETS, validate_buckets};
/// assert_eq!(validate_buckets(LATENCY_BUCKETS), Ok(()));
/// assert_eq!(validate_buckets(&[1.0, 1.0]), Err(BucketsError::NotIncreasing(1.0, 1.0)));
/// ```
pub fn validate_buckets(bounds: &[f64]) -> Result<(), BucketsError> {
    if bounds.is_empty() {
        return Err(BucketsError::Empty);
    }
    if bounds.len() > Histogram::MAX_BUCKETS {
        return Err(BucketsError::TooMany(bounds.len()));
    }
    if let Some(b) = bounds.iter().find(|b| !b.is_finite()) {
        return Err(BucketsError::NotFinite(*b));
    }
    if let Some(w) = bounds.windows(2).find(|w| w[1] <= w[0]) {
        return Err(BucketsError::NotIncreasing(w[1], w[0]));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct BucketCell {
    /// Observations in this bucket only (not cumulative): one increment per
    /// observation; the scrape accumulates.
    count: AtomicU64,
    exemplar: ExemplarSlot,
}

/// A histogram: per-shard bucket counts and sums (see the `shard` module), one
/// exemplar slot per bucket and shard. Observing is a bucket search, then, on the
/// writer thread's own shard, plain stores to the bucket count, the sum and (for a
/// sampled trace) the bucket's exemplar: no lock, no locked instruction, no
/// allocation (a shard is allocated on its owner's first write). Each bucket's count
/// and exemplar share one cache line.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let sizes = diag.histogram("cart_items", "Items per cart.", &[1.0, 5.0, 20.0]).unwrap();
/// sizes.observe(3.0);
/// sizes.observe(50.0);
/// let snap = sizes.snapshot();
/// assert_eq!(snap.cumulative, vec![0, 1, 1, 2]);
/// assert_eq!(snap.sum, 53.0);
/// ```
#[derive(Debug)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    shards: Box<[OnceLock<Box<HistogramShard>>]>,
}

/// One writer's part: the sum on its own line, then `bounds + 1` bucket cells.
#[derive(Debug)]
#[repr(align(64))]
struct HistogramShard {
    sum: AtomicU64,
    cells: Box<[CacheLine<BucketCell>]>,
}

/// A histogram read at one moment (buckets are read one by one, so a concurrent
/// observation may show in `sum` but not yet in a bucket, or the other way round).
///
/// ```
/// use diag_core::metrics::Histogram;
/// let h = Histogram::new(&[1.0, 10.0]).unwrap();
/// h.observe(0.5);
/// h.observe(4.0);
/// h.observe(20.0);
/// let snap = h.snapshot();
/// assert_eq!(&snap.bounds[..], &[1.0, 10.0]);
/// assert_eq!(snap.cumulative, vec![1, 2, 3]); // le="1", le="10", le="+Inf"
/// assert_eq!(snap.sum, 24.5);
/// assert_eq!(snap.exemplars, vec![None, None, None]); // no sampled trace here
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// Upper bounds, without the implied `+Inf`.
    pub bounds: Arc<[f64]>,
    /// Cumulative counts per bound, then `+Inf` (the total count).
    pub cumulative: Vec<u64>,
    /// Sum of observed values.
    pub sum: f64,
    /// The newest exemplar per bucket (same indexes as `cumulative`).
    pub exemplars: Vec<Option<Exemplar>>,
}

impl Histogram {
    /// The most bucket bounds a histogram may have.
    ///
    /// ```
    /// use diag_core::metrics::{BucketsError, Histogram};
    /// let bounds: Vec<f64> = (1..=Histogram::MAX_BUCKETS + 1).map(|i| i as f64).collect();
    /// assert!(Histogram::new(&bounds[..Histogram::MAX_BUCKETS]).is_ok());
    /// assert_eq!(
    ///     Histogram::new(&bounds).unwrap_err(),
    ///     BucketsError::TooMany(Histogram::MAX_BUCKETS + 1)
    /// );
    /// ```
    pub const MAX_BUCKETS: usize = 64;

    /// A histogram with these bounds; see [`validate_buckets`].
    ///
    /// ```
    /// use diag_core::metrics::Histogram;
    /// let h = Histogram::new(&[0.1, 0.5, 1.0]).unwrap();
    /// h.observe(0.3);
    /// assert_eq!(h.snapshot().cumulative, vec![0, 1, 1, 1]);
    /// assert!(Histogram::new(&[0.5, 0.1]).is_err());
    /// ```
    pub fn new(bounds: &[f64]) -> Result<Histogram, BucketsError> {
        validate_buckets(bounds)?;
        Ok(Histogram::with_bounds(bounds.into()))
    }

    /// Shares already validated bounds (a family's series all use the same).
    pub(crate) fn with_bounds(bounds: Arc<[f64]>) -> Histogram {
        Histogram {
            shards: (0..shard::shard_count()).map(|_| OnceLock::new()).collect(),
            bounds,
        }
    }

    /// The bucket upper bounds (without `+Inf`).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let h = diag.histogram("batch_size", "Items per batch.", &[10.0, 100.0]).unwrap();
    /// assert_eq!(h.bounds(), &[10.0, 100.0]);
    /// ```
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Records `v`; the exemplar comes from the request this thread is working for,
    /// when its trace is sampled. NaN is ignored (it would poison the sum).
    ///
    /// ```
    /// use diag_core::metrics::Histogram;
    /// let h = Histogram::new(&[0.25, 1.0]).unwrap();
    /// h.observe(0.5);
    /// h.observe(f64::NAN); // ignored
    /// let snap = h.snapshot();
    /// assert_eq!(snap.cumulative, vec![0, 1, 1]);
    /// assert_eq!(snap.sum, 0.5);
    /// ```
    pub fn observe(&self, v: f64) {
        // The clock is read only when there is an exemplar to timestamp.
        match with_current(|s| s.map(|s| s.trace).filter(|t| t.sampled)) {
            Some(t) => self.record(v, Some((&t, ExemplarTime::now()))),
            None => self.record(v, None),
        }
    }

    /// Records `v` with `trace` as its bucket's exemplar when the trace is sampled,
    /// observed `at`.
    ///
    /// ```
    /// use diag_core::metrics::{ExemplarTime, Histogram};
    /// use diag_core::trace::TraceContext;
    /// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let trace = TraceContext::from_traceparent(tp).unwrap();
    /// let h = Histogram::new(&[0.1, 1.0]).unwrap();
    /// h.observe_with_exemplar(0.25, &trace, ExemplarTime::now());
    /// let exemplar = h.snapshot().exemplars[1].unwrap(); // the `le="1"` bucket's
    /// assert_eq!(exemplar.trace_id, trace.trace_id);
    /// assert_eq!(exemplar.value, 0.25);
    /// ```
    #[inline]
    pub fn observe_with_exemplar(&self, v: f64, trace: &TraceContext, at: ExemplarTime) {
        self.record(v, trace.sampled.then_some((trace, at)));
    }

    /// Records the seconds since `start`, with `trace` as exemplar when it is sampled.
    pub(crate) fn record_since(&self, start: crate::clock::MonoTime, trace: Option<&TraceContext>) {
        let now = crate::clock::MonoTime::now();
        let secs = now.nanos_since(start) as f64 * 1e-9;
        let exemplar = trace
            .filter(|t| t.sampled)
            .map(|t| (t, ExemplarTime::from_mono(now)));
        self.record(secs, exemplar);
    }

    /// Records `v`; `exemplar` is already known to be sampled.
    #[inline(always)]
    pub(crate) fn record(&self, v: f64, exemplar: Option<(&TraceContext, ExemplarTime)>) {
        if v.is_nan() {
            return;
        }
        let bucket = self.bounds.partition_point(|&ub| ub < v);
        let shard = shard::this_thread();
        let Some(slot) = self.shards.get(shard.index) else {
            return;
        };
        let part = slot.get_or_init(|| Box::new(HistogramShard::new(self.bounds.len() + 1)));
        let Some(cell) = part.cells.get(bucket) else {
            return;
        };
        let cell = &cell.0;
        if shard.exclusive {
            // The only writer: plain loads and stores, no locked instruction.
            let n = cell.count.load(Ordering::Relaxed);
            cell.count.store(n.wrapping_add(1), Ordering::Relaxed);
            let sum = f64::from_bits(part.sum.load(Ordering::Relaxed)) + v;
            part.sum.store(sum.to_bits(), Ordering::Relaxed);
            if let Some((t, at)) = exemplar {
                cell.exemplar.write_exclusive(t, v, at);
            }
        } else {
            cell.count.fetch_add(1, Ordering::Relaxed);
            let _ = part
                .sum
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    Some((f64::from_bits(old) + v).to_bits())
                });
            if let Some((t, at)) = exemplar {
                cell.exemplar.write_shared(t, v, at);
            }
        }
    }

    /// Reads counts, sum and exemplars.
    ///
    /// ```
    /// use diag_core::metrics::Histogram;
    /// let h = Histogram::new(&[1.0]).unwrap();
    /// h.observe(0.5);
    /// h.observe(2.0);
    /// let snap = h.snapshot();
    /// assert_eq!(snap.cumulative, vec![1, 2]);
    /// assert_eq!(snap.sum, 2.5);
    /// ```
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets = self.bounds.len() + 1;
        let mut counts = vec![0u64; buckets];
        let mut exemplars = vec![None; buckets];
        let mut sum = 0.0;
        for part in self.shards.iter().filter_map(OnceLock::get) {
            sum += f64::from_bits(part.sum.load(Ordering::Relaxed));
            for (b, cell) in part.cells.iter().enumerate() {
                counts[b] = counts[b].wrapping_add(cell.0.count.load(Ordering::Relaxed));
                exemplars[b] = newest(exemplars[b], cell.0.exemplar.read());
            }
        }
        let mut acc = 0u64;
        let cumulative = counts
            .iter()
            .map(|c| {
                acc = acc.wrapping_add(*c);
                acc
            })
            .collect();
        HistogramSnapshot {
            bounds: self.bounds.clone(),
            cumulative,
            sum,
            exemplars,
        }
    }
}

impl HistogramShard {
    fn new(buckets: usize) -> Self {
        HistogramShard {
            sum: AtomicU64::new(0.0f64.to_bits()),
            cells: (0..buckets).map(|_| CacheLine::default()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{SpanId, TraceId};

    fn trace(n: u8, sampled: bool) -> TraceContext {
        TraceContext {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            sampled,
        }
    }

    #[test]
    fn rejects_bad_bounds() {
        assert_eq!(Histogram::new(&[]).unwrap_err(), BucketsError::Empty);
        assert!(matches!(
            Histogram::new(&[1.0, f64::INFINITY]),
            Err(BucketsError::NotFinite(_))
        ));
        assert!(matches!(
            Histogram::new(&[1.0, 1.0]),
            Err(BucketsError::NotIncreasing(..))
        ));
        assert!(matches!(
            Histogram::new(&vec![1.0; 65]),
            Err(BucketsError::TooMany(65))
        ));
    }

    #[test]
    fn bucket_bounds_are_inclusive_upper_bounds() {
        let h = Histogram::new(&[0.1, 1.0]).unwrap();
        for v in [0.1, 0.05, 1.0, 1.5, f64::NAN] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 3, 4]);
        assert!((s.sum - 2.65).abs() < 1e-12);
    }

    #[test]
    fn each_exemplar_lies_in_its_bucket() {
        let h = Histogram::with_bounds(LATENCY_BUCKETS.into());
        let now = ExemplarTime::now();
        for (i, v) in [0.003, 0.02, 0.3, 0.3, 4.0, 12.0, 0.0749]
            .into_iter()
            .enumerate()
        {
            h.observe_with_exemplar(v, &trace(i as u8 + 1, true), now);
        }
        let s = h.snapshot();
        let mut seen = 0;
        for (b, e) in s.exemplars.iter().enumerate() {
            let Some(e) = e else { continue };
            seen += 1;
            let upper = s.bounds.get(b).copied().unwrap_or(f64::INFINITY);
            let lower = if b == 0 {
                f64::NEG_INFINITY
            } else {
                s.bounds[b - 1]
            };
            assert!(
                e.value > lower && e.value <= upper,
                "{} not in ({lower}, {upper}]",
                e.value
            );
        }
        assert_eq!(seen, 6, "0.3 twice shares one bucket");
    }

    #[test]
    fn unsampled_traces_leave_no_exemplar() {
        let h = Histogram::new(&[1.0]).unwrap();
        h.observe_with_exemplar(0.5, &trace(1, false), ExemplarTime::now());
        h.record(0.5, None);
        assert!(h.snapshot().exemplars.iter().all(Option::is_none));
        assert_eq!(h.snapshot().cumulative[1], 2);
    }

    #[test]
    fn threads_hammering_one_series_lose_nothing() {
        let h = Arc::new(Histogram::new(&[0.5, 1.0]).unwrap());
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    let t = trace(i + 1, true);
                    for _ in 0..10_000 {
                        h.observe_with_exemplar(0.25, &t, ExemplarTime::now());
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![40_000, 40_000, 40_000]);
        assert_eq!(s.sum, 10_000.0);
        assert!(s.exemplars[0].is_some());
    }
}
