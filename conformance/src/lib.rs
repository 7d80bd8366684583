//! The conformance suite every diag adapter runs, so adapters stay at parity by
//! construction. Each check talks real HTTP to a running service.
//!
//! A service under test must:
//! - use the [`Diag`] from [`diag`] (token [`TOKEN`], providers and tracing set up);
//! - mount diag's endpoints and its middleware;
//! - route `POST /echo` to a handler that streams the request body back unchanged, with
//!   `content-type: application/octet-stream`, `GET /users/{id}` to any 200 handler, and
//!   `GET /sized` to a handler that streams [`SIZED_BODY`] bytes in several chunks under
//!   a `content-length` header it sets itself.

pub mod grpc;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diag_core::Diag;
use futures_util::StreamExt;
use serde_json::Value;

/// The length of the body `GET /sized` streams.
pub const SIZED_BODY: usize = 64 * 1024;

/// The token the service under test is configured with.
pub const TOKEN: &str = "conformance-token";

/// The handle a service under test uses: token [`TOKEN`], a generous debug budget, a
/// short provider deadline, and providers that panic, hang, answer, and a stalled queue.
/// The first call in a process also installs the global `tracing` subscriber
/// ([`install_tracing`]; the log level endpoint needs diag's log filter).
pub fn diag() -> Diag {
    let diag = Diag::builder()
        .service("conformance")
        .token(TOKEN)
        .debug_budget(1000.0, 1000)
        .provider_deadline(Duration::from_millis(300))
        .build()
        .expect("diag");
    diag.state()
        .register("conformance_panics", || -> u8 { panic!("boom") })
        .expect("register");
    diag.state()
        .register("conformance_ok", || serde_json::json!({"ok": true}))
        .expect("register");
    diag.state()
        .register("conformance_hangs", || {
            std::thread::sleep(Duration::from_secs(2))
        })
        .expect("register");
    let queue = diag.queue("conformance_queue").expect("queue");
    queue.set_capacity(10);
    queue.produced_n(10);
    install_tracing(&diag);
    diag
}

/// Installs the process's global `tracing` subscriber, the first time it is called: a
/// fmt layer writing nowhere behind `diag`'s log filter (at INFO), and `diag`'s debug
/// recording layer. Later calls, with any `Diag`, do nothing.
pub fn install_tracing(diag: &Diag) {
    static TRACING: OnceLock<()> = OnceLock::new();
    TRACING.get_or_init(|| {
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(diag.log_filter(tracing_subscriber::EnvFilter::new("info"))),
            )
            .with(diag.debug_recording_layer())
            .init();
    });
}

/// A running service.
pub struct Target {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    client: reqwest::Client,
    /// The HTTP version every response must come in.
    version: reqwest::Version,
}

impl Target {
    /// A target at `base`, spoken to over HTTP/1.1.
    pub fn new(base: impl Into<String>) -> Self {
        Target::with(base, reqwest::Client::builder(), reqwest::Version::HTTP_11)
    }

    /// A target at `base`, spoken to over HTTP/2 (prior knowledge, as gRPC clients and
    /// HTTP/2 proxies connect without TLS).
    pub fn http2(base: impl Into<String>) -> Self {
        Target::with(
            base,
            reqwest::Client::builder().http2_prior_knowledge(),
            reqwest::Version::HTTP_2,
        )
    }

    fn with(
        base: impl Into<String>,
        client: reqwest::ClientBuilder,
        version: reqwest::Version,
    ) -> Self {
        let client = client
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        Target {
            base: base.into(),
            client,
            version,
        }
    }

    /// The client the checks use (keep-alive, 30 s timeout).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    /// `GET path` with the token.
    pub fn authed(&self, path: &str) -> reqwest::RequestBuilder {
        self.get(path).bearer_auth(TOKEN)
    }

    /// `/metrics` as classic text.
    pub async fn metrics(&self) -> String {
        let res = self.get("/metrics").send().await.expect("request");
        res.text().await.expect("body")
    }

    /// `GET path` with the token, as JSON.
    pub async fn authed_json(&self, path: &str) -> Value {
        self.authed(path)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON")
    }
}

/// Runs every check.
pub async fn run_all(t: &Target) {
    endpoints_require_the_token(t).await;
    index_in_json_and_html(t).await;
    state_isolates_a_panicking_provider(t).await;
    unknown_provider_is_a_json_404(t).await;
    stalled_queue_is_flagged(t).await;
    handler_sees_byte_identical_streamed_body(t, false).await;
    handler_sees_byte_identical_streamed_body(t, true).await;
    client_that_goes_away_leaves_an_incomplete_capture(t).await;
    trace_context_on_every_response(t).await;
    debug_request_is_captured(t).await;
    sized_streamed_response_is_captured_complete(t).await;
    bad_debug_credentials_are_served_normally(t).await;
    metrics_use_route_templates(t).await;
    log_level_changes_only_by_put_and_reverts(t).await;
    oversized_endpoint_body_is_refused(t).await;
}

