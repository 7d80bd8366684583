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
//! `UNAVAILABLE`, `DATA_LOSS`, as OpenTelemetry counts them), the mean duration (the
//! sum over the count: exact) and p50 / p90 / p99 estimated from the duration
//! histogram's buckets (linear within a bucket, as Prometheus's `histogram_quantile`
//! does; a quantile in the `+Inf` bucket shows the largest bound), with the bucket each
//! lies in (`pNN_gt_ms`, `pNN_le_ms`), twice: `since_start`, and `recent`, the
//! difference from an earlier snapshot. No estimate passes what is known of the span's
//! slowest request: the sum less the lower bounds of all the others' buckets, or its
//! own duration when it was the span's only request, or the only one of the highest
//! bucket and that bucket's exemplar was recorded in the span (a quantile that falls on
//! it is then that duration). Snapshots are taken when the provider is read and when
//! `/metrics` is scraped, at most one every [`SNAPSHOT_EVERY`], [`MAX_SNAPSHOTS`] kept,
//! none older than [`SNAPSHOT_MAX_AGE`]; `recent` covers `window_seconds` back to the
//! newest snapshot at least [`WINDOW`] old (else the oldest there is). With no earlier
//! snapshot (the process's first read, and no scrape), `recent` is absent and `note`
//! says so. Each route also names its slowest exemplar: from the highest bucket that has
//! one, the exemplar with the largest value among the route's statuses (each series
//! keeps the newest request per bucket, so this is a slow request, not always the
//! slowest one), with the path to its capture when it was a debug request the flight
//! recorder still keeps; and, as `recent_exemplar`, the slowest of those recorded in the
//! recent window, when there is one.
//!
//! While the kill switch is on, the middleware counts no request: the `routes` report
//! says so (`kill_switch`), and when its window reaches into time the switch was on,
//! `uncounted_seconds` says how much and `per_second` is over the rest. Calls to
//! dependencies are counted either way.
//!
//! Routes are sorted by recent p99, slowest first (then those without recent traffic,
//! by p99 since start); at most [`MAX_ROUTES_SHOWN`] are listed (`routes_omitted`
//! counts the rest). `failing` lists the (at most 10) routes with errors, most first,
//! with the errors by status, in `recent` when there is a window, else since the start
//! (`window` says which). A snapshot keeps per route a count per bucket, the sum, the
//! errors per status and the newest exemplar's time: bounded by the metric family's
//! label-set cap.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::Serialize;

use crate::Diag;
use crate::diag::Inner;
use crate::metrics::{Exemplar, HistogramSnapshot};
use crate::request::GrpcCode;
use crate::state::kill_switch::KillSwitchNote;

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
    /// The durations' sum, in seconds.
    sum: f64,
    errors: u64,
    /// `errors` by status.
    error_statuses: BTreeMap<String, u64>,
    /// The newest exemplar's time among the route's series when read: an exemplar newer
    /// than a snapshot's was recorded after it (compared with exemplar times, not with
    /// another clock).
    newest_exemplar: Option<SystemTime>,
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
            sum: (self.sum - earlier.sum).max(0.0),
            errors: self.errors.saturating_sub(earlier.errors),
            error_statuses: self
                .error_statuses
                .iter()
                .filter_map(|(status, n)| {
                    let then = earlier.error_statuses.get(status).copied().unwrap_or(0);
                    let n = n.saturating_sub(then);
                    (n > 0).then(|| (status.clone(), n))
                })
                .collect(),
            newest_exemplar: self.newest_exemplar,
        }
    }

    /// Requests per bucket (not cumulative).
    fn per_bucket(&self) -> Vec<u64> {
        let mut below = 0;
        self.cumulative
            .iter()
            .map(|&c| {
                let n = c.saturating_sub(below);
                below = c;
                n
            })
            .collect()
    }
}

type RouteKey = (String, String);

/// The routes' counts at one moment.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    routes: Arc<HashMap<RouteKey, RouteCounts>>,
}

