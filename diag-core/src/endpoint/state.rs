//! `GET /debug/state` and `GET /debug/state/{name}` (JSON; `routes` and `dependencies`
//! also as a text table, with `Accept: text/plain` or `?format=text`).

use super::{DiagResponse, EndpointRequest};
use crate::Diag;

pub(super) async fn serve_all(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let all = diag.state().collect_all().await;
    DiagResponse::json(200, &all, req.pretty())
}

pub(super) async fn serve_one(diag: &Diag, req: &EndpointRequest, name: &str) -> DiagResponse {
    match diag.state().collect(name).await {
        Some(report) => {
            // `routes` and `dependencies` also read as a table in a terminal.
            let text = req
                .wants_text()
                .then_some(report.value.as_ref())
                .flatten()
                .and_then(|value| crate::state::routes_text::render(name, value));
            match text {
                Some(text) => {
                    DiagResponse::new(200, "text/plain; charset=utf-8", text.into_bytes())
                }
                None => DiagResponse::json(200, &report, req.pretty()),
            }
        }
        None => DiagResponse::error(
            404,
            &format!(
                "no state provider named `{name}`; known: {}",
                diag.state().names().join(", ")
            ),
        ),
    }
}
