//! A debug request stays a debug request while its response body streams (and while its
//! request body is read in a task of its own): the DEBUG lines logged then reach the
//! service's log output and the capture. And spans still open when the capture is
//! stored (tower-http's `TraceLayer` keeps its span, and so diag's root span, open until
//! its body goes) are in the capture, so its parent chain is whole.

mod common;

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use bytes::Bytes;
use diag_axum::DiagRouterExt;
use diag_conformance::{TOKEN, Target, wait_for_capture};
use diag_core::Diag;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// What the service's log layer wrote, for every test in this binary.
static OUTPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Output;

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        OUTPUT.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The service's log output so far, line by line.
fn output_lines() -> Vec<String> {
    String::from_utf8_lossy(&OUTPUT.lock().unwrap())
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One handle for the whole binary: its log filter (INFO for everyone else) is on the
/// global subscriber, with a fmt layer writing to [`OUTPUT`] and diag's recorder.
fn diag() -> Diag {
    static DIAG: OnceLock<Diag> = OnceLock::new();
    DIAG.get_or_init(|| {
        use tracing_subscriber::prelude::*;
        let diag = Diag::builder()
            .service("streaming")
            .token(TOKEN)
            .debug_budget(1000.0, 1000)
            .build()
            .unwrap();
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(|| Output)
                    .with_filter(diag.log_filter(tracing_subscriber::EnvFilter::new("info"))),
            )
            .with(diag.debug_recording_layer())
            .init();
        diag
    })
    .clone()
}

/// The `tag` query parameter, which tells the tests' requests apart in the output.
type Tag = Query<std::collections::HashMap<String, String>>;

fn tag(Query(query): Tag) -> String {
    query.get("tag").cloned().unwrap_or_default()
}

/// Three items, a millisecond apart (so the body is polled again after `Pending`, from
/// the connection's task), each logging `"<what> tick"` at DEBUG with the request's tag.
fn ticks(what: &'static str, tag: String) -> impl Stream<Item = u32> + Send {
    futures_util::stream::unfold(0u32, move |i| {
        let tag = tag.clone();
        async move {
            if i == 3 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            tracing::debug!(tag = %tag, tick = i, "{what} tick");
            Some((i, i + 1))
        }
    })
}

