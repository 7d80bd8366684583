//! What the benchmarks share: one small axum app, the diag handle and the subscriber a
//! service would have. Criterion benchmarks live in `benches/benches`, the load target and
//! drivers in `src/bin`.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::Request;
use axum::routing::get;
use diag_core::Diag;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// The token the benchmarks' diag handle accepts, as bearer token and as `X-Debug`.
pub const TOKEN: &str = "bench-token";

/// The bench app's one handler: a small JSON body and one `debug!`, disabled at INFO.
pub async fn product(Path(id): Path<u64>) -> axum::Json<serde_json::Value> {
    tracing::debug!(product_id = id, "looking up product");
    axum::Json(serde_json::json!({ "id": id, "name": "widget", "price_cents": 1299 }))
}

/// `GET /products/{id}`: a small JSON body and one `debug!`, disabled at INFO.
pub fn app() -> Router {
    Router::new().route("/products/{id}", get(product))
}

/// `GET /products/7`, in diagnostic mode when `debug`.
pub fn request(debug: bool) -> Result<Request<Body>, axum::http::Error> {
    let mut req = Request::get("/products/7");
    if debug {
        req = req.header("x-debug", TOKEN);
    }
    req.body(Body::empty())
}

/// A diag handle with [`TOKEN`] and a budget that never runs out, so the cost of debug
/// requests is what gets measured.
pub fn bench_diag() -> Result<Diag, diag_core::ConfigError> {
    bench_builder().build()
}

/// The builder of [`bench_diag`], for a variant with one setting changed.
pub fn bench_builder() -> diag_core::DiagBuilder {
    Diag::builder()
        .service("bench")
        .token(TOKEN)
        .debug_budget(1e9, u32::MAX)
}

/// Installs the global subscriber of a service using diag: fmt at INFO to a sink behind
/// diag's log filter, the error ring and the debug recorder. Every variant runs under it,
/// so comparisons are of the middleware alone.
pub fn install_subscriber(diag: &Diag) {
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(diag_core::log::TraceIdWriter::new(std::io::sink))
                .with_filter(diag.log_filter(EnvFilter::new("info"))),
        )
        .with(diag.error_layer())
        .with(diag.debug_recording_layer())
        .init();
}

/// What an in-process bench of the middleware starts with: [`bench_diag`], the
/// subscriber of [`install_subscriber`] (global: call once per process), and a
/// current-thread runtime to run requests on.
pub fn in_process_setup() -> (Diag, tokio::runtime::Runtime) {
    let diag = bench_diag().expect("diag");
    install_subscriber(&diag);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (diag, rt)
}