/// An endpoint body over 64 KiB is refused with a JSON 413, not buffered.
pub async fn oversized_endpoint_body_is_refused(t: &Target) {
    let res = t
        .client
        .put(format!("{}/debug/log-level", t.base))
        .bearer_auth(TOKEN)
        .body(vec![b'a'; 70 * 1024])
        .send()
        .await
        .expect("request");
    assert_json_error(res, 413, "65536").await;
}

/// `/debug/*` refuses a missing or wrong token with a JSON 401, and takes the right one.
pub async fn endpoints_require_the_token(t: &Target) {
    for path in ["/debug", "/debug/state", "/debug/state/process"] {
        let res = t.get(path).send().await.expect("request");
        assert_json_error(res, 401, "token").await;

        let res = t
            .get(path)
            .bearer_auth("wrong-token")
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 401, "{path} with a wrong token");

        let res = t.authed(path).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path} with the token");
    }
}

/// `/debug` is JSON by default and readable HTML for a browser.
pub async fn index_in_json_and_html(t: &Target) {
    let res = t.authed("/debug").send().await.expect("request");
    assert!(content_type(&res).starts_with("application/json"));
    let index: Value = res.json().await.expect("JSON");
    let paths: Vec<&str> = index["endpoints"]
        .as_array()
        .expect("endpoints list")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(paths.contains(&"/debug/state"), "{paths:?}");
    assert!(
        index["providers"]
            .as_array()
            .expect("providers")
            .iter()
            .any(|p| p == "process")
    );

    let res = t
        .authed("/debug")
        .header("accept", "text/html,*/*;q=0.8")
        .send()
        .await
        .expect("request");
    assert!(content_type(&res).starts_with("text/html"));
    // diag's pages show what clients sent: a browser must not sniff them into HTML.
    assert_eq!(
        header(&res, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));
    let html = res.text().await.expect("body");
    assert!(
        html.contains("<table") && html.contains("/debug/state"),
        "{html}"
    );
}

/// A panicking provider is an error entry, a hanging one a timeout that does not hold
/// the response; the others still render.
pub async fn state_isolates_a_panicking_provider(t: &Target) {
    let start = Instant::now();
    let res = t.authed("/debug/state").send().await.expect("request");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "held by a hanging provider: {:?}",
        start.elapsed()
    );
    assert_eq!(res.status(), 200);
    let state: Value = res.json().await.expect("JSON");
    assert_eq!(state["conformance_panics"]["status"], "error", "{state}");
    assert!(
        state["conformance_panics"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("panicked"))
    );
    assert_eq!(state["conformance_hangs"]["status"], "timeout", "{state}");
    assert_eq!(state["conformance_ok"]["status"], "ok");
    assert_eq!(state["conformance_ok"]["value"]["ok"], true);
    assert_eq!(state["process"]["status"], "ok");
    assert!(state["process"]["value"]["pid"].as_u64().is_some());
}

/// An unknown provider name is a 404 with a JSON error naming the known ones.
pub async fn unknown_provider_is_a_json_404(t: &Target) {
    let res = t
        .authed("/debug/state/no-such-thing")
        .send()
        .await
        .expect("request");
    assert_json_error(res, 404, "process").await;
}

/// A queue whose consumer took nothing of a full queue is flagged.
pub async fn stalled_queue_is_flagged(t: &Target) {
    let v: Value = t.authed_json("/debug/state/queues").await;
    let text = v.to_string();
    assert!(text.contains("conformance_queue"), "{text}");
    assert!(text.contains("\"consumer_lagging\":true"), "{text}");
}

/// The handler gets exactly the bytes the client sent: a 5 MiB body streamed in uneven
/// chunks comes back from `/echo` identical, in diagnostic mode too (then the capture is
/// complete and truncated at its cap).
pub async fn handler_sees_byte_identical_streamed_body(t: &Target, debug: bool) {
    let payload = pattern(5 * 1024 * 1024 + 17);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = payload
        .chunks(64 * 1024 + 3)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let mut req = t
        .client
        .post(format!("{}/echo", t.base))
        .header("content-type", "application/octet-stream")
        .body(body);
    if debug {
        req = req.header("x-debug", TOKEN);
    }
    let res = req.send().await.expect("request");
    assert_eq!(res.status(), 200);
    let debug_id = header(&res, "x-debug-id");
    assert_eq!(debug_id.is_some(), debug);
    assert_eq!(content_type(&res), "application/octet-stream");
    let mut got = Vec::with_capacity(payload.len());
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "echoed body differs from what was sent");
    if let Some(id) = debug_id {
        let capture = wait_for_capture(t, &id).await;
        assert_eq!(capture["complete"], true, "{capture}");
        assert_eq!(capture["request"]["body"]["truncated"], true);
        assert_eq!(capture["request"]["body"]["total_bytes"], payload.len());
        assert_eq!(capture["response"]["body"]["total_bytes"], payload.len());
    }
}

