//! The conformance suite every diag adapter runs, so adapters stay at parity by
//! construction. Each check talks real HTTP to a running service.
//!
//! A service under test must:
//! - mount diag's endpoints and layer, with token [`TOKEN`];
//! - register a state provider `conformance_panics` that panics, and one `conformance_ok`
//!   returning `{"ok": true}`;
//! - route `POST /echo` to a handler that streams the request body back unchanged.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

/// The token the service under test is configured with.
pub const TOKEN: &str = "conformance-token";

/// A running service.
pub struct Target {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    client: reqwest::Client,
}

impl Target {
    /// A target at `base`.
    pub fn new(base: impl Into<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        Target {
            base: base.into(),
            client,
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    fn authed(&self, path: &str) -> reqwest::RequestBuilder {
        self.get(path).bearer_auth(TOKEN)
    }
}

/// Runs every check.
pub async fn run_all(t: &Target) {
    endpoints_require_the_token(t).await;
    index_in_json_and_html(t).await;
    state_isolates_a_panicking_provider(t).await;
    unknown_provider_is_a_json_404(t).await;
    handler_sees_byte_identical_streamed_body(t).await;
}

/// `/debug/*` refuses a missing or wrong token with a JSON 401, and takes the right one.
pub async fn endpoints_require_the_token(t: &Target) {
    for path in ["/debug", "/debug/state", "/debug/state/process"] {
        let res = t.get(path).send().await.expect("request");
        assert_eq!(res.status(), 401, "{path} without token");
        let body: Value = res.json().await.expect("401 body is JSON");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("token")),
            "{body}"
        );

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
    let html = res.text().await.expect("body");
    assert!(
        html.contains("<table") && html.contains("/debug/state"),
        "{html}"
    );
}

/// A panicking provider is an error entry; the others still render.
pub async fn state_isolates_a_panicking_provider(t: &Target) {
    let res = t.authed("/debug/state").send().await.expect("request");
    assert_eq!(res.status(), 200);
    let state: Value = res.json().await.expect("JSON");
    assert_eq!(state["conformance_panics"]["status"], "error", "{state}");
    assert!(
        state["conformance_panics"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("panicked"))
    );
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
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("process")),
        "{body}"
    );
}

/// The handler gets exactly the bytes the client sent: a 5 MiB body streamed in uneven
/// chunks comes back from `/echo` identical.
pub async fn handler_sees_byte_identical_streamed_body(t: &Target) {
    let payload = pattern(5 * 1024 * 1024 + 17);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = payload
        .chunks(64 * 1024 + 3)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let res = t
        .client
        .post(format!("{}/echo", t.base))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(content_type(&res), "application/octet-stream");
    let mut got = Vec::with_capacity(payload.len());
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "echoed body differs from what was sent");
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
