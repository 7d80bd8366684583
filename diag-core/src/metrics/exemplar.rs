//! Exemplars: the trace behind one observation, so a latency spike on a dashboard
//! leads to the request that caused it.
//!
//! Each bucket (and each counter) has one [`ExemplarSlot`]; the newest sampled
//! observation replaces what is there. The slot is a **seqlock** over plain atomics:
//!
//! - a writer makes the sequence number odd, stores the fields, and publishes by
//!   storing the next even number. The owner of an exclusive shard (see the `shard`
//!   module) is the slot's only writer and does this with plain stores; writers of the
//!   shared shard claim the slot with one compare-and-swap, and one that finds the slot
//!   claimed does not wait: it skips its write (the other writer's exemplar is just as
//!   recent, and an exemplar is a sample, not a record);
//! - a reader (the `/metrics` scrape) copies the fields between two reads of the
//!   sequence number and keeps the copy only when both reads are the same even
//!   number, so a torn exemplar (the trace id of one request with the value of
//!   another) can never be returned. Readers never block writers.
//!
//! The fields are atomics read and written with relaxed ordering, so the racing copy
//! a reader throws away is not undefined behaviour; the fences give the ordering.
//! A lock-free pointer swap (arc-swap style) was the alternative; it would allocate on
//! every replacement and needs deferred reclamation; the seqlock allocates nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::MonoTime;

use crate::trace::{SpanId, TraceContext, TraceId};

/// The OpenMetrics limit on an exemplar's label set: names and values together, in
/// UTF-8 code points.
///
/// ```
/// use diag_core::metrics::{MAX_EXEMPLAR_LABEL_CODE_POINTS, exemplar_labels_fit};
/// let value = "x".repeat(MAX_EXEMPLAR_LABEL_CODE_POINTS - "note".len());
/// assert!(exemplar_labels_fit(&[("note", &value)]));
/// let one_more = format!("{value}x");
/// assert!(!exemplar_labels_fit(&[("note", &one_more)]));
/// ```
pub const MAX_EXEMPLAR_LABEL_CODE_POINTS: usize = 128;

/// The label set diag writes: `trace_id` (8) + 32 hex digits + `span_id` (7) + 16 hex
/// digits = 63 code points, within the limit by construction.
const TRACE_LABELS_CODE_POINTS: usize = "trace_id".len() + 32 + "span_id".len() + 16;
const _: () = assert!(TRACE_LABELS_CODE_POINTS <= MAX_EXEMPLAR_LABEL_CODE_POINTS);

/// Whether an exemplar label set fits the OpenMetrics limit (128 code points over all
/// names and values). The encoder drops (never truncates: a cut trace id leads
/// nowhere) any exemplar whose labels do not fit.
///
/// ```
/// use diag_core::metrics::exemplar_labels_fit;
/// assert!(exemplar_labels_fit(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]));
/// assert!(!exemplar_labels_fit(&[("note", &"é".repeat(125))]));
/// ```
pub fn exemplar_labels_fit(labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum::<usize>()
        <= MAX_EXEMPLAR_LABEL_CODE_POINTS
}

/// One exemplar as read back from a slot.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use diag_core::metrics::{Counter, ExemplarTime};
/// use diag_core::trace::TraceContext;
/// let tp = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let trace = TraceContext::from_traceparent(tp).unwrap();
/// let at = ExemplarTime::now();
/// let c = Counter::new();
/// c.inc_with_exemplar(1, &trace, at);
/// let ex = c.exemplar().unwrap();
/// assert_eq!(ex.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(ex.span_id, trace.span_id);
/// assert_eq!(ex.value, 1.0);
/// assert_eq!(ex.time, UNIX_EPOCH + Duration::from_nanos(at.unix_nanos()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Exemplar {
    /// The trace of the observation.
    pub trace_id: TraceId,
    /// The span (request) of the observation.
    pub span_id: SpanId,
    /// The observed value (for a counter, the increment).
    pub value: f64,
    /// When it was observed.
    pub time: SystemTime,
}

