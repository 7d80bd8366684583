//! Where a [`Diag`](crate::Diag)'s metrics live, and how a scrape walks them.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::collector::{self, Collector, MAX_COLLECTORS};
use super::encode::{Encoder, Format, Kind};
use super::family::{Family, OverflowNotifier};
use super::http::HttpMetrics;
use super::name::MetricError;
use super::{Counter, Gauge, Histogram};

/// The most metric families a service may register through the `Diag` API; beyond it
/// registration fails with [`MetricError::TooManyMetrics`].
///
/// ```
/// use diag_core::metrics::{MAX_USER_METRICS, MetricError};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// for i in 0..MAX_USER_METRICS {
///     diag.counter(&format!("job_{i}"), "").unwrap();
/// }
/// let err = diag.counter("one_more", "").unwrap_err();
/// assert_eq!(err, MetricError::TooManyMetrics(MAX_USER_METRICS));
/// ```
pub const MAX_USER_METRICS: usize = 1_000;

/// One series' samples, as a family member writes them.
pub(crate) trait EncodeSeries: Send + Sync + 'static {
    const KIND: Kind;
    fn encode(&self, name: &str, labels: &[(&str, &str)], enc: &mut Encoder);
}

impl EncodeSeries for Counter {
    const KIND: Kind = Kind::Counter;
    fn encode(&self, name: &str, labels: &[(&str, &str)], enc: &mut Encoder) {
        enc.counter(name, labels, self);
    }
}

impl EncodeSeries for Gauge {
    const KIND: Kind = Kind::Gauge;
    fn encode(&self, name: &str, labels: &[(&str, &str)], enc: &mut Encoder) {
        enc.gauge(name, labels, self);
    }
}

impl EncodeSeries for Histogram {
    const KIND: Kind = Kind::Histogram;
    fn encode(&self, name: &str, labels: &[(&str, &str)], enc: &mut Encoder) {
        enc.histogram(name, labels, &self.snapshot());
    }
}

/// A registered family, type-erased for the scrape.
pub(crate) trait Exposable: Send + Sync {
    fn expose(&self, name: &str, enc: &mut Encoder);
    /// What a labelled family folded or cut; `None` for a metric without labels.
    fn drops(&self) -> Option<FamilyDrops>;
}

/// Which of a family's [`FamilyDrops`] a counter of diag's reads.
type DropCount = fn(&FamilyDrops) -> u64;

/// What a labelled family did not keep as given, for diag's own counters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FamilyDrops {
    /// Observations folded into the overflow series.
    pub(crate) overflowed: u64,
    /// Lookups by a label value cut to its cap.
    pub(crate) label_values_cut: u64,
}

impl<M, const N: usize> Family<M, N> {
    pub(crate) fn drops(&self) -> FamilyDrops {
        FamilyDrops {
            overflowed: self.overflowed(),
            label_values_cut: self.label_values_cut(),
        }
    }
}

struct Single<M>(Arc<M>);

impl<M: EncodeSeries> Exposable for Single<M> {
    fn expose(&self, name: &str, enc: &mut Encoder) {
        self.0.encode(name, &[], enc);
    }
    fn drops(&self) -> Option<FamilyDrops> {
        None
    }
}

impl<M: EncodeSeries, const N: usize> Exposable for Family<M, N> {
    fn expose(&self, name: &str, enc: &mut Encoder) {
        let names = self.label_names();
        self.for_each(|values, m| {
            let labels: [(&str, &str); N] = std::array::from_fn(|i| (names[i].as_str(), values[i]));
            m.encode(name, &labels, enc);
        });
    }
    fn drops(&self) -> Option<FamilyDrops> {
        Some(Family::drops(self))
    }
}

#[derive(Clone)]
struct Registered {
    name: Arc<str>,
    help: Arc<str>,
    kind: Kind,
    label_names: Arc<[String]>,
    handle: Arc<dyn Any + Send + Sync>,
    exposable: Arc<dyn Exposable>,
}

