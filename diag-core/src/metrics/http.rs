//! The HTTP server RED metrics (rate, errors, duration), named after OpenTelemetry's
//! HTTP semantic conventions in Prometheus style:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_server_request_duration_seconds` | histogram, exemplars | `method`, `route`, `status` |
//! | `http_server_requests_total` | counter, exemplar | `method`, `route`, `status` |
//! | `http_server_active_requests` | gauge | `method`, `route` |
//! | `http_server_requests_abandoned_total` | counter | `method`, `route` |
//!
//! The duration runs from the request's arrival to its response head (a gRPC call's: to
//! its trailers); a streaming body is not in it. A request whose client went away before
//! its response head is in no duration or status series: it is counted as abandoned (a
//! load balancer's timeouts show there, not in the p99).
//!
//! - `method`: one of the methods HTTP defines; anything else is `_OTHER` (as OTel does),
//!   so a client cannot mint label values.
//! - `route`: the route template (`/products/{id}`), or
//!   [`UNMATCHED_ROUTE`](crate::request::UNMATCHED_ROUTE) when none matched.
//! - `status`: the numeric code as a string (`"200"`, `"503"`). Codes are a bounded
//!   set, and during an incident the exact code matters (a 502 from the proxy and a
//!   503 from the load shedder are different stories; a `5xx` class would merge them).
//!   Classes are one `sum by` away in PromQL.
//!   A gRPC call (see [`Diag::begin_grpc`](crate::Diag::begin_grpc)) is labelled with
//!   its gRPC status name instead (`"OK"`, `"UNAVAILABLE"`): its HTTP status is always
//!   200.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::Histogram;
use super::active::ActiveCount;
use super::encode::{Encoder, Kind};
use super::exemplar::ExemplarTime;
use super::exemplar::{Exemplar, newest};
use super::family::{Family, OverflowNotifier, SeriesRef};
use super::histogram::HistogramSnapshot;
use super::registry::FamilyDrops;
use super::route_hint;
use crate::clock::MonoTime;
use crate::trace::TraceContext;

/// The duration histogram's name.
pub const DURATION: &str = "http_server_request_duration_seconds";
/// The request counter's family name (exposed as `http_server_requests_total`).
pub const REQUESTS: &str = "http_server_requests";
/// The in-flight gauge's name.
pub const ACTIVE: &str = "http_server_active_requests";
/// The abandoned-requests counter's family name (exposed as
/// `http_server_requests_abandoned_total`): requests whose client went away before the
/// response head.
pub const ABANDONED: &str = "http_server_requests_abandoned";

/// The `method` label for a request method: the method itself when HTTP defines it
/// (case-sensitive, as methods are), otherwise `_OTHER`.
///
/// ```
/// use diag_core::metrics::method_label;
/// assert_eq!(method_label("GET"), "GET");
/// assert_eq!(method_label("get"), "_OTHER");
/// assert_eq!(method_label("BREW"), "_OTHER");
/// ```
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        "QUERY" => "QUERY",
        _ => "_OTHER",
    }
}

/// What a request's `status` label says: its HTTP status code (`"200"`), or for a gRPC
/// call its gRPC status name (`"OK"`, `"NOT_FOUND"`; the HTTP status of a gRPC call is
/// 200 whatever happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Http(u16),
    Grpc(crate::request::GrpcCode),
}

impl Outcome {
    /// The key the per-route memo remembers the series under: HTTP codes are below
    /// 1,000, gRPC codes are stored above it.
    #[inline]
    fn memo_key(self) -> u16 {
        match self {
            Outcome::Http(status) => status,
            Outcome::Grpc(code) => 1000 + u16::from(code.0),
        }
    }

    fn label(self, buf: &mut itoa::Buffer) -> &str {
        match self {
            Outcome::Http(status) => buf.format(status),
            Outcome::Grpc(code) => code.name(),
        }
    }
}

/// One `(method, route, status)` series. `http_server_requests_total` is the
/// histogram's count, and its exemplar the newest of the histogram's bucket exemplars
/// (the last sampled request's), so a request updates one metric, not two: a separate
/// counter cost every request its own cache lines for the same number.
#[derive(Debug)]
pub(crate) struct RedSeries {
    pub(crate) duration: Histogram,
}

