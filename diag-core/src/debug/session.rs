use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::MonoTime;

use parking_lot::Mutex;

/// How much a debug request logs.
///
/// ```
/// use diag_core::debug::{DebugLevel, Decision};
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let mut headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// assert_eq!(diag.debug_decision(&headers, None), Decision::Debug(DebugLevel::Debug));
/// headers.push(("x-debug-level".to_owned(), "trace".to_owned()));
/// assert_eq!(diag.debug_decision(&headers, None), Decision::Debug(DebugLevel::Trace));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DebugLevel {
    /// DEBUG and above (the default for `X-Debug`).
    Debug,
    /// TRACE and above (`X-Debug-Level: trace`).
    Trace,
}

impl DebugLevel {
    /// `debug` or `trace`, as captures and `X-Debug-Status` name the level.
    ///
    /// ```
    /// assert_eq!(diag_core::debug::DebugLevel::Trace.as_str(), "trace");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            DebugLevel::Debug => "debug",
            DebugLevel::Trace => "trace",
        }
    }
}

/// A field name, or a span's or event's name, target or level: borrowed from the
/// callsite's `'static` metadata when recorded by the tracing layer, so recording and
/// freeing a record does not allocate for them.
///
/// ```
/// use std::borrow::Cow;
/// use diag_core::debug::StaticText;
/// let from_callsite: StaticText = Cow::Borrowed("checkout::cart");
/// let built: StaticText = format!("step{}", 2).into();
/// assert!(matches!(from_callsite, Cow::Borrowed(_)));
/// assert_eq!(built, "step2");
/// ```
pub type StaticText = Cow<'static, str>;

/// A span of a debug request: one that closed while the request ran, or one still open
/// when its capture was stored (then its `duration` runs up to that moment, and its last
/// field is [`STILL_OPEN_FIELD`]` = "true"`).
///
/// ```
/// use std::time::Duration;
/// use diag_core::debug::{DebugLevel, DebugSession, SpanTiming};
/// let session = DebugSession::new(1, DebugLevel::Debug);
/// session.record_span(SpanTiming {
///     id: 1,
///     parent: None,
///     name: "pricing_fetch".into(),
///     target: "checkout::catalog".into(),
///     start_offset: Duration::from_micros(427),
///     duration: Duration::from_millis(29),
///     fields: vec![("id".into(), "8".to_owned())],
/// });
/// assert_eq!(session.spans()[0].name, "pricing_fetch");
/// ```
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

/// The field a span still open when its request's capture was stored carries (value
/// `true`), last of its fields: its `duration` runs up to the moment the capture was
/// stored, not to its close. A span the request opened and that outlives the response
/// body (the request's own root span while a layer such as tower-http's `TraceLayer`
/// keeps a child of it open) is kept this way, so the capture's parent chain is whole.
///
/// ```
/// use diag_core::body::Polled;
/// use diag_core::debug::STILL_OPEN_FIELD;
/// use diag_core::request::RequestView;
/// use tracing_subscriber::prelude::*;
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(diag.debug_recording_layer());
/// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// tracing::subscriber::with_default(subscriber, || {
///     let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None };
///     let guard = diag.begin(&view);
///     let id = guard.debug_id().unwrap();
///     let outer = {
///         let _entered = guard.enter();
///         let outer = tracing::info_span!("outer"); // held past the response, like TraceLayer's
///         outer.in_scope(|| tracing::info_span!("inner").in_scope(|| ()));
///         outer
///     };
///     let mut tap = guard.finish(200, &mut Vec::<(String, String)>::new()).unwrap();
///     tap.observe(Polled::End); // the capture is stored: `outer` and the root are open
///     let capture = diag.debug_mode().recorder().get(id).unwrap();
///     let span = |name: &str| capture.spans.iter().find(|s| s.name == name).unwrap();
///     let still_open = (STILL_OPEN_FIELD.to_owned(), "true".to_owned());
///     assert_eq!(span("outer").fields.last(), Some(&still_open));
///     assert_eq!(span("request").fields.last(), Some(&still_open), "diag's root span");
///     assert!(span("inner").fields.is_empty(), "closed in time");
///     // The parent chain is whole: inner -> outer -> request.
///     assert_eq!(span("inner").parent, Some(span("outer").id));
///     assert_eq!(span("outer").parent, Some(span("request").id));
///     drop(outer);
/// });
/// ```
pub const STILL_OPEN_FIELD: &str = "diag.still_open";

