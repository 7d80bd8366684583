//! The demo's handlers.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::orders::{EnqueueError, OrderRequest};

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn product(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> impl IntoResponse {
    Json(state.catalog.get(id).await)
}

pub(crate) async fn checkout(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let order: OrderRequest = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(error = %e, "rejected malformed checkout");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("malformed order: {e}") })),
            )
                .into_response();
        }
    };
    let (product_id, qty) = (order.product_id, order.qty);
    match state.orders.submit(order) {
        Ok(id) => {
            tracing::debug!(order_id = id, product_id, qty, "checkout accepted");
            (
                StatusCode::ACCEPTED,
                Json(json!({ "order_id": id, "status": "queued" })),
            )
                .into_response()
        }
        Err(e @ EnqueueError::Full) => {
            // One line per refused order: a service refusing many a second would
            // sample or rate-limit it; the count is diag_queue_rejected_total.
            tracing::warn!(
                product_id,
                qty,
                "checkout rejected: the order queue is full (503)"
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response()
        }
        Err(e @ EnqueueError::Closed) => {
            tracing::error!(error = %e, "order worker gone");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response()
        }
    }
}

/// Streams the request body back as it arrives, with the same content type.
pub(crate) async fn echo(headers: axum::http::HeaderMap, body: Body) -> Response {
    let mut res = Response::new(body);
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        res.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    res
}

/// The longest `/slow` waits.
const MAX_SLOW_MS: u64 = 10_000;

pub(crate) async fn slow(Query(q): Query<HashMap<String, String>>) -> Response {
    let ms = match q.get("ms").map(|v| v.parse::<u64>()) {
        None => 100,
        Some(Ok(ms)) => ms.min(MAX_SLOW_MS),
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "ms must be a whole number of milliseconds" })),
            )
                .into_response();
        }
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({ "slept_ms": ms })).into_response()
}

pub(crate) async fn fail() -> Response {
    tracing::error!(
        dependency = "inventory",
        "inventory lookup failed: connection reset"
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "inventory unavailable" })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::catalog::Catalog;
    use crate::orders::Orders;

    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The worker never runs (nothing here waits), so a queue of one is full after the
    /// first order.
    #[tokio::test]
    async fn a_full_queue_answers_503_with_a_warn_and_only_a_queued_order_is_accepted() {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let diag = diag_core::Diag::builder().build().unwrap();
        let state = AppState {
            catalog: Arc::new(Catalog::new((0, 0), &diag)),
            orders: Orders::start(1, diag.queue("orders").ok()),
        };
        let body = || axum::body::Bytes::from_static(br#"{"product_id":7,"qty":2}"#);

        let res = checkout(State(state.clone()), body()).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let res = checkout(State(state.clone()), body()).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("DEBUG") && lines[0].contains("checkout accepted order_id=1"),
            "{text}"
        );
        assert!(
            lines[1].contains("WARN") && lines[1].contains("checkout rejected"),
            "{text}"
        );
        assert!(lines[1].contains("product_id=7 qty=2"), "{text}");
        let queues = diag.queues();
        assert_eq!(queues[0].rejected_total(), 1);
        assert_eq!(queues[0].produced_total(), 1);
    }
}
