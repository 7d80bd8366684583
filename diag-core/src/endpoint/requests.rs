//! `GET /debug/requests` and `GET /debug/requests/{id}`: the flight recorder.

use serde::Serialize;

use super::{DiagResponse, EndpointRequest};
use crate::Diag;
use crate::debug::redact::Redactor;
use crate::debug::stored::StoredCapture;
use crate::debug::{RecorderStats, RejectReason};
use crate::trace::{TraceContext, TraceId};

#[derive(Serialize)]
struct List {
    /// Debug requests still running, oldest first: `/debug/requests/{id}` shows what
    /// each recorded so far.
    running: Vec<Summary>,
    captures: Vec<Summary>,
    recorder: RecorderStats,
    debug: Counters,
}

#[derive(Serialize)]
struct Summary {
    id: u64,
    trace_id: String,
    time_unix: f64,
    method: String,
    route: Option<String>,
    uri: String,
    status: Option<u16>,
    /// A gRPC call's status name: its HTTP status says nothing of how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_status: Option<&'static str>,
    duration_ms: f64,
    complete: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    in_flight: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    panicked: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    failed: bool,
    /// Kept until unpinned (`DELETE /debug/requests/{id}/pin`); for a running one,
    /// pinned when it ends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pinned: bool,
}

impl Summary {
    /// Only a few fields of a capture: the URI is the one that needs redacting.
    fn of(c: &StoredCapture, redactor: &Redactor, pinned: &[u64]) -> Summary {
        Summary {
            id: c.id,
            trace_id: c.trace_id.to_string(),
            time_unix: c.time_unix(),
            method: c.request.method().to_owned(),
            route: c.request.route().map(str::to_owned),
            uri: c.redacted_uri(redactor),
            status: c.response.as_ref().map(|r| r.status),
            grpc_status: c.grpc_status(),
            duration_ms: c.duration_ms(),
            complete: c.complete,
            in_flight: c.in_flight,
            panicked: c.panicked,
            failed: c.failed,
            pinned: pinned.contains(&c.id),
        }
    }
}

#[derive(Serialize)]
struct Counters {
    activated: u64,
    in_flight: u64,
    budget_exhausted: u64,
    /// Refused because the most debug requests allowed at once were running.
    busy: u64,
    rejected: std::collections::BTreeMap<&'static str, u64>,
}

pub(super) fn serve_list(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let mode = diag.debug_mode();
    let recorder = mode.recorder();
    // `?trace_id=`: the captures of one trace (from an exemplar or an `X-Trace-Id`).
    let trace = match req.query_param("trace_id") {
        None => None,
        Some(hex) => match TraceId::from_hex(hex) {
            Some(id) => Some(id),
            None => {
                return DiagResponse::error(400, &format!("trace_id `{hex}` is not 32 hex digits"));
            }
        },
    };
    let limit = match req.limit(usize::MAX) {
        Ok(n) => n,
        Err(refusal) => return refusal,
    };
    let pinned = recorder.pinned_ids();
    // Running ones first: one that ends between the two reads is then in the captures
    // (and listed once), never in neither.
    let running: Vec<Summary> = mode
        .running_now()
        .iter()
        .filter(|r| trace.is_none_or(|t| r.is_trace(&t)))
        .filter_map(|r| {
            let head = r.look_head();
            // One that ended while it was read: it is in the captures, read next.
            if r.is_ending() {
                r.settle();
                return None;
            }
            Some(Summary::of(&head, recorder.redactor(), &pinned))
        })
        .collect();
    let captures: Vec<Summary> = recorder
        .recent_stored()
        .iter()
        .filter(|c| trace.is_none_or(|t| c.trace_id == t))
        .take(limit)
        .map(|c| Summary::of(c, recorder.redactor(), &pinned))
        .collect();
    let running = running
        .into_iter()
        .filter(|r| !captures.iter().any(|c| c.id == r.id))
        .collect();
    let list = List {
        running,
        captures,
        recorder: mode.recorder().stats(),
        debug: Counters {
            activated: mode.activated(),
            in_flight: mode.in_flight(),
            budget_exhausted: mode.budget().exhausted(),
            busy: mode.busy(),
            rejected: RejectReason::ALL
                .iter()
                .map(|r| (r.as_str(), mode.rejected(*r)))
                .collect(),
        },
    };
    if req.wants_text() {
        let now = crate::clock::unix_now();
        let text = render_list(&list, now, trace.is_some());
        return DiagResponse::new(200, "text/plain; charset=utf-8", text);
    }
    DiagResponse::json(200, &list, req.pretty())
}

/// The list as a person reads it in a terminal (`Accept: text/plain` or
/// `?format=text`): the recorder's counts, then one line per capture, newest first.
fn render_list(list: &List, now_unix: f64, one_trace: bool) -> String {
    use std::fmt::Write as _;
    let r = &list.recorder;
    let d = &list.debug;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} debug request{} kept (of {}, {} KiB of {} KiB){}, {} evicted; \
         {} activated, {} in flight, {} over budget, {} busy",
        r.kept,
        if r.kept == 1 { "" } else { "s" },
        r.max_captures,
        r.bytes / 1024,
        r.max_bytes / 1024,
        if r.pinned > 0 {
            format!(", {} pinned (of {})", r.pinned, r.max_pinned)
        } else {
            String::new()
        },
        r.evicted,
        d.activated,
        d.in_flight,
        d.budget_exhausted,
        d.busy,
    );
    if list.captures.is_empty() && list.running.is_empty() {
        out.push_str(if one_trace {
            "(no capture of that trace: only requests in diagnostic mode are captured)\n"
        } else {
            "(none: send a request with X-Debug to capture one)\n"
        });
        return out;
    }
    // The columns as wide as their widest cell: a gRPC status name (`FAILED_PRECONDITION`)
    // is wider than any HTTP status, an id or a duration may grow.
    let all: Vec<&Summary> = list.running.iter().chain(&list.captures).collect();
    let rows: Vec<[String; 4]> = all
        .iter()
        .map(|c| {
            // A gRPC call by how it ended (`NOT_FOUND`): its HTTP status is 200 either way.
            let status = match (c.grpc_status, c.status) {
                (Some(grpc), _) => grpc.to_owned(),
                (None, Some(s)) => s.to_string(),
                (None, None) => "-".to_owned(),
            };
            [
                c.id.to_string(),
                age(now_unix - c.time_unix),
                status,
                format!("{:.1} ms", c.duration_ms),
            ]
        })
        .collect();
    let mut widths = [6, 8, 9, 11];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let [w_id, w_age, w_status, w_duration] = widths;
    let _ = writeln!(
        out,
        "{:>w_id$}  {:>w_age$}  {:>w_status$}  {:>w_duration$}  request",
        "id", "age", "status", "duration"
    );
    for (c, [id, age, status, duration]) in all.iter().zip(&rows) {
        let _ = writeln!(
            out,
            "{id:>w_id$}  {age:>w_age$}  {status:>w_status$}  {duration:>w_duration$}  {} {}  route {}  trace {}{}{}",
            crate::debug::Safe(&c.method),
            crate::debug::Safe(&c.uri),
            crate::debug::Safe(c.route.as_deref().unwrap_or("(unmatched)")),
            c.trace_id,
            match (c.complete, c.panicked, c.failed) {
                _ if c.in_flight => "  (still running: its id shows it so far)",
                (true, _, _) => "",
                (false, true, _) => "  (incomplete: the handler panicked)",
                (false, false, true) => "  (incomplete: the service failed with an error)",
                (false, false, false) => "  (incomplete)",
            },
            if c.pinned { "  (pinned)" } else { "" },
        );
    }
    out
}

