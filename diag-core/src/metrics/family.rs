//! Metric families: one metric per distinct label set, with a cap on how many.
//!
//! Series live in an insert-only open-addressing table sized for the cap: a lookup
//! hashes the label values (a per-family randomly seeded multiply-mix hash: several
//! times faster than SipHash on short labels; a crafted collision can only lengthen
//! probing, which the cap bounds), probes, and compares, with one acquire load per probe
//! and no lock and no allocation when the series exists. Inserting a new label set
//! takes a mutex (it is rare: once per series for the process's life). Series are
//! never removed, so a [`SeriesRef`] (a table index) stays valid for the family's life.
//!
//! **Cardinality guard**: past the cap (default [`DEFAULT_MAX_LABEL_SETS`]) new label
//! sets fold into one series whose label values are all [`OVERFLOW_LABEL_VALUE`]; every
//! folded observation is counted (exported as
//! `diag_metrics_overflow_total{family="..."}`), and the first one per family is logged
//! with `tracing::warn!` and recorded on the events timeline as `metric_overflow`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

use crate::diag::Inner;

/// How many distinct label sets a family keeps by default.
///
/// ```
/// use diag_core::metrics::DEFAULT_MAX_LABEL_SETS;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let by_tenant = diag.counter_family("tenant_requests", "Per tenant.", ["tenant"]).unwrap();
/// assert_eq!(by_tenant.cap(), DEFAULT_MAX_LABEL_SETS);
/// ```
pub const DEFAULT_MAX_LABEL_SETS: usize = 2_000;

/// The largest cap a family accepts.
///
/// ```
/// use diag_core::metrics::MAX_LABEL_SETS_LIMIT;
/// // A larger cap given to the builder is lowered to the limit.
/// let diag = diag_core::Diag::builder().max_label_sets(usize::MAX).build().unwrap();
/// let f = diag.gauge_family("shard_depth", "Depth per shard.", ["shard"]).unwrap();
/// assert_eq!(f.cap(), MAX_LABEL_SETS_LIMIT);
/// ```
pub const MAX_LABEL_SETS_LIMIT: usize = 1 << 20;

/// Every label value of the series that overflowed observations fold into.
///
/// ```
/// use diag_core::metrics::OVERFLOW_LABEL_VALUE;
/// let diag = diag_core::Diag::builder().max_label_sets(1).build().unwrap();
/// let by_user = diag.counter_family("user_logins", "Logins per user.", ["user"]).unwrap();
/// by_user.with(["ada"]).inc();
/// by_user.with(["grace"]).inc(); // past the cap
/// let mut seen = Vec::new();
/// by_user.for_each(|[user], c| seen.push((user, c.get())));
/// assert_eq!(seen, [("ada", 1), (OVERFLOW_LABEL_VALUE, 1)]);
/// ```
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// A series of a family: a stable index, or the overflow series.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let hits = diag.counter_family("region_hits", "Hits per region.", ["region"]).unwrap();
/// // Look the series up once, then use it without hashing the labels again.
/// let eu = hits.series(["eu"]);
/// hits.metric(eu).inc();
/// hits.metric(eu).inc();
/// assert_eq!(hits.labels(eu), ["eu"]);
/// assert_eq!(hits.with(["eu"]).get(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesRef(u32);

impl SeriesRef {
    /// The series that label sets beyond the cap fold into.
    ///
    /// ```
    /// use diag_core::metrics::SeriesRef;
    /// let diag = diag_core::Diag::builder().max_label_sets(1).build().unwrap();
    /// let f = diag.counter_family("sku_views", "Views per SKU.", ["sku"]).unwrap();
    /// assert_ne!(f.series(["A-1"]), SeriesRef::OVERFLOW);
    /// assert_eq!(f.series(["B-2"]), SeriesRef::OVERFLOW);
    /// assert_eq!(f.labels(SeriesRef::OVERFLOW), ["__overflow__"]);
    /// ```
    pub const OVERFLOW: SeriesRef = SeriesRef(u32::MAX);

    /// The table index, or `None` for the overflow series.
    pub(crate) fn index(self) -> Option<u32> {
        (self != SeriesRef::OVERFLOW).then_some(self.0)
    }