/// When an exemplar's observation happened: nanoseconds since the Unix epoch.
///
/// Made once by the caller, like the `SystemTime` prometheus-client takes: converting a
/// clock reading costs more than the whole observation, so code that observes several
/// metrics at one moment (the request path: duration and count) converts once.
///
/// ```
/// use diag_core::metrics::ExemplarTime;
/// let t = ExemplarTime::from_instant(std::time::Instant::now());
/// let age = ExemplarTime::now().unix_nanos().saturating_sub(t.unix_nanos());
/// assert!(age < 5_000_000_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExemplarTime(u64);

impl ExemplarTime {
    /// The current wall-clock time.
    ///
    /// ```
    /// use diag_core::metrics::ExemplarTime;
    /// let t = ExemplarTime::now();
    /// // Some time after 2020-09-13 (1.6e9 seconds since the epoch).
    /// assert!(t.unix_nanos() > 1_600_000_000_000_000_000);
    /// ```
    pub fn now() -> ExemplarTime {
        ExemplarTime::from_system_time(SystemTime::now())
    }

    /// A wall-clock time.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use diag_core::metrics::ExemplarTime;
    /// let t = ExemplarTime::from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// assert_eq!(t.unix_nanos(), 1_700_000_000_000_000_000);
    /// // A time before the epoch reads as the epoch.
    /// let before = ExemplarTime::from_system_time(UNIX_EPOCH - Duration::from_secs(1));
    /// assert_eq!(before.unix_nanos(), 0);
    /// ```
    pub fn from_system_time(t: SystemTime) -> ExemplarTime {
        let nanos = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        ExemplarTime(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// The wall-clock time of a monotonic `Instant` (one anchor pair is taken on first
    /// use, so no second clock read is needed; NTP slews after the anchor shift the
    /// result slightly, which an exemplar timestamp tolerates).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use diag_core::metrics::ExemplarTime;
    /// let earlier = ExemplarTime::from_instant(Instant::now());
    /// let later = ExemplarTime::from_instant(Instant::now() + Duration::from_millis(250));
    /// assert!(later.unix_nanos() >= earlier.unix_nanos() + 250_000_000);
    /// ```
    pub fn from_instant(at: Instant) -> ExemplarTime {
        static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
        let (instant, unix) = *ANCHOR.get_or_init(|| (Instant::now(), ExemplarTime::now().0));
        let since = u64::try_from(at.saturating_duration_since(instant).as_nanos()).unwrap_or(0);
        ExemplarTime(unix.saturating_add(since))
    }

    /// The wall-clock time of a request-path clock reading: the reading plus the
    /// offset between the two clocks, measured again every [`REANCHOR_NANOS`]. The
    /// request path's clock may be the TSC, which does not follow NTP's frequency
    /// corrections (up to some hundred parts per million); re-anchoring keeps exemplar
    /// timestamps within about a millisecond of the wall clock however long the process
    /// runs.
    #[inline]
    pub(crate) fn from_mono(at: MonoTime) -> ExemplarTime {
        static ANCHOR: MonoAnchor = MonoAnchor::new();
        ExemplarTime(ANCHOR.to_unix(at.nanos(), || {
            (MonoTime::now().nanos(), ExemplarTime::now().0)
        }))
    }

    /// Nanoseconds since the Unix epoch.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use diag_core::metrics::ExemplarTime;
    /// let t = ExemplarTime::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
    /// assert_eq!(t.unix_nanos(), 1_500_000_000);
    /// ```
    pub fn unix_nanos(self) -> u64 {
        self.0
    }

    fn to_system_time(self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.0)
    }
}

/// How often [`ExemplarTime::from_mono`] measures the request path's clock against the
/// wall clock again.
const REANCHOR_NANOS: u64 = 10_000_000_000;

/// The offset between the request path's clock and the wall clock, measured again
/// once it is [`REANCHOR_NANOS`] old.
struct MonoAnchor {
    /// Unix nanoseconds minus clock nanoseconds (wrapping), as last measured.
    offset: AtomicU64,
    /// The clock reading of that measurement; 0 before the first.
    at: AtomicU64,
}

impl MonoAnchor {
    const fn new() -> MonoAnchor {
        MonoAnchor {
            offset: AtomicU64::new(0),
            at: AtomicU64::new(0),
        }
    }