/// `secs` ago, to the precision a person needs (shared with the state providers' text).
pub(super) use crate::state::text::age;

/// What `/debug/requests/{id}` was asked for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Wanted {
    /// A debug id (`X-Debug-Id`).
    Id(u64),
    /// A trace id (32 hex digits: `X-Trace-Id`, an exemplar's `trace_id`).
    Trace(TraceId),
    /// A whole `traceparent` value, pasted from a response or a log line: its trace,
    /// and the span it names (the debug request's own, or its caller's).
    Traceparent(TraceContext),
}

impl Wanted {
    pub(super) fn parse(id: &str) -> Option<Wanted> {
        if let Some(trace) = TraceId::from_hex(id) {
            return Some(Wanted::Trace(trace));
        }
        if let Ok(n) = id.parse::<u64>() {
            return Some(Wanted::Id(n));
        }
        // W3C asks for lower-case hex; a person pastes what they have.
        TraceContext::from_traceparent(id.to_ascii_lowercase().as_bytes()).map(Wanted::Traceparent)
    }

    /// Whether `c` is the capture of the span a pasted `traceparent` names: the
    /// request's own span, or its caller's (the one the request came with).
    pub(super) fn is_span_of(&self, c: &StoredCapture) -> bool {
        match self {
            Wanted::Traceparent(ctx) => {
                c.trace_id == ctx.trace_id
                    && (c.span_id == ctx.span_id || c.parent_span_id == Some(ctx.span_id))
            }
            Wanted::Id(_) | Wanted::Trace(_) => false,
        }
    }

    /// [`parse`](Self::parse), or the 400 that says what an id can be.
    pub(super) fn parse_or_refuse(id: &str) -> Result<Wanted, DiagResponse> {
        Wanted::parse(id).ok_or_else(|| {
            DiagResponse::error(
                400,
                &format!(
                    "`{}` is neither a debug id (the number in X-Debug-Id) nor a trace id \
                     (32 hex digits: X-Trace-Id, or an exemplar's trace_id) nor a traceparent \
                     (00-<trace id>-<span id>-<flags>)",
                    crate::debug::Safe(id)
                ),
            )
        })
    }
}

/// `id` is the debug id (`X-Debug-Id`), or a trace id (32 hex digits: `X-Trace-Id`, or
/// the `trace_id` of an exemplar), which finds the newest capture of that trace, or a
/// `traceparent` value, which finds the capture of its span, or else its trace's newest.
pub(super) fn serve_one(diag: &Diag, req: &EndpointRequest, id: &str) -> DiagResponse {
    let recorder = diag.debug_mode().recorder();
    let wanted = match Wanted::parse_or_refuse(id) {
        Ok(wanted) => wanted,
        Err(refusal) => return refusal,
    };
    let capture = match &wanted {
        Wanted::Id(n) => recorder.get(*n),
        Wanted::Trace(trace) => recorder.by_trace(trace),
        Wanted::Traceparent(ctx) => recorder
            .recent_stored()
            .iter()
            .find(|c| wanted.is_span_of(c))
            .and_then(|c| recorder.get(c.id))
            .or_else(|| recorder.by_trace(&ctx.trace_id)),
    };
    // A debug request still running (a hung one never stores a capture): what it
    // recorded so far.
    let capture = capture.or_else(|| {
        let running = diag.debug_mode().running_now();
        let found = running.iter().find(|r| match &wanted {
            Wanted::Id(n) => r.id() == *n,
            Wanted::Trace(trace) => r.is_trace(trace),
            Wanted::Traceparent(ctx) => r.is_trace(&ctx.trace_id),
        })?;
        let look = found.look();
        // It ended while it was copied, so the copy may be partial: the stored capture is
        // the whole one, in the recorder within microseconds.
        if found.is_ending() && found.settle() {
            return recorder.get(found.id());
        }
        Some(std::sync::Arc::new(look.redacted(recorder.redactor())))
    });
    let Some(capture) = capture else {
        return DiagResponse::not_found(&missing(diag, &wanted));
    };
    let instance = diag.instance();
    let pinned = recorder.is_pinned(capture.id);
    if req.wants_text() {
        let text = crate::debug::waterfall::render_on(&capture, Some(instance), pinned);
        DiagResponse::new(200, "text/plain; charset=utf-8", text)
    } else {
        DiagResponse::json(
            200,
            &One {
                instance,
                pinned,
                capture: &capture,
            },
            req.pretty(),
        )
    }
}