/// A series' request count and newest exemplar, as `http_server_requests_total` shows
/// them (the exemplar's value is the increment, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RequestCount {
    pub(crate) count: u64,
    pub(crate) exemplar: Option<Exemplar>,
}

impl RequestCount {
    fn of(duration: &HistogramSnapshot) -> RequestCount {
        let exemplar = duration
            .exemplars
            .iter()
            .copied()
            .fold(None, newest)
            .map(|e| Exemplar { value: 1.0, ..e });
        RequestCount {
            count: duration.cumulative.last().copied().unwrap_or(0),
            exemplar,
        }
    }
}

impl RedSeries {
    /// The count and exemplar of `http_server_requests_total` for this series.
    pub(crate) fn requests(&self) -> RequestCount {
        RequestCount::of(&self.duration.snapshot())
    }
}

/// Requests, all unmatched, after which diag says that its middleware seems to get no
/// route templates (see [`HttpMetrics::only_unmatched`]).
pub(crate) const UNMATCHED_HINT_AFTER: u64 = 100;

/// How many `(status, series)` pairs a route remembers: a route answers with a handful
/// of statuses; one it forgot is found by a normal lookup.
const STATUS_MEMO: usize = 4;

/// The in-flight gauge of one `(method, route)` series, and what the request path
/// remembers about the pair so it hashes the labels once per request: the `(method,
/// route, status)` series it finished with lately, and the in-flight tracker's index.
/// Label sets are never removed, so a remembered series stays right; folded (overflow)
/// series are never remembered, so every folded observation is still counted.
#[derive(Debug)]
pub(crate) struct RouteSeries {
    pub(crate) active: ActiveCount,
    /// Requests of the pair whose client went away before the response head.
    abandoned: AtomicU64,
    /// `(outcome's memo key + 1) << 32 | red series index` ([`Outcome::memo_key`]: the
    /// HTTP status, or 1,000 + a gRPC code); 0 is empty.
    by_status: [AtomicU64; STATUS_MEMO],
    /// The in-flight tracker's route index, [`ROUTE_UNKNOWN`] until found.
    pub(crate) in_flight_route: AtomicU32,
}

/// `RouteSeries::in_flight_route` before the first request of the pair finds it.
pub(crate) const ROUTE_UNKNOWN: u32 = u32::MAX;

impl RouteSeries {
    fn new() -> Self {
        RouteSeries {
            active: ActiveCount::default(),
            abandoned: AtomicU64::new(0),
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            in_flight_route: AtomicU32::new(ROUTE_UNKNOWN),
        }
    }

    fn remembered(&self, key: u16) -> Option<SeriesRef> {
        let tag = (u64::from(key) + 1) << 32;
        self.by_status.iter().find_map(|slot| {
            let v = slot.load(Ordering::Relaxed);
            (v & !u64::from(u32::MAX) == tag).then(|| SeriesRef::from_index(v as u32))
        })
    }

    fn remember(&self, key: u16, series: SeriesRef) {
        let Some(index) = series.index() else { return };
        let packed = (u64::from(key) + 1) << 32 | u64::from(index);
        // The first free slot, else the key's own slot (last writer wins).
        let slot = self
            .by_status
            .iter()
            .find(|s| s.load(Ordering::Relaxed) == 0)
            .unwrap_or(&self.by_status[usize::from(key) % STATUS_MEMO]);
        slot.store(packed, Ordering::Relaxed);
    }
}

/// The HTTP server metrics of one [`Diag`](crate::Diag).
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    pub(crate) red: Family<RedSeries, 3>,
    pub(crate) active: Family<RouteSeries, 2>,
    /// Whether the WARN of [`unmatched_hint`](Self::unmatched_hint) was logged, and
    /// whether a request with a route was seen (series stay: it is for good).
    unmatched_warned: std::sync::atomic::AtomicBool,
    routed_seen: std::sync::atomic::AtomicBool,
}

