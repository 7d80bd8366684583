//! diag-axum passes the adapter conformance suite.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::Response;
use axum::routing::{get, post};
use diag_axum::DiagRouterExt;
use diag_conformance::Target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_adapter_conforms() {
    let diag = diag_conformance::diag();
    let app = Router::new()
        .route("/echo", post(|body: Body| async move { echo(body) }))
        .route("/users/{id}", get(|| async { "a user" }))
        .route("/sized", get(|| async { sized() }))
        .route("/panic/{id}", get(panics))
        .with_diag(&diag);
    let addr = common::serve(app).await;
    diag_conformance::run_all(&Target::new(format!("http://{addr}"))).await;
    // The same service over HTTP/2 (axum serves both on one port).
    diag_conformance::run_all(&Target::http2(format!("http://{addr}"))).await;
}

fn sized() -> Response<Body> {
    let chunk = diag_conformance::SIZED_BODY / 4;
    let chunks = (0..4).map(move |_| Ok::<_, std::io::Error>(vec![b's'; chunk]));
    Response::builder()
        .header("content-length", diag_conformance::SIZED_BODY)
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap()
}

fn echo(body: Body) -> Response<Body> {
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap()
}

async fn panics() -> &'static str {
    panic!("a bug in the handler")
}
