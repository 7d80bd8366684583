//! The built-in `routes` and `dependencies` providers: which route is slow or failing
//! *now*, and which of the services it calls, read from the RED metrics the process
//! already keeps (`http_server_*`, and `http_client_*` by `server_address`, see
//! [`Diag::client_call`]), so an on-call engineer gets the answer with one `curl`
//! even when Prometheus is down or was never set up. `dependencies` has the same shape,
//! its entries named by `server_address` under `dependencies`; a call that got no
//! answer (`error`) or that its caller gave up on (`cancelled`) counts as an error.
//!
//! Each `(method, route)` gets its request count, errors (HTTP 5xx; for a gRPC call the
//! server-error statuses `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`,
//! `UNAVAILABLE`, `DATA_LOSS`, as OpenTelemetry counts them) and p50 / p90 / p99
//! estimated from the duration histogram's buckets (linear within a bucket, as
//! Prometheus's `histogram_quantile` does; a quantile in the `+Inf` bucket shows the
//! largest bound), twice: `since_start`, and `recent`, the difference from an earlier
//! snapshot. Snapshots are taken when the provider is read and when `/metrics` is
//! scraped, at most one every [`SNAPSHOT_EVERY`], [`MAX_SNAPSHOTS`] kept, none older than
//! [`SNAPSHOT_MAX_AGE`]; `recent` covers `window_seconds` back to the newest snapshot at
//! least [`WINDOW`] old (else the oldest there is). With no earlier snapshot (the
//! process's first read, and no scrape), `recent` is absent and `note` says so. Each
//! route also names its slowest exemplar: from the highest bucket that has one, the
//! exemplar with the largest value among the route's statuses (each series keeps the
//! newest request per bucket, so this is a slow request, not always the slowest one),
//! with the path to its capture when it was a debug request the flight recorder still
//! keeps.
//!
//! Routes are sorted by recent p99, slowest first (then those without recent traffic,
//! by p99 since start); at most [`MAX_ROUTES_SHOWN`] are listed (`routes_omitted`
//! counts the rest). `failing` lists the (at most 10) routes with errors, most first,
//! in `recent` when there is a window, else since the start. A snapshot keeps one count per bucket per route: bounded by the
//! metric family's label-set cap.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

use crate::Diag;
use crate::diag::Inner;
use crate::metrics::{Exemplar, HistogramSnapshot};
use crate::request::GrpcCode;

/// The least time between two snapshots.
///
/// ```
/// assert_eq!(diag_core::state::SNAPSHOT_EVERY.as_secs(), 10);
/// ```
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(10);
/// Snapshots kept.
///
/// ```
/// use diag_core::state::{MAX_SNAPSHOTS, SNAPSHOT_EVERY, WINDOW};
/// // Enough of them, spaced by at least SNAPSHOT_EVERY, to reach back a whole WINDOW.
/// assert!(SNAPSHOT_EVERY * (MAX_SNAPSHOTS as u32 - 1) >= WINDOW);
/// ```
pub const MAX_SNAPSHOTS: usize = 8;
/// How far back `recent` reaches when snapshots allow it.
///
/// ```
/// assert_eq!(diag_core::state::WINDOW.as_secs(), 60);
/// ```
pub const WINDOW: Duration = Duration::from_secs(60);
/// Snapshots older than this are dropped: a `recent` over hours would not be recent.
///
/// ```
/// assert_eq!(diag_core::state::SNAPSHOT_MAX_AGE.as_secs(), 300);
/// ```
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(300);
/// The most routes listed.
///
/// ```
/// assert_eq!(diag_core::state::MAX_ROUTES_SHOWN, 100);
/// ```
pub const MAX_ROUTES_SHOWN: usize = 100;

/// gRPC statuses that are the server's failure (OpenTelemetry's list for server spans).
/// Whether a `status` label is a server error.
fn is_error(status: &str) -> bool {
    (status.len() == 3 && status.starts_with('5') && status.bytes().all(|b| b.is_ascii_digit()))
        || GrpcCode::from_name(status).is_some_and(GrpcCode::is_server_error)
}

/// One route's histogram, summed over its statuses.
#[derive(Debug, Clone, Default, PartialEq)]
struct RouteCounts {
    /// Cumulative counts per bucket bound, then `+Inf` (the total).
    cumulative: Vec<u64>,
    errors: u64,
}