    /// The Unix nanoseconds of clock reading `at`; `measure` reads `(clock, unix)`
    /// now. Threads that race to measure each store a fresh pair; a reader that pairs
    /// a new `at` with the previous offset is off by one interval's drift.
    #[inline]
    fn to_unix(&self, at: u64, measure: impl FnOnce() -> (u64, u64)) -> u64 {
        let anchored = self.at.load(Ordering::Relaxed);
        if anchored == 0 || at.saturating_sub(anchored) > REANCHOR_NANOS {
            let (clock, unix) = measure();
            self.offset
                .store(unix.wrapping_sub(clock), Ordering::Relaxed);
            self.at.store(clock.max(1), Ordering::Relaxed);
        }
        at.wrapping_add(self.offset.load(Ordering::Relaxed))
    }
}

/// A single-exemplar cell: written by observers without waiting, read by scrapes
/// without tearing.
#[derive(Debug, Default)]
pub(crate) struct ExemplarSlot {
    seq: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span: AtomicU64,
    value: AtomicU64,
    unix_nanos: AtomicU64,
}

/// How often a reader retries a slot that writers keep replacing before giving up on
/// it for this scrape.
const READ_ATTEMPTS: usize = 64;

impl ExemplarSlot {
    /// Replaces the exemplar; the caller is the slot's only writer.
    #[inline]
    pub(crate) fn write_exclusive(&self, trace: &TraceContext, value: f64, at: ExemplarTime) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq + 1, Ordering::Relaxed);
        self.publish(seq, trace, value, at);
    }

    /// Replaces the exemplar unless another writer holds the slot right now.
    #[inline]
    pub(crate) fn write_shared(&self, trace: &TraceContext, value: f64, at: ExemplarTime) {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || self
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.publish(seq, trace, value, at);
    }

    /// With the sequence number at `seq + 1` (odd, held by this writer): stores the
    /// fields and releases the slot at `seq + 2`.
    #[inline]
    fn publish(&self, seq: u64, trace: &TraceContext, value: f64, at: ExemplarTime) {
        // Orders the odd sequence number before the field stores for any reader that
        // sees one of them (it then re-reads a different sequence number).
        fence(Ordering::Release);
        let (hi, lo) = split_trace(&trace.trace_id);
        self.trace_hi.store(hi, Ordering::Relaxed);
        self.trace_lo.store(lo, Ordering::Relaxed);
        self.span
            .store(u64::from_ne_bytes(trace.span_id.0), Ordering::Relaxed);
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.unix_nanos.store(at.0, Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// A consistent copy of the exemplar, or `None` when never written (or writers
    /// kept it busy for every attempt).
    pub(crate) fn read(&self) -> Option<Exemplar> {
        for _ in 0..READ_ATTEMPTS {
            let before = self.seq.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hi = self.trace_hi.load(Ordering::Relaxed);
            let lo = self.trace_lo.load(Ordering::Relaxed);
            let span = self.span.load(Ordering::Relaxed);
            let value = self.value.load(Ordering::Relaxed);
            let unix_nanos = self.unix_nanos.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return Some(Exemplar {
                    trace_id: join_trace(hi, lo),
                    span_id: SpanId(span.to_ne_bytes()),
                    value: f64::from_bits(value),
                    time: ExemplarTime(unix_nanos).to_system_time(),
                });
            }
        }
        None
    }
}

fn split_trace(id: &TraceId) -> (u64, u64) {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&id.0[..8]);
    lo.copy_from_slice(&id.0[8..]);
    (u64::from_ne_bytes(hi), u64::from_ne_bytes(lo))
}

fn join_trace(hi: u64, lo: u64) -> TraceId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_ne_bytes());
    b[8..].copy_from_slice(&lo.to_ne_bytes());
    TraceId(b)
}

