//! diag-axum passes the gRPC checks: a tonic service merged into an axum `Router`
//! (`Routes::into_axum_router`, beside a plain HTTP route) behind `with_diag`, called by
//! a real tonic client over HTTP/2 on loopback. Without gRPC recognition every call
//! would count as a `200` under the template `/test.Echo/{*rest}`. The checks are in
//! `diag_conformance::grpc`.

mod common;

use axum::Router;
use axum::routing::get;
use diag_axum::DiagRouterExt;
use diag_conformance::grpc;
use diag_core::Diag;
use tonic::transport::Channel;

/// The app: `GET /products/{id}` and the gRPC service `test.Echo`, with diag.
fn app(diag: &Diag) -> Router {
    Router::new()
        .route(
            "/products/{id}",
            get(|| async { "a product" }).post(|| async { "updated" }),
        )
        .merge(tonic::service::Routes::new(grpc::Echo).into_axum_router())
        .with_diag(diag)
}

/// Serves the app on a free loopback port: a channel to it, and its address.
async fn serve(diag: &Diag) -> (Channel, std::net::SocketAddr) {
    let addr = common::serve(app(diag)).await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (channel, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_adapter_passes_the_grpc_checks() {
    grpc::run_all(|diag| async move { serve(&diag).await.0 }).await;
}

/// Plain HTTP on the router that serves gRPC keeps its route template and HTTP status,
/// over HTTP/1.1 and over HTTP/2 alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_beside_grpc_keeps_its_templates() {
    let diag = Diag::builder().build().unwrap();
    let (channel, addr) = serve(&diag).await;
    let reply = grpc::unary(&channel, "/test.Echo/Ok", &[]).await.unwrap();
    assert_eq!(reply.into_inner(), bytes::Bytes::from_static(b"ping"));
    let url = format!("http://{addr}/products/7");
    let h1 = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(h1.version(), reqwest::Version::HTTP_11);
    assert_eq!(h2_get(addr, "/products/7").await, 200);
    // A POST that is not gRPC (its content type says so) keeps its template too.
    let post = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    let text = grpc::metrics(&diag).await;
    let labels = r#"method="GET",route="/products/{id}",status="200""#;
    assert_eq!(
        grpc::sample(&text, "http_server_requests_total", labels),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        grpc::requests(&text, "/test.Echo/Ok", "OK"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        grpc::requests(&text, "/products/{id}", "200"),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("{*rest}"), "{text}");
}

/// `GET path` over HTTP/2 (prior knowledge, as gRPC clients connect): the status.
async fn h2_get(addr: std::net::SocketAddr, path: &str) -> u16 {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}{path}"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    let status = res.status().as_u16();
    res.into_body().collect().await.unwrap();
    status
}
