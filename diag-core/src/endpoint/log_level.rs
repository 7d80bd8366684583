//! `/debug/log-level`: read and change the service's log filter at runtime.
//!
//! - `GET` → `{"directive": "...", "default": "...", "expires_in_seconds": 12.5 | null}`;
//!   never changes anything, whatever the query says.
//! - `PUT` / `POST` with a plain-text directive (`info,checkout=debug`, optional
//!   `?ttl_seconds=300`) or JSON `{"directive": "...", "ttl_seconds": 300}` → 200 with the
//!   new state; 400 with `{"error": ...}` for a directive or TTL diag cannot use. Without
//!   a TTL, [`ENDPOINT_DEFAULT_TTL`] (10 minutes): a level raised over HTTP always goes
//!   back by itself, so a global DEBUG forgotten at 3am does not run up the log bill.
//!   A lasting change belongs in the service's configuration (or
//!   [`LogLevel::set`](crate::log::LogLevel::set) without a TTL, from code).
//! - `DELETE` → back to the service's own filter; 200 with the new state.
//!
//! 409 when the service never installed [`Diag::log_filter`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DiagResponse, EndpointRequest};
use crate::Diag;
use crate::log::{LogLevelError, LogLevelState};

/// The TTL of a level set over HTTP without one: 10 minutes.
///
/// ```
/// assert_eq!(diag_core::ENDPOINT_DEFAULT_TTL.as_secs(), 600);
/// ```
pub const ENDPOINT_DEFAULT_TTL: Duration = Duration::from_secs(600);

#[derive(Serialize)]
struct StateBody<'a> {
    directive: &'a str,
    default: &'a str,
    expires_in_seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    directive: String,
    #[serde(default)]
    ttl_seconds: Option<f64>,
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let result = match req.method.as_str() {
        "GET" | "HEAD" => diag.log_level().current(),
        "PUT" | "POST" => match parse_body(req) {
            Ok((directive, ttl)) => diag.log_level().set(&directive, ttl),
            Err(message) => return DiagResponse::error(400, &message),
        },
        "DELETE" => diag.log_level().reset(),
        _ => return DiagResponse::method_not_allowed("GET, PUT, POST, DELETE"),
    };
    match result {
        Ok(state) => render(&state, req.pretty()),
        Err(e @ LogLevelError::NotInstalled) => DiagResponse::error(409, &e.to_string()),
        Err(e) => DiagResponse::error(400, &e.to_string()),
    }
}

fn render(state: &LogLevelState, pretty: bool) -> DiagResponse {
    DiagResponse::json(
        200,
        &StateBody {
            directive: &state.directive,
            default: &state.default,
            expires_in_seconds: state
                .expires_in
                .map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
        },
        pretty,
    )
}

/// The directive and TTL a `PUT`/`POST` asks for.
fn parse_body(req: &EndpointRequest) -> Result<(String, Option<Duration>), String> {
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| "the body is not UTF-8 text".to_owned())?
        .trim();
    let is_json = text.starts_with('{')
        || req
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v.contains("json"));
    let (directive, ttl_seconds) = if is_json {
        let body: SetBody = serde_json::from_str(text).map_err(|e| {
            format!("expected {{\"directive\": \"...\", \"ttl_seconds\": 600}}: {e}")
        })?;
        (body.directive, body.ttl_seconds)
    } else {
        let ttl = match req.query_param("ttl_seconds") {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .map_err(|_| format!("ttl_seconds `{v}` is not a number"))?,
            ),
        };
        (text.to_owned(), ttl)
    };
    let ttl = match ttl_seconds {
        None => Some(ENDPOINT_DEFAULT_TTL),
        Some(s) if s.is_finite() && s > 0.0 && s <= crate::log::MAX_TTL.as_secs_f64() => {
            Some(Duration::from_secs_f64(s))
        }
        Some(_) => return Err(LogLevelError::TtlOutOfRange.to_string()),
    };
    Ok((directive, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::EnvFilter;

    fn request(method: &str, query: Option<&str>, body: &str) -> EndpointRequest {
        EndpointRequest {
            method: method.into(),
            path: "/debug/log-level".into(),
            query: query.map(Into::into),
            peer: Some(([127, 0, 0, 1], 40000).into()),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn json(resp: &DiagResponse) -> serde_json::Value {
        serde_json::from_slice(&resp.body).unwrap()
    }

    #[tokio::test]
    async fn get_put_delete_round_trip() {
        let diag = Diag::builder().build().unwrap();
        let _filter = diag.log_filter(EnvFilter::new("info"));

        let got = diag.serve(request("GET", None, "")).await;
        assert_eq!(got.status, 200);
        assert_eq!(json(&got)["directive"], "info");
        assert_eq!(json(&got)["default"], "info");
        assert!(json(&got)["expires_in_seconds"].is_null());

        let put = diag
            .serve(request("PUT", None, "info,checkout=debug"))
            .await;
        assert_eq!(put.status, 200);
        assert_eq!(json(&put)["directive"], "info,checkout=debug");
        // No TTL given: the default one, never a lasting change.
        let ttl = json(&put)["expires_in_seconds"].as_f64().unwrap();
        assert!(ttl > 590.0 && ttl <= 600.0, "{ttl}");

        let post = diag
            .serve(request(
                "POST",
                None,
                r#"{"directive": "debug", "ttl_seconds": 300}"#,
            ))
            .await;
        assert_eq!(post.status, 200);
        let ttl = json(&post)["expires_in_seconds"].as_f64().unwrap();
        assert!(ttl > 290.0 && ttl <= 300.0, "{ttl}");

        let del = diag.serve(request("DELETE", None, "")).await;
        assert_eq!(del.status, 200);
        assert_eq!(json(&del)["directive"], "info");
        assert!(json(&del)["expires_in_seconds"].is_null());

        let kinds: Vec<_> = diag
            .events()
            .recent()
            .into_iter()
            .filter(|e| e.kind == "log_level")
            .collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }

    #[tokio::test]
    async fn get_never_changes_the_level() {
        let diag = Diag::builder().build().unwrap();
        let _filter = diag.log_filter(EnvFilter::new("warn"));
        let got = diag
            .serve(request(
                "GET",
                Some("directive=debug&ttl_seconds=60"),
                "trace",
            ))
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(json(&got)["directive"], "warn");
        assert_eq!(diag.log_level().current().unwrap().directive, "warn");
        assert!(diag.events().recent().iter().all(|e| e.kind != "log_level"));
    }

    #[tokio::test]
    async fn bad_input_is_a_400_and_changes_nothing() {
        let diag = Diag::builder().build().unwrap();
        let _filter = diag.log_filter(EnvFilter::new("info"));
        for (query, body) in [
            (None, "checkout=loud"),
            (None, ""),
            (None, r#"{"directive": "debug", "ttl_seconds": -1}"#),
            (None, r#"{"directive": "debug", "ttl_seconds": 1e9}"#),
            (None, r#"{"level": "debug"}"#),
            (Some("ttl_seconds=soon"), "debug"),
        ] {
            let resp = diag.serve(request("PUT", query, body)).await;
            assert_eq!(resp.status, 400, "{body}");
            assert!(json(&resp)["error"].is_string(), "{body}");
        }
        assert_eq!(diag.log_level().current().unwrap().directive, "info");
    }

    #[tokio::test]
    async fn without_an_installed_filter_it_says_so() {
        let diag = Diag::builder().build().unwrap();
        let resp = diag.serve(request("GET", None, "")).await;
        assert_eq!(resp.status, 409);
        assert_eq!(diag.serve(request("PATCH", None, "")).await.status, 405);
    }
}