impl RouteCounts {
    fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// `self - earlier`, bucket by bucket (counts only grow in one process).
    fn since(&self, earlier: Option<&RouteCounts>) -> RouteCounts {
        let Some(earlier) = earlier else {
            return self.clone();
        };
        RouteCounts {
            cumulative: self
                .cumulative
                .iter()
                .enumerate()
                .map(|(i, c)| c.saturating_sub(earlier.cumulative.get(i).copied().unwrap_or(0)))
                .collect(),
            errors: self.errors.saturating_sub(earlier.errors),
        }
    }
}

type RouteKey = (String, String);

/// The routes' counts at one moment.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    routes: Arc<HashMap<RouteKey, RouteCounts>>,
}

/// What the HTTP metrics hold now, per route; also each route's statuses and slowest
/// exemplar (only needed for the report, not kept in snapshots).
struct Now {
    bounds: Vec<f64>,
    routes: Arc<HashMap<RouteKey, RouteCounts>>,
    statuses: HashMap<RouteKey, BTreeMap<String, u64>>,
    slowest: HashMap<RouteKey, (usize, Exemplar)>,
}

/// What a report is about: the service's routes (`http_server_*`), or the services it
/// calls (`http_client_*`, by `server_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    Routes,
    Dependencies,
}

impl Subject {
    /// Whether a `status` label counts as an error: for a call, also no answer at all.
    fn is_error(self, status: &str) -> bool {
        is_error(status)
            || (self == Subject::Dependencies && matches!(status, "error" | "cancelled"))
    }

    fn windows(self, inner: &Inner) -> &RouteWindows {
        match self {
            Subject::Routes => &inner.route_windows,
            Subject::Dependencies => &inner.dependency_windows,
        }
    }

    /// Calls `f` with each series' group key, status label and snapshot.
    fn for_each_series(self, inner: &Inner, f: &mut dyn FnMut(RouteKey, &str, HistogramSnapshot)) {
        match self {
            Subject::Routes => {
                inner
                    .metrics
                    .http
                    .red
                    .for_each(|[method, route, status], series| {
                        f(
                            (method.to_owned(), route.to_owned()),
                            status,
                            series.duration.snapshot(),
                        )
                    })
            }
            Subject::Dependencies => {
                if let Some(Some(family)) = inner.client_calls.get() {
                    family.for_each(|[_, address, status], h| {
                        f((address.to_owned(), String::new()), status, h.snapshot())
                    });
                }
            }
        }
    }

    fn entry_name(self, key: &RouteKey) -> Name {
        match self {
            Subject::Routes => Name::Route {
                method: key.0.clone(),
                route: key.1.clone(),
            },
            Subject::Dependencies => Name::Dependency {
                server_address: key.0.clone(),
            },
        }
    }
}

/// How an entry is named in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Name {
    Route { method: String, route: String },
    Dependency { server_address: String },
}

/// Whether exemplar `a` (in bucket `a.0`) names a slower request than `b`: a higher
/// bucket, else a larger value (each series keeps only its newest exemplar per bucket,
/// so between statuses the value decides, not the time).
fn slower(a: (usize, &Exemplar), b: (usize, &Exemplar)) -> bool {
    (a.0, a.1.value) > (b.0, b.1.value)
}

fn read_now(inner: &Inner, subject: Subject) -> Now {
    let mut bounds = Vec::new();
    let mut routes = HashMap::new();
    let mut statuses: HashMap<RouteKey, BTreeMap<String, u64>> = HashMap::new();
    let mut slowest: HashMap<RouteKey, (usize, Exemplar)> = HashMap::new();
    subject.for_each_series(inner, &mut |key, status, snap| {
        if bounds.is_empty() {
            bounds = snap.bounds.to_vec();
        }
        let counts: &mut RouteCounts = routes.entry(key.clone()).or_default();
        if counts.cumulative.len() < snap.cumulative.len() {
            counts.cumulative.resize(snap.cumulative.len(), 0);
        }
        for (sum, c) in counts.cumulative.iter_mut().zip(&snap.cumulative) {
            *sum += c;
        }
        let total = snap.cumulative.last().copied().unwrap_or(0);
        if subject.is_error(status) {
            counts.errors += total;
        }
        if total > 0 {
            statuses
                .entry(key.clone())
                .or_default()
                .insert(status.to_owned(), total);
        }
        let highest = snap
            .exemplars
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, e)| e.map(|e| (i, e)));
        if let Some((bucket, e)) = highest {
            let best = slowest.entry(key).or_insert((bucket, e));
            if slower((bucket, &e), (best.0, &best.1)) {
                *best = (bucket, e);
            }
        }
    });
    Now {
        bounds,
        routes: Arc::new(routes),
        statuses,
        slowest,
    }
}

