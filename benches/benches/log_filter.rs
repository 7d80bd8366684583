//! The cost diag's per-request log filter adds to a service's logging, against the
//! service's plain `EnvFilter`: a disabled `debug!` and an enabled `info!` (to a sink),
//! with no debug request in flight; and a disabled `debug!` and `trace!` outside a
//! DEBUG-level debug request that is in flight; and `TraceIdWriter`'s price on an enabled
//! line, inside a request and outside one.
//!
//! Each case has its own callsites and its own dispatcher, alive only while it runs:
//! tracing-core combines callsite interest over every live dispatcher, so sharing
//! either would blur the plain filter's `never` with diag's `sometimes`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

fn plain() -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry().with(
            fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(EnvFilter::new("info")),
        ),
    )
}

fn with_diag(recording: bool) -> Dispatch {
    let diag = diag_core::Diag::builder().build().expect("diag builds");
    let fmt = fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(diag.log_filter(EnvFilter::new("info")));
    if recording {
        Dispatch::new(
            tracing_subscriber::registry()
                .with(fmt)
                .with(diag.debug_recording_layer()),
        )
    } else {
        Dispatch::new(tracing_subscriber::registry().with(fmt))
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("log_filter");

    // Separate macro invocations per case: separate callsites, separate interest.
    {
        let d = plain();
        tracing::dispatcher::with_default(&d, || {
            g.bench_function("disabled_debug/env_filter_info", |b| {
                b.iter(|| tracing::debug!(n = black_box(1u64), "disabled"))
            });
            g.bench_function("enabled_info/env_filter_info", |b| {
                b.iter(|| tracing::info!(n = black_box(1u64), "enabled"))
            });
        });
    }
    {
        let d = with_diag(true);
        tracing::dispatcher::with_default(&d, || {
            g.bench_function("disabled_debug/diag_filter_info", |b| {
                b.iter(|| tracing::debug!(n = black_box(1u64), "disabled"))
            });
            g.bench_function("enabled_info/diag_filter_info", |b| {
                b.iter(|| tracing::info!(n = black_box(1u64), "enabled"))
            });
        });
    }
    {
        let d = with_diag(false);
        tracing::dispatcher::with_default(&d, || {
            g.bench_function(
                "disabled_debug/diag_filter_info_without_recording_layer",
                |b| b.iter(|| tracing::debug!(n = black_box(1u64), "disabled")),
            );
        });
    }
    {
        // Before the debug request below: its end makes diag's interest thread rebuild
        // the callsite cache 500 ms later, from a thread that sees no scoped dispatcher.
        // `TraceIdWriter`: an enabled `info!` written while a normal request is current
        // (the line gets ` trace_id=…`), and outside any request, against the plain writer.
        let diag = diag_core::Diag::builder().build().expect("diag builds");
        let request = diag.begin(&diag_core::request::RequestView {
            method: "GET",
            route: Some("/"),
            uri: "/",
            headers: &(),
            peer: &|| None,
        });
        let tagged = Dispatch::new(
            tracing_subscriber::registry().with(
                fmt::layer()
                    .with_writer(diag_core::log::TraceIdWriter::new(std::io::sink))
                    .with_filter(EnvFilter::new("info")),
            ),
        );
        tracing::dispatcher::with_default(&tagged, || {
            {
                let _entered = request.enter();
                g.bench_function("enabled_info/trace_id_writer_in_request", |b| {
                    b.iter(|| tracing::info!(n = black_box(1u64), "enabled"))
                });
            }
            g.bench_function("enabled_info/trace_id_writer_outside_request", |b| {
                b.iter(|| tracing::info!(n = black_box(1u64), "enabled"))
            });
        });
        let untagged = plain();
        tracing::dispatcher::with_default(&untagged, || {
            let _entered = request.enter();
            g.bench_function("enabled_info/env_filter_info_in_request", |b| {
                b.iter(|| tracing::info!(n = black_box(1u64), "enabled"))
            });
        });
    }
    {
        // A DEBUG-level debug request in flight elsewhere in the process opens callsite
        // interest up to DEBUG: code outside it pays a per-event check for `debug!`,
        // but `trace!` stays closed (only a TRACE-level debug request opens it).
        let diag = diag_core::Diag::builder()
            .token("bench-token")
            .build()
            .expect("diag builds");
        let d = Dispatch::new(
            tracing_subscriber::registry()
                .with(
                    fmt::layer()
                        .with_writer(std::io::sink)
                        .with_filter(diag.log_filter(EnvFilter::new("info"))),
                )
                .with(diag.debug_recording_layer()),
        );
        tracing::dispatcher::with_default(&d, || {
            let headers = vec![("x-debug".to_owned(), "bench-token".to_owned())];
            let elsewhere = diag.begin(&diag_core::request::RequestView {
                method: "GET",
                route: None,
                uri: "/",
                headers: &headers,
                peer: &|| None,
            });
            assert!(
                elsewhere.debug_id().is_some(),
                "a debug request is in flight"
            );
            g.bench_function("disabled_debug/debug_request_elsewhere", |b| {
                b.iter(|| tracing::debug!(n = black_box(1u64), "disabled"))
            });
            g.bench_function("disabled_trace/debug_request_elsewhere", |b| {
                b.iter(|| tracing::trace!(n = black_box(1u64), "disabled"))
            });
            drop(elsewhere);
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