impl HttpMetrics {
    pub(crate) fn new(buckets: Arc<[f64]>, cap: usize, notifier: &Arc<OverflowNotifier>) -> Self {
        HttpMetrics {
            red: Family::new(
                DURATION,
                ["method", "route", "status"],
                cap,
                notifier.clone(),
                move || RedSeries {
                    duration: Histogram::with_bounds(buckets.clone()),
                },
            ),
            active: Family::new(
                ACTIVE,
                ["method", "route"],
                cap,
                notifier.clone(),
                RouteSeries::new,
            ),
            unmatched_warned: std::sync::atomic::AtomicBool::new(false),
            routed_seen: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A request arrived: counts it as active and returns its `(method, route)` series.
    pub(crate) fn begin(&self, method: &'static str, route: &str) -> SeriesRef {
        let series = self.route_series(method, route);
        self.active.metric(series).active.inc();
        series
    }

    /// The `(method, route)` series: by the route string's address when this thread
    /// has seen it (confirmed against the series' labels), else by a label lookup.
    fn route_series(&self, method: &'static str, route: &str) -> SeriesRef {
        let owner = self as *const HttpMetrics as usize;
        if let Some(hinted) = route_hint::lookup(owner, method, route)
            && self.active.labels(hinted) == [method, route]
        {
            return hinted;
        }
        let series = self.active.series([method, route]);
        route_hint::remember(owner, method, route, series);
        series
    }

    /// Where the request path remembers the in-flight tracker's index of this series'
    /// `(method, route)`; `None` for the overflow series (many routes share it).
    pub(crate) fn in_flight_memo(&self, active: SeriesRef) -> Option<&AtomicU32> {
        active
            .index()
            .map(|_| &self.active.metric(active).in_flight_route)
    }

    /// The request ended without a response (guard dropped): off the gauge, and
    /// counted as abandoned.
    pub(crate) fn abandon(&self, active: SeriesRef) {
        let route = self.active.metric(active);
        route.active.dec();
        route.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// The response head is ready (for a gRPC call whose status comes in trailers: the
    /// call is over): duration and count under the outcome's `status` label, with the
    /// trace as exemplar when sampled. Returns the clock reading the duration ends at.
    pub(crate) fn finish(
        &self,
        active: SeriesRef,
        outcome: Outcome,
        start: MonoTime,
        trace: &TraceContext,
    ) -> MonoTime {
        let now = MonoTime::now();
        let route = self.active.metric(active);
        route.active.dec();
        let series = if active == SeriesRef::OVERFLOW {
            // The route is already folded away; keep the whole series folded too.
            self.red.fold()
        } else if let Some(series) = route.remembered(outcome.memo_key()) {
            series
        } else {
            let [method, route_label] = self.active.labels(active);
            let mut label = itoa::Buffer::new();
            let series = self
                .red
                .series([method, route_label, outcome.label(&mut label)]);
            route.remember(outcome.memo_key(), series);
            series
        };
        self.record(series, now.nanos_since(start), now, trace);
        now
    }

    /// Moves a request counted as active under `active` to its real `route` (created
    /// now), once that route is known to exist (see [`Diag::begin_grpc`]); returns the
    /// new series.
    ///
    /// [`Diag::begin_grpc`]: crate::Diag::begin_grpc
    pub(crate) fn learn(&self, active: SeriesRef, route: &str) -> SeriesRef {
        let [method, _] = self.active.labels(active);
        let learned = self.active.series([method, route]);
        self.active.metric(learned).active.inc();
        self.active.metric(active).active.dec();
        learned
    }

    /// A known route's `(method, route)` series, counted as active; `None` (nothing
    /// created) for a pair no request has been recorded under.
    pub(crate) fn begin_known(&self, method: &'static str, route: &str) -> Option<SeriesRef> {
        let series = self.active.find([method, route])?;
        self.active.metric(series).active.inc();
        Some(series)
    }

    #[inline(always)]
    fn record(&self, series: SeriesRef, nanos: u64, now: MonoTime, trace: &TraceContext) {
        let red = self.red.metric(series);
        let secs = nanos as f64 * 1e-9;
        // No exemplar (nor its timestamp) for an unsampled trace.
        let exemplar = trace.sampled.then(|| (trace, ExemplarTime::from_mono(now)));
        red.duration.record(secs, exemplar);
    }

    pub(crate) fn encode(&self, enc: &mut Encoder) {
        enc.family(
            DURATION,
            "Duration of HTTP server requests, from arrival to the response head (a gRPC call: to its trailers).",
            Kind::Histogram,
        );
        // One snapshot per series for both families (the counter is the histogram's
        // count), taken in one walk, so the two agree in every scrape.
        let mut counts = Vec::with_capacity(self.red.len());
        self.red.for_each(|labels, s| {
            let [method, route, status] = labels;
            let snapshot = s.duration.snapshot();
            enc.histogram(
                DURATION,
                &[("method", method), ("route", route), ("status", status)],
                &snapshot,
            );
            counts.push((labels, RequestCount::of(&snapshot)));
        });
        enc.family(REQUESTS, "HTTP server requests finished.", Kind::Counter);
        for ([method, route, status], c) in counts {
            let labels = [("method", method), ("route", route), ("status", status)];
            enc.counter_value(REQUESTS, &labels, c.count, c.exemplar);
        }
        enc.family(ACTIVE, "HTTP server requests in flight.", Kind::Gauge);
        self.active.for_each(|[method, route], r| {
            enc.raw_gauge(
                ACTIVE,
                &[("method", method), ("route", route)],
                r.active.get(),
            );
        });
        enc.family(
            ABANDONED,
            "HTTP server requests whose client went away before the response head.",
            Kind::Counter,
        );
        self.active.for_each(|[method, route], r| {
            enc.raw_counter(
                ABANDONED,
                &[("method", method), ("route", route)],
                r.abandoned.load(Ordering::Relaxed),
            );
        });
    }

    /// How many requests were recorded when every one of them matched no route (at
    /// least [`UNMATCHED_HINT_AFTER`]); `None` once any request had a route. A service
    /// whose middleware is given no route templates looks like this.
    pub(crate) fn only_unmatched(&self) -> Option<u64> {
        if self.routed_seen.load(Ordering::Relaxed) {
            return None;
        }
        let mut total = 0;
        let mut routed = false;
        self.red.for_each(|[_, route, _], series| {
            if route == crate::request::UNMATCHED_ROUTE {
                total += series.requests().count;
            } else {
                routed = true;
            }
        });
        if routed {
            self.routed_seen.store(true, Ordering::Relaxed);
        }
        (!routed && total >= UNMATCHED_HINT_AFTER).then_some(total)
    }

    /// What to tell the service's author when every request so far matched no route
    /// (see [`only_unmatched`](Self::only_unmatched)); logged as a WARN the first time.
    /// Read at scrape time and on `/debug`, never on the request path.
    pub(crate) fn unmatched_hint(&self) -> Option<String> {
        let n = self.only_unmatched()?;
        let hint = format!(
            "all {n} requests so far matched no route (route=\"unmatched\"): the middleware \
             gets no route templates. axum: mount it with with_diag or Router::layer; a \
             tower/hyper service: DiagLayer::with_route; actix-web: DiagMiddleware reads \
             the matched pattern itself; a gRPC service: a method gets its label once a \
             call to it succeeds, so calls that all failed stay unmatched"
        );
        if !self.unmatched_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "diag", "{hint}");
        }
        Some(hint)
    }

    /// `(family, what it folded or cut)` for diag's own counters of both families.
    pub(crate) fn drops(&self) -> [(&str, FamilyDrops); 2] {
        [
            (self.red.name(), self.red.drops()),
            (self.active.name(), self.active.drops()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::Diag;
    use crate::request::{RequestView, UNMATCHED_ROUTE};

    fn view<'a>(
        method: &'a str,
        route: Option<&'a str>,
        headers: &'a dyn crate::HeaderView,
    ) -> RequestView<'a> {
        RequestView {
            method,
            route,
            uri: "/",
            headers,
            peer: &|| None,
        }
    }

    fn active(diag: &Diag, method: &str, route: &str) -> f64 {
        diag.inner
            .metrics
            .http
            .active
            .with([method, route])
            .active
            .get()
    }

    fn red<'a>(diag: &'a Diag, labels: [&str; 3]) -> &'a RedSeries {
        diag.inner.metrics.http.red.with(labels)
    }

