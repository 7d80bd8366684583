//! The flight recorder: the last finished debug requests, for `/debug/requests`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::capture::Capture;
use super::redact::{DEFAULT_FIELDS, Redactor};
use super::stored::StoredCapture;
use crate::trace::TraceId;

/// A ring of finished debug requests bounded by count and by (approximate) bytes. The
/// oldest are evicted first and counted; a capture larger than the whole byte budget is
/// not kept, and counted too.
///
/// A capture can be [pinned](super::DebugMode::pin): it is then kept until it is unpinned, whatever
/// comes after it, so the one request an incident turns on is not pushed out by the
/// next hundred. Pinned captures count toward both caps, and are bounded themselves:
/// at most a quarter of the count cap ([`RecorderStats::max_pinned`]) and half the byte
/// cap, so the ring always keeps room for new captures.
///
/// It keeps captures as they were recorded and redacts them when they are read: every
/// [`Capture`] it hands out ([`get`](Self::get), [`recent`](Self::recent)) is redacted
/// with the `Diag`'s rules, so nothing read from it carries a secret, and a debug
/// request does not pay for redaction nobody may ever read.
///
/// ```
/// let recorder = diag_core::debug::FlightRecorder::new(100, 8 << 20);
/// assert!(recorder.recent().is_empty());
/// assert_eq!(recorder.evicted(), 0);
/// ```
#[derive(Debug)]
pub struct FlightRecorder {
    ring: Mutex<Ring>,
    redactor: Redactor,
    max_captures: usize,
    max_bytes: usize,
    stored: AtomicU64,
    evicted: AtomicU64,
    too_large: AtomicU64,
    pins_dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct Ring {
    /// Unpinned captures in the order they were stored, oldest first: what eviction
    /// takes.
    captures: VecDeque<Entry>,
    bytes: usize,
    /// Pinned captures, kept until unpinned.
    pinned: Vec<Entry>,
    pinned_bytes: usize,
    /// Debug requests pinned while still running: pinned when their capture is stored.
    /// With `pinned`, at most `max_pinned`.
    pending: Vec<u64>,
    /// Counts stores: each entry's place in the order they were stored.
    stores: u64,
}

/// A kept capture, its approximate size, and when it was stored (`Ring::stores`).
#[derive(Debug)]
struct Entry {
    capture: Arc<StoredCapture>,
    size: usize,
    seq: u64,
}

/// What [`DebugMode::pin`](super::DebugMode::pin) did.
///
/// ```
/// # use diag_core::debug::{DebugLevel, PinOutcome};
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// let mode = diag.debug_mode();
/// // Still running: pinned as soon as its capture is stored.
/// assert_eq!(mode.pin(debug.id()), PinOutcome::Pending);
/// debug.response_end();
/// assert!(mode.recorder().is_pinned(debug.id()));
/// assert_eq!(mode.pin(debug.id()), PinOutcome::Pinned);
/// assert_eq!(mode.pin(debug.id() + 1), PinOutcome::NotKept);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinOutcome {
    /// The capture is pinned (now, or it was already).
    Pinned,
    /// The debug request is still running: its capture is pinned when it is stored.
    Pending,
    /// No capture with that id is kept, and no debug request with it is running.
    NotKept,
    /// As many captures as allowed are pinned (or pending) already.
    TooMany,
    /// Beside the captures pinned already, it would take them over half the byte cap.
    NoRoom,
    /// The capture alone is larger than half the byte cap, the most pins may take.
    TooLarge,
}

