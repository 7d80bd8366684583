//! Behaviour of the filters, the recording layer and the runtime level together, with
//! a real `fmt` layer writing into a buffer.

use std::io;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

use super::*;
use crate::Diag;
use crate::debug::{DebugLevel, DebugSession};
use crate::request::RequestScope;
use crate::trace::{SpanId, TraceContext, TraceId};

/// Log output the test can read back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(String::from)
            .collect()
    }
}

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A dispatcher like a service's: fmt behind diag's filter, plus the recording layer.
fn service(diag: &Diag, directive: &str, out: &Buffer) -> (Dispatch, LogFilter) {
    let filter = diag.log_filter(EnvFilter::new(directive));
    let out = out.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || out.clone())
                .with_filter(filter.clone()),
        )
        .with(diag.debug_recording_layer());
    (Dispatch::new(subscriber), filter)
}

fn scope(n: u8, debug: Option<DebugLevel>) -> RequestScope {
    RequestScope::new(
        TraceContext {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            sampled: true,
        },
        debug.map(|level| Arc::new(DebugSession::new(u64::from(n), level))),
        None,
    )
}

fn session(scope: &RequestScope) -> &DebugSession {
    scope.debug.as_deref().unwrap()
}

/// Runs `f` as the request path would: counted in flight when debug, root span
/// created, scope current and span entered.
fn in_request<R>(scope: &RequestScope, f: impl FnOnce() -> R) -> R {
    let _counted = scope.debug.as_ref().map(|d| DebugInFlight::begin(d.level));
    let span = request_span(scope);
    let _current = scope.enter();
    let _entered = span.enter();
    f()
}

#[test]
fn debug_lines_of_a_debug_request_are_written_with_the_trace_id_and_recorded() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, _) = service(&diag, "info", &out);
    let req = scope(0xab, Some(DebugLevel::Debug));
    tracing::dispatcher::with_default(&dispatch, || {
        in_request(&req, || {
            tracing::debug!(user = 42, password = "hunter2", "looking up the cart");
            tracing::info!("cart found");
        });
    });
    let trace_id = req.trace.trace_id.to_string();
    let lines = out.lines_with("looking up the cart");
    assert_eq!(lines.len(), 1, "{}", out.text());
    assert!(
        lines[0].contains(&format!("trace_id={trace_id}")),
        "{}",
        lines[0]
    );
    assert!(out.lines_with("cart found")[0].contains(&trace_id));

    let logs = session(&req).logs();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0].level, "DEBUG");
    assert_eq!(logs[0].message, "looking up the cart");
    assert!(logs[0].fields.contains(&("user".into(), "42".into())));
    assert!(
        logs[0]
            .fields
            .contains(&("password".into(), fields::REDACTED.into()))
    );
    assert!(logs[0].span.is_some(), "the event is in the request span");
    assert_eq!(logs[1].message, "cart found");
}

#[test]
fn fields_cut_while_recording_are_counted_in_the_session() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, _) = service(&diag, "info", &out);
    let req = scope(0xac, Some(DebugLevel::Debug));
    let long = "x".repeat(fields::MAX_VALUE_BYTES + 10);
    tracing::dispatcher::with_default(&dispatch, || {
        in_request(&req, || {
            tracing::debug!(body = %long, "a long one");
            let span = tracing::info_span!("load", detail = tracing::field::Empty);
            span.record("detail", long.as_str());
            span.in_scope(|| {});
        });
    });
    let logs = session(&req).logs();
    assert!(logs[0].fields[0].1.ends_with('…'), "{logs:?}");
    assert_eq!(
        session(&req).fields_cut(),
        2,
        "the event's and the span's value"
    );
}

