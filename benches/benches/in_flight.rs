//! Cost of counting a request in flight: `InFlight::start` + drop, on the hot path of
//! every request, and the whole `Diag::begin` + `finish` it is part of.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use diag_core::Diag;
use diag_core::request::RequestView;
use diag_core::state::InFlight;

fn in_flight(c: &mut Criterion) {
    // The floor: one clock read, which start() needs for the age.
    c.bench_function("clock/instant_now", |b| {
        b.iter(|| black_box(Instant::now()))
    });
    let tracker = InFlight::new();
    c.bench_function("in_flight/start_drop_one_route", |b| {
        b.iter(|| drop(black_box(tracker.start("GET", "/products/{id}"))))
    });

    let routes: Vec<String> = (0..64)
        .map(|i| format!("/api/v1/resource{i}/{{id}}"))
        .collect();
    let mut i = 0usize;
    c.bench_function("in_flight/start_drop_64_routes", |b| {
        b.iter(|| {
            i = (i + 1) % routes.len();
            drop(black_box(tracker.start("POST", &routes[i])))
        })
    });

    // 100 requests already in flight: the slot claim must still find room at once.
    let held: Vec<_> = (0..100).map(|_| tracker.start("GET", "/slow")).collect();
    c.bench_function("in_flight/start_drop_with_100_in_flight", |b| {
        b.iter(|| drop(black_box(tracker.start("GET", "/products/{id}"))))
    });
    drop(held);

    let diag = Diag::builder().build().unwrap();
    c.bench_function("diag/begin_finish", |b| {
        b.iter(|| {
            let guard = diag.begin(black_box(&RequestView {
                method: "GET",
                route: Some("/products/{id}"),
                uri: "/products/7",
                headers: &(),
                peer: &|| None,
            }));
            guard.finish(200, &mut ())
        })
    });
}

criterion_group!(benches, in_flight);
criterion_main!(benches);
