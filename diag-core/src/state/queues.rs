//! The built-in `queues` provider: depth, capacity and rates of the service's queues,
//! what they refused, and whether a consumer falls behind.
//!
//! Producers and consumers only bump atomic counters ([`QueueProbe::produced`],
//! [`QueueProbe::consumed`], [`QueueProbe::rejected`]). Rates are computed when someone
//! reads them: each read takes a sample `(time, produced, consumed, rejected)` into a
//! small ring (at most one sample a second, at most [`MAX_SAMPLES`]), and a rate is the
//! difference between now and the newest sample at least [`RATE_WINDOW`] old (or the
//! oldest sample, when none is that old), divided by the time between them; when that
//! sample is over two windows old (reads after a quiet spell), the oldest sample inside
//! the window that is at least [`MIN_RATE_WINDOW`] old instead. The probe's creation is
//! the first sample.
//! No timer task runs; `window_seconds` in the report says what span a rate covers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::RegisterError;
use super::registry::valid_name;
use crate::Diag;

/// The span rates are computed over.
///
/// ```
/// use diag_core::state::RATE_WINDOW;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let jobs = diag.queue("jobs").unwrap();
/// jobs.produced_n(10);
/// let snap = jobs.snapshot();
/// assert!(snap.window_seconds <= RATE_WINDOW.as_secs_f64());
/// ```
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// The most samples a probe keeps.
///
/// ```
/// use diag_core::state::{MAX_SAMPLES, RATE_WINDOW};
/// // Reads sample at most once a second, so the ring covers the whole window.
/// assert!(MAX_SAMPLES as u64 > RATE_WINDOW.as_secs());
/// ```
pub const MAX_SAMPLES: usize = 128;
/// The most queues one [`Diag`] tracks.
///
/// ```
/// use diag_core::state::MAX_QUEUES;
/// use diag_core::RegisterError;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// for i in 0..MAX_QUEUES {
///     diag.queue(&format!("shard-{i}")).unwrap();
/// }
/// let err = diag.queue("one-more").unwrap_err();
/// assert_eq!(err, RegisterError::TooMany { what: "queues", cap: MAX_QUEUES });
/// assert!(diag.queue("shard-0").is_ok()); // an existing one is still handed out
/// ```
pub const MAX_QUEUES: usize = 256;
/// Depth at or above this share of capacity counts as lagging.
const FULL_RATIO: f64 = 0.9;
/// Rates over a shorter span are noise: they are not reported.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let emails = diag.queue("emails").unwrap();
/// emails.produced_n(50);
/// // Just created: the window is under `MIN_RATE_WINDOW`, too short for a rate.
/// let snap = emails.snapshot();
/// assert_eq!(snap.producer_rate_per_s, None);
/// assert_eq!(snap.produced_total, 50);
/// ```
pub const MIN_RATE_WINDOW: Duration = Duration::from_secs(1);
/// Consumers that took less than this share of what was produced over the window,
/// while the depth grew, are lagging.
const KEEPING_UP_RATIO: f64 = 0.9;