/// One log event of a debug request.
///
/// ```
/// use std::time::Duration;
/// use diag_core::debug::{DebugLevel, DebugSession, LogLine};
/// let session = DebugSession::new(1, DebugLevel::Debug);
/// session.record_log(LogLine {
///     offset: Duration::from_micros(392),
///     level: "DEBUG".into(),
///     target: "checkout::catalog".into(),
///     message: "cache miss, asking pricing".to_owned(),
///     fields: vec![("product_id".into(), "8".to_owned())],
///     span: None,
/// });
/// assert_eq!(session.logs()[0].fields[0].1, "8");
/// ```
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
/// [`DebugSession::MAX_SPANS`] spans (open and closed together),
/// [`DebugSession::MAX_LOGS`] log lines, or [`DebugSession::MAX_BYTES`] of them in all,
/// further ones are dropped and counted.
///
/// ```
/// use diag_core::request::RequestView;
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None,
/// });
/// // Code running for the request finds it in the request's scope.
/// let session = guard.scope().debug.as_ref().expect("a debug request");
/// assert_eq!(Some(session.id), guard.debug_id());
/// assert!(session.logs().is_empty());
/// ```
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
    /// Spans opened and not closed yet, in the order they opened (their `duration` is
    /// set when they close, or when the capture is stored while they are still open).
    open_spans: Mutex<Vec<SpanTiming>>,
    logs: Mutex<Vec<LogLine>>,
    dropped_spans: AtomicU64,
    dropped_logs: AtomicU64,
    /// Fields of spans and lines left out or cut (see [`fields_cut`](Self::fields_cut)).
    cut_fields: AtomicU64,
    /// The service's subscriber dropped this request's DEBUG events before diag's
    /// filter saw them (see [`logs_blocked`](Self::logs_blocked)).
    logs_blocked: std::sync::atomic::AtomicBool,
    /// About how many bytes the spans and log lines kept hold (see [`record_size`]).
    bytes: AtomicUsize,
}

impl DebugSession {
    /// The most spans one request keeps.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diag_core::debug::{DebugLevel, DebugSession, SpanTiming};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// let span = SpanTiming {
    ///     id: 1, parent: None, name: "poll".into(), target: "app".into(),
    ///     start_offset: Duration::ZERO, duration: Duration::ZERO, fields: vec![],
    /// };
    /// for _ in 0..DebugSession::MAX_SPANS + 3 {
    ///     session.record_span(span.clone());
    /// }
    /// assert_eq!(session.spans().len(), DebugSession::MAX_SPANS);
    /// assert_eq!(session.dropped(), (3, 0));
    /// ```
    pub const MAX_SPANS: usize = 1_000;
    /// The most log lines one request keeps.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diag_core::debug::{DebugLevel, DebugSession, LogLine};
    /// let session = DebugSession::new(1, DebugLevel::Trace);
    /// let line = LogLine {
    ///     offset: Duration::ZERO, level: "TRACE".into(), target: "app".into(),
    ///     message: "tick".to_owned(), fields: vec![], span: None,
    /// };
    /// for _ in 0..DebugSession::MAX_LOGS + 1 {
    ///     session.record_log(line.clone());
    /// }
    /// assert_eq!(session.logs().len(), DebugSession::MAX_LOGS);
    /// assert_eq!(session.dropped(), (0, 1));
    /// ```
    pub const MAX_LOGS: usize = 2_000;

