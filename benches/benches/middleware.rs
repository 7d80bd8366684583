//! The middleware's own cost per request, in process: the same axum app called through
//! `tower::Service`, bare and with diag (no debug traffic; a debug request), and with
//! tower-http's `TraceLayer` for scale. The difference between rows is what the layer
//! adds to the server's CPU per request.
//!
//! `cargo bench -p diag-benches --bench middleware -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use axum::Router;
use criterion::{Criterion, criterion_group, criterion_main};
use diag_axum::DiagRouterExt;
use diag_benches::{app, in_process_setup, request};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    // One subscriber for every variant, as a service would have.
    let (diag, rt) = in_process_setup();

    // `with_state(())` turns the routes into services once, as `axum::serve` does;
    // without it axum would build them on every call.
    let bare = app().with_state(());
    let with_diag = app().with_diag(&diag).with_state(());
    let traced = app()
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(());

    let mut group = c.benchmark_group("request");
    let mut run = |name: &str, router: &Router, debug: bool| {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let res = router
                        .clone()
                        .oneshot(request(debug).expect("request"))
                        .await
                        .expect("response");
                    black_box(res.into_body().collect().await.expect("body"));
                })
            })
        });
    };
    run("bare", &bare, false);
    run("diag", &with_diag, false);
    run("diag_debug_request", &with_diag, true);
    run("tower_http_trace", &traced, false);
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