/// What the HTTP metrics hold now, per route; also each route's statuses and exemplars
/// (only needed for the report, not kept in snapshots).
struct Now {
    bounds: Vec<f64>,
    routes: Arc<HashMap<RouteKey, RouteCounts>>,
    statuses: HashMap<RouteKey, BTreeMap<String, u64>>,
    /// Every exemplar of the route's series, with its bucket.
    exemplars: HashMap<RouteKey, Vec<(usize, Exemplar)>>,
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

/// The slowest of `exemplars` (see [`slower`]).
fn slowest_exemplar<'a>(
    exemplars: impl Iterator<Item = &'a (usize, Exemplar)>,
) -> Option<&'a Exemplar> {
    exemplars
        .reduce(|best, e| {
            if slower((e.0, &e.1), (best.0, &best.1)) {
                e
            } else {
                best
            }
        })
        .map(|(_, e)| e)
}

fn read_now(inner: &Inner, subject: Subject) -> Now {
    let mut bounds = Vec::new();
    let mut routes = HashMap::new();
    let mut statuses: HashMap<RouteKey, BTreeMap<String, u64>> = HashMap::new();
    let mut exemplars: HashMap<RouteKey, Vec<(usize, Exemplar)>> = HashMap::new();
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
        counts.sum += snap.sum;
        let total = snap.cumulative.last().copied().unwrap_or(0);
        if subject.is_error(status) && total > 0 {
            counts.errors += total;
            *counts.error_statuses.entry(status.to_owned()).or_default() += total;
        }
        if total > 0 {
            statuses
                .entry(key.clone())
                .or_default()
                .insert(status.to_owned(), total);
        }
        let kept = exemplars.entry(key).or_default();
        for (i, e) in snap.exemplars.iter().enumerate() {
            if let Some(e) = e {
                counts.newest_exemplar = counts.newest_exemplar.max(Some(e.time));
                kept.push((i, *e));
            }
        }
    });
    Now {
        bounds,
        routes: Arc::new(routes),
        statuses,
        exemplars,
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
    /// How much of the window passed with the kill switch on, when any did: no request
    /// was counted then, and `per_second` is over the rest of the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    uncounted_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    /// The kill switch is on, or was during the window (`routes` only: calls to
    /// dependencies are counted either way).
    #[serde(skip_serializing_if = "Option::is_none")]
    kill_switch: Option<KillSwitchNote>,
    /// The duration histogram's bucket bounds: each quantile is an estimate within one
    /// bucket (its `pNN_gt_ms` and `pNN_le_ms`).
    bucket_bounds_ms: Vec<f64>,
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
    /// `errors` by status, over the same span.
    statuses: BTreeMap<String, u64>,
    /// The span `errors` covers: `recent` (the last `window_seconds`) or `since_start`.
    window: &'static str,
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
    /// The slowest exemplar from within the recent window, when it kept one.
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_exemplar: Option<ExemplarReport>,
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
    /// The durations' sum over their count: exact, unlike the quantiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_ms: Option<f64>,
    /// The bucket each quantile estimate lies in: above `_gt_ms`, at most `_le_ms`
    /// (absent for the `+Inf` bucket, where the estimate is the largest bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_gt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_le_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90_gt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90_le_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_gt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_le_ms: Option<f64>,
    /// `errors` by status, for `failing`.
    #[serde(skip)]
    error_statuses: BTreeMap<String, u64>,
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

/// Rounds to a tenth of a second.
fn tenths(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// What is known of the slowest request a window counted, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slowest {
    /// Its duration: the window's only request (the sum), or the only one in the
    /// window's highest bucket, when that bucket's exemplar was recorded in the window.
    Exactly(f64),
    /// No longer than this: the sum, less what each other request took at least (the
    /// lower bound of its bucket).
    AtMost(f64),
}

/// Whether exemplar `e` was recorded in a window that began with a snapshot whose
/// newest exemplar is `after` (`None`: none then, or the window is since the start).
fn recorded_after(e: &Exemplar, after: Option<SystemTime>) -> bool {
    after.is_none_or(|t| e.time > t)
}

/// The least a request in bucket `i` took: its lower bound (durations are never
/// negative).
fn bucket_floor(bounds: &[f64], i: usize) -> f64 {
    match i {
        0 => 0.0,
        _ => bounds.get(i - 1).copied().unwrap_or(0.0).max(0.0),
    }
}

/// What is known of the slowest request among `counts`, a window's, which began when
/// the route's newest exemplar was `after` (see [`recorded_after`]): read from the sum
/// and the exemplars the histogram keeps anyway, nothing on the request path. (The
/// buckets and the sum are read one by one: a request finishing meanwhile may show in
/// one and not the other, so this can be off by that request; an estimate stays in its
/// bucket whatever it says.)
fn slowest_of(
    counts: &RouteCounts,
    bounds: &[f64],
    exemplars: &[(usize, Exemplar)],
    after: Option<SystemTime>,
) -> Option<Slowest> {
    let total = counts.total();
    if total == 0 {
        return None;
    }
    if total == 1 {
        return Some(Slowest::Exactly(counts.sum.max(0.0)));
    }
    let per_bucket = counts.per_bucket();
    let top = per_bucket.iter().rposition(|&n| n > 0)?;
    if per_bucket[top] == 1 {
        // The newest exemplar of that bucket, if recorded in the window, is of its one
        // request there.
        let newest = exemplars
            .iter()
            .filter(|(b, _)| *b == top)
            .map(|(_, e)| e)
            .max_by_key(|e| e.time);
        if let Some(e) = newest
            && recorded_after(e, after)
        {
            return Some(Slowest::Exactly(e.value));
        }
    }
    let others: f64 = per_bucket
        .iter()
        .enumerate()
        .map(|(i, &n)| n as f64 * bucket_floor(bounds, i))
        .sum::<f64>()
        - bucket_floor(bounds, top);
    Some(Slowest::AtMost(counts.sum - others))
}

/// A quantile estimated from a histogram, in seconds, and the bucket it lies in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    value: f64,
    /// The bucket's lower bound (0 for the first).
    gt: f64,
    /// The bucket's upper bound; `None` for `+Inf`.
    le: Option<f64>,
}

