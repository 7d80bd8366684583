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
    let layer = diag_tower::DiagLayer::new(diag.clone()).with_peer(|ext| {
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
async fn calls_count_under_their_method_and_grpc_status() {
    let diag = Diag::builder().build().unwrap();
    let channel = serve(&diag).await;
    grpc::calls_count_under_their_method_and_grpc_status(&diag, &channel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_client_cancels_counts_as_cancelled() {
    let diag = Diag::builder().build().unwrap();
    let channel = serve(&diag).await;
    grpc::a_call_the_client_cancels_counts_as_cancelled(&diag, &channel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostic_mode_through_grpc_metadata() {
    let diag = Diag::builder()
        .token(diag_conformance::TOKEN)
        .build()
        .unwrap();
    let channel = serve(&diag).await;
    grpc::diagnostic_mode_through_grpc_metadata(&diag, &channel).await;
}