    #[test]
    fn finish_records_duration_count_and_exemplar() {
        let diag = Diag::builder().build().unwrap();
        let g = diag.begin(&view("GET", Some("/items/{id}"), &()));
        assert_eq!(active(&diag, "GET", "/items/{id}"), 1.0);
        let trace = *g.trace();
        assert!(trace.sampled, "default ratio 1.0");
        g.finish(404, &mut ());
        assert_eq!(active(&diag, "GET", "/items/{id}"), 0.0);
        let s = red(&diag, ["GET", "/items/{id}", "404"]);
        assert_eq!(s.requests().count, 1);
        let snap = s.duration.snapshot();
        assert_eq!(snap.cumulative.last(), Some(&1));
        let ex = s.requests().exemplar.unwrap();
        assert_eq!((ex.trace_id, ex.span_id), (trace.trace_id, trace.span_id));
        let ex = snap.exemplars.iter().flatten().next().unwrap();
        assert_eq!(ex.trace_id, trace.trace_id);
    }

    #[test]
    fn the_request_counter_is_the_histograms_count_with_the_newest_exemplar() {
        let diag = Diag::builder().build().unwrap();
        // Far apart in duration (different buckets), the slow one first.
        let slow = diag.begin(&view("GET", Some("/c"), &()));
        let slow_trace = *slow.trace();
        std::thread::sleep(std::time::Duration::from_millis(30));
        slow.finish(200, &mut ());
        let fast = diag.begin(&view("GET", Some("/c"), &()));
        let fast_trace = *fast.trace();
        fast.finish(200, &mut ());
        let s = red(&diag, ["GET", "/c", "200"]);
        let snap = s.duration.snapshot();
        assert_eq!(snap.exemplars.iter().flatten().count(), 2, "two buckets");
        let count = s.requests();
        assert_eq!(count.count, 2);
        let ex = count.exemplar.unwrap();
        assert_eq!(
            ex.trace_id, fast_trace.trace_id,
            "the newest, not the slowest"
        );
        assert_ne!(ex.trace_id, slow_trace.trace_id);
        assert_eq!(ex.value, 1.0, "a counter exemplar carries the increment");
        // And so it is exposed.
        let text = diag
            .inner
            .metrics
            .encode(crate::metrics::encode::Format::OpenMetrics);
        let line = text
            .lines()
            .find(|l| l.starts_with("http_server_requests_total{") && l.contains("route=\"/c\""))
            .unwrap();
        assert!(line.contains(" 2 # {"), "{line}");
        assert!(line.contains(&fast_trace.trace_id.to_string()), "{line}");
    }

