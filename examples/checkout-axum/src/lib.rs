//! A small checkout service that shows diag at work. `main.rs` runs it; the tests in
//! `tests/` run the same router on an ephemeral port.

pub mod catalog;
pub mod config;
pub mod orders;
mod routes;
pub mod telemetry;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use diag_axum::DiagRouterExt;
use diag_core::Diag;

pub use config::Config;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Products, cached in process, priced by a slow dependency on a miss.
    pub catalog: Arc<catalog::Catalog>,
    /// The bounded order queue and its worker.
    pub orders: orders::Orders,
}

/// Builds the service's router with diag mounted, and registers its state providers.
/// Must be called inside a Tokio runtime (it starts the order worker).
pub fn app(diag: &Diag, config: &Config) -> Router {
    let catalog = Arc::new(catalog::Catalog::new(config.pricing_latency_ms, diag));
    // The queue probe feeds the `queues` provider (depth, rates, refusals, a lagging consumer).
    let probe = diag.queue("orders").ok();
    let orders = orders::Orders::start(config.order_queue_capacity, probe);
    register_state(diag, config, &catalog, &orders);
    let state = AppState { catalog, orders };
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/products/{id}", get(routes::product))
        .route("/checkout", post(routes::checkout))
        .route("/echo", post(routes::echo))
        .route("/slow", get(routes::slow))
        .route("/fail", get(routes::fail))
        .with_state(state)
        .with_diag(diag)
}

fn register_state(
    diag: &Diag,
    config: &Config,
    catalog: &Arc<catalog::Catalog>,
    orders: &orders::Orders,
) {
    let c = catalog.clone();
    // A name clash here is a programming error in this demo, not a runtime condition.
    let _ = diag.state().register("cache", move || c.summary());
    let o = orders.clone();
    let _ = diag.state().register("orders", move || o.summary());
    // Shown at /debug/state/config with `pricing_api_key` as "***".
    if let Err(e) = diag.config(config) {
        tracing::warn!(error = %e, "could not register the config provider");
    }
}
