//! The gRPC demo: a tonic `Greeter` (see `proto/greeter.proto`) behind diag's
//! `DiagLayer`, which recognises gRPC calls by themselves: every call is counted under
//! its method and gRPC status, and a call carrying `x-debug` metadata runs in diagnostic
//! mode. A gRPC port speaks only gRPC, so diag's endpoints live on an admin listener.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use diag_core::Diag;
use futures_util::Stream;
use tonic::transport::server::{TcpConnectInfo, TcpIncoming};
use tonic::{Request, Response, Status};
use tracing::{Instrument, debug, info_span};

/// The generated messages, client and server.
pub mod pb {
    tonic::include_proto!("greeter.v1");
}

use pb::greeter_server::{Greeter as GreeterService, GreeterServer};
use pb::{CountdownRequest, HelloReply, HelloRequest, Tick};

/// Who the directory knows, with how long looking each one up takes (a stand-in for a
/// call to another service).
const DIRECTORY: &[(&str, u64)] = &[("ada", 12), ("grace", 25), ("linus", 40)];

/// The longest countdown served.
pub const MAX_COUNTDOWN: u32 = 10;

/// The `Greeter` service.
#[derive(Debug, Default)]
pub struct Greeter;

type TickStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

#[tonic::async_trait]
impl GreeterService for Greeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("name is empty"));
        }
        debug!(%name, "looking up the directory");
        let found = DIRECTORY.iter().find(|(n, _)| *n == name);
        let Some((_, lookup_ms)) = found else {
            debug!(%name, "not in the directory");
            return Err(Status::not_found(format!("{name} is not in the directory")));
        };
        tokio::time::sleep(Duration::from_millis(*lookup_ms))
            .instrument(info_span!("directory_lookup", %name))
            .await;
        debug!(%name, lookup_ms, "found");
        Ok(Response::new(HelloReply {
            message: format!("Hello, {name}!"),
        }))
    }

    type CountdownStream = TickStream;

    async fn countdown(
        &self,
        request: Request<CountdownRequest>,
    ) -> Result<Response<TickStream>, Status> {
        let from = request.into_inner().from;
        debug!(from, "counting down");
        // Past the limit the call fails after its first message: the status then
        // travels in the trailers, which is where diag reads it.
        let stream = futures_util::stream::unfold(from, move |remaining| async move {
            if remaining == 0 {
                return None;
            }
            if remaining < from {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if from > MAX_COUNTDOWN && remaining < from {
                let status = Status::out_of_range(format!("at most {MAX_COUNTDOWN}"));
                return Some((Err(status), 0));
            }
            Some((Ok(Tick { remaining }), remaining - 1))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves the greeter on `listener`, with diag's layer, until `shutdown` completes.
pub async fn serve(
    diag: Diag,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // tonic keeps the peer in `TcpConnectInfo`: diag reads it for `x-debug: 1` from
    // trusted networks.
    let layer = diag_tower::DiagLayer::new(&diag)
        .with_peer(|ext| ext.get::<TcpConnectInfo>()?.remote_addr());
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(GreeterServer::new(Greeter))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}
