//! The built-in `errors` provider: the latest ERROR events, and how many each target
//! logged since start. [`ErrorLayer`](super::ErrorLayer) fills it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use crate::Diag;

/// The most distinct targets counted; events of further targets go to `overflow`.
///
/// ```
/// use diag_core::state::{ErrorRecord, ErrorRing, MAX_ERROR_TARGETS};
/// # fn record(target: String) -> ErrorRecord {
/// #     ErrorRecord { time_unix: 0.0, target, message: "failed".into(), fields: vec![], trace_id: None, location: None }
/// # }
/// let ring = ErrorRing::new(10);
/// for i in 0..=MAX_ERROR_TARGETS {
///     ring.push(record(format!("module_{i}")));
/// }
/// assert_eq!(ring.total(), MAX_ERROR_TARGETS as u64 + 1);
/// assert_eq!(ring.count_for("module_0"), Some(1));
/// assert_eq!(ring.count_for(&format!("module_{MAX_ERROR_TARGETS}")), None); // not counted
/// ```
pub const MAX_ERROR_TARGETS: usize = 256;
/// The most fields kept per error; further ones are dropped (and say so).
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use diag_core::state::MAX_ERROR_FIELDS;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::error!(order = 7, attempt = 3, "charge failed");
/// });
/// let fields = &diag.errors().latest()[0].fields;
/// assert!(fields.len() <= MAX_ERROR_FIELDS);
/// assert_eq!(fields[1], ("attempt".to_owned(), "3".to_owned()));
/// ```
pub const MAX_ERROR_FIELDS: usize = 32;
/// The longest message or field value kept, in bytes; longer ones are cut.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use diag_core::state::MAX_ERROR_TEXT;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::error!(body = "x".repeat(10_000), "upstream answered garbage");
/// });
/// let (_, body) = &diag.errors().latest()[0].fields[0];
/// assert!(body.ends_with('…'));
/// assert_eq!(body.len(), MAX_ERROR_TEXT + '…'.len_utf8());
/// ```
pub const MAX_ERROR_TEXT: usize = 2048;

/// One captured ERROR event.
///
/// ```
/// use diag_core::state::{ErrorRecord, ErrorRing};
/// let ring = ErrorRing::new(10);
/// ring.push(ErrorRecord {
///     time_unix: 1_700_000_000.0,
///     target: "checkout::payment".into(),
///     message: "charge failed".into(),
///     fields: vec![("order_id".into(), "42".into())],
///     trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
///     location: Some("src/payment.rs:88".into()),
/// });
/// let json = serde_json::to_value(&ring.latest()[0]).unwrap();
/// assert_eq!(json["fields"]["order_id"], "42"); // fields show as an object
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct ErrorRecord {
    /// Seconds since the Unix epoch.
    pub time_unix: f64,
    /// The event's target (module path, usually).
    pub target: String,
    /// The `message` field.
    pub message: String,
    /// The other fields, rendered with `Debug` (strings as they are), in order.
    #[serde(serialize_with = "fields_as_object")]
    pub fields: Vec<(String, String)>,
    /// The trace id of the request being served when it was logged, if any.
    pub trace_id: Option<String>,
    /// `file:line` of the callsite, when known.
    pub location: Option<String>,
}

/// A bounded ring of the latest [`ErrorRecord`]s plus per-target counts.
///
/// ```
/// use diag_core::state::{ErrorRecord, ErrorRing};
/// # fn record(message: &str) -> ErrorRecord {
/// #     ErrorRecord { time_unix: 0.0, target: "db".into(), message: message.into(), fields: vec![], trace_id: None, location: None }
/// # }
/// let ring = ErrorRing::new(2);
/// for m in ["timeout", "refused", "reset"] {
///     ring.push(record(m));
/// }
/// let kept: Vec<_> = ring.latest().into_iter().map(|r| r.message).collect();
/// assert_eq!(kept, ["refused", "reset"]);
/// assert_eq!((ring.total(), ring.evicted(), ring.count_for("db")), (3, 1, Some(3)));
/// ```
#[derive(Debug)]
pub struct ErrorRing {
    inner: Mutex<RingInner>,
    capacity: usize,
    total: AtomicU64,
    evicted: AtomicU64,
    target_overflow: AtomicU64,
    capture_failures: AtomicU64,
}

