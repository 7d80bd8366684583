//! Each source driven the way a service or a client would, then read back over
//! `GET /metrics` in both formats.

use std::time::Duration;

use tracing_subscriber::prelude::*;

use crate::body::Polled;
use crate::metrics::conformance::{check_openmetrics, check_with_promtool};
use crate::request::RequestView;
use crate::state::{ErrorRecord, MAX_ERROR_TARGETS, MAX_PROVIDERS, RegisterError};
use crate::test_support::scrape_metrics;
use crate::{Diag, EndpointRequest};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

/// `f` run to its end on a runtime of its own, so tests can hold the tracing lock
/// without awaiting under it.
fn on_own_runtime<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn serve(diag: &Diag, req: EndpointRequest) -> crate::DiagResponse {
    on_own_runtime(diag.serve(req))
}

/// The text of `GET /metrics` with this `Accept`.
fn scrape_as(diag: &Diag, accept: Option<&str>) -> String {
    on_own_runtime(scrape_metrics(diag, accept)).1
}

/// Scrapes in OpenMetrics (checked structurally) and classic text; returns the
/// classic text after checking both carry the same samples.
fn scrape(diag: &Diag) -> String {
    let om = scrape_as(diag, Some(OPENMETRICS));
    if let Err(e) = check_openmetrics(&om) {
        panic!("{e}\n{om}");
    }
    let classic = scrape_as(diag, None);
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("diag_") && !l.starts_with("diag_metrics_"))
            .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(samples(&om), samples(&classic), "{om}\n---\n{classic}");
    classic
}

/// The value of one series (`name{labels}` exactly as exposed), or `None` if absent.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().unwrap())
    })
}

#[track_caller]
fn assert_value(text: &str, series: &str, want: f64) {
    assert_eq!(value(text, series), Some(want), "{series}\n{text}");
}

/// One request through the real request path, with a 12 kB body.
fn get(
    diag: &Diag,
    headers: &[(&str, &str)],
    uri: &str,
    peer: &str,
) -> Option<crate::debug::BodyTap> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let guard = diag.begin(&RequestView {
        method: "POST",
        route: Some("/orders"),
        uri,
        headers: &headers,
        peer: &|| peer.parse().ok(),
    });
    if let Some(mut tap) = guard.request_tap() {
        tap.observe(Polled::Data(&vec![b'x'; 12_000]));
    }
    let mut response: Vec<(String, String)> = Vec::new();
    guard.finish(201, &mut response)
}