/// A cheap, cloneable handle on one queue's counters. Clone it into every producer and
/// consumer; each call is one relaxed atomic add.
///
/// # What depth counts
///
/// Depth is produced minus consumed: items produced and not yet consumed, whether they
/// wait in the queue or a consumer is working on them. It is "items waiting" only when
/// consumers call [`consumed`](QueueProbe::consumed) as they take an item off the queue;
/// a worker that calls it after processing an item also counts the one in its hands
/// (a queue of capacity 2, full, with one item being processed reads depth 3). Call
/// [`produced`](QueueProbe::produced) before the item can be taken off (after reserving
/// a slot, before sending it), so a fast consumer never counts it first. An item the
/// queue refuses, full or closed, is [`rejected`](QueueProbe::rejected), not produced:
/// it never adds to the depth.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let jobs = diag.queue("jobs").unwrap();
/// let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(2);
/// jobs.set_capacity(tx.max_capacity() as u64);
/// // Producer: count the item once it has a slot, before a consumer can see it.
/// for job in [1, 2, 3] {
///     match tx.try_reserve() {
///         Ok(slot) => {
///             jobs.produced();
///             slot.send(job);
///         }
///         Err(_) => jobs.rejected(), // full: the caller is told to retry
///     }
/// }
/// // Consumer: count the item when it comes off the queue, then work on it.
/// let job = rx.recv().await.unwrap();
/// jobs.consumed();
/// assert_eq!(job, 1);
/// assert_eq!((jobs.depth(), jobs.rejected_total()), (1, 1)); // one waiting, one refused
/// # }
/// ```
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let orders = diag.queue("orders").unwrap();
/// orders.set_capacity(1000);
/// orders.produced_n(3);
/// orders.consumed();
/// assert_eq!(orders.depth(), 2);
/// let v = diag.state().collect("queues").await.unwrap().value.unwrap();
/// assert_eq!(v["orders"]["depth"], 2);
/// assert_eq!(v["orders"]["capacity"], 1000);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct QueueProbe {
    inner: Arc<QueueCounters>,
}

#[derive(Debug)]
struct QueueCounters {
    name: String,
    produced: AtomicU64,
    consumed: AtomicU64,
    rejected: AtomicU64,
    /// 0: unknown / unbounded.
    capacity: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    produced: u64,
    consumed: u64,
    rejected: u64,
}

/// One queue as the `queues` provider shows it; also what a metrics exporter reads.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let uploads = diag.queue("uploads").unwrap();
/// uploads.set_capacity(10);
/// uploads.produced_n(9);
/// let snap = uploads.snapshot();
/// assert_eq!((snap.depth, snap.capacity), (9, Some(10)));
/// assert!(snap.consumer_lagging); // at 90% of capacity
/// let json = serde_json::to_value(&snap).unwrap();
/// assert_eq!(json["depth"], 9);
/// assert_eq!(json["rejected_total"], 0);
/// ```
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct QueueSnapshot {
    /// Items produced since start.
    pub produced_total: u64,
    /// Items consumed since start.
    pub consumed_total: u64,
    /// Items the queue refused since start ([`QueueProbe::rejected`]); not in
    /// `produced_total`.
    pub rejected_total: u64,
    /// Produced minus consumed: items waiting, plus those in progress when consumers
    /// count an item only after processing it (see [`QueueProbe`]).
    pub depth: u64,
    /// The configured capacity, if any.
    pub capacity: Option<u64>,
    /// Items produced per second over the window (`None` while the window is shorter
    /// than [`MIN_RATE_WINDOW`]).
    pub producer_rate_per_s: Option<f64>,
    /// Items consumed per second over the window (`None` likewise).
    pub consumer_rate_per_s: Option<f64>,
    /// Items rejected per second over the window (`None` likewise): with the producer
    /// rate, how much of the work offered the queue refuses.
    pub rejection_rate_per_s: Option<f64>,
    /// The span the rates cover, in seconds: about 60 while the queue is read or scraped
    /// at least once a minute, less just after start; after a longer time without a
    /// read, the span back to the last one (or to the queue's creation), so the first
    /// read after a quiet spell averages over all of it.
    pub window_seconds: f64,
    /// How much the depth changed over the window.
    pub depth_change: i64,
    /// The consumer falls behind: the queue rejected an item over the window (a queue
    /// refusing work lags whatever its depth at this instant, and this stays true for
    /// the window's length, about a minute, after the last rejection), or the depth is
    /// at 90% of capacity or more, or over a window of at least [`MIN_RATE_WINDOW`] the
    /// depth grew and consumers took less than 90% of what was produced.
    pub consumer_lagging: bool,
}