/// A client that hangs up in the middle of a debug request's streamed echo: the capture
/// is stored, marked incomplete, and the request no longer counts as in flight. Over
/// HTTP/1.1 the TCP connection closes; over HTTP/2 too, taking every stream with it.
pub async fn client_that_goes_away_leaves_an_incomplete_capture(t: &Target) {
    if t.version == reqwest::Version::HTTP_2 {
        return client_that_goes_away_leaves_an_incomplete_capture_h2(t).await;
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\nx-debug: {TOKEN}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        8 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    conn.write_all(&pattern(256 * 1024)).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end_of_head = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = conn.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before the response head");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end_of_head]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-debug-id:"))
        .map(|v| v.trim().to_owned())
        .expect("x-debug-id");
    drop(conn);

    let capture = wait_for_capture(t, &id).await;
    let bodies = (
        &capture["request"]["body"]["total_bytes"],
        &capture["response"]["body"]["total_bytes"],
    );
    assert_eq!(
        capture["complete"], false,
        "capture {id}, bodies {bodies:?}"
    );
    wait_until_nothing_in_flight(t).await;
}

/// The same over HTTP/2: the connection is lost while a debug request's body is still
/// streaming in and its echo streaming out; every stream on it ends at once.
async fn client_that_goes_away_leaves_an_incomplete_capture_h2(t: &Target) {
    use http_body_util::StreamBody;
    let addr = t.base.trim_start_matches("http://");
    // A second handle on the socket, to cut the connection from outside: hyper drives an
    // HTTP/2 connection from a task of its own, which dropping `conn` would not stop.
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect")
        .into_std()
        .expect("socket");
    let cutter = tcp.try_clone().expect("socket");
    let tcp = tokio::net::TcpStream::from_std(tcp).expect("socket");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    // The request body: 256 KiB, then nothing more for as long as the test runs.
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>(4);
    let first = hyper::body::Frame::data(bytes::Bytes::from(pattern(256 * 1024)));
    tx.send(Ok(first)).await.expect("send");
    let body = StreamBody::new(Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|frame| (frame, rx))
    })));
    let req = http::Request::post(format!("{}/echo", t.base))
        .header("x-debug", TOKEN)
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("request");
    let res = sender.send_request(req).await.expect("response head");
    assert_eq!(res.status(), 200);
    let id = res
        .headers()
        .get("x-debug-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-debug-id")
        .to_owned();
    cutter.shutdown(std::net::Shutdown::Both).expect("shutdown");
    let _ = conn.await;

    let capture = wait_for_capture(t, &id).await;
    assert_eq!(capture["complete"], false, "capture {id}");
    wait_until_nothing_in_flight(t).await;
    drop(tx);
}

/// Waits (up to 10 s) until no debug request is in flight.
pub async fn wait_until_nothing_in_flight(t: &Target) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = t.authed_json("/debug/requests").await;
        if list["debug"]["in_flight"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still in flight: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every watched response carries `traceparent`; an incoming sampled one is continued.
pub async fn trace_context_on_every_response(t: &Target) {
    let res = t.get("/users/1").send().await.expect("request");
    assert_eq!(res.version(), t.version);
    let tp = header(&res, "traceparent").expect("traceparent");
    assert_eq!(tp.len(), 55, "{tp}");
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = t
        .get("/users/1")
        .header("traceparent", parent)
        .send()
        .await
        .expect("request");
    let tp = header(&res, "traceparent").expect("traceparent");
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"),
        "{tp}"
    );
    assert!(!tp.contains("00f067aa0ba902b7"), "a span of its own: {tp}");
}