/// The recorder's numbers, as `/debug/requests` shows them.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// let diag = diag_core::Diag::builder().recorder_limits(2, 1 << 20).build().unwrap();
/// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
/// for _ in 0..3 {
///     let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
///     debug.response_head(200, &());
///     debug.response_end();
/// }
/// let stats = diag.debug_mode().recorder().stats();
/// assert_eq!((stats.kept, stats.stored, stats.evicted), (2, 3, 1));
/// assert_eq!(stats.max_captures, 2);
/// ```
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct RecorderStats {
    /// Captures kept now.
    pub kept: usize,
    /// Their approximate size.
    pub bytes: usize,
    /// The count cap.
    pub max_captures: usize,
    /// The byte cap.
    pub max_bytes: usize,
    /// Captures stored since start.
    pub stored: u64,
    /// Captures evicted to make room.
    pub evicted: u64,
    /// Captures not kept because they alone exceed the byte cap (less what pinned
    /// captures take).
    pub too_large: u64,
    /// Pinned captures kept now (counted in `kept` and `bytes` too), and debug requests
    /// pinned while running, pinned when they end.
    pub pinned: usize,
    /// The most captures that can be pinned (or pending) at once: a quarter of
    /// `max_captures`. Pinned captures also take at most half of `max_bytes`.
    pub max_pinned: usize,
    /// Pins of running requests let go when their capture was stored: it did not fit
    /// beside the other pins in half the byte cap (it was kept unpinned, if it fit).
    pub pins_dropped: u64,
}

impl FlightRecorder {
    /// An empty recorder keeping at most `max_captures` captures and `max_bytes` bytes
    /// (each at least 1), redacting the always-secret headers, `X-Debug` and
    /// [`DEFAULT_FIELDS`].
    ///
    /// ```
    /// use diag_core::debug::FlightRecorder;
    /// let recorder = FlightRecorder::new(0, 0);
    /// let stats = recorder.stats();
    /// assert_eq!((stats.max_captures, stats.max_bytes), (1, 1), "each at least 1");
    /// assert_eq!(stats.kept, 0);
    /// ```
    pub fn new(max_captures: usize, max_bytes: usize) -> Self {
        let fields: Vec<String> = DEFAULT_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        Self::with_redactor(
            max_captures,
            max_bytes,
            Redactor::new("x-debug", &[], &fields),
        )
    }

    /// An empty recorder whose readers get captures redacted by `redactor`.
    pub(crate) fn with_redactor(max_captures: usize, max_bytes: usize, redactor: Redactor) -> Self {
        FlightRecorder {
            ring: Mutex::new(Ring::default()),
            redactor,
            max_captures: max_captures.max(1),
            max_bytes: max_bytes.max(1),
            stored: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            pins_dropped: AtomicU64::new(0),
        }
    }