    /// The series at a table index that [`SeriesRef::index`] returned.
    pub(crate) fn from_index(index: u32) -> SeriesRef {
        SeriesRef(index)
    }
}

struct Series<M, const N: usize> {
    hash: u64,
    labels: [Box<str>; N],
    metric: M,
}

/// Tells the service (log + events timeline) the first time a family overflows.
#[derive(Default)]
pub(crate) struct OverflowNotifier {
    diag: OnceLock<Weak<Inner>>,
}

impl OverflowNotifier {
    pub(crate) fn attach(&self, inner: Weak<Inner>) {
        let _ = self.diag.set(inner);
    }

    fn notify(&self, family: &str, cap: usize) {
        let message = format!(
            "metric family {family} reached its cap of {cap} label sets; further label sets fold into {OVERFLOW_LABEL_VALUE}"
        );
        tracing::warn!(family, cap, "{message}");
        if let Some(inner) = self.diag.get().and_then(Weak::upgrade) {
            inner.events.record("metric_overflow", message);
        }
    }
}

/// A metric per label set, e.g. one counter per `(region, tier)`. Label values are
/// given as an array, so a call with the wrong number of labels does not compile.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let logins = diag
///     .counter_family("logins", "Logins by outcome.", ["outcome"])
///     .unwrap();
/// logins.with(["ok"]).inc();
/// logins.with(["denied"]).inc();
/// assert_eq!(logins.with(["ok"]).get(), 1);
/// ```
pub struct Family<M, const N: usize> {
    name: String,
    label_names: [String; N],
    table: Box<[OnceLock<Box<Series<M, N>>>]>,
    mask: usize,
    seed: u64,
    len: AtomicUsize,
    cap: usize,
    /// Table indexes in insertion order, for a stable exposition order. Also the
    /// insert lock.
    order: Mutex<Vec<u32>>,
    make: Box<dyn Fn() -> M + Send + Sync>,
    overflow: M,
    overflowed: AtomicU64,
    /// Lookups by a label value over [`MAX_LABEL_VALUE_BYTES`], served by the series of
    /// the cut value.
    cut: AtomicU64,
    warned: AtomicBool,
    notifier: Arc<OverflowNotifier>,
}

