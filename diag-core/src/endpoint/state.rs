//! `GET /debug/state` and `GET /debug/state/{name}` (JSON; the providers with a text
//! view, `routes`, `dependencies`, `requests` and `queues`, also as text, with
//! `Accept: text/plain` or `?format=text`; any other provider answers JSON either way).

use super::{DiagResponse, EndpointRequest};
use crate::Diag;

pub(super) async fn serve_all(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let all = diag.state().collect_all().await;
    DiagResponse::json(200, &all, req.pretty())
}

pub(super) async fn serve_one(diag: &Diag, req: &EndpointRequest, name: &str) -> DiagResponse {
    match diag.state().collect(name).await {
        Some(report) => {
            // Those with a text view also read as a table in a terminal.
            let text = req
                .wants_text()
                .then_some(report.value.as_ref())
                .flatten()
                .and_then(|value| crate::state::text::render(name, value));
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

#[cfg(test)]
mod tests {
    use crate::test_support::get_endpoint as get;
    use crate::{Diag, DiagResponse};

    fn is_text(resp: &DiagResponse) -> bool {
        resp.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain"))
    }

    /// Every provider with a text view answers `Accept: text/plain` and
    /// `?format=text` alike (`requests` and `queues` answered JSON to both); JSON is
    /// still the default and what a client that also accepts JSON gets; a provider
    /// without a text view answers JSON either way.
    #[tokio::test]
    async fn every_provider_with_a_text_view_negotiates_it_the_same_way() {
        let diag = Diag::builder().build().unwrap();
        diag.queue("emails").unwrap().produced_n(3);
        let _in_flight = diag.in_flight().start("GET", "/slow");
        for name in crate::state::text::TEXT_VIEWS {
            let path = format!("/debug/state/{name}");
            for (query, accept) in [
                (None, Some("text/plain")),
                (Some("format=text"), None),
                (Some("format=TXT"), Some("application/json")),
            ] {
                let resp = get(&diag, &path, query, accept).await;
                assert_eq!(resp.status, 200, "{name}");
                assert!(
                    is_text(&resp),
                    "{name} {query:?} {accept:?}: {:?}",
                    resp.headers
                );
                let body = String::from_utf8(resp.body).unwrap();
                assert!(!body.starts_with('{'), "{name}: {body}");
            }
            for (query, accept) in [
                (None, None),
                (None, Some("text/plain, application/json")),
                (Some("format=json"), Some("text/plain")),
            ] {
                let resp = get(&diag, &path, query, accept).await;
                assert_eq!(
                    resp.header("content-type"),
                    Some("application/json"),
                    "{name}"
                );
                let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
                assert_eq!(v["status"], "ok", "{name}");
            }
        }
        let text = get(&diag, "/debug/state/requests", None, Some("text/plain")).await;
        let text = String::from_utf8(text.body).unwrap();
        assert!(text.starts_with("requests   1 in flight"), "{text}");
        assert!(text.contains("\nGET     /slow "), "{text}");
        let text = get(&diag, "/debug/state/queues", Some("format=text"), None).await;
        let text = String::from_utf8(text.body).unwrap();
        assert!(text.contains("\nemails "), "{text}");
        // No text view: JSON, whatever was asked.
        let process = get(&diag, "/debug/state/process", None, Some("text/plain")).await;
        assert_eq!(process.header("content-type"), Some("application/json"));
    }
}
