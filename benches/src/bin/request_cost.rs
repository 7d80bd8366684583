//! Fixed-count driver for the middleware's in-process cost: the app and variants of
//! `benches/middleware.rs`, called `COUNT` times, so that `perf stat` can count
//! instructions per request. Instruction counts do not move when another process
//! shares the core; times do.
//!
//! ```text
//! perf stat -e instructions:u target/release/request_cost diag 200000
//! ```
//!
//! Run it with two counts and divide the difference by the difference of counts to take
//! start-up out. Variants: `bare`, `diag`, `debug` (every request in diagnostic mode),
//! `trace` (tower-http's `TraceLayer`).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::get;
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

fn request(debug: bool) -> Result<Request<Body>, axum::http::Error> {
    let mut req = Request::get("/products/7");
    if debug {
        req = req.header("x-debug", "bench-token");
    }
    req.body(Body::empty())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "diag".into());
    let count: u64 = args.next().map_or(Ok(100_000), |n| n.parse())?;

    let diag = diag_core::Diag::builder()
        .service("bench")
        .token("bench-token")
        .debug_budget(1e9, u32::MAX)
        .build()?;
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(diag.log_filter(EnvFilter::new("info"))),
        )
        .with(diag.error_layer())
        .with(diag.debug_recording_layer())
        .init();
    let router = match variant.as_str() {
        "bare" => app().with_state(()),
        "diag" | "debug" => app().with_diag(&diag).with_state(()),
        "trace" => app()
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(()),
        other => return Err(format!("unknown variant `{other}`").into()),
    };
    let debug = variant == "debug";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..count {
            let res = router.clone().oneshot(request(debug)?).await?;
            std::hint::black_box(res.into_body().collect().await?);
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let ns = started.elapsed().as_nanos() as f64 / count as f64;
    println!("{variant}: {count} requests, {ns:.0} ns/request");
    Ok(())
}