impl<M, const N: usize> std::fmt::Debug for Family<M, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("label_names", &self.label_names)
            .field("len", &self.len())
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl<M, const N: usize> Family<M, N> {
    pub(crate) fn new(
        name: &str,
        label_names: [&str; N],
        cap: usize,
        notifier: Arc<OverflowNotifier>,
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Self {
        let cap = cap.clamp(1, MAX_LABEL_SETS_LIMIT);
        // At most half full, so probe sequences stay short.
        let slots = (cap * 2).next_power_of_two().max(16);
        Family {
            name: name.to_owned(),
            label_names: label_names.map(str::to_owned),
            table: (0..slots).map(|_| OnceLock::new()).collect(),
            mask: slots - 1,
            seed: RandomState::new().hash_one(name) | 1,
            len: AtomicUsize::new(0),
            cap,
            order: Mutex::new(Vec::new()),
            overflow: make(),
            make: Box::new(make),
            overflowed: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            notifier,
        }
    }

    /// The family's name.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.counter_family("payments_total", "Payments.", ["provider"]).unwrap();
    /// assert_eq!(f.name(), "payments"); // exposed as `payments_total`
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The label names, in the order values are given.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.gauge_family("pool_size", "Pool sizes.", ["pool", "role"]).unwrap();
    /// assert_eq!(f.label_names(), &["pool".to_owned(), "role".to_owned()]);
    /// ```
    pub fn label_names(&self) -> &[String; N] {
        &self.label_names
    }

    /// How many distinct label sets exist (not counting the overflow series).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.counter_family("cache_lookups", "Lookups.", ["result"]).unwrap();
    /// f.with(["hit"]).inc();
    /// f.with(["miss"]).inc();
    /// f.with(["hit"]).inc();
    /// assert_eq!(f.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no label set has been seen yet.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.counter_family("retries", "Retries.", ["upstream"]).unwrap();
    /// assert!(f.is_empty());
    /// f.with(["pricing"]).inc();
    /// assert!(!f.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most distinct label sets this family keeps.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().max_label_sets(50).build().unwrap();
    /// let f = diag.counter_family("tenant_jobs", "Jobs per tenant.", ["tenant"]).unwrap();
    /// assert_eq!(f.cap(), 50);
    /// ```
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// How many observations folded into the overflow series.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().max_label_sets(1).build().unwrap();
    /// let f = diag.counter_family("path_hits", "Hits per path.", ["path"]).unwrap();
    /// f.with(["/a"]).inc();
    /// f.with(["/b"]).inc();
    /// f.with(["/c"]).inc();
    /// assert_eq!((f.len(), f.overflowed()), (1, 2));
    /// ```
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// How many lookups came with a label value over [`MAX_LABEL_VALUE_BYTES`] (each
    /// served by the series of the value cut to that length).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.counter_family("webhook_calls", "Calls per host.", ["host"]).unwrap();
    /// let long = "h".repeat(1000);
    /// f.with([&long]).inc();
    /// f.with([&long]).inc();
    /// f.with(["short.example"]).inc();
    /// assert_eq!(f.label_values_cut(), 2);
    /// ```
    pub fn label_values_cut(&self) -> u64 {
        self.cut.load(Ordering::Relaxed)
    }

    /// The metric for these label values, created on first use. Beyond the cap, the
    /// overflow series (and the fold is counted).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let sent = diag.counter_family("mails_sent", "Mails sent.", ["template"]).unwrap();
    /// sent.with(["welcome"]).inc();
    /// sent.with(["welcome"]).inc();
    /// assert_eq!(sent.with(["welcome"]).get(), 2);
    /// ```
    pub fn with(&self, labels: [&str; N]) -> &M {
        self.metric(self.series(labels))
    }

    /// The series for these label values (see [`Family::with`]).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.gauge_family("replica_lag_seconds", "Lag per replica.", ["replica"]).unwrap();
    /// let r1 = f.series(["r1"]);
    /// assert_eq!(f.series(["r1"]), r1); // stable for the family's life
    /// f.metric(r1).set(0.4);
    /// assert_eq!(f.with(["r1"]).get(), 0.4);
    /// ```
    pub fn series(&self, labels: [&str; N]) -> SeriesRef {
        // A value too long is cut where a series would be created (`insert`), so the
        // lookup of every other series pays nothing for it.
        let hash = hash_labels(self.seed, &labels);
        if let Some(found) = self.probe(hash, &labels, false) {
            return found;
        }
        self.insert(hash, labels)
    }

    /// The series for these label values if it exists; never creates one.
    pub(crate) fn find(&self, labels: [&str; N]) -> Option<SeriesRef> {
        self.probe(hash_labels(self.seed, &labels), &labels, false)
            .or_else(|| {
                labels
                    .iter()
                    .any(|l| l.len() > MAX_LABEL_VALUE_BYTES)
                    .then(|| self.with_cut_labels(labels, |cut| self.find(cut)))
                    .flatten()
            })
    }

    /// `f` with the label values cut to [`MAX_LABEL_VALUE_BYTES`].
    #[cold]
    fn with_cut_labels<R>(&self, labels: [&str; N], f: impl FnOnce([&str; N]) -> R) -> R {
        self.cut.fetch_add(1, Ordering::Relaxed);
        let cut = labels.map(cut_label_value);
        f(std::array::from_fn(|i| cut[i].as_str()))
    }

    /// The metric of a series.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.counter_family("orders", "Orders by channel.", ["channel"]).unwrap();
    /// let web = f.series(["web"]);
    /// f.metric(web).inc_by(3);
    /// assert_eq!(f.metric(web).get(), 3);
    /// ```
    pub fn metric(&self, series: SeriesRef) -> &M {
        self.table
            .get(series.0 as usize)
            .and_then(OnceLock::get)
            .map_or(&self.overflow, |s| &s.metric)
    }

    /// The label values of a series (all [`OVERFLOW_LABEL_VALUE`] for the overflow
    /// series).
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.counter_family("http_client_calls", "Calls.", ["host", "status"]).unwrap();
    /// let s = f.series(["api.example.com", "503"]);
    /// assert_eq!(f.labels(s), ["api.example.com", "503"]);
    /// ```
    pub fn labels(&self, series: SeriesRef) -> [&str; N] {
        match self.table.get(series.0 as usize).and_then(OnceLock::get) {
            Some(s) => std::array::from_fn(|i| &*s.labels[i]),
            None => [OVERFLOW_LABEL_VALUE; N],
        }
    }

    /// Calls `f` with every series in creation order, then the overflow series if
    /// anything folded into it.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let f = diag.counter_family("logins", "Logins by outcome.", ["outcome"]).unwrap();
    /// f.with(["ok"]).inc_by(5);
    /// f.with(["denied"]).inc();
    /// let mut rows = Vec::new();
    /// f.for_each(|[outcome], c| rows.push(format!("{outcome}={}", c.get())));
    /// assert_eq!(rows, ["ok=5", "denied=1"]);
    /// ```
    pub fn for_each<'a>(&'a self, mut f: impl FnMut([&'a str; N], &'a M)) {
        let order = self.order.lock().clone();
        for i in order {
            let r = SeriesRef(i);
            f(self.labels(r), self.metric(r));
        }
        if self.overflowed() > 0 {
            f([OVERFLOW_LABEL_VALUE; N], &self.overflow);
        }
    }

    /// Finds the series, or with `for_insert` the first free slot of its probe
    /// sequence (returned as `Err`-like `None` from the public path).
    fn probe(&self, hash: u64, labels: &[&str; N], for_insert: bool) -> Option<SeriesRef> {
        let mut i = hash as usize & self.mask;
        for _ in 0..self.table.len() {
            match self.table[i].get() {
                Some(s)
                    if s.hash == hash && s.labels.iter().zip(labels).all(|(a, b)| **a == **b) =>
                {
                    return Some(SeriesRef(i as u32));
                }
                Some(_) => i = (i + 1) & self.mask,
                None if for_insert => return Some(SeriesRef(i as u32)),
                None => return None,
            }
        }
        None
    }

    #[cold]
    fn insert(&self, hash: u64, labels: [&str; N]) -> SeriesRef {
        // Never stored: its series is the one of the cut values (a long value takes this
        // path on each of its lookups).
        if labels.iter().any(|l| l.len() > MAX_LABEL_VALUE_BYTES) {
            return self.with_cut_labels(labels, |cut| self.series(cut));
        }
        if self.len() < self.cap {
            let mut order = self.order.lock();
            // Another thread may have inserted it (or filled the family) meanwhile.
            if let Some(r) = self.probe(hash, &labels, true) {
                let slot = &self.table[r.0 as usize];
                match slot.get() {
                    Some(_) => return r,
                    None if self.len() < self.cap => {
                        let series = Series {
                            hash,
                            labels: labels.map(Box::from),
                            metric: (self.make)(),
                        };
                        if slot.set(Box::new(series)).is_ok() {
                            self.len.fetch_add(1, Ordering::Relaxed);
                            order.push(r.0);
                        }
                        return r;
                    }
                    None => {}
                }
            }
        }
        self.fold()
    }

    /// Counts one observation into the overflow series (also for callers that know the
    /// label set is already folded elsewhere) and returns that series.
    pub(crate) fn fold(&self) -> SeriesRef {
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        // The plain load keeps the common (already warned) case free of a write.
        if !self.warned.load(Ordering::Relaxed) && !self.warned.swap(true, Ordering::Relaxed) {
            self.notifier.notify(&self.name, self.cap);
        }
        SeriesRef::OVERFLOW
    }
}

/// A seeded hash of label values; each value's length takes part, so `["ab", ""]` and
/// `["a", "b"]` differ.
#[inline]
fn hash_labels(seed: u64, labels: &[&str]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    #[inline]
    fn mix(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        (r as u64) ^ ((r >> 64) as u64)
    }
    let mut h = seed;
    for label in labels {
        let bytes = label.as_bytes();
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = mix(h ^ u64::from_le_bytes(word), K);
        }
        h = mix(h ^ tail_word(chunks.remainder()), K ^ bytes.len() as u64);
    }
    h
}