/// A subscriber with a filter over all of it (the service's own EnvFilter added with
/// `.with(..)`) drops a debug request's DEBUG events before diag's filter sees them: the
/// request says so in `X-Debug-Status`, and `/debug` says why. The documented setup
/// does not.
#[test]
fn a_subscriber_that_drops_debug_events_is_named() {
    let _serial = crate::test_support::tracing_test_lock();
    let debug_status = |diag: &Diag, dispatch: &Dispatch| {
        tracing::dispatcher::with_default(dispatch, || {
            let headers = vec![("x-debug".to_owned(), "s3cret".to_owned())];
            let guard = diag.begin(&crate::request::RequestView {
                method: "GET",
                route: Some("/"),
                uri: "/",
                headers: &headers,
                peer: &|| None,
            });
            let mut head: Vec<(String, String)> = Vec::new();
            let _tap = guard.finish(200, &mut head);
            head.into_iter()
                .find(|(n, _)| n == "x-debug-status")
                .map(|(_, v)| v)
                .unwrap()
        })
    };
    let hints = |diag: &Diag| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let resp = rt.block_on(diag.serve(crate::EndpointRequest {
            method: "GET".into(),
            path: "/debug".into(),
            headers: vec![("authorization".into(), "Bearer s3cret".into())],
            ..Default::default()
        }));
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["hints"].to_string()
    };

    let diag = Diag::builder().token("s3cret").build().unwrap();
    let blocking = Dispatch::new(
        tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(fmt::layer().with_writer(std::io::sink))
            .with(diag.debug_recording_layer()),
    );
    let status = debug_status(&diag, &blocking);
    assert_eq!(status, "active; level=debug; logs=blocked");
    assert!(hints(&diag).contains("diag.log_filter"), "{}", hints(&diag));
    // The capture says so too, for whoever reads it later.
    let capture = diag.debug_mode().recorder().get(1).expect("stored");
    assert!(capture.logs_blocked);
    let waterfall = crate::debug::render_waterfall(&capture);
    assert!(waterfall.contains("note: no DEBUG lines"), "{waterfall}");

    let out = Buffer::default();
    let (documented, _) = service(&diag, "info", &out);
    assert_eq!(debug_status(&diag, &documented), "active; level=debug");
    assert!(!hints(&diag).contains("DEBUG"), "{}", hints(&diag));
}

#[test]
fn debug_lines_outside_a_debug_request_are_not_written() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, _) = service(&diag, "info", &out);
    let plain = scope(1, None);
    // Another debug request in flight takes the filter off its fast path.
    let _other = DebugInFlight::begin(DebugLevel::Debug);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::debug!("outside any request");
        in_request(&plain, || {
            tracing::debug!("inside a plain request");
            tracing::info!("plain info");
        });
    });
    assert!(
        out.lines_with("outside any request").is_empty(),
        "{}",
        out.text()
    );
    assert!(
        out.lines_with("inside a plain request").is_empty(),
        "{}",
        out.text()
    );
    assert_eq!(out.lines_with("plain info").len(), 1, "{}", out.text());
}

#[test]
fn trace_lines_only_when_the_session_asks_for_trace() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, _) = service(&diag, "info", &out);
    let at_debug = scope(2, Some(DebugLevel::Debug));
    let at_trace = scope(3, Some(DebugLevel::Trace));
    tracing::dispatcher::with_default(&dispatch, || {
        for req in [&at_debug, &at_trace] {
            in_request(req, || {
                tracing::trace!(n = req.debug.as_ref().unwrap().id, "fine detail");
            });
        }
    });
    let lines = out.lines_with("fine detail");
    assert_eq!(lines.len(), 1, "{}", out.text());
    assert!(lines[0].contains(&at_trace.trace.trace_id.to_string()));
    assert!(session(&at_debug).logs().is_empty());
    assert_eq!(session(&at_trace).logs().len(), 1);
}