    #[test]
    fn unsampled_requests_leave_no_exemplar() {
        let diag = Diag::builder().sampling_ratio(0.0).build().unwrap();
        let g = diag.begin(&view("POST", Some("/pay"), &()));
        assert!(!g.trace().sampled);
        g.finish(200, &mut ());
        let s = red(&diag, ["POST", "/pay", "200"]);
        assert_eq!(s.requests().count, 1);
        assert_eq!(s.requests().exemplar, None);
        assert!(s.duration.snapshot().exemplars.iter().all(Option::is_none));
    }

    #[test]
    fn traceparent_is_honoured_and_returned() {
        let diag = Diag::builder().sampling_ratio(0.0).build().unwrap();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let headers = vec![("traceparent".to_owned(), tp.to_owned())];
        let g = diag.begin(&view("GET", None, &headers));
        assert!(g.trace().sampled);
        let mut out: Vec<(String, String)> = Vec::new();
        let _ = g.finish(200, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "traceparent");
        assert!(out[0].1.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(out[0].1.ends_with("-01"));
        assert!(!out[0].1.contains("00f067aa0ba902b7"), "our own span id");
        let ex = red(&diag, ["GET", UNMATCHED_ROUTE, "200"])
            .requests()
            .exemplar
            .unwrap();
        assert_eq!(ex.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    /// With `traceparent_on_every_response(false)`, a success carries no `traceparent`
    /// and an error (4xx, 5xx) does; a debug request always does.
    #[test]
    fn traceparent_on_errors_and_debug_responses_only_when_asked() {
        let diag = Diag::builder()
            .token("s3cret")
            .traceparent_on_every_response(false)
            .build()
            .unwrap();
        let answer = |status: u16, headers: &Vec<(String, String)>| {
            let g = diag.begin(&view("GET", Some("/cart"), headers));
            let trace = g.trace().to_traceparent();
            let mut out: Vec<(String, String)> = Vec::new();
            let _ = g.finish(status, &mut out);
            let tp = out
                .iter()
                .find(|(n, _)| n == "traceparent")
                .map(|(_, v)| v.clone());
            if let Some(tp) = &tp {
                assert_eq!(*tp, trace, "the request's own trace");
            }
            tp.is_some()
        };
        let none = Vec::new();
        for status in [200, 204, 304, 399] {
            assert!(!answer(status, &none), "{status}");
        }
        for status in [400, 404, 429, 500, 503] {
            assert!(answer(status, &none), "{status}");
        }
        let debug = vec![("x-debug".to_owned(), "s3cret".to_owned())];
        assert!(
            answer(200, &debug),
            "a debug request's success names its trace"
        );
    }

    /// The values of header `own.0` on a 200 to a request with headers `sent`, whose
    /// handler answered with the line `own` itself.
    fn lines_of(diag: &Diag, sent: &[(&str, &str)], own: (&str, &str)) -> Vec<String> {
        let headers: Vec<(String, String)> = sent
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let g = diag.begin(&view("GET", Some("/cart"), &headers));
        let mut out = vec![(own.0.to_owned(), own.1.to_owned())];
        let _ = g.finish(200, &mut out);
        out.into_iter()
            .filter(|(n, _)| n == own.0)
            .map(|(_, v)| v)
            .collect()
    }

    /// A request that sent the debug header (a renamed one here), granted or refused,
    /// gets a `vary` naming it, after the handler's own `vary`; any other gets none.
    #[test]
    fn vary_names_the_debug_header_when_it_was_sent() {
        let diag = Diag::builder()
            .token("s3cret")
            .debug_header("X-Dbg")
            .build()
            .unwrap();
        let answer = |sent: &[(&str, &str)]| lines_of(&diag, sent, ("vary", "accept-encoding"));
        assert_eq!(answer(&[]), ["accept-encoding"]);
        assert_eq!(
            answer(&[("x-debug", "s3cret")]),
            ["accept-encoding"],
            "not the configured header"
        );
        assert_eq!(answer(&[("x-dbg", "s3cret")]), ["accept-encoding", "x-dbg"]);
        assert_eq!(
            answer(&[("x-dbg", "wrong")]),
            ["accept-encoding", "x-dbg"],
            "refused"
        );
    }

    /// A debug request's answer gets `cache-control: no-store` after the handler's own
    /// directives (no cache may keep one request's diagnostics); a refused or a normal
    /// request's keeps only the handler's.
    #[test]
    fn only_a_debug_answer_is_kept_from_caches() {
        let diag = Diag::builder().token("s3cret").build().unwrap();
        let answer =
            |sent: &[(&str, &str)]| lines_of(&diag, sent, ("cache-control", "public, max-age=60"));
        assert_eq!(answer(&[]), ["public, max-age=60"]);
        assert_eq!(answer(&[("x-debug", "wrong")]), ["public, max-age=60"]);
        assert_eq!(
            answer(&[("x-debug", "s3cret")]),
            ["public, max-age=60", "no-store"]
        );
    }

    #[test]
    fn a_reused_route_address_never_picks_the_wrong_series() {
        let diag = Diag::builder().build().unwrap();
        let other = Diag::builder().build().unwrap();
        // One buffer, so both routes have the same address and length.
        let mut route = String::from("/a/{x}");
        for _ in 0..2 {
            diag.begin(&view("GET", Some(&route), &()))
                .finish(200, &mut ());
        }
        route.replace_range(1..2, "b");
        diag.begin(&view("GET", Some(&route), &()))
            .finish(200, &mut ());
        // Same address in another Diag, and another method on the same address.
        other
            .begin(&view("GET", Some(&route), &()))
            .finish(200, &mut ());
        diag.begin(&view("PUT", Some(&route), &()))
            .finish(200, &mut ());
        assert_eq!(red(&diag, ["GET", "/a/{x}", "200"]).requests().count, 2);
        assert_eq!(red(&diag, ["GET", "/b/{x}", "200"]).requests().count, 1);
        assert_eq!(red(&diag, ["PUT", "/b/{x}", "200"]).requests().count, 1);
        assert_eq!(red(&other, ["GET", "/b/{x}", "200"]).requests().count, 1);
        assert_eq!(other.inner.metrics.http.red.len(), 1);
        assert_eq!(diag.inner.metrics.http.red.len(), 3);
    }

    #[test]
    fn dropped_guard_restores_the_active_gauge() {
        let diag = Diag::builder().build().unwrap();
        let a = diag.begin(&view("GET", Some("/slow"), &()));
        let b = diag.begin(&view("GET", Some("/slow"), &()));
        assert_eq!(active(&diag, "GET", "/slow"), 2.0);
        drop(a); // client went away
        assert_eq!(active(&diag, "GET", "/slow"), 1.0);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _moved = b;
            panic!("handler panicked");
        }));
        assert!(panicked.is_err());
        assert_eq!(active(&diag, "GET", "/slow"), 0.0);
        assert_eq!(
            red(&diag, ["GET", "/slow", "200"]).requests().count,
            0,
            "no status, no count"
        );
    }

