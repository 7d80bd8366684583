use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::MonoTime;

use parking_lot::Mutex;

/// How much a debug request logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DebugLevel {
    /// DEBUG and above (the default for `X-Debug`).
    Debug,
    /// TRACE and above (`X-Debug-Level: trace`).
    Trace,
}

/// A field name, or a span's or event's name, target or level: borrowed from the
/// callsite's `'static` metadata when recorded by the tracing layer, so recording and
/// freeing a record does not allocate for them.
pub type StaticText = Cow<'static, str>;

/// A span that closed while a debug request ran.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SpanTiming {
    /// The span's id within this request (tracing's id, as a number).
    pub id: u64,
    /// The enclosing span's id, when it is part of the request.
    pub parent: Option<u64>,
    /// The span's name.
    pub name: StaticText,
    /// The span's target (module path, usually).
    pub target: StaticText,
    /// When the span opened, counted from the request's start.
    pub start_offset: Duration,
    /// How long it stayed open.
    pub duration: Duration,
    /// Its recorded fields, rendered.
    pub fields: Vec<(StaticText, String)>,
}

/// One log event of a debug request.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LogLine {
    /// When it happened, counted from the request's start.
    pub offset: Duration,
    /// `ERROR` .. `TRACE`.
    pub level: StaticText,
    /// The event's target.
    pub target: StaticText,
    /// The `message` field.
    pub message: String,
    /// The other fields, rendered.
    pub fields: Vec<(StaticText, String)>,
    /// The span it was emitted in, if that span belongs to the request.
    pub span: Option<u64>,
}

/// What a request in diagnostic mode gathers while it runs. Bounded: past
/// [`DebugSession::MAX_SPANS`] spans or [`DebugSession::MAX_LOGS`] log lines, further ones
/// are dropped and counted.
#[derive(Debug)]
pub struct DebugSession {
    /// The capture id, as served at `/debug/requests/{id}`.
    pub id: u64,
    /// How much this request logs.
    pub level: DebugLevel,
    /// When the request arrived.
    pub started: Instant,
    /// The same moment on the request path's clock, which span and log offsets are
    /// measured from (no `Instant` arithmetic per span and line).
    pub(crate) started_mono: MonoTime,
    /// The same moment, as wall-clock time.
    pub started_at: SystemTime,
    spans: Mutex<Vec<SpanTiming>>,
    logs: Mutex<Vec<LogLine>>,
    dropped_spans: AtomicU64,
    dropped_logs: AtomicU64,
}

impl DebugSession {
    /// The most spans one request keeps.
    pub const MAX_SPANS: usize = 1_000;
    /// The most log lines one request keeps.
    pub const MAX_LOGS: usize = 2_000;

    /// A new, empty session.
    pub fn new(id: u64, level: DebugLevel) -> Self {
        DebugSession {
            id,
            level,
            started: Instant::now(),
            started_mono: MonoTime::now(),
            started_at: SystemTime::now(),
            spans: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            dropped_spans: AtomicU64::new(0),
            dropped_logs: AtomicU64::new(0),
        }
    }

    /// Time since the request arrived.
    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        self.since_start(MonoTime::now())
    }

    /// From the request's arrival to `at`.
    #[inline]
    pub(crate) fn since_start(&self, at: MonoTime) -> Duration {
        Duration::from_nanos(at.nanos_since(self.started_mono))
    }

    /// Whether an event at `level` is logged for this request.
    pub fn admits(&self, level: &tracing::Level) -> bool {
        match self.level {
            DebugLevel::Trace => true,
            DebugLevel::Debug => *level <= tracing::Level::DEBUG,
        }
    }

    /// Keeps a closed span, or counts it as dropped when full.
    pub fn record_span(&self, span: SpanTiming) {
        push_bounded(&self.spans, span, Self::MAX_SPANS, &self.dropped_spans);
    }

    /// Keeps a log line, or counts it as dropped when full.
    pub fn record_log(&self, line: LogLine) {
        push_bounded(&self.logs, line, Self::MAX_LOGS, &self.dropped_logs);
    }

    /// The spans kept so far, in the order they closed.
    pub fn spans(&self) -> Vec<SpanTiming> {
        self.spans.lock().clone()
    }

    /// The log lines kept so far, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lock().clone()
    }

    /// Calls `f` with the spans kept so far, without copying them.
    pub(crate) fn with_spans<R>(&self, f: impl FnOnce(&[SpanTiming]) -> R) -> R {
        f(&self.spans.lock())
    }

    /// Moves out the spans and log lines kept so far: the capture takes them when it is
    /// stored, and nothing reads the session's records after that.
    pub(crate) fn take_records(&self) -> (Vec<SpanTiming>, Vec<LogLine>) {
        (
            std::mem::take(&mut *self.spans.lock()),
            std::mem::take(&mut *self.logs.lock()),
        )
    }

    /// How many spans and log lines were dropped over the caps.
    pub fn dropped(&self) -> (u64, u64) {
        (
            self.dropped_spans.load(Ordering::Relaxed),
            self.dropped_logs.load(Ordering::Relaxed),
        )
    }
}

fn push_bounded<T>(v: &Mutex<Vec<T>>, item: T, cap: usize, dropped: &AtomicU64) {
    let mut v = v.lock();
    if v.len() < cap {
        v.push(item);
    } else {
        dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_counts_what_it_drops() {
        let s = DebugSession::new(1, DebugLevel::Debug);
        for i in 0..DebugSession::MAX_LOGS + 5 {
            s.record_log(LogLine {
                offset: Duration::ZERO,
                level: "DEBUG".into(),
                target: "t".into(),
                message: i.to_string(),
                fields: vec![],
                span: None,
            });
        }
        assert_eq!(s.logs().len(), DebugSession::MAX_LOGS);
        assert_eq!(s.dropped(), (0, 5));
        assert!(s.admits(&tracing::Level::DEBUG));
        assert!(!s.admits(&tracing::Level::TRACE));
    }
}
