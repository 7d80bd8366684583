//! diag-tower passes the adapter conformance suite, over HTTP/1.1 and HTTP/2: a plain
//! hyper server (both protocols on one port) whose service is `DiagLayer` around a small
//! hand-written router, with `DiagEndpoints` for diag's own paths. What a service built
//! on hyper and tower without a web framework does.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use diag_conformance::{SIZED_BODY, Target};
use diag_tower::{DiagBody, DiagEndpoints, DiagLayer};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, ServiceExt};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, Error>;

/// The route template the router matched, in the request's extensions, where
/// `DiagLayer::with_route` finds it.
#[derive(Clone, Copy)]
struct Template(&'static str);

fn template(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts[..] {
        ["", "echo"] => Some("/echo"),
        ["", "users", id] if !id.is_empty() => Some("/users/{id}"),
        ["", "sized"] => Some("/sized"),
        ["", "panic", id] if !id.is_empty() => Some("/panic/{id}"),
        _ => None,
    }
}

fn full(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut res = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(Into::into)
            .boxed(),
    );
    *res.status_mut() = status;
    res
}

/// The handlers, behind `DiagLayer`: diag's endpoints, `POST /echo`, `GET /users/{id}`,
/// `GET /sized`.
async fn app(
    endpoints: DiagEndpoints,
    req: Request<DiagBody<Incoming>>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if path == "/metrics" || path == "/debug" || path.starts_with("/debug/") {
        let res = endpoints.oneshot(req).await?;
        return Ok(res.map(|b| b.map_err(Into::into).boxed()));
    }
    let route = req.extensions().get::<Template>().map(|t| t.0);
    Ok(match (req.method().as_str(), route) {
        ("POST", Some("/echo")) => {
            let mut res = Response::new(req.into_body().map_err(Into::into).boxed());
            res.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/octet-stream"),
            );
            res
        }
        ("GET", Some("/users/{id}")) => full(StatusCode::OK, "a user"),
        ("GET", Some("/sized")) => {
            let chunk = SIZED_BODY / 4;
            let frames =
                (0..4).map(move |_| Ok::<_, Error>(Frame::data(Bytes::from(vec![b's'; chunk]))));
            let mut res =
                Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
            res.headers_mut()
                .insert("content-length", SIZED_BODY.into());
            res
        }
        ("GET", Some("/panic/{id}")) => panic!("a bug in the handler"),
        _ => full(StatusCode::NOT_FOUND, "no such route"),
    })
}

/// Serves the app on a free loopback port, each connection with HTTP/1.1 or HTTP/2 as
/// the client speaks; its address.
async fn serve() -> SocketAddr {
    let diag = diag_conformance::diag();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = DiagLayer::new(&diag).with_route(|ext| ext.get::<Template>().map(|t| t.0));
    let endpoints = DiagEndpoints::new(&diag);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let svc = layer.layer(tower::service_fn({
                let endpoints = endpoints.clone();
                move |req| app(endpoints.clone(), req)
            }));
            tokio::spawn(async move {
                let svc = service_fn(move |mut req: Request<Incoming>| {
                    // What a router and the server put where diag looks for them.
                    req.extensions_mut().insert(peer);
                    if let Some(t) = template(req.uri().path()) {
                        req.extensions_mut().insert(Template(t));
                    }
                    svc.clone().oneshot(req)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_adapter_conforms() {
    let addr = serve().await;
    diag_conformance::run_all(&Target::new(format!("http://{addr}"))).await;
    diag_conformance::run_all(&Target::http2(format!("http://{addr}"))).await;
}