/// The snapshots behind `recent`.
#[derive(Debug, Default)]
pub(crate) struct RouteWindows {
    snapshots: Mutex<VecDeque<Snapshot>>,
}

impl RouteWindows {
    /// Whether a snapshot taken `at` would be kept.
    fn due(&self, at: Instant) -> bool {
        let snaps = self.snapshots.lock();
        Self::due_in(&snaps, at)
    }

    fn due_in(snaps: &VecDeque<Snapshot>, at: Instant) -> bool {
        snaps
            .back()
            .is_none_or(|s| at.saturating_duration_since(s.at) >= SNAPSHOT_EVERY)
    }

    /// Keeps `routes` as a snapshot taken `at` when the newest is at least
    /// [`SNAPSHOT_EVERY`] old; drops stale and surplus ones; returns the baseline
    /// `recent` is measured from, if any.
    fn observe(
        &self,
        at: Instant,
        routes: &Arc<HashMap<RouteKey, RouteCounts>>,
    ) -> Option<Baseline> {
        let mut snaps = self.snapshots.lock();
        snaps.retain(|s| at.saturating_duration_since(s.at) <= SNAPSHOT_MAX_AGE);
        // The newest snapshot at least WINDOW old, else the oldest (at least a second
        // old: a window of nothing says nothing).
        let baseline = snaps
            .iter()
            .rev()
            .find(|s| at.saturating_duration_since(s.at) >= WINDOW)
            .or_else(|| snaps.front())
            .filter(|s| at.saturating_duration_since(s.at) >= Duration::from_secs(1))
            .map(|s| (at.saturating_duration_since(s.at), s.routes.clone()));
        if Self::due_in(&snaps, at) {
            snaps.push_back(Snapshot {
                at,
                routes: routes.clone(),
            });
            while snaps.len() > MAX_SNAPSHOTS {
                snaps.pop_front();
            }
        }
        baseline
    }
}

/// How far back `recent` reaches, and the counts then.
type Baseline = (Duration, Arc<HashMap<RouteKey, RouteCounts>>);

/// Takes a snapshot for `recent` when one is due; called on every `/metrics` scrape.
pub(crate) fn note_scrape(inner: &Inner) {
    let at = Instant::now();
    for subject in [Subject::Routes, Subject::Dependencies] {
        let windows = subject.windows(inner);
        if !windows.due(at) {
            continue;
        }
        let now = read_now(inner, subject);
        windows.observe(at, &now.routes);
    }
}

#[derive(Debug, Serialize)]
struct RoutesReport {
    /// How far back `recent` reaches; absent without an earlier snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    window_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    /// The entries with errors (in `recent`, else since the start), most errors first.
    failing: Vec<Failing>,
    #[serde(flatten)]
    list: List,
}

/// The entries, under a name that says what they are.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum List {
    Routes {
        routes: Vec<RouteReport>,
        routes_omitted: usize,
    },
    Dependencies {
        dependencies: Vec<RouteReport>,
        dependencies_omitted: usize,
    },
}

#[derive(Debug, Serialize)]
struct Failing {
    #[serde(flatten)]
    name: Name,
    errors: u64,
    error_ratio: Option<f64>,
}

/// The most routes listed under `failing`.
const MAX_FAILING_SHOWN: usize = 10;

#[derive(Debug, Serialize)]
struct RouteReport {
    #[serde(skip)]
    key: RouteKey,
    #[serde(flatten)]
    name: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    recent: Option<Figures>,
    since_start: Figures,
    /// Requests per `status` label since the start.
    statuses: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slowest_exemplar: Option<ExemplarReport>,
}

#[derive(Debug, Serialize)]
struct Figures {
    requests: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_second: Option<f64>,
    errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ExemplarReport {
    trace_id: String,
    /// The request's duration.
    ms: f64,
    /// How long ago it finished.
    age_seconds: f64,
    /// `/debug/requests/{trace_id}` when the flight recorder keeps its capture.
    #[serde(skip_serializing_if = "Option::is_none")]
    capture: Option<String>,
}

/// Rounds to the microsecond, in milliseconds.
fn ms(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

/// The `q` quantile of a cumulative histogram, in seconds, as `histogram_quantile`
/// estimates it; `None` without observations.
fn quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let i = cumulative.iter().position(|&c| c as f64 >= rank)?;
    let Some(&upper) = bounds.get(i) else {
        // In `+Inf`: the largest bound is all a histogram can say.
        return bounds.last().copied();
    };
    let (lower, below) = match i {
        0 => (if upper > 0.0 { 0.0 } else { upper }, 0),
        _ => (bounds[i - 1], cumulative[i - 1]),
    };
    let in_bucket = cumulative[i] - below;
    if in_bucket == 0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below as f64) / in_bucket as f64)
}