#[test]
fn concurrent_requests_do_not_leak_into_each_other() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, _) = service(&diag, "info", &out);
    let debug_req = scope(4, Some(DebugLevel::Debug));
    let plain_req = scope(5, None);
    let barrier = Barrier::new(2);
    const N: usize = 200;
    std::thread::scope(|s| {
        s.spawn(|| {
            tracing::dispatcher::with_default(&dispatch, || {
                barrier.wait();
                in_request(&debug_req, || {
                    for i in 0..N {
                        tracing::debug!(i, "from-debug-request");
                        std::thread::yield_now();
                    }
                });
            });
        });
        s.spawn(|| {
            tracing::dispatcher::with_default(&dispatch, || {
                barrier.wait();
                in_request(&plain_req, || {
                    for i in 0..N {
                        tracing::debug!(i, "from-plain-request");
                        tracing::info!(i, "info-from-plain-request");
                        std::thread::yield_now();
                    }
                });
            });
        });
    });
    let debug_trace = debug_req.trace.trace_id.to_string();
    let debug_lines = out.lines_with("from-debug-request");
    assert_eq!(debug_lines.len(), N);
    assert!(debug_lines.iter().all(|l| l.contains(&debug_trace)));
    assert!(
        out.lines_with("from-plain-request")
            .iter()
            .all(|l| l.contains("info-from"))
    );
    let plain_info = out.lines_with("info-from-plain-request");
    assert_eq!(plain_info.len(), N);
    assert!(plain_info.iter().all(|l| !l.contains(&debug_trace)));
    let logs = session(&debug_req).logs();
    assert_eq!(logs.len(), N);
    assert!(logs.iter().all(|l| l.message == "from-debug-request"));
}

#[test]
fn span_timings_keep_parents_and_durations_across_threads() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, _) = service(&diag, "warn", &out);
    let req = scope(6, Some(DebugLevel::Debug));
    tracing::dispatcher::with_default(&dispatch, || {
        in_request(&req, || {
            let query =
                tracing::debug_span!("db_query", table = "carts", rows = tracing::field::Empty);
            {
                let _q = query.enter();
                std::thread::sleep(Duration::from_millis(5));
                query.record("rows", 3);
            }
            drop(query);
            // Work moved to another thread: no request scope there, only the span.
            let worker = tracing::debug_span!("worker");
            std::thread::scope(|s| {
                s.spawn(|| {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let _w = worker.enter();
                        let inner = tracing::debug_span!("inner_step");
                        let _i = inner.enter();
                        tracing::debug!("on the worker thread");
                    });
                });
            });
        });
    });
    let spans = session(&req).spans();
    let by_name = |n: &str| {
        spans
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("{n}: {spans:?}"))
    };
    let root = by_name("request");
    let query = by_name("db_query");
    let worker = by_name("worker");
    let inner = by_name("inner_step");
    assert_eq!(root.parent, None);
    assert_eq!(query.parent, Some(root.id));
    assert_eq!(worker.parent, Some(root.id));
    assert_eq!(inner.parent, Some(worker.id));
    assert!(query.duration >= Duration::from_millis(5));
    assert!(root.duration >= query.duration);
    assert!(query.start_offset <= worker.start_offset);
    assert!(
        query.fields.contains(&("rows".into(), "3".into())),
        "{query:?}"
    );
    assert!(
        root.fields
            .iter()
            .any(|(k, v)| k == "trace_id" && *v == req.trace.trace_id.to_string())
    );
    let worker_line = out.lines_with("on the worker thread");
    assert_eq!(worker_line.len(), 1, "{}", out.text());
    assert!(worker_line[0].contains(&req.trace.trace_id.to_string()));
    let logs = session(&req).logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].span, Some(inner.id));
}