/// Up to 7 bytes as one word, read without a variable-length copy (a `memcpy` call
/// cost as much as the rest of the hash). Distinct tails of one length give distinct
/// words; the length is mixed in separately.
#[inline]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    match (rest.first(), rest.get(n / 2), rest.last()) {
        _ if n >= 4 => {
            let first = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let last = u32::from_le_bytes([rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1]]);
            u64::from(first) << 32 | u64::from(last)
        }
        (Some(&a), Some(&b), Some(&c)) => u64::from(a) << 16 | u64::from(b) << 8 | u64::from(c),
        _ => 0,
    }
}

/// The longest label value a series keeps, in bytes: a longer one (a host name from a
/// URL, say) is cut to fit, ending in `…`, so one value cannot make a scrape huge.
/// Values that differ only past the cut share a series. Not counted.
///
/// ```
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let f = diag.counter_family("calls", "Calls by host.", ["host"]).unwrap();
/// let long = "h".repeat(60_000);
/// f.metric(f.series([&long])).inc();
/// # let scrape = diag_core::EndpointRequest::from_parts("GET", "/metrics", None, &(), None, None);
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let text = String::from_utf8(rt.block_on(diag.serve(scrape)).body).unwrap();
/// let line = text.lines().find(|l| l.starts_with("calls_total{")).unwrap();
/// assert!(line.len() < 400 && line.contains("…"), "{line}");
/// ```
pub const MAX_LABEL_VALUE_BYTES: usize = 256;