#[derive(Debug, Default)]
struct RingInner {
    latest: VecDeque<ErrorRecord>,
    per_target: HashMap<String, u64>,
}

#[derive(Serialize, Debug, PartialEq)]
struct TargetCount {
    target: String,
    count: u64,
}

/// `{"name": "value", ...}` reads better than a list of pairs.
fn fields_as_object<S: serde::Serializer>(
    fields: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(fields.iter().map(|(k, v)| (k, v)))
}

#[derive(Serialize)]
struct ErrorsReport {
    /// ERROR events seen since start.
    total: u64,
    /// Latest first.
    latest: Vec<ErrorRecord>,
    capacity: usize,
    evicted: u64,
    /// Per target, since start, highest first.
    per_target: Vec<TargetCount>,
    /// Events whose target came after [`MAX_ERROR_TARGETS`] others.
    per_target_overflow: u64,
    /// Errors that could not be captured (a field's `Debug` panicked).
    capture_failures: u64,
}

impl ErrorRing {
    /// A ring keeping the latest `capacity` errors (at least 1).
    ///
    /// ```
    /// use diag_core::state::{ErrorRecord, ErrorRing};
    /// # fn record(message: &str) -> ErrorRecord {
    /// #     ErrorRecord { time_unix: 0.0, target: "db".into(), message: message.into(), fields: vec![], trace_id: None, location: None }
    /// # }
    /// let ring = ErrorRing::new(0); // keeps one all the same
    /// ring.push(record("first"));
    /// ring.push(record("second"));
    /// assert_eq!(ring.latest()[0].message, "second");
    /// ```
    pub fn new(capacity: usize) -> Self {
        ErrorRing {
            inner: Mutex::new(RingInner::default()),
            capacity: capacity.max(1),
            total: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            target_overflow: AtomicU64::new(0),
            capture_failures: AtomicU64::new(0),
        }
    }

