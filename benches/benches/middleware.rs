//! The middleware's own cost per request, in process: the same axum app called through
//! `tower::Service`, bare and with diag (no debug traffic; a debug request), and with
//! tower-http's `TraceLayer` for scale. The difference between rows is what the layer
//! adds to the server's CPU per request.
//!
//! `cargo bench -p diag-benches --bench middleware -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use diag_axum::DiagRouterExt;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

async fn product(Path(id): Path<u64>) -> axum::Json<serde_json::Value> {
    tracing::debug!(product_id = id, "looking up product");
    axum::Json(serde_json::json!({ "id": id, "name": "widget", "price_cents": 1299 }))
}

fn app() -> Router {
    Router::new().route("/products/{id}", get(product))
}

fn request(debug: bool) -> http::Request<Body> {
    let mut req = http::Request::get("/products/7");
    if debug {
        req = req.header("x-debug", "bench-token");
    }
    req.body(Body::empty()).expect("request")
}

fn bench(c: &mut Criterion) {
    let diag = diag_core::Diag::builder()
        .service("bench")
        .token("bench-token")
        .debug_budget(1e9, u32::MAX)
        .build()
        .expect("diag");
    // One subscriber for every variant, as a service would have: the comparison is of
    // the middleware alone.
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(diag.log_filter(EnvFilter::new("info"))),
        )
        .with(diag.error_layer())
        .with(diag.debug_recording_layer())
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

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
                        .oneshot(request(debug))
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