/// The newer of two exemplars (by observation time).
pub(crate) fn newest(a: Option<Exemplar>, b: Option<Exemplar>) -> Option<Exemplar> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.time > x.time { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ctx(n: u8) -> TraceContext {
        TraceContext {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            sampled: true,
        }
    }

    #[test]
    fn empty_slot_reads_none_then_last_write_wins() {
        let slot = ExemplarSlot::default();
        assert_eq!(slot.read(), None);
        let t0 = Instant::now();
        slot.write_exclusive(&ctx(1), 0.5, ExemplarTime::from_instant(t0));
        let t1 = ExemplarTime::from_instant(t0 + Duration::from_millis(3));
        slot.write_shared(&ctx(2), 0.7, t1);
        let e = slot.read().unwrap();
        assert_eq!(e.trace_id, TraceId([2; 16]));
        assert_eq!(e.span_id, SpanId([2; 8]));
        assert_eq!(e.value, 0.7);
        let age = SystemTime::now().duration_since(e.time).unwrap_or_default();
        assert!(age < Duration::from_secs(5), "timestamp near now: {age:?}");
    }

    #[test]
    fn the_request_clock_anchor_follows_the_wall_clock() {
        let anchor = MonoAnchor::new();
        let sec = 1_000_000_000;
        // First use measures: clock 1 s is unix 100 s.
        assert_eq!(anchor.to_unix(sec, || (sec, 100 * sec)), 100 * sec);
        // Within the interval, no new measurement (the clock is not read again).
        let later = sec + REANCHOR_NANOS;
        assert_eq!(anchor.to_unix(later, || unreachable!()), 99 * sec + later);
        // Past it, a new measurement: the wall clock has moved 2 s more than the
        // request clock (NTP corrections the TSC does not follow), and readings follow.
        let past = later + 1;
        let unix = anchor.to_unix(past, || (past, 99 * sec + past + 2 * sec));
        assert_eq!(unix, 101 * sec + past);
        assert_eq!(
            anchor.to_unix(past + 5, || unreachable!()),
            101 * sec + past + 5
        );
    }

    #[test]
    fn request_clock_readings_map_to_now() {
        let t = ExemplarTime::from_mono(MonoTime::now());
        let now = ExemplarTime::now();
        assert!(now.0.abs_diff(t.0) < 50_000_000, "{t:?} vs {now:?}");
    }

    #[test]
    fn readers_never_see_a_torn_exemplar_from_shared_writers() {
        torn_read_check(2, |slot, t, v| slot.write_shared(t, v, ExemplarTime::now()));
    }

    #[test]
    fn readers_never_see_a_torn_exemplar_from_the_exclusive_writer() {
        torn_read_check(1, |slot, t, v| {
            slot.write_exclusive(t, v, ExemplarTime::now())
        });
    }

    /// Each writer writes exemplars whose every field derives from one byte; a torn
    /// read would mix two bytes.
    fn torn_read_check(writers: u8, write: fn(&ExemplarSlot, &TraceContext, f64)) {
        let slot = Arc::new(ExemplarSlot::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (1..=writers)
            .map(|w| {
                let (slot, stop) = (slot.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = w;
                    while !stop.load(Ordering::Relaxed) {
                        write(&slot, &ctx(n), f64::from(n));
                        n = n.wrapping_add(2).max(1);
                    }
                })
            })
            .collect();
        let mut reads = 0;
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            if let Some(e) = slot.read() {
                let n = e.trace_id.0[0];
                assert!(e.trace_id.0.iter().all(|&b| b == n), "torn trace id");
                assert_eq!(e.span_id, SpanId([n; 8]), "span from another write");
                assert_eq!(e.value, f64::from(n), "value from another write");
                reads += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        assert!(reads > 0);
    }

    #[test]
    fn label_limit_counts_code_points_not_bytes() {
        let v = "é".repeat(120); // 240 bytes, 120 code points
        assert!(exemplar_labels_fit(&[("k", &v)]));
        assert!(!exemplar_labels_fit(&[("k", &v), ("abcdefgh", "x")]));
        assert!(exemplar_labels_fit(&[
            ("trace_id", &"a".repeat(32)),
            ("span_id", &"b".repeat(16))
        ]));
    }
}