/// The `q` quantile of a cumulative histogram, as `histogram_quantile` estimates it
/// (linear within the bucket; in `+Inf`, the largest bound), except that no estimate
/// passes what is known of the slowest request, and a quantile that falls on the
/// slowest request is its duration when that is known. `None` without observations.
fn quantile(
    q: f64,
    bounds: &[f64],
    cumulative: &[u64],
    slowest: Option<Slowest>,
) -> Option<Estimate> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let i = cumulative.iter().position(|&c| c as f64 >= rank)?;
    let upper = bounds.get(i).copied();
    let lower = match (i, upper) {
        (0, Some(u)) if u <= 0.0 => u,
        (0, _) => 0.0,
        _ => bounds[i - 1],
    };
    let estimate = |value| Estimate {
        value,
        gt: lower,
        le: upper,
    };
    let inside = |v: f64| v >= lower && upper.is_none_or(|u| v <= u);
    if let Some(Slowest::Exactly(v)) = slowest
        && rank > (total - 1) as f64
        && inside(v)
    {
        return Some(estimate(v));
    }
    let Some(upper) = upper else {
        // In `+Inf`: the largest bound is all a histogram can say.
        return Some(estimate(lower));
    };
    // Interpolate up to the slowest request when it is in this bucket, not past it.
    let top = match slowest {
        Some(Slowest::Exactly(v) | Slowest::AtMost(v)) if inside(v) => v,
        _ => upper,
    };
    let below = match i {
        0 => 0,
        _ => cumulative[i - 1],
    };
    let in_bucket = cumulative[i] - below;
    if in_bucket == 0 {
        return Some(estimate(top));
    }
    Some(estimate(
        lower + (top - lower) * (rank - below as f64) / in_bucket as f64,
    ))
}

/// Rates over less counted time than this are noise: not reported.
const MIN_COUNTED: Duration = Duration::from_secs(1);

