//! Histogram observation with an exemplar: diag's sharded, seqlock-slotted histogram
//! against prometheus-client's `HistogramWithExemplars` (a write lock per observation),
//! single-threaded and with two threads hammering one series; plus diag's whole
//! per-request metrics path (`begin` + `finish`) and its allocation count; and what is
//! paid off the request path: a `/metrics` scrape with and without the process
//! collector, a read of `/debug/state/routes`, one `client_call`.
//!
//! `cargo bench -p diag-benches --bench metrics -- --warm-up-time 1 --measurement-time 3`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use diag_core::Diag;
use diag_core::metrics::{ExemplarTime, Histogram, LATENCY_BUCKETS};
use diag_core::request::RequestView;
use diag_core::trace::{SpanId, TraceContext, TraceId};
use prometheus_client::metrics::exemplar::HistogramWithExemplars;

/// Counts allocations so the request path's allocation-freedom is measured, not assumed.
struct CountingAlloc;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Latencies spread over several buckets, the same sequence for both libraries.
const VALUES: [f64; 8] = [0.003, 0.012, 0.04, 0.09, 0.2, 0.004, 0.6, 0.03];

fn trace() -> TraceContext {
    TraceContext {
        trace_id: TraceId([0x4b; 16]),
        span_id: SpanId([0x0f; 8]),
        sampled: true,
    }
}

/// prometheus-client's exemplar label set at its cheapest: static strings, no per-call
/// formatting of the ids (a real integration would format them, and allocate, per call).
type PcLabels = [(&'static str, &'static str); 2];
const PC_LABELS: PcLabels = [
    ("trace_id", "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b"),
    ("span_id", "0f0f0f0f0f0f0f0f"),
];

fn pc_histogram() -> HistogramWithExemplars<PcLabels> {
    HistogramWithExemplars::new(LATENCY_BUCKETS.iter().copied())
}

fn timed<F: Fn(u64)>(barrier: &Barrier, iters: u64, op: &F) -> Duration {
    barrier.wait();
    let start = Instant::now();
    for i in 0..iters {
        op(i);
    }
    start.elapsed()
}

/// Runs `op_a(i)` and `op_b(i)` `iters` times each on two threads started together;
/// returns the slower thread's time, so time / iters is the cost per observation per
/// thread.
fn two_threads<A, B>(iters: u64, op_a: &A, op_b: &B) -> Duration
where
    A: Fn(u64) + Sync,
    B: Fn(u64) + Sync,
{
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let a = s.spawn(|| timed(&barrier, iters, op_a));
        let b = s.spawn(|| timed(&barrier, iters, op_b));
        let a = a.join().unwrap_or_default();
        a.max(b.join().unwrap_or_default())
    })
}

fn observe_single(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_observe_exemplar/1_thread");
    let diag_h = Histogram::new(LATENCY_BUCKETS).expect("valid buckets");
    let pc_h = pc_histogram();
    let t = trace();
    // Both libraries store a timestamp the caller made (diag: ExemplarTime,
    // prometheus-client: SystemTime); the `_reading_clock` rows make it per call.
    let at = ExemplarTime::now();
    let ts = SystemTime::now();
    let mut i = 0usize;
    g.bench_function("diag", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            diag_h.observe_with_exemplar(black_box(VALUES[i & 7]), black_box(&t), at);
        })
    });
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            pc_h.observe(
                black_box(VALUES[i & 7]),
                Some(black_box(PC_LABELS)),
                Some(ts),
            );
        })
    });
    g.bench_function("diag_reading_clock", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            diag_h.observe_with_exemplar(
                black_box(VALUES[i & 7]),
                black_box(&t),
                ExemplarTime::now(),
            );
        })
    });
    g.bench_function("prometheus_client_reading_clock", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            pc_h.observe(
                black_box(VALUES[i & 7]),
                Some(black_box(PC_LABELS)),
                Some(SystemTime::now()),
            );
        })
    });
    g.finish();
}

fn observe_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_observe_exemplar/2_threads_one_series");
    let diag_h = Histogram::new(LATENCY_BUCKETS).expect("valid buckets");
    let other_h = Histogram::new(LATENCY_BUCKETS).expect("valid buckets");
    let pc_h = pc_histogram();
    let t = trace();
    let at = ExemplarTime::now();
    let ts = SystemTime::now();
    let diag_op = |h: &Histogram, i: u64| {
        h.observe_with_exemplar(black_box(VALUES[i as usize & 7]), black_box(&t), at)
    };
    let on_diag = |i| diag_op(&diag_h, i);
    let on_other = |i| diag_op(&other_h, i);
    let on_pc = |i: u64| {
        pc_h.observe(
            black_box(VALUES[i as usize & 7]),
            Some(black_box(PC_LABELS)),
            Some(ts),
        )
    };
    g.bench_function("diag", |b| {
        b.iter_custom(|iters| two_threads(iters, &on_diag, &on_diag))
    });
    // Control: two threads on two separate histograms share nothing, so this is the
    // floor two threads reach on this (shared, noisy) machine.
    g.bench_function("diag_control_separate_series", |b| {
        b.iter_custom(|iters| two_threads(iters, &on_diag, &on_other))
    });
    g.bench_function("prometheus_client", |b| {
        b.iter_custom(|iters| two_threads(iters, &on_pc, &on_pc))
    });
    // Threads beyond the exclusive shard numbers (two per core, capped) share one
    // shard and update it with locked read-modify-writes: hold every exclusive number
    // with parked threads, then measure two more on one series.
    holding_every_exclusive_shard(&diag_h, || {
        g.bench_function("diag_beyond_exclusive_shards", |b| {
            b.iter_custom(|iters| two_threads(iters, &on_diag, &on_diag))
        });
    });
    g.finish();
}

