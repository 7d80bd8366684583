//! `PUT` / `DELETE /debug/requests/{id}/pin`: keep a capture from eviction, or let it go.

use serde::Serialize;

use super::requests::{Wanted, missing};
use super::{DiagResponse, EndpointRequest};
use crate::Diag;
use crate::debug::{PinOutcome, RecorderStats};

#[derive(Serialize)]
struct Pinned {
    id: u64,
    pinned: bool,
    /// Still running: pinned when its capture is stored.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
    recorder: RecorderStats,
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest, id: &str) -> DiagResponse {
    let pin = match req.method.as_str() {
        "PUT" | "POST" => true,
        "DELETE" => false,
        _ => return DiagResponse::method_not_allowed("PUT, POST, DELETE"),
    };
    let wanted = match Wanted::parse_or_refuse(id) {
        Ok(wanted) => wanted,
        Err(refusal) => return refusal,
    };
    let mode = diag.debug_mode();
    let candidates = candidates(diag, &wanted);
    // Unpinning a trace: its pinned capture, which need not be its newest.
    let pinned = if pin {
        None
    } else {
        let pinned = mode.recorder().pinned_ids();
        candidates.iter().copied().find(|id| pinned.contains(id))
    };
    let Some(id) = pinned.or_else(|| candidates.first().copied()) else {
        return DiagResponse::not_found(&missing(diag, &wanted));
    };
    let answer = |pending: bool| Pinned {
        id,
        pinned: pin,
        pending,
        recorder: mode.recorder().stats(),
    };
    if !pin {
        // Unpinned already is fine (a script that unpins all may ask twice); an id with
        // no capture here is a mistake worth saying.
        let known = mode.unpin(id) || is_known(diag, id);
        if !known {
            return DiagResponse::not_found(&missing(diag, &Wanted::Id(id)));
        }
        return DiagResponse::json(200, &answer(false), req.pretty());
    }
    let unpin_one = "unpin one with DELETE /debug/requests/{id}/pin (/debug/requests marks them)";
    let stats = || mode.recorder().stats();
    match mode.pin(id) {
        PinOutcome::Pinned => DiagResponse::json(200, &answer(false), req.pretty()),
        PinOutcome::Pending => DiagResponse::json(200, &answer(true), req.pretty()),
        PinOutcome::NotKept => DiagResponse::not_found(&missing(diag, &Wanted::Id(id))),
        PinOutcome::TooMany if stats().max_pinned == 0 => DiagResponse::error(
            409,
            &format!(
                "this recorder keeps {} captures, too few to pin any (pins take at most a \
                 quarter of them); raise DIAG_RECORDER_CAPTURES to pin",
                stats().max_captures
            ),
        ),
        PinOutcome::TooMany => DiagResponse::error(
            409,
            &format!(
                "{} captures are pinned already, the most this recorder allows (a quarter of \
                 the {} it keeps: DIAG_RECORDER_CAPTURES); {unpin_one}",
                stats().pinned,
                stats().max_captures
            ),
        ),
        PinOutcome::NoRoom => DiagResponse::error(
            409,
            &format!(
                "pinning capture {id} would take pinned captures over half of the recorder's \
                 {} KiB (DIAG_RECORDER_BYTES); {unpin_one}",
                stats().max_bytes / 1024
            ),
        ),
        PinOutcome::TooLarge => DiagResponse::error(
            409,
            &format!(
                "capture {id} alone is larger than half of the recorder's {} KiB, the most \
                 pinned captures may take (DIAG_RECORDER_BYTES)",
                stats().max_bytes / 1024
            ),
        ),
    }
}

/// The debug ids `wanted` names, the likeliest first: the id itself; for a
/// `traceparent`, the capture of its span, then its trace's; for a trace, its captures,
/// newest first, then its running requests. Read unredacted: only ids come out.
fn candidates(diag: &Diag, wanted: &Wanted) -> Vec<u64> {
    let trace = match wanted {
        Wanted::Id(n) => return vec![*n],
        Wanted::Trace(trace) => *trace,
        Wanted::Traceparent(ctx) => ctx.trace_id,
    };
    let mode = diag.debug_mode();
    let stored = mode.recorder().recent_stored();
    let of_trace = || stored.iter().filter(|c| c.trace_id == trace);
    let of_span = stored.iter().filter(|c| wanted.is_span_of(c));
    let mut ids: Vec<u64> = of_span.chain(of_trace()).map(|c| c.id).collect();
    ids.extend(
        mode.running_now()
            .iter()
            .filter(|r| r.is_trace(&trace))
            .map(|r| r.id()),
    );
    ids
}

/// Whether a capture with `id` is kept, or a debug request with it is running.
fn is_known(diag: &Diag, id: u64) -> bool {
    let mode = diag.debug_mode();
    mode.recorder().recent_stored().iter().any(|c| c.id == id)
        || mode.running_now().iter().any(|r| r.id() == id)
}