    #[test]
    fn remembered_statuses_count_in_their_own_series() {
        let diag = Diag::builder().build().unwrap();
        // More statuses than a route remembers, twice round, interleaved.
        let statuses = [200, 404, 500, 201, 503, 204, 200, 302];
        for _ in 0..2 {
            for status in statuses {
                diag.begin(&view("GET", Some("/memo"), &()))
                    .finish(status, &mut ());
            }
        }
        for status in [404, 500, 201, 503, 204, 302] {
            let s = red(&diag, ["GET", "/memo", &status.to_string()]);
            assert_eq!(s.requests().count, 2, "status {status}");
        }
        assert_eq!(red(&diag, ["GET", "/memo", "200"]).requests().count, 4);
        assert_eq!(diag.inner.metrics.http.red.len(), statuses.len() - 1);
        assert_eq!(active(&diag, "GET", "/memo"), 0.0);
    }

    #[test]
    fn a_full_red_family_keeps_counting_folds() {
        // Room for two (method, route, status) sets: the third status folds, every time.
        let diag = Diag::builder().max_label_sets(2).build().unwrap();
        for _ in 0..3 {
            for status in [200, 201, 202] {
                diag.begin(&view("GET", Some("/f"), &()))
                    .finish(status, &mut ());
            }
        }
        let http = &diag.inner.metrics.http;
        assert_eq!(http.red.overflowed(), 3);
        assert_eq!(http.red.metric(SeriesRef::OVERFLOW).requests().count, 3);
        assert_eq!(red(&diag, ["GET", "/f", "200"]).requests().count, 3);
    }

