//! `GET /debug/state` and `GET /debug/state/{name}`.

use super::{DiagResponse, EndpointRequest};
use crate::Diag;

fn pretty(req: &EndpointRequest) -> bool {
    req.query_param("pretty")
        .is_some_and(|v| v != "0" && v != "false")
}

pub(super) async fn serve_all(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let all = diag.state().collect_all().await;
    DiagResponse::json(200, &all, pretty(req))
}

pub(super) async fn serve_one(diag: &Diag, req: &EndpointRequest, name: &str) -> DiagResponse {
    match diag.state().collect(name).await {
        Some(report) => DiagResponse::json(200, &report, pretty(req)),
        None => DiagResponse::error(
            404,
            &format!(
                "no state provider named `{name}`; known: {}",
                diag.state().names().join(", ")
            ),
        ),
    }
}