fn figures(counts: &RouteCounts, bounds: &[f64], window: Option<Duration>) -> Figures {
    let requests = counts.total();
    let q = |q| quantile(q, bounds, &counts.cumulative).map(ms);
    Figures {
        requests,
        per_second: window.map(|w| (requests as f64 / w.as_secs_f64() * 1000.0).round() / 1000.0),
        errors: counts.errors,
        error_ratio: (requests > 0)
            .then(|| (counts.errors as f64 / requests as f64 * 1e4).round() / 1e4),
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
    }
}

fn report(inner: &Inner, subject: Subject) -> RoutesReport {
    let at = Instant::now();
    let now = read_now(inner, subject);
    let baseline = subject.windows(inner).observe(at, &now.routes);
    let wall = SystemTime::now();
    let mut routes: Vec<RouteReport> = now
        .routes
        .iter()
        .map(|(key, counts)| {
            let recent = baseline.as_ref().map(|(window, earlier)| {
                figures(&counts.since(earlier.get(key)), &now.bounds, Some(*window))
            });
            let slowest_exemplar = now.slowest.get(key).map(|(_, e)| ExemplarReport {
                trace_id: e.trace_id.to_string(),
                ms: ms(e.value),
                age_seconds: wall
                    .duration_since(e.time)
                    .map_or(0.0, |d| (d.as_secs_f64() * 10.0).round() / 10.0),
                capture: inner
                    .debug
                    .recorder()
                    .by_trace(&e.trace_id)
                    // Only the capture of this very request (its span), or of the request
                    // this call was made in (the exemplar's time within it): anyone may send
                    // a request later with a debug request's trace id (exemplars on
                    // /metrics show them).
                    .filter(|c| {
                        let at = crate::clock::unix_seconds(e.time);
                        c.span_id == e.span_id.to_string()
                            || (at >= c.time_unix - 0.001
                                && at <= c.time_unix + c.duration_ms / 1000.0 + 0.01)
                    })
                    .map(|_| format!("/debug/requests/{}", e.trace_id)),
            });
            RouteReport {
                key: key.clone(),
                name: subject.entry_name(key),
                recent,
                since_start: figures(counts, &now.bounds, None),
                statuses: now.statuses.get(key).cloned().unwrap_or_default(),
                slowest_exemplar,
            }
        })
        .collect();
    // Recent traffic first, slowest p99 first; then the rest by p99 since the start.
    let sort_key = |r: &RouteReport| {
        let recent = r.recent.as_ref().filter(|f| f.requests > 0);
        (
            recent.is_none(),
            -recent
                .map_or(r.since_start.p99_ms, |f| f.p99_ms)
                .unwrap_or(0.0),
        )
    };
    routes.sort_by(|a, b| {
        let (ka, kb) = (sort_key(a), sort_key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then_with(|| (&a.key.1, &a.key.0).cmp(&(&b.key.1, &b.key.0)))
    });
    let mut failing: Vec<Failing> = routes
        .iter()
        .filter_map(|r| {
            let f = r.recent.as_ref().unwrap_or(&r.since_start);
            (f.errors > 0).then(|| Failing {
                name: r.name.clone(),
                errors: f.errors,
                error_ratio: f.error_ratio,
            })
        })
        .collect();
    // Stable: equal counts keep the order above.
    failing.sort_by_key(|f| std::cmp::Reverse(f.errors));
    failing.truncate(MAX_FAILING_SHOWN);
    let omitted = routes.len().saturating_sub(MAX_ROUTES_SHOWN);
    routes.truncate(MAX_ROUTES_SHOWN);
    RoutesReport {
        window_seconds: baseline
            .as_ref()
            .map(|(w, _)| (w.as_secs_f64() * 10.0).round() / 10.0),
        note: baseline.is_none().then_some(
            "no earlier snapshot to compare with: `recent` appears when this is read again \
             in 10 s or more, or once /metrics has been scraped",
        ),
        failing,
        list: match subject {
            Subject::Routes => List::Routes {
                routes,
                routes_omitted: omitted,
            },
            Subject::Dependencies => List::Dependencies {
                dependencies: routes,
                dependencies_omitted: omitted,
            },
        },
    }
}

/// Registers `routes` and `dependencies`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    for (name, subject) in [
        ("routes", Subject::Routes),
        ("dependencies", Subject::Dependencies),
    ] {
        let weak = std::sync::Arc::downgrade(&diag.inner);
        let _ = diag.state().register(name, move || {
            weak.upgrade().map(|inner| report(&inner, subject))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let bounds = [0.1, 0.5, 1.0];
        // 100 requests: 50 under 0.1 s, 40 in (0.1, 0.5], 10 in (0.5, 1].
        let cumulative = [50, 90, 100, 100];
        assert_eq!(quantile(0.5, &bounds, &cumulative), Some(0.1));
        let p90 = quantile(0.9, &bounds, &cumulative).unwrap();
        assert!((p90 - 0.5).abs() < 1e-12, "{p90}");
        let p99 = quantile(0.99, &bounds, &cumulative).unwrap();
        assert!((p99 - 0.95).abs() < 1e-12, "{p99}");
        assert_eq!(quantile(0.25, &bounds, &cumulative), Some(0.05));
        // Beyond the last bound, the last bound.
        assert_eq!(quantile(0.99, &bounds, &[0, 0, 1, 10]), Some(1.0));
        assert_eq!(quantile(0.5, &bounds, &[0, 0, 0, 0]), None);
    }

    #[test]
    fn errors_are_5xx_and_grpc_server_failures() {
        for s in [
            "500",
            "503",
            "599",
            "UNAVAILABLE",
            "INTERNAL",
            "DEADLINE_EXCEEDED",
        ] {
            assert!(is_error(s), "{s}");
        }
        for s in [
            "200",
            "404",
            "499",
            "5000",
            "5x0",
            "NOT_FOUND",
            "OK",
            "__overflow__",
        ] {
            assert!(!is_error(s), "{s}");
        }
    }

    fn counts(cumulative: &[u64], errors: u64) -> RouteCounts {
        RouteCounts {
            cumulative: cumulative.to_vec(),
            errors,
        }
    }

    #[test]
    fn windows_reach_back_a_minute_and_forget_stale_snapshots() {
        let w = RouteWindows::default();
        let t0 = Instant::now();
        let key = ("GET".to_owned(), "/a".to_owned());
        let at = |secs| t0 + Duration::from_secs(secs);
        let routes = |n| Arc::new(HashMap::from([(key.clone(), counts(&[n, n], 0))]));
        assert!(w.due(t0));
        assert!(w.observe(t0, &routes(1)).is_none(), "nothing earlier");
        // Within SNAPSHOT_EVERY: the first is the baseline, no new snapshot.
        assert!(!w.due(at(5)));
        let (window, _) = w.observe(at(5), &routes(1)).unwrap();
        assert_eq!(window, Duration::from_secs(5));
        assert_eq!(w.snapshots.lock().len(), 1);
        for s in (10..=90).step_by(10) {
            assert!(w.due(at(s)));
            w.observe(at(s), &routes(s));
        }
        assert_eq!(w.snapshots.lock().len(), MAX_SNAPSHOTS);
        let (window, earlier) = w.observe(at(95), &routes(95)).unwrap();
        assert_eq!(
            window,
            Duration::from_secs(65),
            "the newest one a minute old"
        );
        assert_eq!(earlier[&key].total(), 30);
        // Five minutes of silence: everything is stale.
        assert!(w.observe(at(95 + 301), &routes(99)).is_none());
    }

    #[test]
    fn the_slowest_exemplar_is_the_highest_bucket_then_the_largest_value() {
        use crate::trace::{SpanId, TraceId};
        let at = |value: f64, secs: u64| Exemplar {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([1; 8]),
            value,
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        };
        let (old_slow, new_fast) = (at(9.5, 1), at(7.6, 2));
        assert!(slower((5, &old_slow), (5, &new_fast)), "value, not time");
        assert!(!slower((5, &new_fast), (5, &old_slow)));
        assert!(slower((6, &at(0.2, 0)), (5, &old_slow)), "bucket first");
        assert!(!slower((5, &old_slow), (5, &old_slow)));
    }

    #[test]
    fn since_subtracts_bucket_by_bucket() {
        let later = counts(&[5, 9, 12], 4);
        assert_eq!(
            later.since(Some(&counts(&[1, 2, 3], 1))),
            counts(&[4, 7, 9], 3)
        );
        assert_eq!(later.since(None), later);
        // A route that had no series yet then: everything is new.
        assert_eq!(later.since(Some(&RouteCounts::default())), later);
    }
}