#[test]
fn runtime_level_changes_and_its_ttl_runs_out_by_itself() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, filter) = service(&diag, "info", &out);
    // With a single registered dispatcher, tracing-core rebuilds callsite interest only
    // for the calling thread's default (the global one in a service, none here): keep a
    // second one alive so the rebuild after a change (also from the TTL thread) reaches
    // `dispatch`, as it would reach a service's global subscriber.
    let _second = Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let emit = |tag: &str| {
        tracing::dispatcher::with_default(&dispatch, || tracing::debug!("runtime-{tag}"));
        out.lines_with(&format!("runtime-{tag}")).len()
    };
    assert_eq!(emit("before"), 0);

    // Each change is a WARN line in the service's own log too.
    tracing::dispatcher::with_default(&dispatch, || diag.log_level().set("debug", None)).unwrap();
    assert_eq!(emit("raised"), 1);
    tracing::dispatcher::with_default(&dispatch, || diag.log_level().reset()).unwrap();
    assert_eq!(emit("reset"), 0);
    let set = out.lines_with("log level set to `debug` (was `info`)");
    assert!(set.len() == 1 && set[0].contains("WARN"), "{set:?}");
    assert_eq!(
        out.lines_with("log level reset to the default `info`")
            .len(),
        1
    );

    let state = diag
        .log_level()
        .set("debug", Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        state
            .expires_in
            .is_some_and(|t| t <= Duration::from_millis(200))
    );
    assert_eq!(emit("ttl"), 1);
    // Watch the slot itself (not `current()`, which would revert on read): the TTL
    // thread must put the default back alone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while filter.slot.load().directive != "info" {
        assert!(Instant::now() < deadline, "TTL never reverted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(emit("after-ttl"), 0);
    // The expiry event is recorded a moment after the swap.
    while diag.events().since(0, Some("log_level"), 10).len() < 4 {
        assert!(Instant::now() < deadline, "no expiry event");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kinds: Vec<String> = diag
        .events()
        .recent()
        .into_iter()
        .filter(|e| e.kind == "log_level")
        .map(|e| e.message)
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(kinds[3].contains("expired"), "{kinds:?}");
    assert_eq!(diag.log_level().current().unwrap().expires_in, None);
}

#[test]
fn a_directive_for_one_target_keeps_the_default_and_every_change_is_logged() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, filter) = service(&diag, "info", &out);
    let _second = Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let in_service = |f: &dyn Fn()| tracing::dispatcher::with_default(&dispatch, f);

    // `checkout=debug` alone would turn every other target off.
    let state = tracing::dispatcher::with_default(&dispatch, || {
        diag.log_level().set("checkout=debug", None)
    })
    .unwrap();
    assert_eq!(state.directive, "info,checkout=debug");
    in_service(&|| {
        tracing::debug!(target: "checkout", "checkout-debug");
        tracing::info!(target: "payments", "payments-info");
        tracing::debug!(target: "payments", "payments-debug");
    });
    assert_eq!(out.lines_with("checkout-debug").len(), 1, "{}", out.text());
    assert_eq!(out.lines_with("payments-info").len(), 1, "{}", out.text());
    assert_eq!(out.lines_with("payments-debug").len(), 0, "{}", out.text());
    let set = out.lines_with("`checkout=debug` over the default");
    assert_eq!(set.len(), 1, "{}", out.text());

    // A level that hides diag's own WARN: the change is still logged, before it. (Its
    // end is logged after the default is back, by the TTL thread under the global
    // dispatcher, so it is checked in the events timeline below, not in `out`.)
    tracing::dispatcher::with_default(&dispatch, || {
        diag.log_level()
            .set("error", Some(Duration::from_millis(100)))
    })
    .unwrap();
    assert_eq!(
        out.lines_with("log level set to `error`").len(),
        1,
        "{}",
        out.text()
    );
    in_service(&|| tracing::warn!(target: "payments", "hidden-warn"));
    assert_eq!(out.lines_with("hidden-warn").len(), 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while filter.slot.load().directive != "info,checkout=debug" {
        assert!(Instant::now() < deadline, "TTL never reverted");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The TTL thread says "expired" after putting the default back (under the global
    // dispatcher, so not in `out`); the events timeline has it, a moment after the swap.
    let expired = || {
        diag.events()
            .since(0, Some("log_level"), 10)
            .last()
            .is_some_and(|e| e.message.contains("expired"))
    };
    while !expired() {
        assert!(Instant::now() < deadline, "no expiry event");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_ttl_on_top_of_a_ttl_goes_back_to_what_was_there_before_both() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let _filter = diag.log_filter(EnvFilter::new("warn"));
    diag.log_level().set("info", None).unwrap();
    diag.log_level()
        .set("debug", Some(Duration::from_secs(60)))
        .unwrap();
    diag.log_level()
        .set("trace", Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = diag.log_level().current().unwrap();
        if state.directive == "info" {
            assert_eq!(state.default, "warn");
            assert_eq!(state.expires_in, None);
            break;
        }
        assert!(Instant::now() < deadline, "{state:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn changes_need_an_installed_filter_and_a_valid_directive() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    assert_eq!(diag.log_level().current(), Err(LogLevelError::NotInstalled));
    assert_eq!(
        diag.log_level().set("debug", None),
        Err(LogLevelError::NotInstalled)
    );
    let _filter = diag.log_filter(EnvFilter::new("info"));
    assert!(matches!(
        diag.log_level().set("checkout=loud", None),
        Err(LogLevelError::InvalidDirective { .. })
    ));
    assert_eq!(diag.log_level().set("  ", None), Err(LogLevelError::Empty));
    let huge = "a=debug,".repeat(MAX_DIRECTIVE_BYTES / 8 + 1);
    assert!(matches!(
        diag.log_level().set(&huge, None),
        Err(LogLevelError::InvalidDirective { .. })
    ));
    assert_eq!(
        diag.log_level().set("debug", Some(Duration::ZERO)),
        Err(LogLevelError::TtlOutOfRange)
    );
    assert_eq!(diag.log_level().current().unwrap().directive, "info");
}

#[test]
fn a_callsite_first_hit_while_idle_still_logs_in_a_later_debug_request() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let out = Buffer::default();
    let (dispatch, _) = service(&diag, "info", &out);
    let req = scope(7, Some(DebugLevel::Debug));
    // One callsite, hit before, during and after the debug request: its cached interest
    // (`never` while idle) must be rebuilt when the request starts and ends.
    let emit = |phase: &str| {
        tracing::debug!(phase, "same-callsite");
        tracing::info!(phase, "same-info-callsite");
    };
    tracing::dispatcher::with_default(&dispatch, || {
        emit("idle-before");
        in_request(&req, || emit("in-request"));
        emit("idle-after");
    });
    let lines = out.lines_with("same-callsite");
    assert_eq!(lines.len(), 1, "{}", out.text());
    assert!(lines[0].contains("in-request"), "{}", lines[0]);
    assert_eq!(out.lines_with("same-info-callsite").len(), 3);
    // The info callsite was cached `always` while idle; the recording layer still sees
    // it inside the request, and only there.
    let logs = session(&req).logs();
    let messages: Vec<_> = logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["same-callsite", "same-info-callsite"]);
}

#[test]
fn trace_callsites_stay_closed_while_only_debug_level_requests_run() {
    use tracing_subscriber::Registry;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::Filter;
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let filter = diag.log_filter(EnvFilter::new("info"));
    // Spans made under a subscriber that takes everything, for their static metadata.
    let (trace_site, debug_site) =
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let trace = tracing::trace_span!("probe_trace").metadata().unwrap();
            let debug = tracing::debug_span!("probe_debug").metadata().unwrap();
            (trace, debug)
        });
    let interest = |meta| Filter::<Registry>::callsite_enabled(&filter, meta);
    // A TRACE request of an earlier test leaves TRACE open until every debug request
    // has been idle for the linger (only tests holding the lock start TRACE ones).
    let deadline = Instant::now() + Duration::from_secs(20);
    while in_flight::trace_interest_open() {
        assert!(Instant::now() < deadline, "TRACE interest never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let at_debug = DebugInFlight::begin(DebugLevel::Debug);
    assert!(interest(debug_site).is_sometimes());
    assert!(
        interest(trace_site).is_never(),
        "trace! stays as cheap as without diag"
    );
    assert_eq!(
        Filter::<Registry>::max_level_hint(&filter),
        Some(LevelFilter::DEBUG)
    );
    let at_trace = DebugInFlight::begin(DebugLevel::Trace);
    assert!(interest(trace_site).is_sometimes());
    assert_eq!(
        Filter::<Registry>::max_level_hint(&filter),
        Some(LevelFilter::TRACE)
    );
    drop(at_trace);
    drop(at_debug);
}
