//! The conformance suite every diag adapter runs, so adapters stay at parity by
//! construction. Each check talks real HTTP to a running service.
//!
//! A service under test must:
//! - use the [`Diag`] from [`diag`] (token [`TOKEN`], providers and tracing set up);
//! - mount diag's endpoints and its middleware;
//! - route `POST /echo` to a handler that streams the request body back unchanged, with
//!   `content-type: application/octet-stream`, `GET /users/{id}` to any 200 handler, and
//!   `GET /sized` to a handler that streams [`SIZED_BODY`] bytes in several chunks under
//!   a `content-length` header it sets itself, and `GET /panic/{id}` to a handler that
//!   panics (with no catch-panic layer: the framework does what it does).

mod debug_mode;
mod endpoints;
pub mod grpc;
mod metrics;
pub mod raw;

pub use debug_mode::*;
pub use endpoints::*;
pub use metrics::*;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diag_core::Diag;
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

    /// `GET path` with the token, as plain text (the terminal views).
    pub async fn authed_text(&self, path: &str) -> String {
        let res = self
            .authed(path)
            .header("accept", "text/plain")
            .send()
            .await;
        res.expect("request").text().await.expect("body")
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
    browsers_read_with_basic_credentials(t).await;
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
    // Last: a framework may take a while to recover the worker a panic went through.
    a_panicking_handler_counts_as_a_500(t).await;
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

/// Every value of header `name`, one per line it came in.
fn header_lines(res: &reqwest::Response, name: &str) -> Vec<String> {
    res.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("a text header").to_owned())
        .collect()
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

/// The value of the sample named `name` with exactly these labels in exposition `text`,
/// if any.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.split(' ').next().unwrap().parse().unwrap())
}