/// `X-Debug` with the token: `X-Debug-Id`, `Server-Timing`, and a redacted capture.
pub async fn debug_request_is_captured(t: &Target) {
    let res = t
        .get("/users/42?password=hunter2")
        .header("x-debug", TOKEN)
        .header("authorization", "Bearer user-secret")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let id = header(&res, "x-debug-id").expect("x-debug-id");
    let timing = header(&res, "server-timing").expect("server-timing");
    assert!(timing.contains("total;dur="), "{timing}");
    // The capture stays on the instance that served the request, which says who it is.
    let instance = header(&res, "x-debug-instance").expect("x-debug-instance");
    assert_eq!(t.authed_json("/debug").await["instance"], instance.as_str());
    // Asked for a capture it does not have, an instance says which one it is.
    let missing = t
        .authed("/debug/requests/999999")
        .send()
        .await
        .expect("request");
    assert_json_error(missing, 404, &instance).await;
    let tp = header(&res, "traceparent").expect("traceparent");
    assert!(
        tp.ends_with("-01"),
        "a debug request's trace is sampled: {tp}"
    );
    let capture = wait_for_capture(t, &id).await;
    let text = capture.to_string();
    // The body is small and sized: its end must be seen even if never polled to `None`.
    assert_eq!(capture["complete"], true, "{text}");
    // A GET has no body, and no handler polls one to its end: still not "end not seen".
    assert_eq!(capture["request"]["body"]["ended"], true, "{text}");
    assert_eq!(capture["response"]["status"], 200, "{text}");
    assert_eq!(capture["request"]["route"], "/users/{id}", "{text}");
    for secret in [TOKEN, "user-secret", "hunter2"] {
        assert!(!text.contains(secret), "{secret} in the capture: {text}");
    }
    let list: Value = t.authed_json("/debug/requests").await;
    assert!(
        list["captures"]
            .as_array()
            .expect("captures")
            .iter()
            .any(|c| c["id"].as_u64().is_some_and(|n| n.to_string() == id))
    );
}

/// A streamed response whose `content-length` the handler set: servers stop polling
/// once that many bytes went out, so the capture must end on the length, not on a
/// final poll that never comes.
pub async fn sized_streamed_response_is_captured_complete(t: &Target) {
    let res = t
        .get("/sized")
        .header("x-debug", TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let id = header(&res, "x-debug-id").expect("x-debug-id");
    assert_eq!(res.bytes().await.expect("body").len(), SIZED_BODY);
    let capture = wait_for_capture(t, &id).await;
    assert_eq!(capture["complete"], true, "{capture}");
    assert_eq!(
        capture["response"]["body"]["total_bytes"], SIZED_BODY,
        "{capture}"
    );
}

/// Garbage, wrong or oversized `X-Debug`: served normally, never a 4xx/5xx.
pub async fn bad_debug_credentials_are_served_normally(t: &Target) {
    for bad in ["nope".to_owned(), "v1.1.x".to_owned(), "x".repeat(2048)] {
        let res = t
            .get("/users/7")
            .header("x-debug", bad)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        assert!(header(&res, "x-debug-id").is_none());
        assert!(header(&res, "x-debug-status").is_some_and(|s| s.starts_with("rejected")));
    }
}

/// `route` is the template, unmatched paths share one value, and scrapes are not traffic.
pub async fn metrics_use_route_templates(t: &Target) {
    t.get("/users/31337").send().await.expect("request");
    t.get("/no/such/path/8675309")
        .send()
        .await
        .expect("request");
    let text = t
        .get("/metrics")
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(text.contains("route=\"/users/{id}\""), "{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    for raw in ["31337", "8675309", "route=\"/metrics\"", "route=\"/debug"] {
        assert!(!text.contains(raw), "{raw} in /metrics");
    }
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics when asked for"
    );
}

/// `GET /debug/log-level` never changes it; `PUT` does, and a TTL reverts by itself.
pub async fn log_level_changes_only_by_put_and_reverts(t: &Target) {
    let before: Value = t.authed_json("/debug/log-level").await;
    let res = t
        .authed("/debug/log-level?directive=trace&ttl_seconds=60")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let after: Value = t.authed_json("/debug/log-level").await;
    assert_eq!(
        before["directive"], after["directive"],
        "a GET mutated the level"
    );

    let res = t
        .client
        .put(format!("{}/debug/log-level", t.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"directive": "debug", "ttl_seconds": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let now: Value = t.authed_json("/debug/log-level").await;
    assert_eq!(now["directive"], "debug", "{now}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = t.authed_json("/debug/log-level").await;
        if v["directive"] == before["directive"] {
            break;
        }
        assert!(Instant::now() < deadline, "the TTL did not revert: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Value = t.authed_json("/debug/events?kind=log_level").await;
    assert!(
        events["events"].as_array().expect("events").len() >= 2,
        "set and revert recorded: {events}"
    );
}

/// The capture `id` as JSON, once stored (it is stored when the response body ends,
/// which the client may see first); fails after 10 s.
pub async fn wait_for_capture(t: &Target, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = t
            .authed(&format!("/debug/requests/{id}"))
            .send()
            .await
            .expect("request");
        if res.status() == 200 {
            return res.json().await.expect("JSON");
        }
        assert!(Instant::now() < deadline, "capture {id} never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `res` has this status and a JSON body whose `error` mentions `mentions`.
async fn assert_json_error(res: reqwest::Response, status: u16, mentions: &str) {
    let url = res.url().clone();
    assert_eq!(res.status(), status, "{url}");
    let body: Value = res.json().await.expect("a JSON error");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains(mentions)),
        "{url}: {body}"
    );
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn content_type(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Bytes that are not all the same, so a reordering or a lost chunk shows.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