#[cfg(test)]
mod tests {
    use crate::debug::DebugLevel;
    use crate::request::RequestView;
    use crate::test_support::{get_endpoint as get, peer};
    use crate::trace::TraceId;
    use crate::{Diag, DiagResponse, EndpointRequest};

    async fn ask(diag: &Diag, method: &str, path: &str, token: Option<&str>) -> DiagResponse {
        let headers = token
            .map(|t| vec![("authorization".to_owned(), format!("Bearer {t}"))])
            .unwrap_or_default();
        diag.serve(EndpointRequest {
            method: method.into(),
            path: path.into(),
            headers,
            peer: peer("10.0.0.9"),
            ..Default::default()
        })
        .await
    }

    /// `method` on the pin of `id` (a debug id, a trace id, a `traceparent`), with the token.
    async fn pin(diag: &Diag, method: &str, id: impl std::fmt::Display) -> DiagResponse {
        ask(
            diag,
            method,
            &format!("/debug/requests/{id}/pin"),
            Some("tok"),
        )
        .await
    }

    fn json(r: &DiagResponse) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("{r:?}"))
    }

    /// A `Diag` with token `tok` whose flight recorder keeps `captures` and `bytes`.
    fn recording(captures: usize, bytes: usize) -> Diag {
        Diag::builder()
            .token("tok")
            .recorder_limits(captures, bytes)
            .build()
            .unwrap()
    }

    /// A debug request of `GET /items/7` in `trace`, started.
    fn start(diag: &Diag, trace: TraceId) -> std::sync::Arc<crate::debug::DebugRequest> {
        let view = RequestView {
            method: "GET",
            route: Some("/items/{id}"),
            uri: "/items/7",
            headers: &(),
            peer: &|| None,
        };
        diag.start_debug(DebugLevel::Debug, &view, trace)
    }

    fn run(diag: &Diag, trace: TraceId) -> u64 {
        let debug = start(diag, trace);
        debug.response_head(200, &Vec::new());
        debug.response_end();
        debug.id()
    }

    #[tokio::test]
    async fn a_pinned_capture_is_kept_listed_as_pinned_and_let_go_by_delete() {
        let diag = recording(8, 1 << 20);
        let first = run(&diag, TraceId([1; 16]));
        let path = format!("/debug/requests/{first}/pin");

        let refused = ask(&diag, "PUT", &path, None).await;
        assert_eq!(refused.status, 401, "behind the token like the rest");
        assert!(!diag.debug_mode().recorder().is_pinned(first));

        let pinned = ask(&diag, "PUT", &path, Some("tok")).await;
        assert_eq!(pinned.status, 200, "{pinned:?}");
        let v = json(&pinned);
        assert_eq!(
            (v["id"].as_u64(), v["pinned"].as_bool()),
            (Some(first), Some(true))
        );
        assert_eq!(v["recorder"]["pinned"], 1);
        assert_eq!(v["recorder"]["max_pinned"], 2);
        for _ in 0..20 {
            run(&diag, TraceId::random());
        }
        let one = get(&diag, &format!("/debug/requests/{first}"), None, None).await;
        assert_eq!(one.status, 200, "pinned: not evicted");
        assert_eq!(json(&one)["pinned"], true);
        let text = get(
            &diag,
            &format!("/debug/requests/{first}"),
            Some("format=text"),
            None,
        )
        .await;
        let first_lines: String = String::from_utf8(text.body.to_vec())
            .unwrap()
            .lines()
            .take(2)
            .collect();
        assert!(first_lines.ends_with("   pinned"), "{first_lines}");
        let list = json(&get(&diag, "/debug/requests", None, None).await);
        let pinned_ids: Vec<_> = list["captures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["pinned"] == true)
            .map(|c| c["id"].as_u64().unwrap())
            .collect();
        assert_eq!(pinned_ids, [first]);
        let text = get(&diag, "/debug/requests", Some("format=text"), None).await;
        let text = String::from_utf8(text.body.to_vec()).unwrap();
        assert_eq!(text.matches("(pinned)").count(), 1, "{text}");
        assert!(text.contains(", 1 pinned (of 2), "), "{text}");

        let method = ask(&diag, "GET", &path, Some("tok")).await;
        assert_eq!(method.status, 405);
        let unpinned = ask(&diag, "DELETE", &path, Some("tok")).await;
        assert_eq!(unpinned.status, 200, "{unpinned:?}");
        assert_eq!(json(&unpinned)["pinned"], false);
        let again = ask(&diag, "DELETE", &path, Some("tok")).await;
        assert_eq!(again.status, 200, "unpinned already: fine");
        assert_eq!(json(&again)["pinned"], false);
        let unknown = ask(&diag, "DELETE", "/debug/requests/999/pin", Some("tok")).await;
        assert_eq!(unknown.status, 404, "no such capture");
        run(&diag, TraceId::random());
        let gone = get(&diag, &format!("/debug/requests/{first}"), None, None).await;
        assert_eq!(
            gone.status, 404,
            "unpinned, the oldest: evicted by the next"
        );
    }

    #[tokio::test]
    async fn pins_by_trace_id_refuse_unknown_ids_and_say_when_full() {
        let diag = recording(4, 1 << 20);
        let trace = TraceId([7; 16]);
        let id = run(&diag, trace);
        let other = run(&diag, TraceId::random());
        let by_trace = pin(&diag, "POST", trace).await;
        assert_eq!(by_trace.status, 200, "{by_trace:?}");
        assert_eq!(json(&by_trace)["id"].as_u64(), Some(id));

        let full = pin(&diag, "PUT", other).await;
        assert_eq!(full.status, 409, "a quarter of 4 is one");
        let message = json(&full)["error"].as_str().unwrap().to_owned();
        assert!(message.contains("unpin one"), "{message}");

        // A newer capture of the same trace: unpinning the trace finds the pinned one.
        let newer = run(&diag, trace);
        let unpinned = pin(&diag, "DELETE", trace).await;
        assert_eq!(unpinned.status, 200, "{unpinned:?}");
        assert_eq!(json(&unpinned)["id"].as_u64(), Some(id), "not {newer}");
        assert_eq!(pin(&diag, "PUT", id).await.status, 200);

        let never = ask(&diag, "PUT", "/debug/requests/99/pin", Some("tok")).await;
        assert_eq!(never.status, 404);
        let garbage = ask(&diag, "PUT", "/debug/requests/x/pin", Some("tok")).await;
        assert_eq!(garbage.status, 400);
        assert_eq!(diag.debug_mode().recorder().stats().pinned, 1);
    }

    #[tokio::test]
    async fn a_recorder_too_small_or_a_capture_too_large_says_so() {
        let small = recording(3, 1 << 20);
        let id = run(&small, TraceId::random());
        let refused = pin(&small, "PUT", id).await;
        assert_eq!(refused.status, 409);
        let message = json(&refused)["error"].as_str().unwrap().to_owned();
        assert!(message.contains("too few to pin any"), "{message}");

        let tight = recording(100, 3000);
        let debug = start(&tight, TraceId::random());
        debug.response_head(200, &Vec::new());
        debug.response_chunk(&[b'x'; 2000]);
        debug.response_end();
        let refused = pin(&tight, "PUT", debug.id()).await;
        assert_eq!(refused.status, 409, "{refused:?}");
        let message = json(&refused)["error"].as_str().unwrap().to_owned();
        assert!(message.contains("alone is larger than half"), "{message}");
    }

    #[tokio::test]
    async fn a_traceparent_unpins_the_capture_of_its_span() {
        let diag = recording(8, 1 << 20);
        let trace = TraceId([3; 16]);
        let (a, b) = (run(&diag, trace), run(&diag, trace));
        let traceparent = |id: u64| {
            let c = diag.debug_mode().recorder().get(id).unwrap();
            format!("00-{}-{}-01", c.trace_id, c.span_id)
        };
        for id in [a, b] {
            let path = format!("/debug/requests/{}/pin", traceparent(id));
            let pinned = ask(&diag, "PUT", &path, Some("tok")).await;
            assert_eq!(json(&pinned)["id"].as_u64(), Some(id), "{pinned:?}");
        }
        let path = format!("/debug/requests/{}/pin", traceparent(a));
        let unpinned = ask(&diag, "DELETE", &path, Some("tok")).await;
        assert_eq!(
            json(&unpinned)["id"].as_u64(),
            Some(a),
            "its span's, not the newest"
        );
        let recorder = diag.debug_mode().recorder();
        assert!(!recorder.is_pinned(a) && recorder.is_pinned(b));
    }

    #[tokio::test]
    async fn a_running_debug_request_is_pinned_as_it_ends() {
        let diag = recording(4, 1 << 20);
        let debug = start(&diag, TraceId::random());
        let pinned = pin(&diag, "PUT", debug.id()).await;
        assert_eq!(pinned.status, 200, "{pinned:?}");
        assert_eq!(json(&pinned)["pending"], true);
        let list = json(&get(&diag, "/debug/requests", None, None).await);
        assert_eq!(list["running"][0]["pinned"], true, "{list}");
        debug.response_end();
        for _ in 0..10 {
            run(&diag, TraceId::random());
        }
        let one = get(
            &diag,
            &format!("/debug/requests/{}", debug.id()),
            None,
            None,
        )
        .await;
        assert_eq!(one.status, 200);
        assert_eq!(json(&one)["pinned"], true);
    }
}