/// `value` cut to [`MAX_LABEL_VALUE_BYTES`] on a character boundary, ending in `…`.
fn cut_label_value(value: &str) -> String {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return value.to_owned();
    }
    let mut end = MAX_LABEL_VALUE_BYTES - '…'.len_utf8();
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Counter;

    fn family(cap: usize) -> Family<Counter, 2> {
        Family::new("jobs", ["queue", "kind"], cap, Arc::default(), Counter::new)
    }

    #[test]
    fn label_hash_separates_boundaries_and_seeds() {
        let s = 0x1234_5678_9abc_def1;
        assert_ne!(hash_labels(s, &["ab", ""]), hash_labels(s, &["a", "b"]));
        assert_ne!(hash_labels(s, &["", "ab"]), hash_labels(s, &["ab", ""]));
        assert_ne!(
            hash_labels(s, &["GET", "/a", "200"]),
            hash_labels(s, &["GET", "/a", "201"])
        );
        assert_ne!(hash_labels(s, &["x"]), hash_labels(s ^ 2, &["x"]));
        assert_eq!(
            hash_labels(s, &["/products/{id}"]),
            hash_labels(s, &["/products/{id}"])
        );
    }

    #[test]
    fn same_labels_same_series() {
        let f = family(10);
        let a = f.series(["q1", "x"]);
        assert_eq!(f.series(["q1", "x"]), a);
        assert_ne!(f.series(["q1", "y"]), a);
        assert_ne!(f.series(["q1x", ""]), a, "no ambiguity from concatenation");
        assert_eq!(f.labels(a), ["q1", "x"]);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn overflow_folds_counts_and_warns_once() {
        let f = family(3);
        for i in 0..3 {
            f.with([&format!("q{i}"), "k"]).inc();
        }
        assert_eq!(f.overflowed(), 0);
        for i in 3..10 {
            f.with([&format!("q{i}"), "k"]).inc();
        }
        assert_eq!(f.len(), 3, "cap holds");
        assert_eq!(f.overflowed(), 7);
        assert!(f.warned.load(Ordering::Relaxed));
        assert_eq!(f.metric(SeriesRef::OVERFLOW).get(), 7);
        assert_eq!(f.labels(SeriesRef::OVERFLOW), [OVERFLOW_LABEL_VALUE; 2]);
        // Known label sets still get their own series.
        f.with(["q0", "k"]).inc();
        assert_eq!(f.with(["q0", "k"]).get(), 2);
        let mut seen = Vec::new();
        f.for_each(|labels, c| seen.push((labels[0].to_owned(), c.get())));
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[3], (OVERFLOW_LABEL_VALUE.to_owned(), 7));
    }

    #[test]
    fn concurrent_inserts_create_each_series_once() {
        let f = Arc::new(family(1000));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        f.with([&format!("q{i}"), "k"]).inc();
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(f.len(), 200);
        let mut total = 0;
        f.for_each(|_, c| total += c.get());
        assert_eq!(total, 800);
    }
}