fn streaming_app(diag: &Diag) -> Router {
    Router::new()
        .route(
            "/stream",
            get(|query: Tag| async move {
                let tag = tag(query);
                tracing::debug!(tag = %tag, "in the handler");
                let chunks = ticks("stream", tag).map(|i| Ok::<_, Infallible>(format!("{i};")));
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/sse",
            get(|query: Tag| async move {
                let tag = tag(query);
                tracing::debug!(tag = %tag, "in the handler");
                Sse::new(
                    ticks("sse", tag)
                        .map(|i| Ok::<_, Infallible>(Event::default().data(i.to_string()))),
                )
            }),
        )
        .with_diag(diag)
}

/// The messages of a capture's log lines.
fn messages(capture: &Value) -> Vec<String> {
    capture["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn debug_lines_logged_while_the_response_body_streams_are_kept() {
    let diag = diag();
    let addr = common::serve(streaming_app(&diag)).await;
    let t = Target::new(format!("http://{addr}"));
    for (path, what) in [("/stream", "stream"), ("/sse", "sse")] {
        // A debug request: its ticks are in the service's output and in its capture.
        let tag = format!("debug-{what}");
        let res = t
            .get(&format!("{path}?tag={tag}"))
            .header("x-debug", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let id = res.headers()["x-debug-id"].to_str().unwrap().to_owned();
        let trace_id = res.headers()["x-trace-id"].to_str().unwrap().to_owned();
        let body = res.text().await.unwrap();
        assert!(body.contains('2'), "{body}");
        let capture = wait_for_capture(&t, &id).await;
        let logged = messages(&capture);
        let tick = format!("{what} tick");
        assert_eq!(
            logged.iter().filter(|m| **m == tick).count(),
            3,
            "{path}: {logged:?}"
        );
        assert!(logged.contains(&"in the handler".to_owned()), "{logged:?}");
        let lines = output_lines();
        let ticks: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(&tick) && l.contains(&format!("tag={tag}")))
            .collect();
        assert_eq!(ticks.len(), 3, "{path}: {lines:#?}");
        for line in ticks {
            assert!(line.contains("DEBUG"), "{line}");
            assert!(line.contains(&trace_id), "the request's trace id: {line}");
        }

        // The same request without `X-Debug`: no DEBUG line of it anywhere.
        let tag = format!("plain-{what}");
        let res = t.get(&format!("{path}?tag={tag}")).send().await.unwrap();
        assert!(res.headers().get("x-debug-id").is_none());
        res.text().await.unwrap();
        let lines = output_lines();
        let leaked: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(&format!("tag={tag}")))
            .collect();
        assert!(leaked.is_empty(), "{leaked:#?}");
    }
}

/// A request body the handler hands to a task of its own (no span passed along): what
/// is logged while that task reads it belongs to the debug request.
#[tokio::test]
async fn debug_lines_logged_while_a_request_body_is_read_elsewhere_are_kept() {
    let diag = diag();
    let app = Router::new()
        .route(
            "/upload",
            post(|body: Body| async move {
                let read = tokio::spawn(async move {
                    let bytes = body.collect().await.unwrap().to_bytes();
                    bytes.len()
                });
                read.await.unwrap().to_string()
            }),
        )
        .with_diag(&diag);
    // The client's body logs as it is read (a body read in process: an upstream
    // response relayed, a decoder, ...).
    let parts = futures_util::stream::iter(0..3).map(|i| {
        tracing::debug!(part = i, "upload part read");
        Ok::<_, Infallible>(Bytes::from_static(b"abcd"))
    });
    let req = http::Request::post("/upload")
        .header("x-debug", TOKEN)
        .body(Body::from_stream(parts))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let id: u64 = res.headers()["x-debug-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "12");
    let capture = diag.debug_mode().recorder().get(id).expect("stored");
    let read = capture
        .logs
        .iter()
        .filter(|l| l.message == "upload part read")
        .count();
    assert_eq!(read, 3, "{:?}", capture.logs);
    assert_eq!(capture.request.body.text.as_deref(), Some("abcdabcdabcd"));
}

/// tower-http's `TraceLayer` keeps its span open until its response body goes, and its
/// span keeps diag's root span open: both are still open when the capture is stored at
/// the body's end. The capture shows them, timed up to then and marked still open, so
/// the handler's `lookup` span hangs under a whole parent chain.
#[tokio::test]
async fn spans_still_open_when_the_capture_is_stored_are_in_it() {
    let diag = diag();
    let app = Router::new()
        .route(
            "/lookup",
            get(|| async {
                tracing::info_span!("lookup").in_scope(|| tracing::debug!("found it"));
                "found"
            }),
        )
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_diag(&diag);
    let addr = common::serve(app).await;
    let t = Target::new(format!("http://{addr}"));
    let res = t
        .get("/lookup")
        .header("x-debug", TOKEN)
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-debug-id"].to_str().unwrap().to_owned();
    assert_eq!(res.text().await.unwrap(), "found");
    let capture = wait_for_capture(&t, &id).await;
    let spans = capture["spans"].as_array().unwrap();
    let find = |target: &str, name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name && s["target"].as_str().unwrap().starts_with(target))
            .unwrap_or_else(|| panic!("no {target} {name} span in {spans:#?}"))
    };
    let root = find("diag", "request");
    let trace = find("tower_http", "request");
    let lookup = find("streaming_logs", "lookup");
    assert_eq!(root["parent"], Value::Null, "{spans:#?}");
    assert_eq!(trace["parent"], root["id"], "{spans:#?}");
    assert_eq!(lookup["parent"], trace["id"], "{spans:#?}");
    // Every parent named is in the capture.
    for s in spans {
        let parent = &s["parent"];
        assert!(
            parent.is_null() || spans.iter().any(|p| p["id"] == *parent),
            "{s} has no parent in {spans:#?}"
        );
    }
    let still_open = |s: &Value| {
        s["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f[0] == "diag.still_open" && f[1] == "true")
    };
    assert!(still_open(root) && still_open(trace), "{spans:#?}");
    assert!(!still_open(lookup), "{spans:#?}");
    // Timed up to the capture: they cover the lookup.
    let end = |s: &Value| s["start_ms"].as_f64().unwrap() + s["duration_ms"].as_f64().unwrap();
    assert!(
        end(root) >= end(lookup) && end(trace) >= end(lookup),
        "{spans:#?}"
    );

    // The text waterfall has its root and its indentation back.
    let text = t
        .authed(&format!("/debug/requests/{id}?format=text"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let indent = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("  {name}")) && l.contains('|'))
            .unwrap_or_else(|| panic!("no {name} row in\n{text}"));
        let after_bar = &line[line.rfind('|').unwrap() + 1..];
        after_bar.len() - after_bar.trim_start().len()
    };
    assert!(indent("lookup") > indent("request"), "{text}");
}