/// All metrics of one `Diag`: the HTTP RED metrics and the service's own.
pub(crate) struct MetricsRegistry {
    pub(crate) http: HttpMetrics,
    pub(crate) notifier: Arc<OverflowNotifier>,
    pub(crate) max_label_sets: usize,
    user: RwLock<HashMap<Arc<str>, Registered>>,
    /// Registration order, for a stable exposition.
    order: RwLock<Vec<Arc<str>>>,
    pub(crate) timers: RwLock<HashMap<Box<str>, Arc<Histogram>>>,
    /// Observations dropped because a metric name was invalid or taken by another type.
    pub(crate) rejected: AtomicU64,
    /// Called on every scrape, diag's own first.
    collectors: RwLock<Vec<Arc<Collector>>>,
    collector_panics: AtomicU64,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry")
            .field("metrics", &self.order.read().len())
            .finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    pub(crate) fn new(http_buckets: Arc<[f64]>, max_label_sets: usize) -> Self {
        let notifier = Arc::new(OverflowNotifier::default());
        MetricsRegistry {
            http: HttpMetrics::new(http_buckets, max_label_sets, &notifier),
            notifier,
            max_label_sets,
            user: RwLock::default(),
            order: RwLock::default(),
            timers: RwLock::default(),
            rejected: AtomicU64::new(0),
            collectors: RwLock::default(),
            collector_panics: AtomicU64::new(0),
        }
    }

    /// Adds a collector; the service's count against [`MAX_COLLECTORS`].
    pub(crate) fn add_collector(&self, collector: Collector) -> Result<(), MetricError> {
        let mut collectors = self.collectors.write();
        if !collector.own && collectors.iter().filter(|c| !c.own).count() >= MAX_COLLECTORS {
            return Err(MetricError::TooManyCollectors(MAX_COLLECTORS));
        }
        collectors.push(Arc::new(collector));
        Ok(())
    }

    /// The metric registered as `name` when it has type `T`, this kind and these
    /// labels; otherwise registers what `make` builds. `name` is already validated.
    pub(crate) fn get_or_register<T, E>(
        &self,
        name: &str,
        help: &dyn Fn() -> String,
        kind: Kind,
        label_names: &[&str],
        make: impl FnOnce() -> (Arc<T>, Arc<E>),
    ) -> Result<Arc<T>, MetricError>
    where
        T: Any + Send + Sync,
        E: Exposable + 'static,
    {
        let same = |r: &Registered| -> Result<Arc<T>, MetricError> {
            let labels_match = r.label_names.len() == label_names.len()
                && r.label_names.iter().zip(label_names).all(|(a, b)| a == b);
            match (r.kind == kind && labels_match)
                .then(|| r.handle.clone().downcast::<T>().ok())
                .flatten()
            {
                Some(t) => Ok(t),
                None => Err(MetricError::Conflict {
                    name: name.to_owned(),
                    existing: format!("{:?} with labels {:?}", r.kind, r.label_names),
                }),
            }
        };
        if let Some(r) = self.user.read().get(name) {
            return same(r);
        }
        let mut user = self.user.write();
        if let Some(r) = user.get(name) {
            return same(r);
        }
        if user.len() >= MAX_USER_METRICS {
            // The caller gets the error; the count says it happened on `/metrics` too.
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(MetricError::TooManyMetrics(MAX_USER_METRICS));
        }
        let (handle, exposable) = make();
        let name: Arc<str> = name.into();
        user.insert(
            name.clone(),
            Registered {
                name: name.clone(),
                help: help().into(),
                kind,
                label_names: label_names.iter().map(|s| (*s).to_owned()).collect(),
                handle: handle.clone(),
                exposable,
            },
        );
        self.order.write().push(name);
        Ok(handle)
    }