/// Why there is no capture for `wanted` here, as far as this instance can tell: a debug
/// id it never issued, one evicted, or one not kept; a trace never captured.
pub(super) fn missing(diag: &Diag, wanted: &Wanted) -> String {
    let instance = crate::debug::Safe(diag.instance());
    let elsewhere = "a capture is kept by the instance that served the request, named in \
                     its X-Debug-Instance header";
    let trace = match wanted {
        Wanted::Id(id) => return missing_id(diag, *id, elsewhere),
        Wanted::Trace(trace) => *trace,
        Wanted::Traceparent(ctx) => ctx.trace_id,
    };
    // Most often an exemplar's or a customer's trace id: a request served normally,
    // which was never captured. Say where that one is.
    let backend = match &diag.inner.otlp {
        Some(otlp) => format!(
            "; if it was sampled, the tracing backend diag exports to ({}) has its span",
            crate::debug::Safe(otlp.url())
        ),
        None => "; diag exports no traces here (no OTLP endpoint is set)".to_owned(),
    };
    format!(
        "no debug capture of trace {trace} on this instance ({instance}). Only requests \
         sent with X-Debug are captured ({elsewhere}); if one of this trace ran here, its \
         capture was evicted (see /debug/requests). A request served normally (an \
         exemplar's, a customer's traceparent) is never captured: any log line it wrote \
         carries trace_id={trace} (search the service's logs for it){backend}. To see such \
         a request now, replay it with X-Debug."
    )
}

/// [`missing`] for a debug id.
fn missing_id(diag: &Diag, id: u64, elsewhere: &str) -> String {
    let mode = diag.debug_mode();
    let recorder = mode.recorder();
    let instance = crate::debug::Safe(diag.instance());
    let next = mode.peek_next_id();
    if id == 0 || id >= next {
        return format!(
            "no debug capture with id {id} on this instance ({instance}): no request has had \
             that id yet (ids count from 1 on each instance; the next is {next}); {elsewhere}"
        );
    }
    let stats = recorder.stats();
    let too_large = if stats.too_large > 0 {
        format!(" (or was one of the {} too large to keep)", stats.too_large)
    } else {
        String::new()
    };
    match recorder.oldest_id() {
        Some(oldest) if id < oldest && stats.evicted > 0 => format!(
            "no debug capture with id {id} on this instance ({instance}): it was evicted to \
             make room for newer ones{too_large}; the oldest kept, pinned ones aside, is {oldest} (the \
             recorder keeps {} captures and {} KiB); see /debug/requests",
            stats.max_captures,
            stats.max_bytes / 1024
        ),
        _ => format!(
            "no debug capture with id {id} on this instance ({instance}): its capture was \
             too large to keep, or evicted; see /debug/requests"
        ),
    }
}

/// A capture as `/debug/requests/{id}` serves it: with the instance that kept it.
#[derive(Serialize)]
struct One<'a> {
    instance: &'a str,
    /// Kept until unpinned (`PUT`/`DELETE /debug/requests/{id}/pin`).
    pinned: bool,
    #[serde(flatten)]
    capture: &'a crate::debug::Capture,
}

#[cfg(test)]
mod tests {
    use crate::debug::{DebugLevel, Decision};
    use crate::request::RequestView;
    use crate::trace::TraceId;
    use crate::{Diag, DiagResponse, EndpointRequest};

    fn run_debug_request(diag: &Diag, uri: &str, status: u16) -> u64 {
        run_traced_debug_request(diag, uri, status, TraceId([9; 16]))
    }

    fn run_traced_debug_request(diag: &Diag, uri: &str, status: u16, trace: TraceId) -> u64 {
        let h = vec![("x-debug".to_owned(), "tok".to_owned())];
        let Decision::Debug(level) = diag.debug_decision(&h, None) else {
            panic!("not admitted")
        };
        let view = RequestView {
            method: "GET",
            route: Some("/items/{id}"),
            uri,
            headers: &h,
            peer: &|| None,
        };
        let debug = diag.start_debug(level, &view, trace);
        debug.response_head(status, &Vec::new());
        debug.response_chunk(b"hello");
        debug.response_end();
        debug.id()
    }

    use crate::test_support::get_endpoint as get;