    /// The most bytes of spans and log lines one debug request keeps (their texts and
    /// fields, plus a fixed overhead each): a request that logs 2,000 lines of 32
    /// 1 KiB fields would otherwise hold 64 MiB until it ends. Past it, further spans
    /// and lines are dropped and counted like those past the counts (a field recorded
    /// on an open span later is left out, uncounted).
    ///
    /// ```
    /// use std::time::Duration;
    /// use diag_core::debug::{DebugLevel, DebugSession, LogLine};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// let line = || LogLine {
    ///     offset: Duration::ZERO, level: "DEBUG".into(), target: "t".into(),
    ///     message: "x".repeat(64 * 1024), fields: vec![], span: None,
    /// };
    /// for _ in 0..100 {
    ///     session.record_log(line());
    /// }
    /// let kept = session.logs().len();
    /// assert_eq!(kept, DebugSession::MAX_BYTES / (64 * 1024 + 128));
    /// assert_eq!(session.dropped(), (0, 100 - kept as u64));
    /// ```
    pub const MAX_BYTES: usize = 2 * 1024 * 1024;

    /// A new, empty session.
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, DebugSession};
    /// let session = DebugSession::new(42, DebugLevel::Trace);
    /// assert_eq!((session.id, session.level), (42, DebugLevel::Trace));
    /// assert!(session.spans().is_empty() && session.logs().is_empty());
    /// ```
    pub fn new(id: u64, level: DebugLevel) -> Self {
        DebugSession {
            id,
            level,
            started: Instant::now(),
            started_mono: MonoTime::now(),
            started_at: SystemTime::now(),
            spans: Mutex::new(Vec::new()),
            open_spans: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
            dropped_spans: AtomicU64::new(0),
            dropped_logs: AtomicU64::new(0),
            cut_fields: AtomicU64::new(0),
            logs_blocked: std::sync::atomic::AtomicBool::new(false),
            bytes: AtomicUsize::new(0),
        }
    }

    /// Whether the service's subscriber drops this request's DEBUG events before diag's
    /// per-request filter sees them (a filter over the whole subscriber, or no
    /// [`Diag::log_filter`](crate::Diag::log_filter) installed): the request then runs
    /// in diagnostic mode without its DEBUG lines, and says so in `X-Debug-Status`.
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, DebugSession};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// assert!(!session.logs_blocked());
    /// ```
    pub fn logs_blocked(&self) -> bool {
        self.logs_blocked.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_logs_blocked(&self) {
        self.logs_blocked.store(true, Ordering::Relaxed);
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
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, DebugSession};
    /// use tracing::Level;
    /// let debug = DebugSession::new(1, DebugLevel::Debug);
    /// assert!(debug.admits(&Level::DEBUG) && debug.admits(&Level::ERROR));
    /// assert!(!debug.admits(&Level::TRACE));
    /// assert!(DebugSession::new(2, DebugLevel::Trace).admits(&Level::TRACE));
    /// ```
    pub fn admits(&self, level: &tracing::Level) -> bool {
        match self.level {
            DebugLevel::Trace => true,
            DebugLevel::Debug => *level <= tracing::Level::DEBUG,
        }
    }

    /// Keeps a closed span, or counts it as dropped when full.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diag_core::debug::{DebugLevel, DebugSession, SpanTiming};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// session.record_span(SpanTiming {
    ///     id: 2, parent: Some(1), name: "db_query".into(), target: "orders::repo".into(),
    ///     start_offset: Duration::from_millis(1), duration: Duration::from_millis(12), fields: vec![],
    /// });
    /// assert_eq!(session.spans()[0].parent, Some(1));
    /// ```
    pub fn record_span(&self, span: SpanTiming) {
        let size = span_size(&span);
        self.keep(
            &self.spans,
            span,
            size,
            false,
            Self::MAX_SPANS,
            &self.dropped_spans,
        );
    }

    /// Keeps `item` of `size` bytes in `v` (taking them from the budget unless they
    /// were taken already), or counts it in `dropped` when it does not fit.
    fn keep<T>(
        &self,
        v: &Mutex<Vec<T>>,
        item: T,
        size: usize,
        charged: bool,
        cap: usize,
        dropped: &AtomicU64,
    ) {
        if !charged && !self.charge(size) {
            dropped.fetch_add(1, Ordering::Relaxed);
        } else if !push_bounded(v, item, cap, dropped) {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Takes `n` bytes from [`MAX_BYTES`](Self::MAX_BYTES); `false` (nothing taken)
    /// when they are not left.
    fn charge(&self, n: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n)
                    .filter(|total| *total <= Self::MAX_BYTES)
            })
            .is_ok()
    }

    /// Keeps a log line, or counts it as dropped when full.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diag_core::debug::{DebugLevel, DebugSession, LogLine};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// session.record_log(LogLine {
    ///     offset: Duration::from_millis(3), level: "DEBUG".into(), target: "orders".into(),
    ///     message: "retrying".to_owned(), fields: vec![], span: None,
    /// });
    /// assert_eq!(session.logs()[0].message, "retrying");
    /// ```
    pub fn record_log(&self, line: LogLine) {
        let size = log_size(&line);
        self.keep(
            &self.logs,
            line,
            size,
            false,
            Self::MAX_LOGS,
            &self.dropped_logs,
        );
    }

    /// The spans kept so far, in the order they closed.
    ///
    /// ```
    /// use diag_core::request::RequestView;
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.debug_recording_layer());
    /// let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let view = RequestView { method: "GET", route: Some("/"), uri: "/", headers: &headers, peer: &|| None };
    ///     let guard = diag.begin(&view);
    ///     let _entered = guard.enter();
    ///     tracing::info_span!("pricing_fetch").in_scope(|| {});
    ///     let session = guard.scope().debug.as_ref().unwrap();
    ///     assert_eq!(session.spans()[0].name, "pricing_fetch");
    /// });
    /// ```
    pub fn spans(&self) -> Vec<SpanTiming> {
        self.spans.lock().clone()
    }

    /// The log lines kept so far, in order.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diag_core::debug::{DebugLevel, DebugSession, LogLine};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// for message in ["first", "second"] {
    ///     session.record_log(LogLine {
    ///         offset: Duration::ZERO, level: "DEBUG".into(), target: "app".into(),
    ///         message: message.to_owned(), fields: vec![], span: None,
    ///     });
    /// }
    /// let messages: Vec<String> = session.logs().into_iter().map(|l| l.message).collect();
    /// assert_eq!(messages, ["first", "second"]);
    /// ```
    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lock().clone()
    }

    /// Calls `f` with the spans kept so far, without copying them.
    pub(crate) fn with_spans<R>(&self, f: impl FnOnce(&[SpanTiming]) -> R) -> R {
        f(&self.spans.lock())
    }

    /// A span of the request opened (`span.duration` is not known yet): kept until it
    /// closes ([`span_closed`](Self::span_closed)) or the capture is stored. Whether it
    /// is kept: a span past [`MAX_SPANS`](Self::MAX_SPANS) open at once is counted as
    /// dropped instead.
    pub(crate) fn span_opened(&self, span: SpanTiming) -> bool {
        let closed = self.spans.lock().len();
        let size = span_size(&span);
        let mut open = self.open_spans.lock();
        if closed + open.len() < Self::MAX_SPANS && self.charge(size) {
            open.push(span);
            true
        } else {
            drop(open);
            self.dropped_spans.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Takes the fields of the open span `id` out, for a `record` to add to; put them
    /// back with [`put_open_fields`](Self::put_open_fields). `None` once the span is
    /// not open here any more (closed, or taken into the stored capture).
    pub(crate) fn take_open_fields(&self, id: u64) -> Option<Vec<(StaticText, String)>> {
        let mut open = self.open_spans.lock();
        let fields = open
            .iter_mut()
            .rfind(|s| s.id == id)
            .map(|s| std::mem::take(&mut s.fields))?;
        // Charged again, as they then are, when they come back.
        self.bytes
            .fetch_sub(fields_size(&fields), Ordering::Relaxed);
        Some(fields)
    }

    /// Gives the open span `id` its fields back (see
    /// [`take_open_fields`](Self::take_open_fields)).
    pub(crate) fn put_open_fields(&self, id: u64, mut fields: Vec<(StaticText, String)>) {
        let mut open = self.open_spans.lock();
        if let Some(span) = open.iter_mut().rfind(|s| s.id == id) {
            // Past the byte budget, the last fields are left out.
            while !fields.is_empty() && !self.charge(fields_size(&fields)) {
                fields.pop();
                self.count_cut_fields(1);
            }
            span.fields = fields;
        }
    }

    /// The open span `id` closed after `duration`: kept among the closed spans (or
    /// counted as dropped when they are full). Nothing when it is not open here (the
    /// capture was stored while it was, and holds it already).
    pub(crate) fn span_closed(&self, id: u64, duration: Duration) {
        let span = {
            let mut open = self.open_spans.lock();
            let Some(at) = open.iter().rposition(|s| s.id == id) else {
                return;
            };
            open.remove(at)
        };
        // Charged when it opened.
        let size = span_size(&span);
        self.keep(
            &self.spans,
            SpanTiming { duration, ..span },
            size,
            true,
            Self::MAX_SPANS,
            &self.dropped_spans,
        );
    }

    /// The spans and lines so far, spans still open included (as in
    /// [`take_records`](Self::take_records)), left in place: a look at a running request
    /// (a live look reads them; the stored capture takes them later). Also returns how
    /// many still-open spans the cap left out of the copy (not counted in the session:
    /// the capture counts them when it is stored).
    pub(crate) fn copy_records(&self) -> (Vec<SpanTiming>, Vec<LogLine>, u64) {
        let now = self.elapsed();
        let mut spans = self.spans.lock().clone();
        let mut over_cap = 0;
        for span in self.open_spans.lock().iter() {
            if spans.len() >= Self::MAX_SPANS {
                over_cap += 1;
                continue;
            }
            let mut span = span.clone();
            span.duration = now.saturating_sub(span.start_offset);
            span.fields
                .push((StaticText::Borrowed(STILL_OPEN_FIELD), "true".to_owned()));
            spans.push(span);
        }
        (spans, self.logs.lock().clone(), over_cap)
    }

    /// Moves out the spans and log lines kept so far: the capture takes them when it is
    /// stored, and nothing reads the session's records after that. Spans still open
    /// come after the closed ones, timed up to now and marked with
    /// [`STILL_OPEN_FIELD`] (a span that closes later is then not recorded again).
    /// Call it before [`dropped`](Self::dropped): still-open spans over the cap count.
    pub(crate) fn take_records(&self) -> (Vec<SpanTiming>, Vec<LogLine>) {
        let now = self.elapsed();
        let still_open = std::mem::take(&mut *self.open_spans.lock());
        let mut spans = std::mem::take(&mut *self.spans.lock());
        for mut span in still_open {
            if spans.len() >= Self::MAX_SPANS {
                self.dropped_spans.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            span.duration = now.saturating_sub(span.start_offset);
            span.fields
                .push((StaticText::Borrowed(STILL_OPEN_FIELD), "true".to_owned()));
            spans.push(span);
        }
        (spans, std::mem::take(&mut *self.logs.lock()))
    }

    /// How many spans and log lines were dropped over the caps.
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, DebugSession};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// let (spans, logs) = session.dropped();
    /// assert_eq!((spans, logs), (0, 0), "nothing over the caps yet");
    /// ```
    pub fn dropped(&self) -> (u64, u64) {
        (
            self.dropped_spans.load(Ordering::Relaxed),
            self.dropped_logs.load(Ordering::Relaxed),
        )
    }

    /// How many fields of the spans and log lines kept were left out (over 32 a
    /// record, or past the byte budget) or had their value cut (at 1 KiB); a value cut
    /// and later left out for the byte budget counts twice.
    ///
    /// ```
    /// use diag_core::debug::{DebugLevel, DebugSession};
    /// let session = DebugSession::new(1, DebugLevel::Debug);
    /// assert_eq!(session.fields_cut(), 0);
    /// ```
    pub fn fields_cut(&self) -> u64 {
        self.cut_fields.load(Ordering::Relaxed)
    }

    /// Counts `n` fields left out or cut while recording.
    pub(crate) fn count_cut_fields(&self, n: u64) {
        if n > 0 {
            self.cut_fields.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Pushes `item` unless `v` is full (then counts it in `dropped`); whether it was kept.
fn push_bounded<T>(v: &Mutex<Vec<T>>, item: T, cap: usize, dropped: &AtomicU64) -> bool {
    let mut v = v.lock();
    if v.len() < cap {
        v.push(item);
        true
    } else {
        dropped.fetch_add(1, Ordering::Relaxed);
        false
    }
}

/// What one kept span or line costs against [`DebugSession::MAX_BYTES`] besides its
/// texts: its struct and bookkeeping, about.
const RECORD_OVERHEAD: usize = 128;
/// The same for one field.
const FIELD_OVERHEAD: usize = 32;

fn fields_size(fields: &[(StaticText, String)]) -> usize {
    fields
        .iter()
        .map(|(k, v)| FIELD_OVERHEAD + k.len() + v.len())
        .sum()
}

fn span_size(span: &SpanTiming) -> usize {
    RECORD_OVERHEAD + span.name.len() + span.target.len() + fields_size(&span.fields)
}

fn log_size(line: &LogLine) -> usize {
    RECORD_OVERHEAD + line.message.len() + line.target.len() + fields_size(&line.fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_closed_spans_share_one_cap_and_one_byte_budget() {
        let s = DebugSession::new(1, DebugLevel::Debug);
        for id in 0..DebugSession::MAX_SPANS as u64 / 2 {
            assert!(s.span_opened(opened(id, None, 0)));
            s.span_closed(id, Duration::from_millis(1));
        }
        let mut kept = 0;
        for id in 0..DebugSession::MAX_SPANS as u64 {
            kept += usize::from(s.span_opened(opened(100_000 + id, None, 0)));
        }
        assert_eq!(
            kept,
            DebugSession::MAX_SPANS / 2,
            "1,000 in all, open or closed"
        );
        let (spans, _) = s.take_records();
        assert_eq!(spans.len(), DebugSession::MAX_SPANS);

        // Fields recorded on an open span later stop at the byte budget.
        let s = DebugSession::new(2, DebugLevel::Debug);
        assert!(s.span_opened(opened(7, None, 0)));
        for i in 0..3_000 {
            let mut fields = s.take_open_fields(7).unwrap();
            fields.push((format!("f{i}").into(), "v".repeat(1024)));
            s.put_open_fields(7, fields);
        }
        let fields = s.take_open_fields(7).unwrap();
        let held = fields_size(&fields);
        assert!(
            held <= DebugSession::MAX_BYTES && held > DebugSession::MAX_BYTES - 2048,
            "{held}"
        );
        // The budget then refuses a log line too, and counts it.
        s.put_open_fields(7, fields);
        s.record_log(LogLine {
            offset: Duration::ZERO,
            level: "DEBUG".into(),
            target: "t".into(),
            message: "m".repeat(4096),
            fields: vec![],
            span: None,
        });
        assert_eq!(s.dropped(), (0, 1));
    }

    fn opened(id: u64, parent: Option<u64>, at_ms: u64) -> SpanTiming {
        SpanTiming {
            id,
            parent,
            name: "s".into(),
            target: "t".into(),
            start_offset: Duration::from_millis(at_ms),
            duration: Duration::ZERO,
            fields: vec![],
        }
    }

    /// Closed spans come first, in the order they closed; spans still open when the
    /// records are taken follow, marked, with fields recorded while they were open;
    /// a span closing after that is not recorded again.
    #[test]
    fn spans_still_open_are_taken_marked_and_once() {
        let s = DebugSession::new(1, DebugLevel::Debug);
        assert!(s.span_opened(opened(1, None, 0)));
        assert!(s.span_opened(opened(2, Some(1), 1)));
        assert!(s.span_opened(opened(3, Some(2), 2)));
        let mut fields = s.take_open_fields(1).unwrap();
        fields.push(("status".into(), "200".to_owned()));
        s.put_open_fields(1, fields);
        s.span_closed(3, Duration::from_millis(4));
        let (spans, _) = s.take_records();
        let ids: Vec<u64> = spans.iter().map(|s| s.id).collect();
        assert_eq!(ids, [3, 1, 2]);
        assert_eq!(spans[0].duration, Duration::from_millis(4));
        assert!(spans[0].fields.is_empty());
        let open = (StaticText::Borrowed(STILL_OPEN_FIELD), "true".to_owned());
        assert_eq!(
            spans[1].fields,
            [("status".into(), "200".to_owned()), open.clone()]
        );
        assert_eq!(spans[2].fields, [open]);
        s.span_closed(1, Duration::from_millis(9));
        assert!(s.spans().is_empty(), "already in the capture");
        assert!(s.take_open_fields(2).is_none());
    }

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
