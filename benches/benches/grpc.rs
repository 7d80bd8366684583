//! What `DiagLayer` adds to a gRPC call, in process: a tonic unary method (raw bytes,
//! no protobuf) called through `tower::Service` with a framed request, its response
//! body read to the trailers. Rows: `bare`; `diag_http`, the same request with a
//! `content-type` that is not gRPC's, which `DiagLayer` records as plain HTTP (what a
//! tonic service got before gRPC calls were recognised: every call a 200 under
//! `unmatched`); `diag_grpc`, the call as a gRPC client sends it (route and gRPC status,
//! the call recorded at its trailers).
//!
//! `cargo bench -p diag-benches --bench grpc -- --warm-up-time 1 --measurement-time 3`

use std::convert::Infallible;
use std::future::Ready;
use std::hint::black_box;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use diag_benches::in_process_setup;
use diag_tower::{DiagBody, DiagLayer};
use http_body_util::{BodyExt, Full};
use tonic::{Response, Status};
use tower::{Layer, ServiceExt};

use diag_conformance::grpc::Raw;

/// The unary method: echoes its message.
#[derive(Clone, Copy)]
struct Echo;

impl tower::Service<tonic::Request<Bytes>> for Echo {
    type Response = Response<Bytes>;
    type Error = Status;
    type Future = Ready<Result<Response<Bytes>, Status>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
        std::future::ready(Ok(Response::new(req.into_inner())))
    }
}

/// A gRPC request's `content-type`.
const GRPC: &str = "application/grpc";

/// `/bench.Echo/Ok` with a 4-byte message, framed as gRPC frames it.
fn request(content_type: &'static str) -> http::Request<tonic::body::Body> {
    let mut frame = BytesMut::with_capacity(9);
    frame.put_u8(0);
    frame.put_u32(4);
    frame.put_slice(b"ping");
    http::Request::builder()
        .method("POST")
        .version(http::Version::HTTP_2)
        .uri("/bench.Echo/Ok")
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(frame.freeze())))
        .expect("request")
}

fn bench(c: &mut Criterion) {
    // One subscriber for every variant, as a service would have.
    let (diag, rt) = in_process_setup();

    let bare = tower::service_fn(|req: http::Request<tonic::body::Body>| async move {
        Ok::<_, Infallible>(tonic::server::Grpc::new(Raw).unary(Echo, req).await)
    });
    let inner = tower::service_fn(
        |req: http::Request<DiagBody<tonic::body::Body>>| async move {
            Ok::<_, Infallible>(tonic::server::Grpc::new(Raw).unary(Echo, req).await)
        },
    );
    let diag = DiagLayer::new(&diag).layer(inner);

    let mut group = c.benchmark_group("grpc_call");
    group.bench_function("bare", |b| {
        b.iter(|| {
            rt.block_on(async {
                let res = bare.oneshot(request(GRPC)).await.expect("response");
                black_box(res.into_body().collect().await.expect("body"));
            })
        })
    });
    for (name, content_type) in [("diag_http", "application/x-not-grpc"), ("diag_grpc", GRPC)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let res = diag
                        .clone()
                        .oneshot(request(content_type))
                        .await
                        .expect("response");
                    let body = res.into_body().collect().await.expect("body");
                    assert!(body.trailers().is_some(), "the call ends with its status");
                    black_box(body);
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
