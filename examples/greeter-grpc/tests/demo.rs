//! The gRPC demo as its README section shows it: calls counted under their method and
//! gRPC status on the admin port's `/metrics` (from the response head, and from the
//! trailers of a stream that fails after a message), and a call with `x-debug` metadata
//! captured with its DEBUG lines and spans. Real tonic server and client, real sockets.

use std::time::{Duration, Instant};

use greeter_grpc::pb::greeter_client::GreeterClient;
use greeter_grpc::pb::{CountdownRequest, HelloRequest};
use tonic::transport::Channel;
use tracing_subscriber::{EnvFilter, fmt};

const TOKEN: &str = "demo-token";

/// The greeter and its admin listener on free loopback ports (both run for the rest of
/// the test): a client, and the admin base URL.
async fn start() -> (GreeterClient<Channel>, String) {
    let diag = diag_core::Diag::builder()
        .service("greeter")
        .token(TOKEN)
        .build()
        .unwrap();
    diag.init_tracing(
        fmt::layer().with_writer(std::io::sink),
        EnvFilter::new("info"),
    )
    .unwrap();
    let admin = diag_tower::admin::serve(&diag, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let admin_url = format!("http://{}", admin.local_addr());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(greeter_grpc::serve(diag, listener, std::future::pending()));
    let client = GreeterClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    (client, admin_url)
}

fn hello(name: &str) -> tonic::Request<HelloRequest> {
    tonic::Request::new(HelloRequest { name: name.into() })
}

async fn get(url: &str) -> String {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `http_server_requests_total` of `method` with gRPC `status`, from `/metrics`.
fn calls(metrics: &str, method: &str, status: &str) -> Option<f64> {
    let prefix = format!(
        r#"http_server_requests_total{{method="POST",route="/greeter.v1.Greeter/{method}",status="{status}"}} "#
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.split(' ').next().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_counted_by_grpc_status_and_a_debug_call_is_captured() {
    let (mut client, admin) = start().await;

    let reply = client.say_hello(hello("ada")).await.unwrap();
    assert_eq!(reply.into_inner().message, "Hello, ada!");
    let missing = client.say_hello(hello("bob")).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let empty = client.say_hello(hello("")).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    let mut ticks = client
        .countdown(CountdownRequest { from: 3 })
        .await
        .unwrap()
        .into_inner();
    let mut seen = vec![];
    while let Some(tick) = ticks.message().await.unwrap() {
        seen.push(tick.remaining);
    }
    assert_eq!(seen, [3, 2, 1]);
    // Over the limit: one message, then the status in the trailers.
    let mut ticks = client
        .countdown(CountdownRequest { from: 12 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticks.message().await.unwrap().unwrap().remaining, 12);
    let err = ticks.message().await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange);

    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let m = get(&format!("{admin}/metrics")).await;
        if calls(&m, "Countdown", "OUT_OF_RANGE").is_some() {
            break m;
        }
        assert!(Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for (method, status) in [
        ("SayHello", "OK"),
        ("SayHello", "NOT_FOUND"),
        ("SayHello", "INVALID_ARGUMENT"),
        ("Countdown", "OK"),
        ("Countdown", "OUT_OF_RANGE"),
    ] {
        assert_eq!(
            calls(&metrics, method, status),
            Some(1.0),
            "{method} {status}\n{metrics}"
        );
    }

    // Diagnostic mode through metadata: its spans time the lookup, its DEBUG lines are kept.
    let mut req = hello("grace");
    req.metadata_mut().insert("x-debug", TOKEN.parse().unwrap());
    let reply = client.say_hello(req).await.unwrap();
    let meta = |name| {
        reply
            .metadata()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        meta("server-timing").contains("directory_lookup;dur="),
        "{}",
        meta("server-timing")
    );
    let id = meta("x-debug-id");
    let deadline = Instant::now() + Duration::from_secs(10);
    let capture = loop {
        let text = get(&format!("{admin}/debug/requests/{id}")).await;
        if text.contains("complete") {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for expected in [
        "POST /greeter.v1.Greeter/SayHello -> 200",
        "DEBUG greeter_grpc: looking up the directory name=grace",
        "directory_lookup name=grace",
        "x-debug: [redacted]",
        "grpc-status: 0",
    ] {
        assert!(capture.contains(expected), "{expected} not in\n{capture}");
    }
    assert!(!capture.contains(TOKEN), "{capture}");
}