#[test]
fn debug_mode_activations_rejections_budget_and_flight_recorder() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder()
        .token("s3cret")
        .debug_budget(0.001, 5)
        .recorder_limits(2, 10_000)
        .capture_body_limit(100)
        .build()
        .unwrap();
    let text = scrape(&diag);
    for reason in crate::debug::RejectReason::ALL {
        let series = format!(
            "diag_debug_rejected_total{{reason=\"{}\"}}",
            reason.as_str()
        );
        assert_value(&text, &series, 0.0);
    }
    assert_value(&text, "diag_debug_activations_total", 0.0);
    assert_value(&text, "diag_debug_in_flight", 0.0);

    let remote = "203.0.113.9:4000";
    get(&diag, &[("x-debug", "guess")], "/orders", remote);
    get(&diag, &[("x-debug", "guess-again")], "/orders", remote);
    get(&diag, &[("x-debug", "has space")], "/orders", remote);
    get(&diag, &[("x-debug", &"x".repeat(300))], "/orders", remote);
    get(&diag, &[("x-debug", "1")], "/orders", remote);
    // Two captures fit; the third evicts the first.
    for _ in 0..3 {
        let mut tap = get(&diag, &[("x-debug", "s3cret")], "/orders", remote).unwrap();
        tap.observe(Polled::End);
    }
    // A capture larger than the recorder's 10 kB (its URI alone is 12 kB).
    let long_uri = format!("/orders?{}", "a".repeat(12_000));
    let mut tap = get(&diag, &[("x-debug", "s3cret")], &long_uri, remote).unwrap();
    tap.observe(Polled::End);
    drop(tap); // the response body is done: the request is no longer in flight
    // A debug request still running is in flight.
    let running = diag.begin(&RequestView {
        method: "GET",
        route: Some("/slow"),
        uri: "/slow",
        headers: &vec![("x-debug".to_owned(), "s3cret".to_owned())],
        peer: &|| None,
    });
    assert!(running.debug_id().is_some());
    // The budget (burst 5) is spent now.
    assert!(get(&diag, &[("x-debug", "s3cret")], "/orders", remote).is_none());

    let text = scrape(&diag);
    assert_value(&text, r#"diag_debug_rejected_total{reason="invalid"}"#, 2.0);
    assert_value(
        &text,
        r#"diag_debug_rejected_total{reason="oversized"}"#,
        1.0,
    );
    assert_value(
        &text,
        r#"diag_debug_rejected_total{reason="untrusted_network"}"#,
        1.0,
    );
    assert_value(&text, r#"diag_debug_rejected_total{reason="expired"}"#, 0.0);
    assert_value(
        &text,
        r#"diag_debug_rejected_total{reason="malformed"}"#,
        1.0,
    );
    assert_value(&text, "diag_debug_activations_total", 5.0);
    assert_value(&text, "diag_debug_budget_exhausted_total", 1.0);
    assert_value(&text, "diag_debug_in_flight", 1.0);
    assert_value(&text, "diag_debug_recorder_captures", 2.0);
    assert_value(&text, "diag_debug_recorder_stored_total", 3.0);
    assert_value(&text, "diag_debug_recorder_evicted_total", 1.0);
    assert_value(&text, "diag_debug_recorder_too_large_total", 1.0);
    let stats = diag.debug_mode().recorder().stats();
    assert!(stats.bytes > 0);
    assert_value(&text, "diag_debug_recorder_bytes", stats.bytes as f64);

    // The running request ends (incomplete): stored, evicting another.
    drop(running);
    let text = scrape(&diag);
    assert_value(&text, "diag_debug_in_flight", 0.0);
    assert_value(&text, "diag_debug_recorder_stored_total", 4.0);
    assert_value(&text, "diag_debug_recorder_evicted_total", 2.0);
}

#[test]
fn queues_depth_capacity_totals_rates_and_lagging() {
    let diag = Diag::builder().build().unwrap();
    let orders = diag.queue("orders").unwrap();
    orders.set_capacity(10);
    orders.produced_n(5);
    orders.consumed_n(2);
    let emails = diag.queue("emails").unwrap();
    emails.produced();

    let text = scrape(&diag);
    assert_value(&text, r#"diag_queue_depth{queue="orders"}"#, 3.0);
    assert_value(&text, r#"diag_queue_capacity{queue="orders"}"#, 10.0);
    assert_value(&text, r#"diag_queue_produced_total{queue="orders"}"#, 5.0);
    assert_value(&text, r#"diag_queue_consumed_total{queue="orders"}"#, 2.0);
    assert_value(&text, r#"diag_queue_rejected_total{queue="orders"}"#, 0.0);
    assert_value(&text, r#"diag_queue_consumer_lagging{queue="orders"}"#, 0.0);
    assert_value(&text, r#"diag_queue_depth{queue="emails"}"#, 1.0);
    assert_eq!(value(&text, r#"diag_queue_capacity{queue="emails"}"#), None);
    assert_value(&text, r#"diag_queue_consumer_lagging{queue="emails"}"#, 0.0);

    // A queue that refuses work lags, at whatever depth; refusals are not produced.
    emails.rejected_n(2);
    let text = scrape(&diag);
    assert_value(&text, r#"diag_queue_rejected_total{queue="emails"}"#, 2.0);
    assert_value(&text, r#"diag_queue_produced_total{queue="emails"}"#, 1.0);
    assert_value(&text, r#"diag_queue_depth{queue="emails"}"#, 1.0);
    assert_value(&text, r#"diag_queue_consumer_lagging{queue="emails"}"#, 1.0);
    // Under a second old: no rate yet.
    assert_eq!(
        value(
            &text,
            r#"diag_queue_producer_rate_per_second{queue="orders"}"#
        ),
        None
    );

    // Nearly full: lagging.
    orders.produced_n(6);
    let text = scrape(&diag);
    assert_value(&text, r#"diag_queue_depth{queue="orders"}"#, 9.0);
    assert_value(&text, r#"diag_queue_consumer_lagging{queue="orders"}"#, 1.0);

    std::thread::sleep(Duration::from_millis(1100));
    let text = scrape(&diag);
    let produced = value(
        &text,
        r#"diag_queue_producer_rate_per_second{queue="orders"}"#,
    )
    .expect("a rate after a second");
    let consumed = value(
        &text,
        r#"diag_queue_consumer_rate_per_second{queue="orders"}"#,
    )
    .expect("a rate after a second");
    // 11 produced and 2 consumed since the probe was made, 1.1 to a few seconds ago.
    assert!(produced > 1.0 && produced <= 11.0 / 1.1, "{produced}");
    assert!(consumed > 0.1 && consumed <= 2.0 / 1.1, "{consumed}");
    assert!(produced > consumed);
}

fn record(target: &str) -> ErrorRecord {
    ErrorRecord {
        time_unix: 0.0,
        target: target.into(),
        message: "boom".into(),
        fields: Vec::new(),
        trace_id: None,
        location: None,
    }
}

#[test]
fn errors_per_target_with_overflow_and_evictions() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().error_ring_capacity(5).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(diag.error_layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(target: "payments", "card declined");
        tracing::error!(target: "payments", "card declined again");
        tracing::error!(target: "inventory", "stock unknown");
        tracing::warn!(target: "inventory", "not an error");
    });
    let text = scrape(&diag);
    assert_value(&text, r#"diag_errors_total{target="payments"}"#, 2.0);
    assert_value(&text, r#"diag_errors_total{target="inventory"}"#, 1.0);
    assert_eq!(
        value(&text, r#"diag_errors_total{target="__overflow__"}"#),
        None
    );
    assert_value(&text, "diag_errors_evicted_total", 0.0);

    for i in 0..MAX_ERROR_TARGETS {
        diag.errors().push(record(&format!("t{i}")));
    }
    let text = scrape(&diag);
    // Two targets were known: 254 more fit, 2 overflow.
    assert_value(&text, r#"diag_errors_total{target="__overflow__"}"#, 2.0);
    assert_value(&text, r#"diag_errors_total{target="t0"}"#, 1.0);
    let series = text
        .lines()
        .filter(|l| l.starts_with("diag_errors_total{"))
        .count();
    assert_eq!(series, MAX_ERROR_TARGETS + 1);
    assert_value(
        &text,
        "diag_errors_evicted_total",
        (3 + MAX_ERROR_TARGETS - 5) as f64,
    );
    assert_value(&text, "diag_errors_capture_failures_total", 0.0);
}

#[test]
fn events_recorded_and_evicted() {
    let diag = Diag::builder().events_capacity(3).build().unwrap();
    for i in 0..4 {
        diag.events().record("deploy", format!("v{i}"));
    }
    let text = scrape(&diag);
    // `start` and four deploys: five recorded, two pushed out.
    assert_value(&text, "diag_events_recorded_total", 5.0);
    assert_value(&text, "diag_events_evicted_total", 2.0);
}

#[test]
fn state_provider_calls_by_outcome() {
    // Long enough for a panicking provider's panic hook (a backtrace printed under
    // RUST_BACKTRACE on a busy machine took over 100 ms) to finish within it.
    let diag = Diag::builder()
        .provider_deadline(Duration::from_millis(1000))
        .build()
        .unwrap();
    diag.state().register("fine", || "ok").unwrap();
    diag.state()
        .register("explodes", || -> u8 { panic!("poisoned") })
        .unwrap();
    diag.state()
        .register_async("hangs", std::future::pending::<u8>)
        .unwrap();
    let text = scrape(&diag);
    assert_value(
        &text,
        r#"diag_state_provider_calls_total{provider="fine",status="ok"}"#,
        0.0,
    );
    let read = |path: &str| {
        serve(
            &diag,
            EndpointRequest {
                method: "GET".into(),
                path: path.into(),
                peer: Some("127.0.0.1:1".parse().unwrap()),
                ..Default::default()
            },
        )
    };
    assert_eq!(read("/debug/state").status, 200);
    assert_eq!(read("/debug/state/fine").status, 200);
    let text = scrape(&diag);
    for (provider, status, want) in [
        ("fine", "ok", 2.0),
        ("fine", "error", 0.0),
        ("explodes", "error", 1.0),
        ("explodes", "ok", 0.0),
        ("hangs", "timeout", 1.0),
        ("process", "ok", 1.0),
    ] {
        let series = format!(
            "diag_state_provider_calls_total{{provider=\"{provider}\",status=\"{status}\"}}"
        );
        assert_value(&text, &series, want);
    }
}

#[test]
fn providers_are_capped() {
    let diag = Diag::builder().build().unwrap();
    let builtin = diag.state().names().len();
    for i in builtin..MAX_PROVIDERS {
        diag.state().register(&format!("p{i}"), || 1).unwrap();
    }
    assert_eq!(
        diag.state().register("one_more", || 1),
        Err(RegisterError::TooMany {
            what: "state providers",
            cap: MAX_PROVIDERS
        })
    );
    let text = scrape(&diag);
    let series = text
        .lines()
        .filter(|l| l.starts_with("diag_state_provider_calls_total{"))
        .count();
    assert_eq!(series, MAX_PROVIDERS * 3);
}

#[test]
fn log_level_override_and_kill_switch() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder().build().unwrap();
    let text = scrape(&diag);
    assert_value(&text, "diag_log_level_override", 0.0);
    assert_value(&text, "diag_disabled", 0.0);
    let _filter = diag.log_filter(tracing_subscriber::EnvFilter::new("info"));
    diag.log_level().set("debug", None).unwrap();
    diag.set_disabled(true);
    let text = scrape(&diag);
    assert_value(&text, "diag_log_level_override", 1.0);
    assert_value(&text, "diag_disabled", 1.0);
    diag.log_level().reset().unwrap();
    let text = scrape(&diag);
    assert_value(&text, "diag_log_level_override", 0.0);
}

#[test]
fn every_source_busy_passes_promtool_and_the_openmetrics_check() {
    let _serial = crate::test_support::tracing_test_lock();
    let diag = Diag::builder()
        .token("s3cret")
        .debug_budget(0.001, 1)
        .build()
        .unwrap();
    let remote = "203.0.113.9:4000";
    get(&diag, &[("x-debug", "nope")], "/", remote);
    if let Some(mut tap) = get(&diag, &[("x-debug", "s3cret")], "/", remote) {
        tap.observe(Polled::End);
    }
    get(&diag, &[("x-debug", "s3cret")], "/", remote);
    let q = diag.queue("jobs.high-priority").unwrap();
    q.set_capacity(4);
    q.produced_n(4);
    q.rejected();
    diag.errors()
        .push(record("weird \"target\"\\with\nnewline"));
    diag.state().register("fine", || 1).unwrap();
    let _ = serve(
        &diag,
        EndpointRequest {
            method: "GET".into(),
            path: "/debug/state".into(),
            headers: vec![("authorization".into(), "Bearer s3cret".into())],
            ..Default::default()
        },
    );
    diag.register_collector(|w| {
        w.gauge("pool_idle_bytes", "Idle pool memory.", &[], 2048.0);
        w.counter("pool_waits", "Waits.", &[("pool", "a")], 2);
    })
    .unwrap();
    let text = scrape(&diag);
    assert_value(
        &text,
        r#"diag_queue_consumer_lagging{queue="jobs.high-priority"}"#,
        1.0,
    );
    assert_value(
        &text,
        r#"diag_errors_total{target="weird \"target\"\\with\nnewline"}"#,
        1.0,
    );
    assert_value(&text, "pool_idle_bytes", 2048.0);
    assert_value(&text, "diag_metrics_collector_dropped_samples", 0.0);
    if let Err(e) = check_with_promtool(&text) {
        panic!("{e}\n{text}");
    }
    let om = scrape_as(&diag, Some(OPENMETRICS));
    assert!(om.contains(
        "# TYPE diag_debug_recorder_bytes gauge\n# UNIT diag_debug_recorder_bytes bytes\n"
    ));
    assert!(om.contains("# TYPE diag_debug_rejected counter\n"));
    assert!(om.contains(
        "# HELP diag_queue_rejected Items the queue refused (full or closed); not counted as produced.\n\
         # TYPE diag_queue_rejected counter\n\
         diag_queue_rejected_total{queue=\"jobs.high-priority\"} 1\n"
    ), "{om}");
    assert!(om.contains("# TYPE pool_idle_bytes gauge\n# UNIT pool_idle_bytes bytes\n"));
    if std::env::var_os("DIAG_PRINT_METRICS").is_some() {
        println!("{om}");
    }
}

#[test]
fn metrics_past_the_most_the_service_may_register_are_counted() {
    let diag = Diag::builder().build().unwrap();
    for i in 0..crate::metrics::MAX_USER_METRICS {
        diag.counter(&format!("c{i}"), "").unwrap();
    }
    assert!(diag.counter("one_more", "").is_err());
    assert!(diag.gauge("and_another", "").is_err());
    diag.hit("a_hit_too"); // never fails: dropped and counted
    assert_value(&scrape(&diag), "diag_metrics_rejected_total", 3.0);
}

#[test]
fn label_values_cut_are_counted_per_family() {
    let diag = Diag::builder().build().unwrap();
    let hooks = diag
        .counter_family("webhook_calls", "Calls per host.", ["host"])
        .unwrap();
    let long_host = format!("{}.example", "h".repeat(400));
    hooks.with([&long_host]).inc();
    hooks.with([&long_host]).inc();
    let long_route = format!("/{}", "r".repeat(300));
    diag.begin(&RequestView {
        method: "GET",
        route: Some(&long_route),
        uri: "/x",
        headers: &(),
        peer: &|| None,
    })
    .finish(200, &mut ());
    let text = scrape(&diag);
    assert_value(
        &text,
        r#"diag_metrics_label_values_cut_total{family="webhook_calls"}"#,
        2.0,
    );
    // The request's route is cut once, where it began; its duration is recorded under
    // the labels of that (cut) series.
    assert_value(
        &text,
        r#"diag_metrics_label_values_cut_total{family="http_server_active_requests"}"#,
        1.0,
    );
    assert_value(
        &text,
        r#"diag_metrics_label_values_cut_total{family="http_server_request_duration_seconds"}"#,
        0.0,
    );
}

#[test]
fn what_debug_captures_and_the_in_flight_table_drop_is_counted() {
    let diag = Diag::builder().token("t").build().unwrap();
    let view = RequestView {
        method: "GET",
        route: None,
        uri: "/",
        headers: &(),
        peer: &|| None,
    };
    let debug = diag.start_debug(
        crate::debug::DebugLevel::Debug,
        &view,
        crate::trace::TraceId([1; 16]),
    );
    for _ in 0..crate::debug::DebugSession::MAX_LOGS + 7 {
        debug.session().record_log(crate::debug::LogLine {
            offset: Duration::ZERO,
            level: "DEBUG".into(),
            target: "t".into(),
            message: "m".into(),
            fields: vec![],
            span: None,
        });
    }
    debug.session().count_cut_fields(3);
    debug.finish_incomplete();
    // Requests held on more routes than the in-flight table tracks.
    let routes: Vec<String> = (0..130).map(|i| format!("/r{i}")).collect();
    let held: Vec<_> = routes
        .iter()
        .map(|route| {
            diag.begin(&RequestView {
                method: "GET",
                route: Some(route),
                uri: route,
                headers: &(),
                peer: &|| None,
            })
        })
        .collect();
    let text = scrape(&diag);
    drop(held);
    for (series, value) in [
        (r#"diag_debug_records_dropped_total{kind="log"}"#, 7.0),
        (r#"diag_debug_records_dropped_total{kind="span"}"#, 0.0),
        (r#"diag_debug_records_dropped_total{kind="field"}"#, 3.0),
        (
            r#"diag_in_flight_untracked_total{reason="route_overflow"}"#,
            2.0,
        ),
        (
            r#"diag_in_flight_untracked_total{reason="no_age_slot"}"#,
            0.0,
        ),
    ] {
        assert_value(&text, series, value);
    }
}