    #[test]
    fn unknown_methods_fold_to_other() {
        let diag = Diag::builder().build().unwrap();
        diag.begin(&view("BREW", Some("/pot"), &()))
            .finish(418, &mut ());
        assert_eq!(red(&diag, ["_OTHER", "/pot", "418"]).requests().count, 1);
    }

    #[test]
    fn route_overflow_folds_counts_and_records_an_event() {
        let diag = Diag::builder().max_label_sets(2).build().unwrap();
        for route in ["/a", "/b", "/c", "/d"] {
            diag.begin(&view("GET", Some(route), &()))
                .finish(200, &mut ());
        }
        let http = &diag.inner.metrics.http;
        assert_eq!(http.active.len(), 2);
        assert_eq!(http.active.overflowed(), 2);
        assert_eq!(http.red.metric(SeriesRef::OVERFLOW).requests().count, 2);
        assert_eq!(http.red.overflowed(), 2, "shown and counted");
        assert_eq!(http.active.metric(SeriesRef::OVERFLOW).active.get(), 0.0);
        diag.begin(&view("GET", Some("/e"), &()))
            .finish(200, &mut ());
        let events: Vec<_> = diag
            .events()
            .recent()
            .into_iter()
            .filter(|e| e.kind == "metric_overflow")
            .collect();
        // Once per family, however often it overflows afterwards.
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].message.contains(ACTIVE));
        assert!(events[1].message.contains(DURATION));
    }

    #[test]
    fn handles_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::request::RequestGuard>();
        send_sync::<crate::metrics::Timer>();
        send_sync::<Family<crate::metrics::Counter, 2>>();
        send_sync::<Family<Histogram, 1>>();
        send_sync::<Family<crate::metrics::Gauge, 3>>();
    }
}
