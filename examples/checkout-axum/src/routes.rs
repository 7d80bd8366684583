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
    tracing::debug!(
        product_id = order.product_id,
        qty = order.qty,
        "checkout accepted"
    );
    match state.orders.submit(order) {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "order_id": id, "status": "queued" })),
        )
            .into_response(),
        Err(e @ EnqueueError::Full) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
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
