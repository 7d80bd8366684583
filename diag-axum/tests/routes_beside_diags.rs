//! The service's own routes beside diag's paths: below `/metrics` and elsewhere under
//! `/debug` they stay the service's (and still mount), while diag's own paths answer
//! with or without a trailing slash.

use axum::{Router, body::Body, routing::get};
use diag_axum::DiagRouterExt;
use tower::ServiceExt;

async fn answer(app: &Router, uri: &str) -> (u16, String) {
    let res = app
        .clone()
        .oneshot(http::Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_services_routes_below_metrics_and_debug_stay_its_own() {
    let diag = diag_core::Diag::builder().token("t0k").build().unwrap();
    // A route under `/metrics` once made `with_diag` panic (a `/metrics/{*rest}` of diag's).
    let app = Router::new()
        .route("/metrics/{job}", get(|| async { "the job's own" }))
        .route("/debug/pprof", get(|| async { "pprof" }))
        .fallback(|| async { (http::StatusCode::IM_A_TEAPOT, "the service's fallback") })
        .with_diag(&diag);
    assert_eq!(
        answer(&app, "/metrics/batch").await,
        (200, "the job's own".to_owned())
    );
    assert_eq!(
        answer(&app, "/debug/pprof").await,
        (200, "pprof".to_owned())
    );
    assert_eq!(answer(&app, "/debug/other").await.0, 418);
    assert_eq!(answer(&app, "/metrics").await.0, 200);
    // diag's own paths, with or without a trailing slash, and below them: behind its token.
    for uri in [
        "/debug",
        "/debug/",
        "/debug/state",
        "/debug/state/",
        "/debug/state/process",
    ] {
        assert_eq!(answer(&app, uri).await.0, 401, "{uri}");
    }
}

/// Layers the service applied before `with_diag` still wrap what its router answers for
/// unmatched paths (axum's default fallback): merging diag's endpoints must not swap in
/// their own, unlayered fallback (a tracing, CORS or auth layer would silently stop
/// covering 404s).
#[tokio::test]
async fn the_services_layers_still_cover_its_unmatched_paths() {
    let diag = diag_core::Diag::builder().build().unwrap();
    let layered = |router: Router| {
        router.layer(axum::middleware::map_response(
            |mut res: axum::response::Response| async move {
                res.headers_mut()
                    .insert("x-service-layer", http::HeaderValue::from_static("1"));
                res
            },
        ))
    };
    let with_default = layered(Router::new().route("/a", get(|| async { "a" }))).with_diag(&diag);
    let with_own = layered(
        Router::new()
            .route("/a", get(|| async { "a" }))
            .fallback(|| async { (http::StatusCode::IM_A_TEAPOT, "own") }),
    )
    .with_diag(&diag);
    for (app, status) in [(with_default, 404), (with_own, 418)] {
        for uri in ["/a", "/missing"] {
            let res = app
                .clone()
                .oneshot(http::Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(
                res.headers().contains_key("x-service-layer"),
                "{uri}: the service's layer was bypassed"
            );
            if uri == "/missing" {
                assert_eq!(res.status().as_u16(), status);
            }
        }
    }
}
