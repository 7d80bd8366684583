//! The flight recorder: the last finished debug requests, for `/debug/requests`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::capture::Capture;
use super::redact::{DEFAULT_FIELDS, Redactor};
use super::stored::StoredCapture;
use crate::trace::TraceId;

/// A ring of finished debug requests bounded by count and by (approximate) bytes. The
/// oldest are evicted first and counted; a capture larger than the whole byte budget is
/// not kept, and counted too.
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
}

#[derive(Debug, Default)]
struct Ring {
    captures: VecDeque<(Arc<StoredCapture>, usize)>,
    bytes: usize,
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
    /// Captures not kept because they alone exceed the byte cap.
    pub too_large: u64,
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
        }
    }

    /// Keeps `capture`, evicting the oldest as needed.
    pub(crate) fn store(&self, capture: Arc<StoredCapture>) {
        let size = capture.approx_bytes();
        if size > self.max_bytes {
            self.too_large.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut evicted = 0;
        {
            let mut ring = self.ring.lock();
            while ring.captures.len() >= self.max_captures || ring.bytes + size > self.max_bytes {
                match ring.captures.pop_front() {
                    Some((_, old)) => {
                        ring.bytes -= old;
                        evicted += 1;
                    }
                    None => break,
                }
            }
            ring.bytes += size;
            ring.captures.push_back((capture, size));
        }
        // The evicted captures' memory is freed by the pops above, under the lock; their
        // Arcs may outlive it in a reader's hands, which is fine.
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        self.stored.fetch_add(1, Ordering::Relaxed);
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
        self.ring
            .lock()
            .captures
            .iter()
            .rev()
            .map(|(c, _)| c.clone())
            .collect()
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
        let stored = self
            .ring
            .lock()
            .captures
            .iter()
            .rev()
            .find(|(c, _)| matches(c))
            .map(|(c, _)| c.clone())?;
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

    /// The lowest debug id among the kept captures (`None` when none is kept): any
    /// lower id that was issued is not kept any more, or not yet.
    pub(crate) fn oldest_id(&self) -> Option<u64> {
        self.ring.lock().captures.iter().map(|(c, _)| c.id).min()
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
            kept: ring.captures.len(),
            bytes: ring.bytes,
            max_captures: self.max_captures,
            max_bytes: self.max_bytes,
            stored: self.stored.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
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
            r.store(Arc::new(stored(id, 10)));
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
            r.store(Arc::new(stored(id, 1000)));
        }
        assert_eq!(ids(&r), [4, 3]);
        let s = r.stats();
        assert_eq!(s.evicted, 2);
        assert_eq!(s.bytes, 2 * one);
        // A capture bigger than everything is refused and counted, nothing evicted.
        r.store(Arc::new(stored(9, one * 3)));
        assert_eq!(ids(&r), [4, 3]);
        assert_eq!(r.stats().too_large, 1);
        assert_eq!(r.stats().evicted, 2);
    }
}
