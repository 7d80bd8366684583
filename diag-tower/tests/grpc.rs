//! diag-tower passes the gRPC checks: a real tonic server behind `DiagLayer` (which
//! recognises gRPC calls by itself), called by a real tonic client over HTTP/2 on
//! loopback. The checks are in `diag_conformance::grpc`.

use diag_conformance::grpc;
use diag_core::Diag;
use tonic::transport::{Channel, Server};

/// A tonic server with `DiagLayer` on a free loopback port, and a channel to it.
async fn serve(diag: &Diag) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // tonic puts the peer in a `TcpConnectInfo` extension.
    let layer = diag_tower::DiagLayer::new(diag).with_peer(|ext| {
        ext.get::<tonic::transport::server::TcpConnectInfo>()?
            .remote_addr()
    });
    let router = Server::builder().layer(layer).add_service(grpc::Echo);
    tokio::spawn(router.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_adapter_passes_the_grpc_checks() {
    grpc::run_all(|diag| async move { serve(&diag).await }).await;
}

/// gRPC-Web from a browser, through tonic-web's translator in front of `DiagLayer`: the
/// calls arrive over HTTP/1.1 and are recorded by method and gRPC status all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_calls_behind_tonic_web_count_by_grpc_status() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tonic::codegen::http::uri::PathAndQuery;

    let diag = Diag::builder().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The translator outside, diag inside: diag sees the gRPC requests it makes.
    let router = Server::builder()
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(diag_tower::DiagLayer::new(&diag))
        .add_service(grpc::Echo);
    tokio::spawn(router.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));

    // A gRPC-Web client over HTTP/1.1, as a browser's would be.
    let http1 = Client::builder(TokioExecutor::new()).build_http();
    let web = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http1);
    let origin: http::Uri = format!("http://{addr}").parse().unwrap();
    let mut client = tonic::client::Grpc::with_origin(web, origin);
    for (path, expected) in [
        ("/test.Echo/Ok", tonic::Code::Ok),
        ("/test.Echo/NotFound", tonic::Code::NotFound),
    ] {
        client.ready().await.unwrap();
        let req = tonic::Request::new(bytes::Bytes::from_static(b"ping"));
        let got = client
            .unary(req, PathAndQuery::from_static(path), grpc::Raw)
            .await
            .map_or_else(|status| status.code(), |_| tonic::Code::Ok);
        assert_eq!(got, expected, "{path}");
    }
    let text = grpc::metrics(&diag).await;
    assert_eq!(
        grpc::requests(&text, "/test.Echo/Ok", "OK"),
        Some(1.0),
        "{text}"
    );
    // Never succeeded: not known to exist yet.
    assert_eq!(
        grpc::requests(&text, "unmatched", "NOT_FOUND"),
        Some(1.0),
        "{text}"
    );
}

/// An auth interceptor inside `DiagLayer` answers `UNAUTHENTICATED` to every path, made-up
/// ones too: a client without credentials must not mint a series per path it invents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interceptor_in_front_of_the_router_does_not_teach_made_up_methods() {
    let diag = Diag::builder().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = tonic::service::InterceptorLayer::new(|req: tonic::Request<()>| {
        if req.metadata().contains_key("authorization") {
            Ok(req)
        } else {
            Err(tonic::Status::unauthenticated("no credentials"))
        }
    });
    let router = Server::builder()
        .layer(diag_tower::DiagLayer::new(&diag))
        .layer(auth)
        .add_service(grpc::Echo);
    tokio::spawn(router.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for path in ["/evil.Svc/N1", "/evil.Svc/N2", "/test.Echo/Ok"] {
        let err = grpc::unary(&channel, path, &[]).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{path}");
    }
    let authed = [("authorization", "Bearer x")];
    grpc::unary(&channel, "/test.Echo/Ok", &authed)
        .await
        .unwrap();
    let text = grpc::metrics(&diag).await;
    assert_eq!(
        grpc::requests(&text, "unmatched", "UNAUTHENTICATED"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        grpc::requests(&text, "/test.Echo/Ok", "OK"),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("evil"), "{text}");
}
