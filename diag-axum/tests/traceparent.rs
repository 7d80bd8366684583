//! Which responses name their trace: every one by default, and with
//! `traceparent_on_every_response(false)` an error's and a debug request's only.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use diag_axum::DiagRouterExt;
use tower::ServiceExt;

const TOKEN: &str = "s3cret";

fn app(every_response: bool) -> Router {
    let diag = diag_core::Diag::builder()
        .token(TOKEN)
        .traceparent_on_every_response(every_response)
        .build()
        .unwrap();
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .with_diag(&diag)
}

/// The `traceparent` of the response to `GET uri`, with `X-Debug` when `debug`.
async fn traceparent(app: &Router, uri: &str, debug: bool) -> Option<String> {
    let mut req = Request::get(uri);
    if debug {
        req = req.header("x-debug", TOKEN);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    res.headers()
        .get("traceparent")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_response_names_its_trace_by_default() {
    let app = app(true);
    for uri in ["/ok", "/teapot", "/down", "/nowhere"] {
        let tp = traceparent(&app, uri, false).await;
        assert_eq!(tp.map(|tp| tp.len()), Some(55), "{uri}");
    }
}

#[tokio::test]
async fn otherwise_only_errors_and_debug_requests_do() {
    let app = app(false);
    assert_eq!(traceparent(&app, "/ok", false).await, None);
    for uri in ["/teapot", "/down", "/nowhere"] {
        assert!(traceparent(&app, uri, false).await.is_some(), "{uri}");
    }
    assert!(
        traceparent(&app, "/ok", true).await.is_some(),
        "a debug request"
    );
}