    /// Keeps `capture`, evicting the oldest unpinned ones as needed, and sets `kept`
    /// under the recorder's lock: a pin that finds neither the capture nor `kept` set
    /// knows the capture is still to come ([`pin`](Self::pin)).
    pub(crate) fn store(&self, capture: Arc<StoredCapture>, kept: &AtomicBool) {
        let size = capture.approx_bytes();
        let mut ring = self.ring.lock();
        kept.store(true, Ordering::Release);
        ring.stores += 1;
        let seq = ring.stores;
        let entry = Entry { capture, size, seq };
        // Pinned beside the other pins when a pin waits for it (half the bytes at most,
        // so it fits once the oldest unpinned ones make room); too large for that, its
        // pin is let go, counted, and it is kept like any other.
        let waited = ring.pending.iter().position(|id| *id == entry.capture.id);
        let pin = waited.is_some() && ring.pinned_bytes + size <= self.max_pinned_bytes();
        if let Some(at) = waited {
            ring.pending.swap_remove(at);
            if !pin {
                self.pins_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !pin && size + ring.pinned_bytes > self.max_bytes {
            drop(ring);
            self.too_large.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let evicted = self.make_room(&mut ring, 1, size);
        if pin {
            ring.pinned_bytes += size;
            ring.pinned.push(entry);
        } else {
            ring.bytes += size;
            ring.captures.push_back(entry);
        }
        // The evicted captures' memory is freed by `make_room`, under the lock; their
        // Arcs may outlive it in a reader's hands, which is fine.
        drop(ring);
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    /// Evicts the oldest unpinned captures until `count` more of `size` bytes fit; how
    /// many.
    fn make_room(&self, ring: &mut Ring, count: usize, size: usize) -> u64 {
        let mut evicted = 0;
        while ring.captures.len() + ring.pinned.len() + count > self.max_captures
            || ring.bytes + ring.pinned_bytes + size > self.max_bytes
        {
            match ring.captures.pop_front() {
                Some(old) => {
                    ring.bytes -= old.size;
                    evicted += 1;
                }
                None => break,
            }
        }
        evicted
    }

    /// The most captures pinned (or pending) at once: a quarter of the count cap.
    fn max_pinned(&self) -> usize {
        self.max_captures / 4
    }

    /// The most bytes pinned captures take: half the byte cap.
    fn max_pinned_bytes(&self) -> usize {
        self.max_bytes / 2
    }

    /// Pins the capture `id` (see [`DebugMode::pin`](super::DebugMode::pin)). When it
    /// is not kept, it waits for it if `running` is the `kept` flag of a request whose
    /// capture is still to come: [`store`](Self::store) sets it under this lock, so a
    /// capture stored (or refused, or evicted) just before is never waited for.
    pub(crate) fn pin(&self, id: u64, running: Option<&AtomicBool>) -> PinOutcome {
        let mut ring = self.ring.lock();
        if ring.pinned.iter().any(|e| e.capture.id == id) {
            return PinOutcome::Pinned;
        }
        if ring.pending.contains(&id) {
            return PinOutcome::Pending;
        }
        let at = ring.captures.iter().position(|e| e.capture.id == id);
        let to_come = running.is_some_and(|kept| !kept.load(Ordering::Acquire));
        if at.is_none() && !to_come {
            return PinOutcome::NotKept;
        }
        if ring.pinned.len() + ring.pending.len() >= self.max_pinned() {
            return PinOutcome::TooMany;
        }
        let Some(at) = at else {
            // Its capture is stored under this lock: not there yet, it waits for it.
            ring.pending.push(id);
            return PinOutcome::Pending;
        };
        let size = ring.captures[at].size;
        if size > self.max_pinned_bytes() {
            return PinOutcome::TooLarge;
        }
        if ring.pinned_bytes + size > self.max_pinned_bytes() {
            return PinOutcome::NoRoom;
        }
        let Some(entry) = ring.captures.remove(at) else {
            unreachable!("found at {at}")
        };
        ring.bytes -= size;
        ring.pinned_bytes += size;
        ring.pinned.push(entry);
        PinOutcome::Pinned
    }

    /// Unpins the capture `id` (see [`DebugMode::unpin`](super::DebugMode::unpin)).
    pub(crate) fn unpin(&self, id: u64) -> bool {
        let mut ring = self.ring.lock();
        if let Some(at) = ring.pending.iter().position(|p| *p == id) {
            ring.pending.swap_remove(at);
            return true;
        }
        let Some(at) = ring.pinned.iter().position(|e| e.capture.id == id) else {
            return false;
        };
        let entry = ring.pinned.swap_remove(at);
        ring.pinned_bytes -= entry.size;
        ring.bytes += entry.size;
        // Back among the others where it was stored. The totals are the same as
        // before: nothing needs evicting until the next capture is stored.
        let at = ring.captures.partition_point(|e| e.seq < entry.seq);
        ring.captures.insert(at, entry);
        true
    }

    /// Whether the capture `id` is pinned, or will be when it is stored.
    ///
    /// ```
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// assert!(!diag.debug_mode().recorder().is_pinned(1));
    /// ```
    pub fn is_pinned(&self, id: u64) -> bool {
        let ring = self.ring.lock();
        ring.pending.contains(&id) || ring.pinned.iter().any(|e| e.capture.id == id)
    }

    /// The ids pinned (or pending), for readers that mark them.
    pub(crate) fn pinned_ids(&self) -> Vec<u64> {
        let ring = self.ring.lock();
        ring.pinned
            .iter()
            .map(|e| e.capture.id)
            .chain(ring.pending.iter().copied())
            .collect()
    }

    /// The kept captures, newest first, redacted.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// let run = || {
    ///     let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    ///     debug.response_end();
    ///     debug.id()
    /// };
    /// let (first, second) = (run(), run());
    /// let recent = diag.debug_mode().recorder().recent();
    /// let ids: Vec<u64> = recent.iter().map(|c| c.id).collect();
    /// assert_eq!(ids, [second, first], "newest first");
    /// ```
    pub fn recent(&self) -> Vec<Arc<Capture>> {
        self.recent_stored()
            .iter()
            .map(|c| Arc::new(c.redacted(&self.redactor)))
            .collect()
    }

    /// The kept captures, newest first, unredacted: for crate readers that redact what
    /// they show themselves (the capture list shows a few fields of each).
    pub(crate) fn recent_stored(&self) -> Vec<Arc<StoredCapture>> {
        let mut all: Vec<(u64, Arc<StoredCapture>)> = {
            let ring = self.ring.lock();
            ring.captures
                .iter()
                .chain(&ring.pinned)
                .map(|e| (e.seq, e.capture.clone()))
                .collect()
        };
        // In the order they were stored, newest first: a pinned one in its place.
        all.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        all.into_iter().map(|(_, c)| c).collect()
    }

    /// The capture with `id`, if still kept, redacted.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// let headers = vec![("cookie".to_owned(), "session=abc".to_owned())];
    /// let view = RequestView { method: "GET", route: None, uri: "/?token=t0k", headers: &headers, peer: &|| None };
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
    /// debug.finish_incomplete();
    /// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
    /// assert_eq!(capture.request.headers[0], ("cookie".to_owned(), "[redacted]".to_owned()));
    /// assert_eq!(capture.request.uri, "/?token=[redacted]");
    /// assert!(diag.debug_mode().recorder().get(debug.id() + 1).is_none());
    /// ```
    pub fn get(&self, id: u64) -> Option<Arc<Capture>> {
        self.newest(|c| c.id == id)
    }

    /// The newest kept capture of the trace `trace_id`, redacted: the way from a debug
    /// request's exemplar (or its `X-Trace-Id`) to its capture.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// // The id a person copied from an exemplar or an `X-Trace-Id` header:
    /// let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    /// let debug = diag.start_debug(DebugLevel::Debug, &view, trace);
    /// debug.response_end();
    /// let capture = diag.debug_mode().recorder().by_trace(&trace).unwrap();
    /// assert_eq!(capture.id, debug.id());
    /// assert!(diag.debug_mode().recorder().by_trace(&TraceId::random()).is_none());
    /// ```
    pub fn by_trace(&self, trace_id: &TraceId) -> Option<Arc<Capture>> {
        self.newest(|c| c.trace_id == *trace_id)
    }

    /// The newest kept capture `matches` accepts, redacted.
    fn newest(&self, matches: impl Fn(&StoredCapture) -> bool) -> Option<Arc<Capture>> {
        let stored = {
            let ring = self.ring.lock();
            // Newest: the last stored of those that match, pinned or not.
            ring.captures
                .iter()
                .chain(&ring.pinned)
                .filter(|e| matches(&e.capture))
                .max_by_key(|e| e.seq)
                .map(|e| e.capture.clone())?
        };
        // Redacted outside the lock: the request path stores under it.
        Some(Arc::new(stored.redacted(&self.redactor)))
    }

    /// The rules captures are redacted with when read.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// How many captures were evicted to make room.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// let diag = diag_core::Diag::builder().recorder_limits(1, 1 << 20).build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// for _ in 0..3 {
    ///     diag.start_debug(DebugLevel::Debug, &view, TraceId::random()).response_end();
    /// }
    /// assert_eq!(diag.debug_mode().recorder().evicted(), 2);
    /// ```
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// The lowest debug id among the kept unpinned captures (`None` when none is
    /// kept): any lower id that was issued and is not pinned is not kept any more, or
    /// not yet.
    pub(crate) fn oldest_id(&self) -> Option<u64> {
        self.ring.lock().captures.iter().map(|e| e.capture.id).min()
    }

    /// The recorder's current numbers.
    ///
    /// ```
    /// # use diag_core::debug::DebugLevel;
    /// # use diag_core::request::RequestView;
    /// # use diag_core::trace::TraceId;
    /// # let diag = diag_core::Diag::builder().build().unwrap();
    /// # let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None };
    /// let recorder = diag.debug_mode().recorder();
    /// assert_eq!(recorder.stats().kept, 0);
    /// diag.start_debug(DebugLevel::Debug, &view, TraceId::random()).response_end();
    /// let stats = recorder.stats();
    /// assert_eq!((stats.kept, stats.stored), (1, 1));
    /// assert!(stats.bytes > 0 && stats.bytes <= stats.max_bytes);
    /// ```
    pub fn stats(&self) -> RecorderStats {
        let ring = self.ring.lock();
        RecorderStats {
            kept: ring.captures.len() + ring.pinned.len(),
            bytes: ring.bytes + ring.pinned_bytes,
            max_captures: self.max_captures,
            max_bytes: self.max_bytes,
            stored: self.stored.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
            pinned: ring.pinned.len() + ring.pending.len(),
            max_pinned: self.max_pinned(),
            pins_dropped: self.pins_dropped.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::debug::DebugLevel;
    use crate::debug::capture::{CapturedBody, CapturedRequest};
    use crate::debug::stored::tests::stored;

    /// A public capture, as the waterfall tests render them.
    pub(crate) fn capture(id: u64, body_len: usize) -> Capture {
        Capture {
            id,
            time_unix: 0.0,
            trace_id: "0".repeat(32),
            span_id: "0".repeat(16),
            level: DebugLevel::Debug,
            complete: true,
            in_flight: false,
            panicked: false,
            failed: false,
            duration_ms: 1.0,
            response_head_ms: None,
            request: CapturedRequest {
                method: "GET".into(),
                uri: "/".into(),
                route: None,
                headers: vec![],
                body: CapturedBody {
                    text: Some("x".repeat(body_len)),
                    base64: None,
                    withheld: None,
                    captured_bytes: body_len,
                    total_bytes: body_len as u64,
                    truncated: false,
                    ended: true,
                    redaction: None,
                },
            },
            response: None,
            spans: vec![],
            logs: vec![],
            dropped_spans: 0,
            dropped_logs: 0,
            cut_fields: 0,
            logs_blocked: false,
        }
    }

    fn ids(r: &FlightRecorder) -> Vec<u64> {
        r.recent().iter().map(|c| c.id).collect()
    }

    #[test]
    fn evicts_oldest_by_count() {
        let r = FlightRecorder::new(3, usize::MAX);
        for id in 1..=5 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(ids(&r), [5, 4, 3]);
        assert_eq!(r.evicted(), 2);
        assert!(r.get(2).is_none());
        assert_eq!(r.get(4).map(|c| c.id), Some(4));
        assert_eq!(r.stats().stored, 5);
    }

    #[test]
    fn evicts_oldest_by_bytes() {
        let one = stored(0, 1000).approx_bytes();
        // Room for two and a half captures: the third evicts the first.
        let r = FlightRecorder::new(100, one * 5 / 2);
        for id in 1..=4 {
            r.store(Arc::new(stored(id, 1000)), &AtomicBool::new(false));
        }
        assert_eq!(ids(&r), [4, 3]);
        let s = r.stats();
        assert_eq!(s.evicted, 2);
        assert_eq!(s.bytes, 2 * one);
        // A capture bigger than everything is refused and counted, nothing evicted.
        r.store(Arc::new(stored(9, one * 3)), &AtomicBool::new(false));
        assert_eq!(ids(&r), [4, 3]);
        assert_eq!(r.stats().too_large, 1);
        assert_eq!(r.stats().evicted, 2);
    }

    #[test]
    fn a_pinned_capture_outlives_eviction_by_count_and_by_bytes() {
        let r = FlightRecorder::new(4, usize::MAX);
        for id in 1..=4 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(r.pin(2, None), PinOutcome::Pinned);
        for id in 5..=9 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(
            ids(&r),
            [9, 8, 7, 2],
            "newest first, the pinned one in its place"
        );
        let s = r.stats();
        assert_eq!((s.kept, s.pinned, s.max_pinned), (4, 1, 1));
        assert_eq!(s.evicted, 5, "1, 3, 4, 5, 6");
        assert!(r.get(2).is_some() && r.is_pinned(2));

        let one = stored(0, 1000).approx_bytes();
        let r = FlightRecorder::new(100, one * 5 / 2);
        r.store(Arc::new(stored(1, 1000)), &AtomicBool::new(false));
        assert_eq!(r.pin(1, None), PinOutcome::Pinned);
        for id in 2..=5 {
            r.store(Arc::new(stored(id, 1000)), &AtomicBool::new(false));
        }
        assert_eq!(ids(&r), [5, 1], "room for one more beside the pinned one");
        assert_eq!(r.stats().bytes, 2 * one);
        // A capture that fits the byte cap but not beside the pinned one: not kept.
        r.store(Arc::new(stored(6, 2000)), &AtomicBool::new(false));
        assert_eq!(ids(&r), [5, 1]);
        assert_eq!(r.stats().too_large, 1);
    }

    #[test]
    fn pins_are_capped_by_count_and_by_bytes() {
        let r = FlightRecorder::new(8, usize::MAX);
        for id in 1..=4 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(r.pin(1, None), PinOutcome::Pinned);
        assert_eq!(r.pin(1, None), PinOutcome::Pinned, "again: still pinned");
        assert_eq!(
            r.pin(9, Some(&AtomicBool::new(false))),
            PinOutcome::Pending,
            "a running one waits"
        );
        assert_eq!(
            r.pin(3, None),
            PinOutcome::TooMany,
            "a quarter of 8, with the pending one"
        );
        assert_eq!(
            r.pin(42, Some(&AtomicBool::new(false))),
            PinOutcome::TooMany
        );
        assert_eq!(
            r.pin(42, None),
            PinOutcome::NotKept,
            "neither kept nor running"
        );
        assert!(r.unpin(9));
        assert_eq!(r.stats().pinned, 1);

        let one = stored(0, 1000).approx_bytes();
        let r = FlightRecorder::new(100, one * 3);
        for id in 1..=2 {
            r.store(Arc::new(stored(id, 1000)), &AtomicBool::new(false));
        }
        assert_eq!(r.pin(1, None), PinOutcome::Pinned);
        assert_eq!(
            r.pin(2, None),
            PinOutcome::NoRoom,
            "over half the bytes with 1"
        );
        assert!(!r.is_pinned(2) && r.get(2).is_some());
        assert_eq!(r.stats().bytes, 2 * one);
        assert!(r.unpin(1));
        assert_eq!(r.pin(2, None), PinOutcome::Pinned, "alone it fits");
        r.store(Arc::new(stored(3, 2000)), &AtomicBool::new(false));
        assert_eq!(
            r.pin(3, None),
            PinOutcome::TooLarge,
            "alone over half the bytes"
        );

        let r = FlightRecorder::new(3, usize::MAX);
        r.store(Arc::new(stored(1, 10)), &AtomicBool::new(false));
        assert_eq!(
            r.pin(1, None),
            PinOutcome::TooMany,
            "a recorder of 3 pins none"
        );
    }

    #[test]
    fn a_pending_pin_takes_the_capture_when_it_is_stored() {
        let r = FlightRecorder::new(4, usize::MAX);
        assert_eq!(r.pin(1, Some(&AtomicBool::new(false))), PinOutcome::Pending);
        assert!(r.is_pinned(1));
        assert_eq!(r.stats().pinned, 1);
        r.store(Arc::new(stored(1, 10)), &AtomicBool::new(false));
        for id in 2..=9 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(ids(&r), [9, 8, 7, 1]);
        assert_eq!(r.stats().pinned, 1);

        // One too large to pin is kept unpinned, and its pin is gone.
        let one = stored(0, 1000).approx_bytes();
        let r = FlightRecorder::new(100, one * 3);
        assert_eq!(r.pin(5, Some(&AtomicBool::new(false))), PinOutcome::Pending);
        r.store(Arc::new(stored(5, 2000)), &AtomicBool::new(false));
        assert!(!r.is_pinned(5) && r.get(5).is_some());
        assert_eq!((r.stats().pinned, r.stats().pins_dropped), (0, 1));
        // One too large to keep at all drops its pin too.
        assert_eq!(r.pin(6, Some(&AtomicBool::new(false))), PinOutcome::Pending);
        r.store(Arc::new(stored(6, one * 4)), &AtomicBool::new(false));
        assert!(!r.is_pinned(6));
        assert_eq!((r.stats().pinned, r.stats().pins_dropped), (0, 2));
        // Beside another pin, one that would fit alone is let go too, and counted.
        r.store(Arc::new(stored(7, 1000)), &AtomicBool::new(false));
        assert_eq!(r.pin(7, None), PinOutcome::Pinned);
        assert_eq!(r.pin(8, Some(&AtomicBool::new(false))), PinOutcome::Pending);
        r.store(Arc::new(stored(8, 1000)), &AtomicBool::new(false));
        assert!(!r.is_pinned(8) && r.get(8).is_some());
        assert_eq!(r.stats().pins_dropped, 3);
    }

    #[test]
    fn unpinned_it_goes_back_in_its_place_and_is_evicted_as_the_oldest() {
        let r = FlightRecorder::new(4, usize::MAX);
        for id in 1..=4 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(r.pin(2, None), PinOutcome::Pinned);
        assert!(r.unpin(2));
        assert!(!r.unpin(2), "not pinned any more");
        assert_eq!(ids(&r), [4, 3, 2, 1]);
        r.store(Arc::new(stored(5, 10)), &AtomicBool::new(false));
        r.store(Arc::new(stored(6, 10)), &AtomicBool::new(false));
        assert_eq!(ids(&r), [6, 5, 4, 3], "1 and 2 went first");

        // Unpinned into a full recorder: the oldest goes at once.
        assert_eq!(r.pin(3, None), PinOutcome::Pinned);
        for id in 7..=9 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(ids(&r), [9, 8, 7, 3]);
        let evicted = r.evicted();
        assert!(r.unpin(3));
        assert_eq!(
            ids(&r),
            [9, 8, 7, 3],
            "at the cap, not over it: nothing evicted"
        );
        assert_eq!(r.evicted(), evicted);
        r.store(Arc::new(stored(10, 10)), &AtomicBool::new(false));
        assert_eq!(
            ids(&r),
            [10, 9, 8, 7],
            "the unpinned one is the oldest again"
        );
    }

    #[test]
    fn a_pending_pin_stored_into_a_full_recorder_makes_room_within_the_caps() {
        let r = FlightRecorder::new(4, usize::MAX);
        for id in 1..=4 {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(r.pin(5, Some(&AtomicBool::new(false))), PinOutcome::Pending);
        r.store(Arc::new(stored(5, 10)), &AtomicBool::new(false));
        assert_eq!(ids(&r), [5, 4, 3, 2]);
        let s = r.stats();
        assert_eq!((s.kept, s.pinned, s.evicted), (4, 1, 1));

        let one = stored(0, 1000).approx_bytes();
        let r = FlightRecorder::new(100, one * 4);
        for id in 1..=4 {
            r.store(Arc::new(stored(id, 1000)), &AtomicBool::new(false));
        }
        assert_eq!(r.pin(5, Some(&AtomicBool::new(false))), PinOutcome::Pending);
        r.store(Arc::new(stored(5, 1000)), &AtomicBool::new(false));
        assert_eq!(ids(&r), [5, 4, 3, 2]);
        assert!(r.stats().bytes <= r.stats().max_bytes);
    }

    #[test]
    fn a_request_whose_capture_came_and_went_is_never_waited_for() {
        let one = stored(0, 1000).approx_bytes();
        let r = FlightRecorder::new(8, one);
        // Refused as too large: its `kept` flag is set all the same.
        let kept = AtomicBool::new(false);
        r.store(Arc::new(stored(1, 2000)), &kept);
        assert!(kept.load(Ordering::Acquire));
        assert_eq!(
            r.pin(1, Some(&kept)),
            PinOutcome::NotKept,
            "nothing to wait for"
        );
        // Stored, then evicted by the next: the same.
        let r = FlightRecorder::new(1, usize::MAX);
        let kept = AtomicBool::new(false);
        r.store(Arc::new(stored(2, 10)), &kept);
        r.store(Arc::new(stored(3, 10)), &AtomicBool::new(false));
        assert_eq!(r.pin(2, Some(&kept)), PinOutcome::NotKept);
        assert_eq!(r.stats().pinned, 0, "no pin left waiting");
    }

    #[test]
    fn captures_are_listed_and_evicted_in_the_order_they_were_stored() {
        // Overlapping requests end out of the order they started in.
        let r = FlightRecorder::new(4, usize::MAX);
        for id in [2, 3, 1] {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(ids(&r), [1, 3, 2], "newest first");
        assert_eq!(r.pin(3, None), PinOutcome::Pinned);
        assert_eq!(ids(&r), [1, 3, 2], "a pinned one in its place");
        assert!(r.unpin(3));
        for id in [4, 5, 6] {
            r.store(Arc::new(stored(id, 10)), &AtomicBool::new(false));
        }
        assert_eq!(
            ids(&r),
            [6, 5, 4, 1],
            "2 and then 3 went first: stored first"
        );
    }
}
