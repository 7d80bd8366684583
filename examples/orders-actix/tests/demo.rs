//! The orders demo, served on an ephemeral port, tried as an on-call engineer would.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use diag_conformance::{TOKEN, Target, wait_for_capture};
use diag_core::Diag;
use orders_actix::{Config, init_tracing, server, settings};

/// The service's log output, shared by every test of this binary.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The demo on a fresh port with the token; it as a test target, and the log output.
fn start() -> (Target, Logs) {
    let diag = settings(Diag::builder().token(TOKEN)).build().unwrap();
    static LOGS: OnceLock<Logs> = OnceLock::new();
    let logs = LOGS
        .get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            init_tracing(&diag, move || writer.clone(), false);
            logs
        })
        .clone();
    let config = Config {
        listen: "127.0.0.1:0".into(),
        db_url: "postgres://orders@127.0.0.1/orders".into(),
        db_password: "SECRET-DB-PASSWORD".into(),
        db_latency_ms: 5,
    };
    let listener = std::net::TcpListener::bind(&config.listen).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            server(diag, &config, listener).unwrap().await.unwrap();
        })
    });
    (Target::new(format!("http://{addr}")), logs)
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_request_shows_its_query_and_its_debug_line_only_it_logs() {
    let (t, logs) = start();

    let res = t.get("/orders/2").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "x-debug-id").is_none());
    let plain_trace = header(&res, "traceparent").unwrap()[3..35].to_owned();

    let res = t
        .get("/orders/2")
        .header("x-debug", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = header(&res, "x-debug-id").expect("x-debug-id");
    let trace_id = header(&res, "x-trace-id").expect("x-trace-id");
    let timing = header(&res, "server-timing").unwrap();
    assert!(timing.contains("db_query;dur="), "{timing}");
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["item"], "item-2");

    wait_for_capture(&t, &id).await;
    let path = format!("/debug/requests/{id}");
    let waterfall = text(t.authed(&path).header("accept", "text/plain")).await;
    assert!(waterfall.contains("db_query"), "{waterfall}");
    assert!(waterfall.contains("querying orders table"), "{waterfall}");
    assert!(waterfall.contains("GET /orders/2 -> 200"), "{waterfall}");

    // Through the service's own log output: the debug request's DEBUG line with its
    // trace id, and none for the plain request.
    let lines = logs.lines();
    let debug_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("DEBUG") && l.contains("querying orders table"))
        .collect();
    assert!(
        debug_lines.iter().any(|l| l.contains(&trace_id)),
        "{debug_lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains(&plain_trace)),
        "the plain request logged at DEBUG: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_number_and_the_db_password_stay_secret() {
    let (t, _) = start();
    let card = "4111111111111111";
    let res = t
        .client()
        .post(format!("{}/orders", t.base))
        .header("x-debug", TOKEN)
        .json(&serde_json::json!({"item": "mug", "quantity": 2, "card_number": card}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = header(&res, "x-debug-id").expect("x-debug-id");
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["card_last4"], "1111");
    let json = wait_for_capture(&t, &id).await.to_string();
    assert!(json.contains("db_insert"), "{json}");
    assert!(json.contains("mug"), "the body is captured: {json}");
    assert!(
        !json.contains(card),
        "the card number in the capture: {json}"
    );
    assert!(
        !json.contains(TOKEN),
        "the X-Debug credential in the capture: {json}"
    );

    let config = t.get("/debug/state/config").send().await.unwrap();
    assert_eq!(config.status(), 401);
    let config = text(t.authed("/debug/state/config")).await;
    assert!(config.contains("db_latency_ms"), "{config}");
    assert!(!config.contains("SECRET-DB-PASSWORD"), "{config}");
    let store = text(t.authed("/debug/state/store")).await;
    assert!(store.contains(r#""orders":4"#), "{store}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_the_route_template_never_the_path() {
    let (t, _) = start();
    for id in [1, 2, 999] {
        t.get(&format!("/orders/{id}")).send().await.unwrap();
    }
    let metrics = text(
        t.get("/metrics")
            .header("accept", "application/openmetrics-text"),
    )
    .await;
    for status in ["200", "404"] {
        let series = format!(
            r#"http_server_requests_total{{method="GET",route="/orders/{{id}}",status="{status}"}}"#
        );
        assert!(metrics.contains(&series), "no {series}: {metrics}");
    }
    assert!(!metrics.contains("/orders/999"), "{metrics}");
    assert!(metrics.contains("# {trace_id="), "exemplars: {metrics}");
}