/// The figures of `counts`; `counted` is the time they were counted over, for a rate.
fn figures(
    counts: &RouteCounts,
    bounds: &[f64],
    counted: Option<Duration>,
    slowest: Option<Slowest>,
) -> Figures {
    let requests = counts.total();
    let q = |q| quantile(q, bounds, &counts.cumulative, slowest);
    let (p50, p90, p99) = (q(0.5), q(0.9), q(0.99));
    Figures {
        requests,
        per_second: counted
            .filter(|c| *c >= MIN_COUNTED)
            .map(|c| (requests as f64 / c.as_secs_f64() * 1000.0).round() / 1000.0),
        errors: counts.errors,
        error_ratio: (requests > 0)
            .then(|| (counts.errors as f64 / requests as f64 * 1e4).round() / 1e4),
        p50_ms: p50.map(|e| ms(e.value)),
        p90_ms: p90.map(|e| ms(e.value)),
        p99_ms: p99.map(|e| ms(e.value)),
        mean_ms: (requests > 0).then(|| ms(counts.sum / requests as f64)),
        p50_gt_ms: p50.map(|e| ms(e.gt)),
        p50_le_ms: p50.and_then(|e| e.le).map(ms),
        p90_gt_ms: p90.map(|e| ms(e.gt)),
        p90_le_ms: p90.and_then(|e| e.le).map(ms),
        p99_gt_ms: p99.map(|e| ms(e.gt)),
        p99_le_ms: p99.and_then(|e| e.le).map(ms),
        error_statuses: counts.error_statuses.clone(),
    }
}

