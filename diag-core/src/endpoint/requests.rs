//! `GET /debug/requests` and `GET /debug/requests/{id}`: the flight recorder.

use serde::Serialize;

use super::{DiagResponse, EndpointRequest};
use crate::Diag;
use crate::debug::{RecorderStats, RejectReason, render_waterfall};

#[derive(Serialize)]
struct List {
    captures: Vec<Summary>,
    recorder: RecorderStats,
    debug: Counters,
}

#[derive(Serialize)]
struct Summary {
    id: u64,
    time_unix: f64,
    method: String,
    route: Option<String>,
    uri: String,
    status: Option<u16>,
    duration_ms: f64,
    complete: bool,
}

#[derive(Serialize)]
struct Counters {
    activated: u64,
    in_flight: u64,
    budget_exhausted: u64,
    rejected: std::collections::BTreeMap<&'static str, u64>,
}

fn pretty(req: &EndpointRequest) -> bool {
    req.query_param("pretty")
        .is_some_and(|v| v != "0" && v != "false")
}

/// Plain text when asked with `?format=text`, or when the client accepts `text/plain`
/// and not JSON (`curl -H 'Accept: text/plain'`).
fn wants_text(req: &EndpointRequest) -> bool {
    match req.query_param("format") {
        Some("text") => true,
        Some(_) => false,
        None => req.accepts("text/plain") && !req.accepts("application/json"),
    }
}

pub(super) fn serve_list(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let mode = diag.debug_mode();
    let captures = mode
        .recorder()
        .recent()
        .iter()
        .map(|c| Summary {
            id: c.id,
            time_unix: c.time_unix,
            method: c.request.method.clone(),
            route: c.request.route.clone(),
            uri: c.request.uri.clone(),
            status: c.response.as_ref().map(|r| r.status),
            duration_ms: c.duration_ms,
            complete: c.complete,
        })
        .collect();
    let list = List {
        captures,
        recorder: mode.recorder().stats(),
        debug: Counters {
            activated: mode.activated(),
            in_flight: mode.in_flight(),
            budget_exhausted: mode.budget().exhausted(),
            rejected: RejectReason::ALL
                .iter()
                .map(|r| (r.as_str(), mode.rejected(*r)))
                .collect(),
        },
    };
    DiagResponse::json(200, &list, pretty(req))
}

pub(super) fn serve_one(diag: &Diag, req: &EndpointRequest, id: &str) -> DiagResponse {
    let capture = id
        .parse::<u64>()
        .ok()
        .and_then(|id| diag.debug_mode().recorder().get(id));
    let Some(capture) = capture else {
        return DiagResponse::not_found(&format!(
            "no debug capture with id `{id}` (never existed, or evicted); see /debug/requests"
        ));
    };
    if wants_text(req) {
        DiagResponse::new(200, "text/plain; charset=utf-8", render_waterfall(&capture))
    } else {
        DiagResponse::json(200, &*capture, pretty(req))
    }
}