    pub(crate) fn single<M: EncodeSeries + Any>(
        &self,
        name: &str,
        help: &dyn Fn() -> String,
        make: impl FnOnce() -> M,
    ) -> Result<Arc<M>, MetricError> {
        self.get_or_register(name, help, M::KIND, &[], || {
            let m = Arc::new(make());
            (m.clone(), Arc::new(Single(m)))
        })
    }

    pub(crate) fn family<M: EncodeSeries + Any, const N: usize>(
        &self,
        name: &str,
        help: &dyn Fn() -> String,
        label_names: [&str; N],
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Result<Arc<Family<M, N>>, MetricError> {
        self.family_capped(name, help, label_names, self.max_label_sets, make)
    }

    /// [`family`](Self::family) with a label-set cap of its own (never above the
    /// configured one).
    pub(crate) fn family_capped<M: EncodeSeries + Any, const N: usize>(
        &self,
        name: &str,
        help: &dyn Fn() -> String,
        label_names: [&str; N],
        cap: usize,
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Result<Arc<Family<M, N>>, MetricError> {
        self.get_or_register(name, help, M::KIND, &label_names, || {
            let f = Arc::new(Family::new(
                name,
                label_names,
                cap.min(self.max_label_sets),
                self.notifier.clone(),
                make,
            ));
            (f.clone(), f)
        })
    }

    /// The whole exposition.
    pub(crate) fn encode(&self, format: Format) -> String {
        let mut enc = Encoder::new(format);
        self.http.encode(&mut enc);
        let registered: Vec<Registered> = {
            let user = self.user.read();
            self.order
                .read()
                .iter()
                .filter_map(|n| user.get(n).cloned())
                .collect()
        };
        for r in &registered {
            enc.family(&r.name, &r.help, r.kind);
            r.exposable.expose(&r.name, &mut enc);
        }
        // Cloned out so a collector may register metrics (or collectors) without
        // deadlocking the scrape.
        let collectors = self.collectors.read().clone();
        let (dropped, panics) = collector::run(&collectors, &mut enc);
        let panics = self.collector_panics.fetch_add(panics, Ordering::Relaxed) + panics;
        let drops: Vec<(&str, FamilyDrops)> = self
            .http
            .drops()
            .into_iter()
            .chain(
                registered
                    .iter()
                    .filter_map(|r| Some((&*r.name, r.exposable.drops()?))),
            )
            .collect();
        let kinds: [(&str, &str, DropCount); 2] = [
            (
                "diag_metrics_overflow",
                "Observations folded into a family's __overflow__ series because it reached its label set cap.",
                |d| d.overflowed,
            ),
            (
                "diag_metrics_label_values_cut",
                "Lookups with a label value over 256 bytes, served by the series of the value cut to that length.",
                |d| d.label_values_cut,
            ),
        ];
        for (name, help, count) in kinds {
            enc.family(name, help, Kind::Counter);
            for (family, d) in &drops {
                enc.raw_counter(name, &[("family", family)], count(d));
            }
        }
        enc.family(
            "diag_metrics_rejected",
            "Metrics refused, and observations dropped with them: an invalid name, a type conflict, or a metric past the most the service may register.",
            Kind::Counter,
        );
        enc.raw_counter(
            "diag_metrics_rejected",
            &[],
            self.rejected.load(Ordering::Relaxed),
        );
        enc.family(
            "diag_metrics_collector_dropped_samples",
            "Samples collectors wrote during this scrape that were left out: invalid or taken names, changed labels, repeated series, over the per-family cap, or from a collector that panicked.",
            Kind::Gauge,
        );
        enc.raw_gauge(
            "diag_metrics_collector_dropped_samples",
            &[],
            dropped as f64,
        );
        enc.family(
            "diag_metrics_collector_panics",
            "Scrapes in which a collector panicked (its samples were left out).",
            Kind::Counter,
        );
        enc.raw_counter("diag_metrics_collector_panics", &[], panics);
        enc.finish()
    }
}
