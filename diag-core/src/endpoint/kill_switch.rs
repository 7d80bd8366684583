//! `/debug/kill-switch`: read and flip the kill switch at runtime, the lever on-call pulls
//! when diag itself is suspected (see [`Diag::set_disabled`]).
//!
//! - `GET` → `{"disabled": false}`.
//! - `PUT` / `POST` with `on` or `off` (also `true`/`false`, `1`/`0`, or JSON
//!   `{"disabled": true}`) → 200 with the new state; 400 for anything else.
//! - `DELETE` → off (diagnostics resume); 200 with the new state.
//!
//! The endpoints keep answering while the switch is on, so it can be turned off the same
//! way. A write needs the token as a bearer (like every write).

use serde::{Deserialize, Serialize};

use super::{DiagResponse, EndpointRequest};
use crate::Diag;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    disabled: bool,
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    match req.method.as_str() {
        "GET" | "HEAD" => {}
        "PUT" | "POST" => match parse_body(&req.body) {
            Ok(disabled) => diag.set_disabled(disabled),
            Err(message) => return DiagResponse::error(400, &message),
        },
        "DELETE" => diag.set_disabled(false),
        _ => return DiagResponse::method_not_allowed("GET, PUT, POST, DELETE"),
    }
    DiagResponse::json(
        200,
        &State {
            disabled: diag.is_disabled(),
        },
        req.pretty(),
    )
}

/// Whether a `PUT`/`POST` body turns the switch on.
fn parse_body(body: &[u8]) -> Result<bool, String> {
    let text = std::str::from_utf8(body).unwrap_or("").trim();
    if text.starts_with('{') {
        return serde_json::from_str::<State>(text)
            .map(|s| s.disabled)
            .map_err(|e| format!("expected {{\"disabled\": true}} or on/off: {e}"));
    }
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!(
            "`{}`: send `on` (diag passes requests straight through) or `off`",
            crate::debug::Safe(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, body: &str, auth: Option<&str>) -> EndpointRequest {
        EndpointRequest {
            method: method.into(),
            path: "/debug/kill-switch".into(),
            peer: Some(([10, 0, 0, 7], 40000).into()),
            headers: auth
                .map(|a| vec![("authorization".to_owned(), a.to_owned())])
                .unwrap_or_default(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn disabled(resp: &DiagResponse) -> bool {
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["disabled"].as_bool().unwrap()
    }

    #[tokio::test]
    async fn on_and_off_over_http_with_the_token() {
        let diag = Diag::builder().token("t0k").build().unwrap();
        let bearer = Some("Bearer t0k");
        let got = diag.serve(request("GET", "", bearer)).await;
        assert_eq!((got.status, disabled(&got)), (200, false));

        let on = diag.serve(request("PUT", "on\n", bearer)).await;
        assert_eq!((on.status, disabled(&on)), (200, true));
        assert!(diag.is_disabled());
        assert!(
            !diag.watches("/products/7"),
            "the middleware passes requests through"
        );
        // The endpoints still answer, so the switch can be turned back.
        let off = diag
            .serve(request("POST", r#"{"disabled": false}"#, bearer))
            .await;
        assert_eq!((off.status, disabled(&off)), (200, false));
        diag.set_disabled(true);
        let deleted = diag.serve(request("DELETE", "", bearer)).await;
        assert_eq!((deleted.status, disabled(&deleted)), (200, false));
        let kinds: Vec<_> = diag.events().recent().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds.iter().filter(|k| *k == "kill_switch").count(),
            4,
            "{kinds:?}"
        );
    }

    #[tokio::test]
    async fn nobody_else_flips_it() {
        let diag = Diag::builder().token("t0k").build().unwrap();
        for auth in [None, Some("Bearer wrong"), Some("Basic eDp0MGs=")] {
            let resp = diag.serve(request("PUT", "on", auth)).await;
            assert!(
                matches!(resp.status, 401 | 403),
                "{auth:?}: {}",
                resp.status
            );
        }
        assert!(!diag.is_disabled());
        for body in ["", "maybe", r#"{"disabled": "yes"}"#, r#"{"on": true}"#] {
            let resp = diag.serve(request("PUT", body, Some("Bearer t0k"))).await;
            assert_eq!(resp.status, 400, "{body}");
        }
        assert!(!diag.is_disabled());
        let resp = diag.serve(request("PATCH", "on", Some("Bearer t0k"))).await;
        assert_eq!(resp.status, 405);
    }
}