impl QueueProbe {
    fn new(name: &str, now: Instant) -> Self {
        let mut samples = VecDeque::with_capacity(8);
        samples.push_back(Sample {
            at: now,
            produced: 0,
            consumed: 0,
            rejected: 0,
        });
        QueueProbe {
            inner: Arc::new(QueueCounters {
                name: name.to_owned(),
                produced: AtomicU64::new(0),
                consumed: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                capacity: AtomicU64::new(0),
                samples: Mutex::new(samples),
            }),
        }
    }

    /// The queue's name.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("invoices").unwrap();
    /// assert_eq!(q.name(), "invoices");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// One item was enqueued. Count it before a consumer can take it off (see
    /// [`QueueProbe`]); an item the queue refused is [`rejected`](QueueProbe::rejected).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("webhooks").unwrap();
    /// q.produced();
    /// q.produced();
    /// assert_eq!(q.produced_total(), 2);
    /// ```
    #[inline]
    pub fn produced(&self) {
        self.inner.produced.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` items were enqueued.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("batches").unwrap();
    /// q.produced_n(25);
    /// assert_eq!(q.depth(), 25);
    /// ```
    #[inline]
    pub fn produced_n(&self, n: u64) {
        self.inner.produced.fetch_add(n, Ordering::Relaxed);
    }

    /// One item was taken off the queue. Call it when the consumer takes the item, not
    /// after processing it, for [`depth`](QueueProbe::depth) to mean "items waiting".
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("webhooks").unwrap();
    /// q.produced_n(3);
    /// q.consumed();
    /// assert_eq!((q.consumed_total(), q.depth()), (1, 2));
    /// ```
    #[inline]
    pub fn consumed(&self) {
        self.inner.consumed.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` items were dequeued.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("batches").unwrap();
    /// q.produced_n(25);
    /// q.consumed_n(20);
    /// assert_eq!(q.depth(), 5);
    /// ```
    #[inline]
    pub fn consumed_n(&self, n: u64) {
        self.inner.consumed.fetch_add(n, Ordering::Relaxed);
    }

    /// One item was refused: the queue was full (or closed) and the producer dropped
    /// it or told its caller so. It is not produced and never adds to the depth; the
    /// snapshot flags a queue that rejected items over its window as
    /// [`consumer_lagging`](QueueSnapshot::consumer_lagging), and `/metrics` counts them
    /// in `diag_queue_rejected_total`.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("orders").unwrap();
    /// let (tx, _rx) = tokio::sync::mpsc::channel::<u64>(1);
    /// q.set_capacity(1);
    /// for order in [1, 2] {
    ///     match tx.try_send(order) {
    ///         Ok(()) => q.produced(),
    ///         Err(_) => q.rejected(), // answer 503, drop it, ...
    ///     }
    /// }
    /// assert_eq!((q.produced_total(), q.rejected_total(), q.depth()), (1, 1, 1));
    /// assert!(q.snapshot().consumer_lagging); // it refuses work
    /// ```
    #[inline]
    pub fn rejected(&self) {
        self.inner.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` items were refused (see [`rejected`](QueueProbe::rejected)).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("batches").unwrap();
    /// q.produced_n(8);
    /// q.rejected_n(2); // a batch of 10 that fit only in part
    /// assert_eq!((q.depth(), q.rejected_total()), (8, 2));
    /// ```
    #[inline]
    pub fn rejected_n(&self, n: u64) {
        self.inner.rejected.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the queue's capacity (0: unknown or unbounded).
    ///
    /// ```
    /// let (tx, _rx) = tokio::sync::mpsc::channel::<u64>(512);
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("events").unwrap();
    /// q.set_capacity(tx.max_capacity() as u64);
    /// assert_eq!(q.capacity(), Some(512));
    /// ```
    pub fn set_capacity(&self, capacity: u64) {
        self.inner.capacity.store(capacity, Ordering::Relaxed);
    }

    /// The capacity, if set.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("unbounded").unwrap();
    /// assert_eq!(q.capacity(), None);
    /// q.set_capacity(100);
    /// assert_eq!(q.capacity(), Some(100));
    /// ```
    pub fn capacity(&self) -> Option<u64> {
        Some(self.inner.capacity.load(Ordering::Relaxed)).filter(|c| *c > 0)
    }

    /// Items produced since start.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("orders").unwrap();
    /// q.produced_n(4);
    /// q.consumed_n(4);
    /// assert_eq!(q.produced_total(), 4);
    /// ```
    pub fn produced_total(&self) -> u64 {
        self.inner.produced.load(Ordering::Relaxed)
    }

    /// Items consumed since start.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("orders").unwrap();
    /// q.produced_n(4);
    /// q.consumed_n(3);
    /// assert_eq!(q.consumed_total(), 3);
    /// ```
    pub fn consumed_total(&self) -> u64 {
        self.inner.consumed.load(Ordering::Relaxed)
    }

    /// Items refused since start.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("orders").unwrap();
    /// q.rejected();
    /// q.rejected_n(4);
    /// assert_eq!((q.rejected_total(), q.produced_total()), (5, 0));
    /// ```
    pub fn rejected_total(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// Produced minus consumed: items produced and not yet consumed, waiting or in
    /// progress (only waiting when consumers count an item as they take it off the
    /// queue; see [`QueueProbe`]).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("orders").unwrap();
    /// q.produced_n(10);
    /// q.consumed_n(7);
    /// assert_eq!(q.depth(), 3);
    /// ```
    pub fn depth(&self) -> u64 {
        let (produced, consumed) = self.counters();
        produced.saturating_sub(consumed)
    }

    /// Depth, totals, rates and the lagging flag, now (takes a rate sample).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let q = diag.queue("payments").unwrap();
    /// q.produced_n(5);
    /// q.consumed_n(2);
    /// let snap = q.snapshot();
    /// assert_eq!((snap.produced_total, snap.consumed_total, snap.depth), (5, 2, 3));
    /// assert!(!snap.consumer_lagging);
    /// ```
    pub fn snapshot(&self) -> QueueSnapshot {
        self.snapshot_at(Instant::now())
    }

    /// [`QueueProbe::snapshot`] as of `now`: the clock is a parameter so tests can
    /// move time without waiting.
    pub(crate) fn snapshot_at(&self, now: Instant) -> QueueSnapshot {
        let (produced, consumed) = self.counters();
        let rejected = self.rejected_total();
        let current = Sample {
            at: now,
            produced,
            consumed,
            rejected,
        };
        let base = {
            let mut samples = self.inner.samples.lock();
            let base = record_sample(&mut samples, current);
            base.unwrap_or(current)
        };
        let window = now.saturating_duration_since(base.at);
        let secs = window.as_secs_f64();
        let long_enough = window >= MIN_RATE_WINDOW;
        let produced_in_window = produced.saturating_sub(base.produced);
        let consumed_in_window = consumed.saturating_sub(base.consumed);
        let rejected_in_window = rejected.saturating_sub(base.rejected);
        let rate = |n: u64| long_enough.then(|| n as f64 / secs);
        let depth = produced.saturating_sub(consumed);
        let base_depth = base.produced.saturating_sub(base.consumed);
        let depth_change = depth as i64 - base_depth as i64;
        let capacity = self.capacity();
        let nearly_full = capacity.is_some_and(|c| depth as f64 >= c as f64 * FULL_RATIO);
        QueueSnapshot {
            produced_total: produced,
            consumed_total: consumed,
            rejected_total: rejected,
            depth,
            capacity,
            producer_rate_per_s: rate(produced_in_window),
            consumer_rate_per_s: rate(consumed_in_window),
            rejection_rate_per_s: rate(rejected_in_window),
            window_seconds: secs,
            depth_change,
            // Refusing work is lagging, whatever the depth reads at this instant (a
            // consumer may have just taken an item); it lasts the window, so a scrape
            // between rejections still sees it.
            consumer_lagging: rejected_in_window > 0
                || nearly_full
                || (long_enough
                    && depth_change > 0
                    && (consumed_in_window as f64) < produced_in_window as f64 * KEEPING_UP_RATIO),
        }
    }

    /// Consumed first: an item is produced before it is consumed, so this order never
    /// sees more consumed than produced.
    fn counters(&self) -> (u64, u64) {
        let consumed = self.inner.consumed.load(Ordering::Acquire);
        let produced = self.inner.produced.load(Ordering::Acquire);
        (produced, consumed)
    }
}

/// Adds `current` to the ring (at most one sample a second), drops samples no longer
/// needed, and returns the baseline: the newest sample at least [`RATE_WINDOW`] older
/// than `current`, or else the oldest one. After a quiet spell with no reads, the one
/// sample older than the window may be from long before (over two windows): then the
/// oldest sample inside the window that is at least [`MIN_RATE_WINDOW`] old, if any, so
/// a burst read every second is not averaged with the quiet minutes before it.
fn record_sample(samples: &mut VecDeque<Sample>, current: Sample) -> Option<Sample> {
    let newest_is_recent = samples
        .back()
        .is_some_and(|s| current.at.saturating_duration_since(s.at) < Duration::from_secs(1));
    if !newest_is_recent {
        if samples.len() == MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(current);
    }
    // Keep exactly one sample older than the window: it is the baseline.
    let old_enough = |s: &Sample| current.at.saturating_duration_since(s.at) >= RATE_WINDOW;
    while samples.len() >= 2 && samples.get(1).is_some_and(old_enough) {
        samples.pop_front();
    }
    let age = |s: &Sample| current.at.saturating_duration_since(s.at);
    let front = samples.front().copied()?;
    if age(&front) > 2 * RATE_WINDOW
        && let Some(inside) = samples.iter().skip(1).find(|s| age(s) >= MIN_RATE_WINDOW)
    {
        return Some(*inside);
    }
    Some(front)
}

/// The queues one [`Diag`] tracks.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    probes: RwLock<Vec<QueueProbe>>,
}

impl Queues {
    /// Every probe, in registration order.
    pub(crate) fn probes(&self) -> Vec<QueueProbe> {
        self.probes.read().clone()
    }

    fn snapshot_at(&self, now: Instant) -> std::collections::BTreeMap<String, QueueSnapshot> {
        self.probes
            .read()
            .iter()
            .map(|p| (p.name().to_owned(), p.snapshot_at(now)))
            .collect()
    }
}

impl Diag {
    /// The probe for queue `name` (1 to 64 of `a-z 0-9 _ - .`). Asking again for the
    /// same name returns the same counters, so producers and consumers may each ask.
    /// At most [`MAX_QUEUES`] queues are tracked.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let producer = diag.queue("thumbnails").unwrap();
    /// let consumer = diag.queue("thumbnails").unwrap(); // the same counters
    /// producer.produced();
    /// consumer.consumed();
    /// assert_eq!(producer.consumed_total(), 1);
    /// assert!(diag.queue("Thumbnails!").is_err()); // a-z 0-9 _ - . only
    /// ```
    pub fn queue(&self, name: &str) -> Result<QueueProbe, RegisterError> {
        if !valid_name(name) {
            return Err(RegisterError::InvalidName(name.to_owned()));
        }
        let queues = &self.inner.queues;
        if let Some(p) = queues.probes.read().iter().find(|p| p.name() == name) {
            return Ok(p.clone());
        }
        let mut probes = queues.probes.write();
        if let Some(p) = probes.iter().find(|p| p.name() == name) {
            return Ok(p.clone());
        }
        if probes.len() >= MAX_QUEUES {
            return Err(RegisterError::TooMany {
                what: "queues",
                cap: MAX_QUEUES,
            });
        }
        let probe = QueueProbe::new(name, Instant::now());
        probes.push(probe.clone());
        Ok(probe)
    }

    /// Every queue probe, for exporting their numbers as metrics
    /// ([`QueueProbe::snapshot`] has depth, totals, rates and the lagging flag).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.queue("orders").unwrap().produced_n(3);
    /// diag.queue("emails").unwrap();
    /// let depths: Vec<(String, u64)> = diag
    ///     .queues()
    ///     .iter()
    ///     .map(|q| (q.name().to_owned(), q.snapshot().depth))
    ///     .collect();
    /// assert_eq!(depths, [("orders".to_owned(), 3), ("emails".to_owned(), 0)]);
    /// ```
    pub fn queues(&self) -> Vec<QueueProbe> {
        self.inner.queues.probes.read().clone()
    }
}

/// Registers `queues`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    let weak = Arc::downgrade(&diag.inner);
    let _ = diag.state().register("queues", move || {
        weak.upgrade()
            .map(|inner| inner.queues.snapshot_at(Instant::now()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_consumer_is_flagged_with_fed_timestamps() {
        let t0 = Instant::now();
        let q = QueueProbe::new("orders", t0);
        // Healthy minute: 10/s in, 10/s out.
        for s in 1..=60u64 {
            q.produced_n(10);
            q.consumed_n(10);
            let snap = q.snapshot_at(t0 + Duration::from_secs(s));
            assert!(!snap.consumer_lagging, "second {s}: {snap:?}");
        }
        let snap = q.snapshot_at(t0 + Duration::from_secs(60));
        assert_eq!(snap.producer_rate_per_s, Some(10.0), "{snap:?}");
        assert_eq!(snap.consumer_rate_per_s, Some(10.0));
        // The consumer stalls; producers keep going.
        for s in 61..=90u64 {
            q.produced_n(10);
            let _ = q.snapshot_at(t0 + Duration::from_secs(s));
        }
        let snap = q.snapshot_at(t0 + Duration::from_secs(90));
        assert_eq!(snap.depth, 300);
        assert!(snap.consumer_lagging, "{snap:?}");
        assert!((snap.window_seconds - 60.0).abs() < 1e-9, "{snap:?}");
        assert_eq!(snap.producer_rate_per_s, Some(10.0));
        // Over the last 60 s (30..90) 300 items were consumed: 5/s.
        assert_eq!(snap.consumer_rate_per_s, Some(5.0), "{snap:?}");
        assert_eq!(snap.depth_change, 300);
        // A minute after it fully stopped, the consumer rate is zero.
        for s in 91..=150u64 {
            q.produced_n(10);
            let _ = q.snapshot_at(t0 + Duration::from_secs(s));
        }
        let snap = q.snapshot_at(t0 + Duration::from_secs(150));
        assert_eq!(snap.consumer_rate_per_s, Some(0.0));
        assert!(snap.consumer_lagging);
        // It catches up: depth falls, no longer lagging.
        q.consumed_n(900);
        let snap = q.snapshot_at(t0 + Duration::from_secs(151));
        assert_eq!(snap.depth, 0);
        assert!(!snap.consumer_lagging, "{snap:?}");
    }

    /// A burst after ten quiet minutes, read every second: its rate over the seconds
    /// read since, not averaged with the quiet before (the baseline from ten minutes
    /// ago would read it 40 times too low).
    #[test]
    fn a_burst_after_a_quiet_spell_is_rated_over_the_reads_since() {
        let t0 = Instant::now();
        let q = QueueProbe::new("orders", t0);
        let _ = q.snapshot_at(t0 + Duration::from_secs(1));
        let quiet = t0 + Duration::from_secs(600);
        let _ = q.snapshot_at(quiet);
        for s in 1..=10u64 {
            q.produced_n(150);
            q.consumed_n(150);
            q.rejected_n(40);
            let snap = q.snapshot_at(quiet + Duration::from_secs(s));
            if s >= 2 {
                assert!(snap.window_seconds <= 60.0, "second {s}: {snap:?}");
                assert_eq!(
                    snap.producer_rate_per_s,
                    Some(150.0),
                    "second {s}: {snap:?}"
                );
                assert_eq!(
                    snap.rejection_rate_per_s,
                    Some(40.0),
                    "second {s}: {snap:?}"
                );
            }
        }
        // Without reads in between, the window still reaches back to the last read.
        let later = quiet + Duration::from_secs(1000);
        q.produced_n(100);
        let snap = q.snapshot_at(later);
        assert!((snap.window_seconds - 990.0).abs() < 1e-9, "{snap:?}");
    }

    #[test]
    fn short_windows_and_small_wobbles_are_not_lagging() {
        let t0 = Instant::now();
        let q = QueueProbe::new("q", t0);
        q.produced_n(10);
        q.consumed_n(4);
        let snap = q.snapshot_at(t0 + Duration::from_millis(5));
        assert_eq!(snap.producer_rate_per_s, None);
        assert!(!snap.consumer_lagging, "{snap:?}");
        // 1000 in, 995 out over a minute: depth grew a little, the consumer keeps up.
        q.produced_n(990);
        q.consumed_n(991);
        let snap = q.snapshot_at(t0 + Duration::from_secs(60));
        assert_eq!(snap.depth_change, 5);
        assert!(!snap.consumer_lagging, "{snap:?}");
    }

    #[test]
    fn nearly_full_is_lagging_even_when_steady() {
        let t0 = Instant::now();
        let q = QueueProbe::new("jobs", t0);
        q.set_capacity(100);
        q.produced_n(95);
        // Steady state: depth stays at 95, rates equal; still flagged because nearly full.
        let _ = q.snapshot_at(t0 + Duration::from_secs(61));
        let snap = q.snapshot_at(t0 + Duration::from_secs(130));
        assert_eq!(snap.depth_change, 0);
        assert!(snap.consumer_lagging);
        q.set_capacity(1000);
        assert!(
            !q.snapshot_at(t0 + Duration::from_secs(131))
                .consumer_lagging
        );
    }

    #[test]
    fn rejections_are_counted_apart_and_rated_over_the_window() {
        let t0 = Instant::now();
        let q = QueueProbe::new("orders", t0);
        q.set_capacity(100);
        q.rejected();
        let snap = q.snapshot_at(t0 + Duration::from_millis(10));
        assert_eq!(
            (snap.rejected_total, snap.produced_total, snap.depth),
            (1, 0, 0)
        );
        // Under a second: no rate, but the refusal is a fact: lagging already.
        assert_eq!(snap.rejection_rate_per_s, None);
        assert!(snap.consumer_lagging, "{snap:?}");
        // 10/s in, 10/s out, 5/s refused, read every second.
        for s in 1..=61u64 {
            q.produced_n(10);
            q.consumed_n(10);
            q.rejected_n(5);
            let _ = q.snapshot_at(t0 + Duration::from_secs(s));
        }
        let snap = q.snapshot_at(t0 + Duration::from_secs(61));
        assert_eq!(snap.rejected_total, 306);
        assert_eq!(snap.produced_total, 610);
        assert_eq!(snap.depth, 0, "rejected items never add to the depth");
        // Over the window (seconds 1 to 61), like the producer and consumer rates.
        assert!((snap.window_seconds - 60.0).abs() < 1e-9, "{snap:?}");
        assert_eq!(snap.producer_rate_per_s, Some(10.0));
        assert_eq!(snap.consumer_rate_per_s, Some(10.0));
        assert_eq!(snap.rejection_rate_per_s, Some(5.0), "{snap:?}");
        assert!(
            snap.consumer_lagging,
            "depth 0, rates equal, but refusing work"
        );
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(json["rejected_total"], 306);
        assert_eq!(json["rejection_rate_per_s"], 5.0);
        // Nothing refused for a minute: the rate falls to 0 and the flag goes.
        for s in 62..=121u64 {
            q.produced_n(10);
            q.consumed_n(10);
            let _ = q.snapshot_at(t0 + Duration::from_secs(s));
        }
        let snap = q.snapshot_at(t0 + Duration::from_secs(121));
        assert_eq!(snap.rejection_rate_per_s, Some(0.0));
        assert_eq!(snap.rejected_total, 306);
        assert!(!snap.consumer_lagging, "{snap:?}");
    }

    /// The on-call drill: a small queue, its depth read at random points between 0 and
    /// capacity, refusing some work all along. The depth check alone flapped; the flag
    /// now holds on every read while the queue refuses work, and for one window after.
    #[test]
    fn a_rejecting_queue_lags_on_every_read_whatever_its_depth() {
        let t0 = Instant::now();
        let q = QueueProbe::new("orders", t0);
        q.set_capacity(2);
        for s in 1..=120u64 {
            // 275/s through; depth read at 1 or 0 (under 90% of 2); one refusal every
            // 10 s, far fewer than in the drill.
            q.produced_n(275 + s % 2);
            q.consumed_n(275 + (s + 1) % 2);
            if s % 10 == 1 {
                q.rejected();
            }
            let snap = q.snapshot_at(t0 + Duration::from_secs(s));
            assert_eq!(snap.depth, s % 2, "{snap:?}");
            assert!(snap.consumer_lagging, "second {s}: {snap:?}");
        }
        // The last refusal was at second 111: lagging while it is inside the window.
        for s in 121..=170u64 {
            q.produced_n(275);
            q.consumed_n(275);
            let snap = q.snapshot_at(t0 + Duration::from_secs(s));
            assert!(snap.consumer_lagging, "second {s}: {snap:?}");
        }
        q.produced_n(275);
        q.consumed_n(275);
        let snap = q.snapshot_at(t0 + Duration::from_secs(171));
        assert!(
            !snap.consumer_lagging,
            "the refusal left the window: {snap:?}"
        );
    }

    #[test]
    fn samples_stay_bounded_and_reads_within_a_second_do_not_add_samples() {
        let t0 = Instant::now();
        let q = QueueProbe::new("q", t0);
        for ms in 0..5000u64 {
            let _ = q.snapshot_at(t0 + Duration::from_millis(ms));
        }
        assert!(q.inner.samples.lock().len() <= 6);
        for s in 0..1000u64 {
            let _ = q.snapshot_at(t0 + Duration::from_secs(10 + s));
        }
        let n = q.inner.samples.lock().len();
        assert!((60..=MAX_SAMPLES).contains(&n), "{n}");
    }

    #[tokio::test]
    async fn names_are_validated_and_shared() {
        let diag = Diag::builder().build().unwrap();
        assert!(matches!(
            diag.queue("Bad Name"),
            Err(RegisterError::InvalidName(_))
        ));
        let a = diag.queue("emails").unwrap();
        let b = diag.queue("emails").unwrap();
        a.produced();
        b.produced();
        assert_eq!(a.depth(), 2);
        assert_eq!(diag.queues().len(), 1);
        b.rejected_n(3);
        assert_eq!(a.rejected_total(), 3);
        let v = diag.state().collect("queues").await.unwrap().value.unwrap();
        assert_eq!(v["emails"]["produced_total"], 2);
        assert_eq!(v["emails"]["rejected_total"], 3);
        assert_eq!(v["emails"]["rejection_rate_per_s"], serde_json::Value::Null);
        assert_eq!(v["emails"]["consumer_lagging"], true);
        assert_eq!(v["emails"]["capacity"], serde_json::Value::Null);
    }
}
