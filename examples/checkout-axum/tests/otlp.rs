//! Traces received by a real OTLP receiver: Arize Phoenix
//! (`arize-phoenix` from PyPI; it takes OTLP/HTTP protobuf on `/v1/traces` and serves
//! the spans it keeps on `/v1/projects/{project}/spans`). The trace arrives under the
//! `X-Trace-Id` the response carried (here the caller's trace, which diag continues and
//! forces sampled), its server span under the request's own span id (the one in
//! `traceparent` and the exemplars) and under the caller's span, the handler's spans
//! under it, its DEBUG lines as events, and nothing secret. A normal request whose
//! trace is sampled arrives as its server span, under the ids its response carried; one
//! whose caller does not sample does not arrive. `Diag::flush_traces` sends what waits
//! for its batch, and the receiver takes it.
//!
//! Needs the `phoenix` command: `scripts/test` installs it into a virtualenv and names
//! it in `DIAG_TEST_PHOENIX`. A missing receiver fails the test; it never skips.

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{API_KEY, Running, TOKEN, free_port};
use diag_core::Diag;
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(90);

/// A Phoenix server on free loopback ports with its own working directory, killed and
/// removed on drop.
struct Phoenix {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    base: String,
}

impl Phoenix {
    fn start() -> Phoenix {
        let Ok(program) = std::env::var("DIAG_TEST_PHOENIX") else {
            panic!(
                "DIAG_TEST_PHOENIX is not set: this test needs Arize Phoenix (pip package \
                 `arize-phoenix`) as its OTLP receiver; run scripts/test, which installs it"
            );
        };
        let (port, grpc) = (free_port(), free_port());
        let dir =
            std::env::temp_dir().join(format!("diag-phoenix-test-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("phoenix.log");
        let child = Command::new(&program)
            .arg("serve")
            .env("PHOENIX_WORKING_DIR", &dir)
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", port.to_string())
            .env("PHOENIX_GRPC_PORT", grpc.to_string())
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("phoenix.out")).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{program} serve` ({e})"));
        Phoenix {
            child,
            dir,
            log,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `check` until it answers, failing with Phoenix's log after [`PATIENCE`].
    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut check: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("phoenix exited ({status}); its log:\n{}", self.log());
            }
            let last = match check().await {
                Ok(t) => return t,
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last: {last}\nphoenix log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The spans Phoenix keeps for `trace_id`, once there are at least `at_least`.
async fn spans_of(
    client: &reqwest::Client,
    base: &str,
    trace_id: &str,
    at_least: usize,
) -> Result<Vec<Value>, String> {
    let url = format!("{base}/v1/projects/default/spans?limit=1000");
    let res = client.get(&url).send().await.map_err(|e| e.to_string())?;
    let body: Value = res.json().await.map_err(|e| e.to_string())?;
    let spans: Vec<Value> = body["data"]
        .as_array()
        .ok_or_else(|| format!("{url}: {body}"))?
        .iter()
        .filter(|s| s["context"]["trace_id"] == trace_id)
        .cloned()
        .collect();
    if spans.len() >= at_least {
        Ok(spans)
    } else {
        Err(format!("{} spans of {trace_id} so far", spans.len()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_a_real_otlp_receiver() {
    let mut phoenix = Phoenix::start();
    let client = reqwest::Client::new();
    let base = phoenix.base.clone();
    phoenix
        .wait_for("phoenix to listen", async || {
            let res = client.get(format!("{base}/v1/projects")).send().await;
            res.map_err(|e| e.to_string())?
                .error_for_status()
                .map_err(|e| e.to_string())
                .map(drop)
        })
        .await;

    let diag = Diag::builder()
        .service("checkout")
        .version("1.2.3")
        .token(TOKEN)
        .otlp_endpoint(format!("{base}/v1/traces"))
        .build()
        .unwrap();
    checkout_axum::telemetry::init(&diag, std::io::sink, false);
    let s = Running::start(diag).await;

    // Replayed from a caller that traces: the request continues the caller's trace.
    let (caller_trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let res = s
        .get("/products/7301?token=query-secret")
        .header("x-debug", TOKEN)
        .header("cookie", "session=cookie-secret")
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let header = |name: &str| res.headers()[name].to_str().unwrap().to_owned();
    let trace_id = header("x-trace-id");
    let debug_id = header("x-debug-id");
    let own_span = header("traceparent").split('-').nth(2).unwrap().to_owned();
    // A normal request (sampled: the default ratio is 1) sends its server span; one
    // whose caller does not sample sends nothing.
    let ids = |res: &reqwest::Response| -> (String, String) {
        let tp = res.headers()["traceparent"].to_str().unwrap().to_owned();
        let mut parts = tp.split('-').skip(1);
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let normal = s.get("/products/7302").send().await.unwrap();
    let (normal_trace, normal_span) = ids(&normal);
    let unsampled = s
        .get("/products/7303")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        )
        .send()
        .await
        .unwrap();
    let (unsampled_trace, _) = ids(&unsampled);
    let missing = s.get("/no/such/route").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let (missing_trace, _) = ids(&missing);
    let failed = s.get("/fail").send().await.unwrap();
    assert_eq!(failed.status(), 500);
    let (failed_trace, _) = ids(&failed);
    // The normal requests' spans wait for their batch (up to a second); flushing, as
    // the demo does on its way out, sends them now, and the receiver takes them all.
    let diag = s.diag.clone();
    let flushed = tokio::task::spawn_blocking(move || diag.flush_traces(Duration::from_secs(30)));
    assert!(
        flushed.await.unwrap(),
        "the receiver refused a flushed post"
    );

    let spans = phoenix
        .wait_for("the debug request's spans", async || {
            spans_of(&client, &base, &trace_id, 2).await
        })
        .await;
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
    };
    let server = by_name("GET /products/{id}");
    assert_eq!(
        server["context"]["span_id"], own_span,
        "the request's own span id"
    );
    assert_eq!(server["parent_id"], caller_span, "under the caller's span");
    assert_eq!(trace_id, caller_trace, "the caller's trace, forced sampled");
    // (Phoenix's `span_kind` is its own OpenInference kind, not OTLP's.)
    let attrs = &server["attributes"];
    let attr = |path: &[&str]| -> Value {
        let flat = path.join(".");
        if !attrs[&flat].is_null() {
            return attrs[&flat].clone();
        }
        path.iter().fold(attrs.clone(), |v, k| v[*k].clone())
    };
    assert_eq!(attr(&["http", "response", "status_code"]), 200, "{attrs}");
    assert_eq!(attr(&["http", "route"]), "/products/{id}", "{attrs}");
    assert_eq!(attr(&["diag", "debug_id"]).to_string(), debug_id, "{attrs}");
    let pricing = by_name("pricing_fetch");
    assert_eq!(
        pricing["parent_id"], server["context"]["span_id"],
        "{pricing}"
    );
    let (start, end) = (
        pricing["start_time"].as_str().unwrap(),
        pricing["end_time"].as_str().unwrap(),
    );
    assert!(start < end, "{start} .. {end}");
    let everything = serde_json::to_string(&spans).unwrap();
    assert!(
        everything.contains("cache miss"),
        "the DEBUG line as an event: {everything}"
    );
    for secret in [TOKEN, "query-secret", "cookie-secret", API_KEY] {
        assert!(
            !everything.contains(secret),
            "{secret} reached the collector: {everything}"
        );
    }

    // The normal request: its server span alone, under the span id and trace id its
    // response and exemplars carry, no parent (it started the trace).
    let normal = phoenix
        .wait_for("the normal request's server span", async || {
            spans_of(&client, &base, &normal_trace, 1).await
        })
        .await;
    assert_eq!(normal.len(), 1, "{normal:#?}");
    let span = &normal[0];
    assert_eq!(span["name"], "GET /products/{id}", "{span}");
    assert_eq!(span["context"]["span_id"], normal_span, "{span}");
    assert!(span["parent_id"].is_null(), "{span}");
    let attrs = &span["attributes"];
    let status = attrs["http.response.status_code"].clone();
    let status = if status.is_null() {
        attrs["http"]["response"]["status_code"].clone()
    } else {
        status
    };
    assert_eq!(status, 200, "{span}");
    assert!(
        !serde_json::to_string(span).unwrap().contains("7302"),
        "no path: {span}"
    );
    // A route nobody registered: the method alone names it, never the raw path.
    let missing = phoenix
        .wait_for("the unmatched request's server span", async || {
            spans_of(&client, &base, &missing_trace, 1).await
        })
        .await;
    assert_eq!(missing[0]["name"], "GET", "{missing:#?}");
    assert!(spans_of(&client, &base, &unsampled_trace, 1).await.is_err());
    // A 5xx: an error, with OpenTelemetry's `error.type` naming its status.
    let failed = phoenix
        .wait_for("the failed request's server span", async || {
            spans_of(&client, &base, &failed_trace, 1).await
        })
        .await;
    let attrs = &failed[0]["attributes"];
    let error_type = if attrs["error.type"].is_null() {
        attrs["error"]["type"].clone()
    } else {
        attrs["error.type"].clone()
    };
    assert_eq!(error_type, "500", "{failed:#?}");
    assert_eq!(failed[0]["status_code"], "ERROR", "{failed:#?}");

    // The counts say four sent: the debug request, the normal one, the unmatched one,
    // the failed one (counted once the receiver's answer is read, which may come after
    // the spans show).
    let metrics = phoenix
        .wait_for("the exports to be counted", async || {
            let metrics = common::text(s.get("/metrics")).await;
            if metrics.contains(r#"diag_otlp_exports_total{outcome="sent"} 4"#) {
                Ok(metrics)
            } else {
                Err(metrics)
            }
        })
        .await;
    assert!(
        metrics.contains(r#"diag_otlp_exports_total{outcome="failed"} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"diag_otlp_exports_total{outcome="dropped"} 0"#),
        "{metrics}"
    );
}