    fn json(r: &DiagResponse) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn a_debug_request_still_running_shows_what_it_recorded_so_far() {
        // Callsite interest is global: no other tracing test at the same time.
        let _serial = crate::test_support::tracing_test_lock();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            use tracing_subscriber::prelude::*;
            let diag = Diag::builder().token("tok").build().unwrap();
            let subscriber = tracing_subscriber::registry().with(diag.debug_recording_layer());
            let _default = tracing::subscriber::set_default(subscriber);
            let h = vec![
                ("x-debug".to_owned(), "tok".to_owned()),
                ("authorization".to_owned(), "Bearer hunter2".to_owned()),
            ];
            let guard = diag.begin(&RequestView {
                method: "GET",
                route: Some("/items/{id}"),
                uri: "/items/7?token=abc",
                headers: &h,
                peer: &|| None,
            });
            let id = guard.debug_id().unwrap();
            let trace = guard.scope().trace.trace_id;
            // The handler waits on something, inside a span, after one DEBUG line.
            let waiting = {
                let _entered = guard.enter();
                tracing::debug!("looked in the cache: miss");
                tracing::debug_span!("pricing_fetch")
            };

            let list = json(&get(&diag, "/debug/requests", None, None).await);
            assert_eq!(list["running"][0]["id"], id, "{list}");
            assert_eq!(list["running"][0]["in_flight"], true);
            assert_eq!(list["running"][0]["uri"], "/items/7?token=[redacted]");
            assert_eq!(list["captures"].as_array().unwrap().len(), 0);
            let text = get(&diag, "/debug/requests", None, Some("text/plain")).await;
            assert!(
                String::from_utf8_lossy(&text.body).contains("still running"),
                "{}",
                String::from_utf8_lossy(&text.body)
            );

            for key in [id.to_string(), trace.to_string()] {
                let one = get(&diag, &format!("/debug/requests/{key}"), None, None).await;
                assert_eq!(one.status, 200, "{}", String::from_utf8_lossy(&one.body));
                let v = json(&one);
                assert_eq!(
                    (v["in_flight"].clone(), v["complete"].clone()),
                    (true.into(), false.into())
                );
                assert_eq!(v["logs"][0]["message"], "looked in the cache: miss", "{v}");
                let spans = v["spans"].as_array().unwrap();
                let span = spans
                    .iter()
                    .find(|s| s["name"] == "pricing_fetch")
                    .expect("open span");
                assert!(span.to_string().contains("still_open"), "{span}");
                assert!(!v.to_string().contains("hunter2"), "{v}");
            }
            let waterfall = get(
                &diag,
                &format!("/debug/requests/{id}"),
                None,
                Some("text/plain"),
            )
            .await;
            let waterfall = String::from_utf8_lossy(&waterfall.body).into_owned();
            assert!(
                waterfall.lines().next().unwrap().contains("STILL RUNNING"),
                "{waterfall}"
            );

            // Looking took nothing away: the stored capture has it all, and is no longer
            // running.
            drop(waiting);
            let mut tap = guard
                .finish(200, &mut Vec::<(String, String)>::new())
                .unwrap();
            tap.observe(crate::body::Polled::End);
            let stored = json(&get(&diag, &format!("/debug/requests/{id}"), None, None).await);
            assert_eq!(stored["in_flight"], serde_json::Value::Null, "{stored}");
            assert_eq!(stored["logs"].as_array().unwrap().len(), 1, "{stored}");
            let spans = stored["spans"].as_array().unwrap();
            assert!(
                spans.iter().any(|s| s["name"] == "pricing_fetch"),
                "{stored}"
            );
            let list = json(&get(&diag, "/debug/requests", None, None).await);
            assert_eq!(list["running"].as_array().unwrap().len(), 0, "{list}");
        });
    }

    /// The routes view links an exemplar to a capture only when the capture is of that
    /// request: a later request that reuses a debug request's trace id (anyone can read
    /// it on /metrics) does not take over the link.
    #[tokio::test]
    async fn the_routes_view_links_only_the_capture_of_the_exemplars_request() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let view = |h: &Vec<(String, String)>| {
            diag.begin(&RequestView {
                method: "GET",
                route: Some("/items/{id}"),
                uri: "/items/1",
                headers: h,
                peer: &|| None,
            })
        };
        let debug = view(&vec![("x-debug".to_owned(), "tok".to_owned())]);
        let trace = debug.scope().trace.trace_id;
        let id = debug.debug_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let mut tap = debug
            .finish(200, &mut Vec::<(String, String)>::new())
            .unwrap();
        tap.observe(crate::body::Polled::End);
        drop(tap);
        let link = |v: &serde_json::Value| v["value"]["routes"][0]["slowest_exemplar"].clone();
        let routes = json(&get(&diag, "/debug/state/routes", None, None).await);
        assert_eq!(link(&routes)["trace_id"], trace.to_string(), "{routes}");
        assert_eq!(link(&routes)["capture"], format!("/debug/requests/{id}"));

        // A slower request, later, in the same trace but its own span.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
        let normal = view(&vec![("traceparent".to_owned(), traceparent)]);
        assert_eq!(normal.scope().trace.trace_id, trace);
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(
            normal
                .finish(200, &mut Vec::<(String, String)>::new())
                .is_none()
        );
        let routes = json(&get(&diag, "/debug/state/routes", None, None).await);
        assert!(link(&routes)["ms"].as_f64().unwrap() >= 30.0, "{routes}");
        assert_eq!(
            link(&routes)["capture"],
            serde_json::Value::Null,
            "{routes}"
        );
    }

    #[tokio::test]
    async fn a_trace_never_captured_says_where_a_normal_request_is() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let trace = "0af7651916cd43dd8448eb211c80319c";
        let r = get(&diag, &format!("/debug/requests/{trace}"), None, None).await;
        assert_eq!(r.status, 404);
        let message = json(&r)["error"].as_str().unwrap().to_owned();
        assert!(message.contains(&format!("trace_id={trace}")), "{message}");
        assert!(message.contains("no OTLP endpoint"), "{message}");
        assert!(message.contains("replay it with X-Debug"), "{message}");
    }

    #[tokio::test]
    async fn list_one_text_and_not_found() {
        let diag = Diag::builder()
            .token("tok")
            .recorder_limits(2, 1 << 20)
            .build()
            .unwrap();
        let first = run_debug_request(&diag, "/items/1", 200);
        let second = run_debug_request(&diag, "/items/2?token=abc", 404);
        let third = run_debug_request(&diag, "/items/3", 500);

        let list = get(&diag, "/debug/requests", None, None).await;
        assert_eq!(list.status, 200);
        let v = json(&list);
        let ids: Vec<u64> = v["captures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [third, second], "newest first; the first was evicted");
        let newest = &v["captures"][0];
        assert_eq!(newest["method"], "GET");
        assert_eq!(newest["route"], "/items/{id}");
        assert_eq!(newest["status"], 500);
        assert_eq!(newest["complete"], true);
        assert!(newest["duration_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(v["captures"][1]["uri"], "/items/2?token=[redacted]");
        assert_eq!(v["recorder"]["evicted"], 1);
        assert_eq!(v["debug"]["activated"], 3);
        assert_eq!(v["debug"]["rejected"]["expired"], 0);

        // The same list as text, for a terminal.
        let text = get(&diag, "/debug/requests", None, Some("text/plain")).await;
        assert!(
            text.header("content-type")
                .unwrap()
                .starts_with("text/plain")
        );
        let text = String::from_utf8(text.body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("2 debug requests kept (of 2,") && lines[0].contains("1 evicted"),
            "{text}"
        );
        assert!(
            lines[1].contains("status") && lines[1].contains("request"),
            "{text}"
        );
        let trace = "09".repeat(16);
        for (line, id, status, uri) in [
            (lines[2], third, "500", "GET /items/3 "),
            (lines[3], second, "404", "GET /items/2?token=[redacted] "),
        ] {
            assert!(line.trim_start().starts_with(&format!("{id} ")), "{line}");
            assert!(line.contains(&format!(" {status} ")), "{line}");
            assert!(line.contains(uri) && line.contains(&trace), "{line}");
            assert!(line.contains("  route /items/{id}  "), "{line}");
            assert!(!line.contains("incomplete"), "{line}");
        }
        assert_eq!(lines.len(), 4, "{text}");

        let one = get(&diag, &format!("/debug/requests/{second}"), None, None).await;
        assert_eq!(one.status, 200);
        assert_eq!(one.header("content-type"), Some("application/json"));
        let c = json(&one);
        assert_eq!(c["id"], second);
        assert_eq!(c["response"]["status"], 404);
        assert_eq!(c["response"]["body"]["text"], "hello");
        assert_eq!(c["trace_id"], "09".repeat(16));
        // Debug ids are numbered per instance: the capture names the one that kept it.
        assert_eq!(c["instance"], diag.instance());

        for (query, accept) in [(None, Some("text/plain")), (Some("format=text"), None)] {
            let text = get(&diag, &format!("/debug/requests/{third}"), query, accept).await;
            assert_eq!(text.status, 200);
            assert!(
                text.header("content-type")
                    .unwrap()
                    .starts_with("text/plain")
            );
            let body = String::from_utf8(text.body).unwrap();
            assert!(body.starts_with("GET /items/3 -> 500"), "{body}");
            let second_line = body.lines().nth(1).unwrap();
            let on = format!("debug id {third} on {}   trace ", diag.instance());
            assert!(second_line.starts_with(&on), "{body}");
        }
        // A client that accepts both gets JSON.
        let both = get(
            &diag,
            &format!("/debug/requests/{third}"),
            None,
            Some("text/plain, application/json"),
        )
        .await;
        assert_eq!(both.header("content-type"), Some("application/json"));

        for missing in [first.to_string(), "999".to_owned()] {
            let r = get(&diag, &format!("/debug/requests/{missing}"), None, None).await;
            assert_eq!(r.status, 404, "{missing}");
            assert!(
                json(&r)["error"]
                    .as_str()
                    .unwrap()
                    .contains("no debug capture")
            );
        }
        // Neither kind of id: a 400 that says what an id looks like.
        for garbage in ["abc", "-1", "0x1f"] {
            let r = get(&diag, &format!("/debug/requests/{garbage}"), None, None).await;
            assert_eq!(r.status, 400, "{garbage}");
            let error = json(&r)["error"].as_str().unwrap().to_owned();
            assert!(error.contains("neither a debug id"), "{error}");
        }
        // A reader who asked for text gets the error as a line of text.
        let r = get(&diag, "/debug/requests/abc", None, Some("text/plain")).await;
        assert_eq!(r.status, 400);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        let line = String::from_utf8(r.body).unwrap();
        assert!(
            line.starts_with("error: `abc` is neither a debug id"),
            "{line}"
        );
        // Also a 401's challenges survive the change of form.
        let anonymous = diag
            .serve(EndpointRequest {
                method: "GET".into(),
                path: "/debug/requests".into(),
                query: Some("format=text".into()),
                ..Default::default()
            })
            .await;
        assert_eq!(anonymous.status, 401);
        assert!(anonymous.body.starts_with(b"error: no credentials"));
        assert_eq!(
            anonymous.header("www-authenticate"),
            Some("Bearer realm=\"diag\"")
        );
        assert_eq!(
            anonymous
                .headers
                .iter()
                .filter(|(n, _)| *n == "cache-control")
                .count(),
            1
        );
    }

    /// From a trace id (an exemplar's, or `X-Trace-Id`) to the capture.
    #[tokio::test]
    async fn captures_are_found_by_trace_id() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let a = TraceId([0xa1; 16]);
        let b = TraceId([0xb2; 16]);
        let a_first = run_traced_debug_request(&diag, "/items/1", 200, a);
        let b_only = run_traced_debug_request(&diag, "/items/2", 503, b);
        // The same trace replayed: its newest capture wins.
        let a_again = run_traced_debug_request(&diag, "/items/3", 404, a);

        let one = get(&diag, &format!("/debug/requests/{b}"), None, None).await;
        assert_eq!(one.status, 200);
        let c = json(&one);
        assert_eq!(
            (c["id"].as_u64(), c["trace_id"].as_str()),
            (Some(b_only), Some(&*b.to_string()))
        );
        let upper = b.to_string().to_uppercase();
        let one = get(&diag, &format!("/debug/requests/{upper}"), None, None).await;
        assert_eq!(json(&one)["id"], b_only, "upper-case hex too");
        let newest = get(&diag, &format!("/debug/requests/{a}"), None, None).await;
        assert_eq!(json(&newest)["id"], a_again);
        let text = get(
            &diag,
            &format!("/debug/requests/{a}"),
            Some("format=text"),
            None,
        )
        .await;
        assert!(
            String::from_utf8(text.body)
                .unwrap()
                .starts_with("GET /items/3 -> 404")
        );

        // The list shows each capture's trace and filters by it.
        let list = get(
            &diag,
            "/debug/requests",
            Some(&format!("trace_id={a}")),
            None,
        )
        .await;
        let v = json(&list);
        let found: Vec<(u64, String)> = v["captures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_u64().unwrap(),
                    c["trace_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(found, [(a_again, a.to_string()), (a_first, a.to_string())]);
        let all = json(&get(&diag, "/debug/requests", None, None).await);
        assert_eq!(all["captures"].as_array().unwrap().len(), 3);

        // A trace with no capture (a normal request's exemplar), and a malformed one.
        let other = TraceId([0xc3; 16]);
        let missing = get(&diag, &format!("/debug/requests/{other}"), None, None).await;
        assert_eq!(missing.status, 404);
        assert!(
            json(&missing)["error"]
                .as_str()
                .unwrap()
                .contains("Only requests sent with X-Debug are captured")
        );
        let none = json(
            &get(
                &diag,
                "/debug/requests",
                Some(&format!("trace_id={other}")),
                None,
            )
            .await,
        );
        assert_eq!(none["captures"].as_array().unwrap().len(), 0);
        let bad = get(&diag, "/debug/requests", Some("trace_id=xyz"), None).await;
        assert_eq!(bad.status, 400);
    }

    #[tokio::test]
    async fn a_grpc_call_is_listed_by_how_it_ended() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let h = vec![("x-debug".to_owned(), "tok".to_owned())];
        let Decision::Debug(level) = diag.debug_decision(&h, None) else {
            panic!("not admitted")
        };
        let view = RequestView {
            method: "POST",
            route: Some("/shop.Cart/Add"),
            uri: "/shop.Cart/Add",
            headers: &h,
            peer: &|| None,
        };
        let debug = diag.start_debug(level, &view, TraceId([7; 16]));
        debug.response_head(
            200,
            &vec![("content-type".into(), "application/grpc".into())],
        );
        debug.response_trailers(&vec![("grpc-status".into(), "5".into())]);
        debug.response_end();
        let plain = run_debug_request(&diag, "/items/1", 200);

        let list = json(&get(&diag, "/debug/requests", None, None).await);
        let captures = list["captures"].as_array().unwrap();
        assert_eq!(captures[1]["grpc_status"], "NOT_FOUND", "{list}");
        assert_eq!(captures[1]["status"], 200, "{list}");
        assert_eq!(captures[0]["id"], plain, "{list}");
        assert!(captures[0].get("grpc_status").is_none(), "{list}");
        let text = get(&diag, "/debug/requests", None, Some("text/plain")).await;
        let text = String::from_utf8(text.body).unwrap();
        let line = text.lines().find(|l| l.contains("/shop.Cart/Add")).unwrap();
        assert!(line.contains(" NOT_FOUND "), "{text}");
    }

    /// A gRPC call that sent no status is listed as the metrics count it: one the client
    /// left as `CANCELLED`, one whose body ended or failed without a status as `UNKNOWN`
    /// (not as its HTTP 200, which reads like a success).
    #[tokio::test]
    async fn a_grpc_call_without_a_status_is_listed_as_the_metrics_count_it() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let view = RequestView {
            method: "POST",
            route: Some("/greeter.v1.Greeter/Countdown"),
            uri: "/greeter.v1.Greeter/Countdown",
            headers: &(),
            peer: &|| None,
        };
        let call = |end: &dyn Fn(&crate::debug::DebugRequest)| {
            let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
            debug.response_head(
                200,
                &vec![("content-type".into(), "application/grpc".into())],
            );
            debug.response_chunk(b"\0\0\0\0\x01x");
            end(&debug);
            debug.id()
        };
        let left = call(&|d| d.finish_incomplete());
        let ended = call(&|d| d.response_end());
        let failed = call(&|d| d.finish_after_error());
        // Not gRPC as the metrics count it: gRPC-Web, and a gRPC content type on a 503.
        let web = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
        web.response_head(
            200,
            &vec![("content-type".into(), "application/grpc-web+proto".into())],
        );
        web.finish_incomplete();
        let unavailable = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
        unavailable.response_head(
            503,
            &vec![("content-type".into(), "application/grpc".into())],
        );
        unavailable.response_end();
        let list = json(&get(&diag, "/debug/requests", None, None).await);
        let status_of = |id: u64| {
            let captures = list["captures"].as_array().unwrap();
            let c = captures.iter().find(|c| c["id"] == id).unwrap();
            c["grpc_status"].as_str().unwrap_or("none").to_owned()
        };
        assert_eq!(status_of(left), "CANCELLED", "{list}");
        assert_eq!(status_of(ended), "UNKNOWN", "{list}");
        assert_eq!(status_of(failed), "UNKNOWN", "{list}");
        assert_eq!(status_of(web.id()), "none", "{list}");
        assert_eq!(status_of(unavailable.id()), "none", "{list}");
        let one = json(&get(&diag, &format!("/debug/requests/{left}"), None, None).await);
        assert_eq!(one["response"]["grpc_status"], "CANCELLED");
        let text = get(
            &diag,
            &format!("/debug/requests/{left}"),
            None,
            Some("text/plain"),
        )
        .await;
        let text = String::from_utf8(text.body).unwrap();
        assert!(
            text.starts_with("POST /greeter.v1.Greeter/Countdown -> 200 (gRPC CANCELLED)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn limit_keeps_the_newest_and_a_mistyped_format_is_an_error() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let ids: Vec<u64> = (0..3)
            .map(|i| run_debug_request(&diag, &format!("/items/{i}"), 200))
            .collect();
        let list = json(&get(&diag, "/debug/requests", Some("limit=2"), None).await);
        let listed: Vec<u64> = list["captures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect();
        assert_eq!(listed, [ids[2], ids[1]]);
        let bad = get(&diag, "/debug/requests", Some("limit=two"), None).await;
        assert_eq!(bad.status, 400);

        for path in ["/debug/requests", "/debug/state/routes", "/debug"] {
            // A typo for `text`: answered as text.
            let typo = get(&diag, path, Some("format=tetx"), None).await;
            assert_eq!(typo.status, 400, "{path}");
            let line = String::from_utf8(typo.body).unwrap();
            assert!(
                line.starts_with("error: format `tetx`: use text or json"),
                "{line}"
            );
            let explicit = get(&diag, path, Some("format=json"), None).await;
            assert_eq!(explicit.status, 200, "{path}");
            assert_eq!(explicit.header("content-type"), Some("application/json"));
        }
    }

    /// `?format=` in any case, and `txt` for text, on every endpoint with a text view;
    /// what is not a form diag serves is still a 400, as a line of text.
    #[tokio::test]
    async fn format_is_read_in_any_case() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let id = run_debug_request(&diag, "/items/1", 200);
        let one = format!("/debug/requests/{id}");
        for path in [
            &*one,
            "/debug/requests",
            "/debug/events",
            "/debug/state/routes",
        ] {
            for format in ["TEXT", "Text", "text", "txt", "TXT"] {
                let r = get(&diag, path, Some(&format!("format={format}")), None).await;
                assert_eq!(r.status, 200, "{path} {format}");
                let ct = r.header("content-type").unwrap();
                assert!(ct.starts_with("text/plain"), "{path} {format}: {ct}");
            }
            for format in ["JSON", "Json"] {
                let r = get(&diag, path, Some(&format!("format={format}")), None).await;
                assert_eq!(r.status, 200, "{path} {format}");
                assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
            }
            let r = get(&diag, path, Some("format=YAML"), None).await;
            assert_eq!(r.status, 400, "{path}");
            let line = String::from_utf8(r.body).unwrap();
            assert!(
                line.starts_with("error: format `YAML`: use text or json"),
                "{line}"
            );
            // A media type is read in any case too.
            let r = get(&diag, path, None, Some("Text/Plain")).await;
            assert!(
                r.header("content-type").unwrap().starts_with("text/plain"),
                "{path}"
            );
        }
        let r = get(&diag, &one, Some("format=TEXT"), None).await;
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.starts_with("GET /items/1 -> 200"), "{body}");
    }

    /// A debug id that is not kept: evicted (and which ids are still there), or never
    /// issued on this instance; each says so.
    #[tokio::test]
    async fn a_missing_id_says_whether_it_was_evicted_or_never_issued() {
        let diag = Diag::builder()
            .token("tok")
            .recorder_limits(2, 1 << 20)
            .build()
            .unwrap();
        let ids: Vec<u64> = (0..4)
            .map(|i| run_debug_request(&diag, &format!("/items/{i}"), 200))
            .collect();
        let error = |r: DiagResponse| {
            assert_eq!(r.status, 404);
            json(&r)["error"].as_str().unwrap().to_owned()
        };
        for evicted in [ids[0], ids[1]] {
            let e = error(get(&diag, &format!("/debug/requests/{evicted}"), None, None).await);
            assert!(
                e.contains(&format!("no debug capture with id {evicted}")),
                "{e}"
            );
            assert!(e.contains("was evicted"), "{e}");
            assert!(
                e.contains(&format!(
                    "the oldest kept, pinned ones aside, is {}",
                    ids[2]
                )),
                "{e}"
            );
            assert!(!e.contains("yet"), "{e}");
        }
        let next = ids[3] + 1;
        for never in [next, next + 1, 999, 0] {
            let e = error(get(&diag, &format!("/debug/requests/{never}"), None, None).await);
            assert!(e.contains("no request has had that id yet"), "{never}: {e}");
            assert!(e.contains(&format!("the next is {next}")), "{e}");
            assert!(e.contains(diag.instance()), "{e}");
            assert!(!e.contains("evicted"), "{e}");
        }
        // Issued but not stored yet: what it recorded so far.
        let h = vec![("x-debug".to_owned(), "tok".to_owned())];
        let view = RequestView {
            method: "GET",
            route: None,
            uri: "/slow",
            headers: &h,
            peer: &|| None,
        };
        let running = diag.start_debug(crate::debug::DebugLevel::Debug, &view, TraceId([5; 16]));
        let look = get(
            &diag,
            &format!("/debug/requests/{}", running.id()),
            None,
            None,
        )
        .await;
        assert_eq!(
            (look.status, json(&look)["in_flight"].clone()),
            (200, true.into())
        );
        running.response_end();
        let found = get(
            &diag,
            &format!("/debug/requests/{}", running.id()),
            None,
            None,
        )
        .await;
        assert_eq!(found.status, 200);
    }

    /// A `traceparent` value pasted as the id: its trace's capture, the one of its span
    /// when the trace has several.
    #[tokio::test]
    async fn a_pasted_traceparent_finds_its_capture() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let trace = TraceId([0xab; 16]);
        let first = run_traced_debug_request(&diag, "/items/1", 200, trace);
        let second = run_traced_debug_request(&diag, "/items/2", 200, trace);
        let span_of = |v: serde_json::Value| v["span_id"].as_str().unwrap().to_owned();
        let first_span = span_of(json(
            &get(&diag, &format!("/debug/requests/{first}"), None, None).await,
        ));
        for (tp, want) in [
            (format!("00-{trace}-{first_span}-01"), first),
            (
                format!("00-{trace}-{}-01", first_span.to_uppercase()),
                first,
            ),
            (
                format!("00-{}-{first_span}-00", trace.to_string().to_uppercase()),
                first,
            ),
            // A span no capture has (the caller's, a sibling's): the trace's newest.
            (format!("00-{trace}-00f067aa0ba902b7-01"), second),
        ] {
            let r = get(&diag, &format!("/debug/requests/{tp}"), None, None).await;
            assert_eq!(r.status, 200, "{tp}: {}", String::from_utf8_lossy(&r.body));
            assert_eq!(json(&r)["id"], want, "{tp}");
        }
        let text = get(
            &diag,
            &format!("/debug/requests/00-{trace}-{first_span}-01"),
            Some("format=text"),
            None,
        )
        .await;
        assert!(
            String::from_utf8(text.body)
                .unwrap()
                .starts_with("GET /items/1 -> 200")
        );

        let other = TraceId([0xcd; 16]);
        let r = get(
            &diag,
            &format!("/debug/requests/00-{other}-{first_span}-01"),
            None,
            None,
        )
        .await;
        assert_eq!(r.status, 404);
        let e = json(&r)["error"].as_str().unwrap().to_owned();
        assert!(e.contains(&other.to_string()), "{e}");
        for bad in [
            format!("00-{trace}-{first_span}"),
            format!("00-{trace}-{}-01", "0".repeat(16)),
            format!("00-{trace}-{first_span}-01-extra"),
        ] {
            let r = get(&diag, &format!("/debug/requests/{bad}"), None, None).await;
            assert_eq!(r.status, 400, "{bad}");
            assert!(json(&r)["error"].as_str().unwrap().contains("traceparent"));
        }
    }

    /// gRPC status names are wider than HTTP statuses: the columns still line up.
    #[tokio::test]
    async fn the_list_columns_line_up_with_grpc_status_names() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let h = vec![("x-debug".to_owned(), "tok".to_owned())];
        for code in ["11", "9", "0"] {
            let view = RequestView {
                method: "POST",
                route: Some("/shop.Cart/Add"),
                uri: "/shop.Cart/Add",
                headers: &h,
                peer: &|| None,
            };
            let debug = diag.start_debug(crate::debug::DebugLevel::Debug, &view, TraceId([7; 16]));
            debug.response_head(
                200,
                &vec![("content-type".into(), "application/grpc".into())],
            );
            debug.response_trailers(&vec![("grpc-status".into(), code.into())]);
            debug.response_end();
        }
        run_debug_request(&diag, "/items/1", 404);
        let text = get(&diag, "/debug/requests", None, Some("text/plain")).await;
        let text = String::from_utf8(text.body).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 5, "{text}");
        let column = |line: &str, word: &str| line.find(word).map(|at| at + word.len());
        // Every column ends where its heading does.
        let request = lines[0].find("request").unwrap();
        let status_end = column(lines[0], "status").unwrap();
        for (line, status) in
            lines[1..]
                .iter()
                .zip(["404", "OK", "FAILED_PRECONDITION", "OUT_OF_RANGE"])
        {
            assert_eq!(column(line, status), Some(status_end), "{text}");
            let method = line.find("GET ").or_else(|| line.find("POST ")).unwrap();
            assert_eq!(method, request, "{text}");
        }
    }

    #[tokio::test]
    async fn an_empty_list_as_text_says_how_to_fill_it() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let text = get(&diag, "/debug/requests", Some("format=text"), None).await;
        let text = String::from_utf8(text.body).unwrap();
        assert!(text.starts_with("0 debug requests kept"), "{text}");
        assert!(text.contains("send a request with X-Debug"), "{text}");
        let trace = TraceId([7; 16]);
        let query = format!("format=text&trace_id={trace}");
        let text = get(&diag, "/debug/requests", Some(&query), None).await;
        let text = String::from_utf8(text.body).unwrap();
        assert!(text.contains("no capture of that trace"), "{text}");
    }

    #[test]
    fn ages_read_like_a_person_says_them() {
        use super::age;
        assert_eq!(age(0.0123), "12 ms");
        assert_eq!(age(-1.0), "0 ms", "a clock step back is not a negative age");
        assert_eq!(age(4.26), "4.3 s");
        assert_eq!(age(600.0), "10 min");
        assert_eq!(age(7200.0), "2.0 h");
    }

    #[tokio::test]
    async fn guarded_listed_and_get_only() {
        let diag = Diag::builder().token("tok").build().unwrap();
        let anonymous = diag
            .serve(EndpointRequest {
                method: "GET".into(),
                path: "/debug/requests".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(anonymous.status, 401);
        let post = diag
            .serve(EndpointRequest {
                method: "POST".into(),
                path: "/debug/requests/1".into(),
                headers: vec![("authorization".into(), "Bearer tok".into())],
                ..Default::default()
            })
            .await;
        assert_eq!(post.status, 405);
        let index = get(&diag, "/debug", None, None).await;
        let index = String::from_utf8(index.body).unwrap();
        assert!(index.contains("/debug/requests/{id}"));
    }

    /// Captures are stored raw and redacted on read: every way a capture leaves the
    /// recorder (the list, one as JSON, plain or pretty, one as text, `recent`, `get`,
    /// `Debug`) must be free of the request's secrets.
    #[tokio::test]
    async fn no_read_path_serves_a_secret() {
        use crate::debug::{LogLine, SpanTiming};
        use crate::test_support::{headers, secret_headers};
        use std::time::Duration;

        let diag = Diag::builder()
            .token("tok")
            .debug_token("SECRET-DEBUGTOKEN")
            .redact_header("X-Internal-Key")
            .redact_field("ssn")
            .build()
            .unwrap();
        let h = secret_headers();
        let Decision::Debug(level) = diag.debug_decision(&h, None) else {
            panic!("not admitted")
        };
        let view = RequestView {
            method: "POST",
            route: Some("/login"),
            uri: "/login?user=ann&token=SECRET-QUERY&SSN=SECRET-QSSN",
            headers: &h,
            peer: &|| None,
        };
        let debug = diag.start_debug(level, &view, TraceId([3; 16]));
        debug.session().record_span(SpanTiming {
            id: 1,
            parent: None,
            name: "check".into(),
            target: "app".into(),
            start_offset: Duration::ZERO,
            duration: Duration::from_millis(1),
            fields: vec![("ssn".into(), "SECRET-SPAN".into())],
        });
        debug.session().record_log(LogLine {
            offset: Duration::ZERO,
            level: "DEBUG".into(),
            target: "app".into(),
            message: "checking".into(),
            fields: vec![("password".into(), "SECRET-LOG".into())],
            span: Some(1),
        });
        debug.request_chunk(br#"{"user":"ann","password":"SECRET-PW","ssn":"SECRET-SSN"}"#);
        debug.request_end();
        let resp = headers(&[
            ("set-cookie", "sid=SECRET-SETCOOKIE"),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        debug.response_head(200, &resp);
        debug.response_chunk(br#"{"ok":true,"access_token":"SECRET-RESP"}"#);
        debug.response_end();
        let id = debug.id();

        let mut served = Vec::new();
        for (path, query, accept) in [
            ("/debug/requests".to_owned(), None, None),
            ("/debug/requests".to_owned(), Some("pretty=1"), None),
            (format!("/debug/requests/{id}"), None, None),
            (format!("/debug/requests/{id}"), Some("pretty=1"), None),
            (format!("/debug/requests/{id}"), Some("format=text"), None),
            (format!("/debug/requests/{id}"), None, Some("text/plain")),
            (format!("/debug/requests/{}", TraceId([3; 16])), None, None),
            (
                format!("/debug/requests/{}", TraceId([3; 16])),
                Some("format=text"),
                None,
            ),
            ("/debug/requests".to_owned(), Some("format=text"), None),
        ] {
            let r = get(&diag, &path, query, accept).await;
            assert_eq!(r.status, 200, "{path}");
            served.push(String::from_utf8(r.body).unwrap());
        }
        let recorder = diag.debug_mode().recorder();
        served.push(serde_json::to_string(&*recorder.recent()[0]).unwrap());
        served.push(serde_json::to_string(&*recorder.get(id).unwrap()).unwrap());
        let by_trace = recorder.by_trace(&TraceId([3; 16])).unwrap();
        served.push(serde_json::to_string(&*by_trace).unwrap());
        served.push(format!("{recorder:?} {debug:?}"));
        for text in &served {
            assert!(!text.contains("SECRET"), "leak in:\n{text}");
        }
        // What is not secret is all there.
        assert!(served[0].contains("/login?user=ann&token=[redacted]&SSN=[redacted]"));
        assert!(served[2].contains(r#"\"user\":\"ann\""#), "{}", served[2]);
        assert!(served[2].contains("checking"));
        assert!(served[4].contains(r#""ok":true"#), "{}", served[4]);
        for header in [
            "x-debug",
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-internal-key",
            "set-cookie",
        ] {
            assert!(
                served[4].contains(&format!("{header}: [redacted]")),
                "{header}"
            );
        }
    }
}