    /// Stores one error.
    ///
    /// ```
    /// use diag_core::state::{ErrorRecord, ErrorRing};
    /// let ring = ErrorRing::new(100);
    /// ring.push(ErrorRecord {
    ///     time_unix: 1_700_000_000.0,
    ///     target: "checkout::db".into(),
    ///     message: "pool exhausted".into(),
    ///     fields: vec![],
    ///     trace_id: None,
    ///     location: None,
    /// });
    /// assert_eq!(ring.count_for("checkout::db"), Some(1));
    /// ```
    pub fn push(&self, record: ErrorRecord) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner.lock();
        let known = inner.per_target.len();
        match inner.per_target.get_mut(record.target.as_str()) {
            Some(n) => *n += 1,
            None if known < MAX_ERROR_TARGETS => {
                inner.per_target.insert(record.target.clone(), 1);
            }
            None => {
                self.target_overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
        if inner.latest.len() == self.capacity {
            inner.latest.pop_front();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        inner.latest.push_back(record);
    }

    /// The kept errors, oldest first.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::error!("first");
    ///     tracing::error!("second");
    /// });
    /// let messages: Vec<_> = diag.errors().latest().into_iter().map(|e| e.message).collect();
    /// assert_eq!(messages, ["first", "second"]);
    /// ```
    pub fn latest(&self) -> Vec<ErrorRecord> {
        self.inner.lock().latest.iter().cloned().collect()
    }

    /// ERROR events seen since start.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().error_ring_capacity(1).build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     for _ in 0..3 {
    ///         tracing::error!("disk full");
    ///     }
    /// });
    /// assert_eq!(diag.errors().total(), 3);
    /// assert_eq!(diag.errors().latest().len(), 1);
    /// ```
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Errors pushed out of the ring.
    ///
    /// ```
    /// use diag_core::state::{ErrorRecord, ErrorRing};
    /// # fn record() -> ErrorRecord {
    /// #     ErrorRecord { time_unix: 0.0, target: "db".into(), message: "x".into(), fields: vec![], trace_id: None, location: None }
    /// # }
    /// let ring = ErrorRing::new(2);
    /// (0..5).for_each(|_| ring.push(record()));
    /// assert_eq!(ring.evicted(), 3);
    /// ```
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Errors that could not be captured (a field's `Debug` panicked).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// struct Broken;
    /// impl std::fmt::Debug for Broken {
    ///     fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         Err(std::fmt::Error) // `format!` panics on this
    ///     }
    /// }
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::error!(state = ?Broken, "oops"));
    /// assert_eq!(diag.errors().capture_failures(), 1);
    /// assert!(diag.errors().latest().is_empty());
    /// ```
    pub fn capture_failures(&self) -> u64 {
        self.capture_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn count_capture_failure(&self) {
        self.capture_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// How many errors `target` logged since start (`None` for a target never seen or
    /// not counted because the target table was full).
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::error!(target: "payments", "declined");
    ///     tracing::error!(target: "payments", "declined again");
    /// });
    /// assert_eq!(diag.errors().count_for("payments"), Some(2));
    /// assert_eq!(diag.errors().count_for("search"), None);
    /// ```
    pub fn count_for(&self, target: &str) -> Option<u64> {
        self.inner.lock().per_target.get(target).copied()
    }

    /// The per-target counts (at most [`MAX_ERROR_TARGETS`], unordered) and the
    /// events of targets that came after the table was full.
    pub(crate) fn per_target(&self) -> (Vec<(String, u64)>, u64) {
        let counts = {
            let inner = self.inner.lock();
            inner
                .per_target
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        (counts, self.target_overflow.load(Ordering::Relaxed))
    }

    fn report(&self) -> ErrorsReport {
        let inner = self.inner.lock();
        let mut per_target: Vec<TargetCount> = inner
            .per_target
            .iter()
            .map(|(k, v)| TargetCount {
                target: k.clone(),
                count: *v,
            })
            .collect();
        per_target.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.target.cmp(&b.target)));
        ErrorsReport {
            total: self.total(),
            latest: inner.latest.iter().rev().cloned().collect(),
            capacity: self.capacity,
            evicted: self.evicted(),
            per_target,
            per_target_overflow: self.target_overflow.load(Ordering::Relaxed),
            capture_failures: self.capture_failures(),
        }
    }
}

impl Diag {
    /// The ring behind the `errors` provider.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::error!("cache unreachable"));
    /// assert_eq!(diag.errors().total(), 1);
    /// assert_eq!(diag.errors().latest()[0].message, "cache unreachable");
    /// ```
    pub fn errors(&self) -> &Arc<ErrorRing> {
        &self.inner.errors
    }
}

/// Registers `errors`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    let ring = Arc::downgrade(&diag.inner.errors);
    let _ = diag
        .state()
        .register("errors", move || ring.upgrade().map(|r| r.report()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(target: &str, message: &str) -> ErrorRecord {
        ErrorRecord {
            time_unix: 0.0,
            target: target.into(),
            message: message.into(),
            fields: Vec::new(),
            trace_id: None,
            location: None,
        }
    }

    #[test]
    fn ring_evicts_and_counts_per_target_with_overflow() {
        let ring = ErrorRing::new(2);
        ring.push(record("db", "a"));
        ring.push(record("db", "b"));
        ring.push(record("http", "c"));
        assert_eq!(
            ring.latest()
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(ring.evicted(), 1);
        assert_eq!(ring.total(), 3);
        assert_eq!(ring.count_for("db"), Some(2));
        for i in 0..MAX_ERROR_TARGETS + 5 {
            ring.push(record(&format!("t{i}"), "x"));
        }
        let rep = ring.report();
        assert_eq!(rep.per_target.len(), MAX_ERROR_TARGETS);
        assert_eq!(rep.per_target_overflow, 7);
        assert_eq!(
            rep.per_target[0],
            TargetCount {
                target: "db".into(),
                count: 2
            }
        );
        assert_eq!(rep.latest[0].target, format!("t{}", MAX_ERROR_TARGETS + 4));
    }
}