/// Runs `f` while parked threads hold every exclusive shard number (each claims one
/// with an observation on `h`), so any other thread writes the shared shard.
fn holding_every_exclusive_shard(h: &Histogram, f: impl FnOnce()) {
    // More holders than there can be exclusive numbers (at most two per core); the
    // extra ones share, which is harmless.
    let holders = 2 * std::thread::available_parallelism().map_or(1, |n| n.get()) + 1;
    let claimed = Barrier::new(holders + 1);
    let done = Barrier::new(holders + 1);
    std::thread::scope(|s| {
        for _ in 0..holders {
            s.spawn(|| {
                h.observe(0.001);
                claimed.wait();
                done.wait();
            });
        }
        claimed.wait();
        f();
        done.wait();
    });
}

/// One request on `diag`'s path: `begin`, then `finish(200)`.
fn one_request(diag: &Diag) {
    let view = RequestView {
        method: "GET",
        route: Some("/products/{id}"),
        uri: "/products/7",
        headers: &(),
        peer: &|| None,
    };
    drop(diag.begin(black_box(&view)).finish(200, &mut ()));
}

fn request_path(c: &mut Criterion) {
    let diag = Diag::builder().build().expect("default config");
    // Warm up: the series is created (and allocated) on first use only.
    one_request(&diag);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        one_request(&diag);
    }
    let per_request = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1000.0;
    println!("request_path: {per_request} allocations per begin+finish (steady state)");

    let mut g = c.benchmark_group("request_path");
    g.bench_function("begin_finish_sampled", |b| b.iter(|| one_request(&diag)));
    // Two threads serving the same route of one Diag, as two runtime workers do, against
    // two threads each with a Diag of its own (nothing shared): what the lines the
    // request path shares between threads cost.
    let other = Diag::builder().build().expect("default config");
    one_request(&other);
    let on_diag = |_| one_request(&diag);
    let on_other = |_| one_request(&other);
    g.bench_function("begin_finish_2_threads_one_diag", |b| {
        b.iter_custom(|iters| two_threads(iters, &on_diag, &on_diag))
    });
    g.bench_function("begin_finish_2_threads_separate_diags", |b| {
        b.iter_custom(|iters| two_threads(iters, &on_diag, &on_other))
    });
    // The same with a leaked `Diag` (no reference count written per request).
    let leaked = Diag::builder().build().expect("default config").leak();
    one_request(&leaked);
    let on_leaked = |_| one_request(&leaked);
    g.bench_function("begin_finish_leaked", |b| b.iter(|| one_request(&leaked)));
    g.bench_function("begin_finish_2_threads_one_leaked_diag", |b| {
        b.iter_custom(|iters| two_threads(iters, &on_leaked, &on_leaked))
    });
    g.finish();
}

/// `diag` after requests on 50 routes, each with three statuses.
fn with_traffic(diag: &Diag) {
    let routes: Vec<String> = (0..50)
        .map(|i| format!("/api/v1/resource{i}/{{id}}"))
        .collect();
    for route in &routes {
        for status in [200, 404, 503] {
            let view = RequestView {
                method: "GET",
                route: Some(route),
                uri: "/",
                headers: &(),
                peer: &|| None,
            };
            drop(diag.begin(&view).finish(status, &mut ()));
        }
    }
}

fn off_the_request_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scrape = || diag_core::EndpointRequest {
        method: "GET".into(),
        path: "/metrics".into(),
        headers: vec![("accept".into(), "application/openmetrics-text".into())],
        ..Default::default()
    };
    let mut g = c.benchmark_group("off_the_request_path");
    for (name, process) in [
        ("scrape_150_series_with_process_metrics", true),
        ("scrape_150_series_without_process_metrics", false),
    ] {
        let diag = Diag::builder()
            .process_metrics(process)
            .build()
            .expect("config");
        with_traffic(&diag);
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(async { black_box(diag.serve(scrape()).await) }))
        });
    }
    let diag = Diag::builder().build().expect("config");
    with_traffic(&diag);
    g.bench_function("state_routes_50_routes", |b| {
        b.iter(|| rt.block_on(async { black_box(diag.state().collect("routes").await) }))
    });
    g.bench_function("client_call_finish", |b| {
        b.iter(|| {
            diag.client_call("GET", black_box("pricing:8080"))
                .finish(200)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    observe_single,
    observe_two_threads,
    request_path,
    off_the_request_path
);
criterion_main!(benches);