/// The report read at `at` (`wall` on the wall clock).
fn report_at(inner: &Inner, subject: Subject, at: Instant, wall: SystemTime) -> RoutesReport {
    let now = read_now(inner, subject);
    let baseline = subject.windows(inner).observe(at, &now.routes);
    let window = baseline.as_ref().map(|(w, _)| *w);
    // While the kill switch is on the middleware counts no request (calls to
    // dependencies are counted all the same): rates are over the rest of the window.
    let uncounted = match (subject, window) {
        (Subject::Routes, Some(w)) => inner
            .kill_switch
            .uncounted(at.checked_sub(w).unwrap_or(at), at),
        _ => Duration::ZERO,
    };
    let counted = window.map(|w| w.saturating_sub(uncounted));
    // The captures kept, read once (not redacted: only ids, spans and times are looked at).
    let captures = inner.debug.recorder().recent_stored();
    let exemplar_report = |e: &Exemplar| ExemplarReport {
        trace_id: e.trace_id.to_string(),
        ms: ms(e.value),
        age_seconds: wall
            .duration_since(e.time)
            .map_or(0.0, |d| (d.as_secs_f64() * 10.0).round() / 10.0),
        // Only the capture of this very request (its span), or for a call, of the request
        // it was made in (the exemplar's time within it): anyone may send a request later
        // with a debug request's trace id (exemplars on /metrics show them). Linked by its
        // debug id: the trace may have other captures.
        capture: captures
            .iter()
            .find(|c| {
                c.trace_id == e.trace_id
                    && (c.span_id == e.span_id
                        || (subject == Subject::Dependencies && {
                            let at = crate::clock::unix_seconds(e.time);
                            at >= c.time_unix() - 0.001
                                && at <= c.time_unix() + c.duration_ms() / 1000.0 + 0.01
                        }))
            })
            .map(|c| format!("/debug/requests/{}", c.id)),
    };
    let mut routes: Vec<RouteReport> = now
        .routes
        .iter()
        .map(|(key, counts)| {
            let exemplars = now.exemplars.get(key).map_or(&[][..], Vec::as_slice);
            // The route then, if it had any requests: what `recent` leaves out.
            let earlier = baseline.as_ref().map(|(_, earlier)| earlier.get(key));
            let after = earlier.flatten().and_then(|c| c.newest_exemplar);
            let recent = earlier.map(|earlier| {
                let counts = counts.since(earlier);
                let slowest = slowest_of(&counts, &now.bounds, exemplars, after);
                figures(&counts, &now.bounds, counted, slowest)
            });
            let since_start = figures(
                counts,
                &now.bounds,
                None,
                slowest_of(counts, &now.bounds, exemplars, None),
            );
            let recent_exemplar = earlier.and_then(|_| {
                slowest_exemplar(exemplars.iter().filter(|(_, e)| recorded_after(e, after)))
            });
            RouteReport {
                key: key.clone(),
                name: subject.entry_name(key),
                recent,
                since_start,
                statuses: now.statuses.get(key).cloned().unwrap_or_default(),
                slowest_exemplar: slowest_exemplar(exemplars.iter()).map(exemplar_report),
                recent_exemplar: recent_exemplar.map(exemplar_report),
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
            let (f, window) = match &r.recent {
                Some(f) => (f, "recent"),
                None => (&r.since_start, "since_start"),
            };
            (f.errors > 0).then(|| Failing {
                name: r.name.clone(),
                errors: f.errors,
                error_ratio: f.error_ratio,
                statuses: f.error_statuses.clone(),
                window,
            })
        })
        .collect();
    // Stable: equal counts keep the order above.
    failing.sort_by_key(|f| std::cmp::Reverse(f.errors));
    failing.truncate(MAX_FAILING_SHOWN);
    let omitted = routes.len().saturating_sub(MAX_ROUTES_SHOWN);
    routes.truncate(MAX_ROUTES_SHOWN);
    RoutesReport {
        window_seconds: window.map(tenths),
        uncounted_seconds: (!uncounted.is_zero()).then(|| tenths(uncounted)),
        note: baseline.is_none().then_some(
            "no earlier snapshot to compare with: `recent` appears when this is read again \
             after a second or more, or once /metrics has been scraped",
        ),
        kill_switch: match subject {
            Subject::Routes => inner.kill_switch.window_note(at, window, uncounted),
            Subject::Dependencies => None,
        },
        bucket_bounds_ms: now.bounds.iter().map(|b| ms(*b)).collect(),
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
            weak.upgrade()
                .map(|inner| report_at(&inner, subject, Instant::now(), SystemTime::now()))
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
        let q = |q, cumulative: &[u64]| quantile(q, &bounds, cumulative, None).map(|e| e.value);
        assert_eq!(q(0.5, &cumulative), Some(0.1));
        let p90 = q(0.9, &cumulative).unwrap();
        assert!((p90 - 0.5).abs() < 1e-12, "{p90}");
        let p99 = q(0.99, &cumulative).unwrap();
        assert!((p99 - 0.95).abs() < 1e-12, "{p99}");
        assert_eq!(q(0.25, &cumulative), Some(0.05));
        // Beyond the last bound, the last bound.
        assert_eq!(q(0.99, &[0, 0, 1, 10]), Some(1.0));
        assert_eq!(q(0.5, &[0, 0, 0, 0]), None);
    }

    /// An estimate says which bucket it lies in (the first: "under its bound";
    /// `+Inf`: "over the last"), and the mean, exact, stands beside it.
    #[test]
    fn estimates_name_their_bucket_and_the_mean_is_exact() {
        let bounds = crate::metrics::LATENCY_BUCKETS;
        // 1000 requests of 0.029 ms: all in the first bucket (up to 5 ms).
        let mut cumulative = vec![1000; bounds.len() + 1];
        cumulative[0] = 1000;
        let fast = RouteCounts {
            cumulative,
            sum: 1000.0 * 0.029e-3,
            ..Default::default()
        };
        let f = figures(&fast, bounds, None, slowest_of(&fast, bounds, &[], None));
        assert_eq!(f.mean_ms, Some(0.029));
        assert_eq!((f.p50_gt_ms, f.p50_le_ms), (Some(0.0), Some(5.0)));
        assert_eq!((f.p99_gt_ms, f.p99_le_ms), (Some(0.0), Some(5.0)));
        // Over the last bound: the last bound, and no upper one.
        let mut cumulative = vec![0; bounds.len() + 1];
        cumulative[bounds.len()] = 17;
        let slow = RouteCounts {
            cumulative,
            sum: 17.0 * 10.2,
            ..Default::default()
        };
        let f = figures(&slow, bounds, None, slowest_of(&slow, bounds, &[], None));
        assert_eq!(
            (f.p99_ms, f.p99_gt_ms, f.p99_le_ms),
            (Some(10_000.0), Some(10_000.0), None)
        );
        assert_eq!(f.mean_ms, Some(10_200.0));
        let json = serde_json::to_value(&f).unwrap();
        assert!(json.get("p99_le_ms").is_none(), "{json}");
        assert!(json.get("error_statuses").is_none(), "{json}");
    }

    /// No estimate passes the slowest request when that is known, and one that
    /// falls on it is its duration.
    #[test]
    fn estimates_stop_at_the_slowest_request() {
        let bounds = [0.25, 1.0, 2.5];
        let e = |value: f64, secs: u64| {
            (
                2,
                Exemplar {
                    trace_id: crate::trace::TraceId([1; 16]),
                    span_id: crate::trace::SpanId([1; 8]),
                    value,
                    time: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
                },
            )
        };
        // A 0.2 s request and a 1.5 s one: histogram_quantile says p99 = 2.47 s.
        let two = RouteCounts {
            cumulative: vec![1, 1, 2, 2],
            sum: 1.7,
            ..Default::default()
        };
        let p99 = |counts: &RouteCounts, slowest| {
            quantile(0.99, &bounds, &counts.cumulative, slowest).map(|e| e.value)
        };
        let uncapped = p99(&two, None).unwrap();
        assert!((uncapped - 2.47).abs() < 1e-9, "{uncapped}");
        // The 1.5 s request's exemplar, newer than the newest when the window began:
        // exactly it.
        let after = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let known = slowest_of(&two, &bounds, &[e(1.5, 130)], Some(after));
        assert_eq!(known, Some(Slowest::Exactly(1.5)));
        assert_eq!(p99(&two, known), Some(1.5));
        // The bucket's exemplar from before the window (the 1.5 s request was not
        // sampled): only the sum bounds it (1.7 s less the 0 s the other took at least).
        for secs in [50, 100] {
            let bound = slowest_of(&two, &bounds, &[e(1.5, secs)], Some(after));
            assert_eq!(bound, Some(Slowest::AtMost(1.7)), "{secs}");
        }
        // Three requests of 1.1, 1.2 and 1.3 s: none took over 3.6 - 2 × 1 = 1.6 s.
        let three = RouteCounts {
            cumulative: vec![0, 0, 3, 3],
            sum: 3.6,
            ..Default::default()
        };
        let bound = slowest_of(&three, &bounds, &[], None);
        assert!(
            matches!(bound, Some(Slowest::AtMost(b)) if (b - 1.6).abs() < 1e-9),
            "{bound:?}"
        );
        let capped = p99(&three, bound).unwrap();
        assert!((capped - 1.594).abs() < 1e-9, "{capped}");
        assert!(p99(&three, None).unwrap() > 2.4, "without: up to the bound");
        // One request: the sum is its duration.
        let one = RouteCounts {
            cumulative: vec![0, 1, 1, 1],
            sum: 0.3,
            ..Default::default()
        };
        let only = slowest_of(&one, &bounds, &[], None);
        assert_eq!(only, Some(Slowest::Exactly(0.3)));
        assert_eq!(
            quantile(0.5, &bounds, &one.cumulative, only),
            Some(Estimate {
                value: 0.3,
                gt: 0.25,
                le: Some(1.0)
            })
        );
        // What is known never moves an estimate out of its bucket (a read racing a
        // request can make the sum lag the buckets).
        let e = quantile(0.99, &bounds, &three.cumulative, Some(Slowest::AtMost(0.5))).unwrap();
        assert!(e.value > 1.0 && e.value <= 2.5, "{e:?}");
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
            ..Default::default()
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

    /// The sum (for the mean) and the errors by status (for `failing`) are over the
    /// window too.
    #[test]
    fn since_subtracts_the_sum_and_each_error_status() {
        let with = |sum: f64, statuses: &[(&str, u64)]| RouteCounts {
            cumulative: vec![0, 9],
            sum,
            errors: statuses.iter().map(|(_, n)| n).sum(),
            error_statuses: statuses
                .iter()
                .map(|(s, n)| ((*s).to_owned(), *n))
                .collect(),
            newest_exemplar: None,
        };
        let window = with(3.5, &[("500", 2), ("503", 7)]).since(Some(&with(1.0, &[("500", 2)])));
        assert_eq!(window.sum, 2.5);
        assert_eq!(window.errors, 7);
        assert_eq!(
            window.error_statuses,
            BTreeMap::from([("503".to_owned(), 7)]),
            "a status with no new errors is left out"
        );
    }

    use crate::metrics::ExemplarTime;
    use crate::trace::{SpanId, TraceContext, TraceId};

    /// Records a request of `secs` on `method route` with `status`, sampled, finished
    /// at `at`.
    fn record(diag: &Diag, [method, route, status]: [&str; 3], secs: f64, n: u8, at: SystemTime) {
        let trace = TraceContext {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            sampled: true,
        };
        diag.inner
            .metrics
            .http
            .red
            .with([method, route, status])
            .duration
            .observe_with_exemplar(secs, &trace, ExemplarTime::from_system_time(at));
    }

    fn json(report: &RoutesReport) -> serde_json::Value {
        serde_json::to_value(report).unwrap()
    }

    fn route<'a>(v: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == path)
            .unwrap_or_else(|| panic!("no {path}: {v:#}"))
    }

    /// On a whole report: the recent window's estimates stop at its
    /// slowest request, its own exemplar is preferred to an older slower one, and a
    /// failing route names its error statuses and says they are the window's.
    #[test]
    fn the_recent_window_has_its_own_estimates_exemplar_and_statuses() {
        let diag = Diag::builder().build().unwrap();
        let (t0, wall0) = (Instant::now(), SystemTime::now());
        let secs = |s: u64| Duration::from_secs(s);
        // Ten minutes ago, a 4 s request.
        record(
            &diag,
            ["GET", "/products/{id}", "200"],
            4.0,
            1,
            wall0 - secs(600),
        );
        let first = json(&report_at(&diag.inner, Subject::Routes, t0, wall0));
        assert!(first.get("window_seconds").is_none());
        assert_eq!(first["failing"], serde_json::json!([]));
        // Then, within the window: 0.2 s and 1.4 s on products; checkout failing fast.
        record(
            &diag,
            ["GET", "/products/{id}", "200"],
            0.2,
            2,
            wall0 + secs(30),
        );
        record(
            &diag,
            ["GET", "/products/{id}", "200"],
            1.4,
            3,
            wall0 + secs(40),
        );
        for (i, status) in ["503", "503", "503", "500", "200", "200"]
            .into_iter()
            .enumerate()
        {
            record(
                &diag,
                ["POST", "/checkout", status],
                0.03e-3,
                10 + i as u8,
                wall0 + secs(50),
            );
        }
        let v = json(&report_at(
            &diag.inner,
            Subject::Routes,
            t0 + secs(61),
            wall0 + secs(61),
        ));
        assert_eq!(v["window_seconds"], 61.0);
        let products = route(&v, "/products/{id}");
        let recent = &products["recent"];
        assert_eq!(recent["requests"], 2);
        // Interpolated to the bucket's bound this was 2470 ms; the slowest took 1400.
        assert_eq!(recent["p99_ms"], 1400.0, "{products:#}");
        assert_eq!(
            (&recent["p99_gt_ms"], &recent["p99_le_ms"]),
            (&1000.0.into(), &2500.0.into())
        );
        assert_eq!(recent["mean_ms"], 800.0);
        assert_eq!(products["since_start"]["p99_ms"], 4000.0);
        // The old 4 s request is still the slowest kept; the window's own is preferred.
        assert_eq!(products["slowest_exemplar"]["ms"], 4000.0);
        assert_eq!(products["slowest_exemplar"]["age_seconds"], 661.0);
        assert_eq!(products["recent_exemplar"]["ms"], 1400.0);
        assert_eq!(
            products["recent_exemplar"]["trace_id"],
            TraceId([3; 16]).to_string()
        );
        assert_eq!(products["recent_exemplar"]["age_seconds"], 21.0);
        let checkout = &route(&v, "/checkout")["recent"];
        assert_eq!(checkout["mean_ms"], 0.03);
        assert_eq!(
            (&checkout["p50_gt_ms"], &checkout["p50_le_ms"]),
            (&0.0.into(), &5.0.into())
        );
        assert_eq!(
            v["failing"],
            serde_json::json!([{"method": "POST", "route": "/checkout", "errors": 4,
                "error_ratio": 0.6667, "statuses": {"500": 1, "503": 3}, "window": "recent"}])
        );
        assert_eq!(v["bucket_bounds_ms"][0], 5.0);
        let text = crate::state::text::render("routes", &v).unwrap();
        assert!(
            text.contains(
                "\nfailing  POST /checkout: 503×3 500×1 (66.7% of its requests) in the last 61.0 s\n"
            ),
            "{text}"
        );
    }

    /// Rates are over the part of the window diag counted, and the report says
    /// the kill switch is on, or was.
    #[test]
    fn a_window_the_kill_switch_was_on_for_counts_rates_over_the_rest() {
        let diag = Diag::builder().build().unwrap();
        let inner = &diag.inner;
        let (t0, wall0) = (Instant::now(), SystemTime::now());
        let secs = |s: u64| Duration::from_secs(s);
        let at = |s: u64| (t0 + secs(s), wall0 + secs(s));
        let read = |s: u64| {
            let (t, wall) = at(s);
            json(&report_at(inner, Subject::Routes, t, wall))
        };
        assert!(read(0).get("kill_switch").is_none());
        let (on, on_wall) = at(1);
        assert!(inner.kill_switch.set(&inner.disabled, true, on, on_wall));
        let (off, off_wall) = at(61);
        assert!(inner.kill_switch.set(&inner.disabled, false, off, off_wall));
        for n in 0..30 {
            record(&diag, ["GET", "/a", "200"], 0.01, n, wall0 + secs(62));
        }
        let v = read(63);
        assert_eq!(v["window_seconds"], 63.0);
        assert_eq!(v["uncounted_seconds"], 60.0);
        // 30 requests in the 3 s counted, not 30 over 63 s (0.48/s).
        assert_eq!(route(&v, "/a")["recent"]["per_second"], 10.0, "{v:#}");
        assert_eq!(v["kill_switch"]["disabled"], false);
        let note = v["kill_switch"]["note"].as_str().unwrap();
        assert!(
            note.starts_with("diag was disabled for 60.0 s of this 63.0 s window, until "),
            "{note}"
        );
        let text = crate::state::text::render("routes", &v).unwrap();
        assert!(
            text.starts_with("routes   recent: the last 63.0 s, of which 3.0 s counted"),
            "{text}"
        );
        assert!(text.contains(&format!("\nnote     {note}\n")), "{text}");

        // On again: said, and the window's rate is over what was counted.
        let (on, on_wall) = at(70);
        assert!(inner.kill_switch.set(&inner.disabled, true, on, on_wall));
        let v = read(75);
        assert_eq!(v["kill_switch"]["disabled"], true);
        assert_eq!(v["kill_switch"]["seconds_ago"], 5.0);
        let note = v["kill_switch"]["note"].as_str().unwrap();
        assert!(note.starts_with("diag disabled since "), "{note}");
        assert!(
            note.ends_with(" (5.0 s ago): requests are not counted"),
            "{note}"
        );
        assert_eq!(
            (&v["window_seconds"], &v["uncounted_seconds"]),
            (&75.0.into(), &65.0.into())
        );
        assert_eq!(route(&v, "/a")["recent"]["per_second"], 3.0);
        // Calls to dependencies are counted whatever the switch: nothing to say there.
        let (t, wall) = at(76);
        let deps = json(&report_at(inner, Subject::Dependencies, t, wall));
        assert!(deps.get("kill_switch").is_none() && deps.get("uncounted_seconds").is_none());
    }
}
