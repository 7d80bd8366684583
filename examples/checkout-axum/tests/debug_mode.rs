//! Per-request diagnostic mode over real HTTP, with the demo's real tracing pipeline
//! writing into a buffer the tests read.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{API_KEY, Running, TOKEN};
use diag_core::Diag;
use serde_json::Value;

/// Everything the service logged, as its fmt layer wrote it.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logs().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One global subscriber for this test binary, installed with the first service.
async fn start(diag: Diag) -> Running {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| checkout_axum::telemetry::init(&diag, || Sink, false));
    Running::start(diag).await
}

async fn start_with_token() -> Running {
    start(
        Diag::builder()
            .service("checkout")
            .token(TOKEN)
            .build()
            .unwrap(),
    )
    .await
}

fn log_lines() -> Vec<String> {
    String::from_utf8_lossy(&logs().lock().unwrap())
        .lines()
        .map(str::to_owned)
        .collect()
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Sends `request` with the debug token; the 200 response, its `X-Debug-Id` and its
/// `X-Trace-Id`.
async fn in_debug_mode(request: reqwest::RequestBuilder) -> (reqwest::Response, String, String) {
    let res = request.header("x-debug", TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = header(&res, "x-debug-id").expect("X-Debug-Id");
    let trace_id = header(&res, "x-trace-id").expect("X-Trace-Id");
    (res, id, trace_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_request_gets_its_capture_timings_and_logs() {
    let s = start_with_token().await;
    let request = s
        .get("/products/7001?coupon=x&token=query-secret")
        .header("cookie", "session=cookie-secret");
    let (res, id, trace_id) = in_debug_mode(request).await;
    let timing = header(&res, "server-timing").expect("Server-Timing");
    assert!(timing.contains("pricing_fetch;dur="), "{timing}");
    assert!(timing.contains("total;dur="), "{timing}");
    let traceparent = header(&res, "traceparent").unwrap();
    assert!(
        traceparent.contains(&trace_id) && traceparent.ends_with("-01"),
        "forced sampling: {traceparent}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 7001, "the normal body");

    let capture: Value = s.admin_json(&format!("/debug/requests/{id}")).await;
    let text = capture.to_string();
    assert_eq!(capture["complete"], true, "{text}");
    assert_eq!(capture["response"]["status"], 200);
    assert!(
        text.contains("cache miss"),
        "the DEBUG line of the miss: {text}"
    );
    let spans = capture["spans"].as_array().expect("spans");
    let pricing = spans
        .iter()
        .find(|s| s["name"] == "pricing_fetch")
        .expect("pricing span");
    assert!(
        pricing["duration_ms"].as_f64().unwrap() >= 19.0,
        "{pricing}"
    );
    for secret in [TOKEN, "cookie-secret", "query-secret", API_KEY] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the capture: {text}"
        );
    }

    let waterfall = common::text(
        s.admin(&format!("/debug/requests/{id}"))
            .header("accept", "text/plain"),
    )
    .await;
    assert!(
        waterfall.contains("pricing_fetch") && waterfall.contains("cache miss"),
        "{waterfall}"
    );

    // The DEBUG line went through the service's normal pipeline, with the trace id.
    let lines = log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("cache miss") && l.contains(&trace_id)),
        "{lines:#?}"
    );
}

/// The chain an on-call engineer follows: a slow bucket's exemplar on `/metrics` names a
/// trace; for a request in diagnostic mode (always sampled), that trace id opens its
/// capture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_requests_exemplar_leads_to_its_capture() {
    let s = start_with_token().await;
    // Its own product id: the tests of this file share one log buffer.
    let (_, id, trace_id) = in_debug_mode(s.get("/products/7003")).await;

    let metrics = s.openmetrics().await;
    let exemplar_of = |family: &str| -> Option<String> {
        metrics
            .lines()
            .filter(|l| l.starts_with(family) && l.contains(r#"route="/products/{id}""#))
            .find_map(|l| {
                let (_, ex) = l.split_once(r#"# {trace_id=""#)?;
                Some(ex.split('"').next()?.to_owned())
            })
    };
    for family in [
        "http_server_request_duration_seconds_bucket{",
        "http_server_requests_total{",
    ] {
        assert_eq!(
            exemplar_of(family).as_deref(),
            Some(&*trace_id),
            "{family} exemplar:\n{metrics}"
        );
    }

    let capture: Value = s.admin_json(&format!("/debug/requests/{trace_id}")).await;
    assert_eq!(capture["id"].to_string(), id, "{capture}");
    assert_eq!(capture["trace_id"], trace_id);
    let listed: Value = s
        .admin_json(&format!("/debug/requests?trace_id={trace_id}"))
        .await;
    assert_eq!(listed["captures"][0]["id"].to_string(), id, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_request_leaves_no_capture_and_no_debug_line() {
    let s = start_with_token().await;
    let res = s.get("/products/7002").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "x-debug-id").is_none());
    assert!(header(&res, "server-timing").is_none());
    let list: Value = s.admin_json("/debug/requests").await;
    assert_eq!(list["captures"].as_array().unwrap().len(), 0, "{list}");
    assert!(
        !log_lines().iter().any(|l| l.contains("product_id=7002")),
        "no DEBUG line for a normal request"
    );
}

/// The trace id in a response's `traceparent`.
fn traceparent_trace_id(res: &reqwest::Response) -> String {
    let tp = header(res, "traceparent").expect("every response carries traceparent");
    tp.split('-').nth(1).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_requests_log_lines_carry_its_trace_id_once() {
    let s = start_with_token().await;
    let (a, b) = tokio::join!(s.get("/fail").send(), s.get("/fail").send());
    let ids = [a.unwrap(), b.unwrap()].map(|r| traceparent_trace_id(&r));
    assert_ne!(ids[0], ids[1]);
    let lines = log_lines();
    for id in &ids {
        let line = lines
            .iter()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("no line with trace id {id}: {lines:#?}"));
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("inventory lookup failed"), "{line}");
        assert!(line.ends_with(&format!(" trace_id={id}")), "{line}");
    }
    // A debug request's lines show the id through their span, not twice.
    let (res, _, trace_id) = in_debug_mode(s.get("/products/7104")).await;
    assert_eq!(res.status(), 200);
    let line = log_lines()
        .into_iter()
        .find(|l| l.contains("product_id=7104"))
        .expect("the debug request's DEBUG line");
    assert_eq!(line.matches(trace_id.as_str()).count(), 1, "{line}");
    // Lines outside any request carry none.
    tracing::info!("outside any request 7105");
    let line = log_lines()
        .into_iter()
        .find(|l| l.contains("outside any request 7105"))
        .unwrap();
    assert!(!line.contains("trace_id="), "{line}");
}

/// A debug request is sampled whatever the ratio: with none sampled, its `traceparent`
/// still says `-01` and its exemplar is on `/metrics`, while a normal request's is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_request_is_sampled_when_no_other_is() {
    let s = start(
        Diag::builder()
            .token(TOKEN)
            .sampling_ratio(0.0)
            .build()
            .unwrap(),
    )
    .await;
    let normal = s.get("/products/7201").send().await.unwrap();
    let normal_traceparent = header(&normal, "traceparent").unwrap();
    assert!(normal_traceparent.ends_with("-00"), "{normal_traceparent}");
    let (res, _, trace_id) = in_debug_mode(s.get("/products/7202")).await;
    let traceparent = header(&res, "traceparent").unwrap();
    assert!(
        traceparent.contains(&trace_id) && traceparent.ends_with("-01"),
        "forced sampling: {traceparent}"
    );
    let metrics = s.openmetrics().await;
    assert!(
        metrics.contains(&trace_id),
        "the debug request's exemplar: {metrics}"
    );
    assert!(
        !metrics.contains(&traceparent_trace_id(&normal)),
        "an unsampled request has no exemplar: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_served_normally_and_counted() {
    let s = start_with_token().await;
    let expired = diag_core::debug::sign_credential(TOKEN.as_bytes(), 1_000_000_000);
    let forged = diag_core::debug::sign_credential(b"not-the-key", 4_000_000_000);
    let cases = [
        ("wrong-token", "invalid"),
        (forged.as_str(), "invalid"),
        (expired.as_str(), "expired"),
        ("v1.garbage", "malformed"),
    ];
    for (credential, reason) in cases {
        let res = s
            .get("/products/7")
            .header("x-debug", credential)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{credential}");
        assert!(header(&res, "x-debug-id").is_none());
        assert_eq!(
            header(&res, "x-debug-status").unwrap(),
            format!("rejected; reason={reason}")
        );
    }
    let huge = "a".repeat(4096);
    let res = s
        .get("/products/7")
        .header("x-debug", huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "x-debug-status").unwrap(),
        "rejected; reason=oversized"
    );

    let list: Value = s.admin_json("/debug/requests").await;
    let rejected = &list["debug"]["rejected"];
    assert_eq!(rejected["invalid"], 2, "{list}");
    assert_eq!(rejected["expired"], 1);
    assert_eq!(rejected["malformed"], 1);
    assert_eq!(rejected["oversized"], 1);

    // A fresh signed credential works.
    let good = s
        .diag
        .mint_debug_credential(Duration::from_secs(60))
        .unwrap();
    let res = s
        .get("/products/7")
        .header("x-debug", good)
        .send()
        .await
        .unwrap();
    assert!(header(&res, "x-debug-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_caps_a_burst_of_200_debug_requests() {
    let diag = Diag::builder()
        .token(TOKEN)
        .debug_budget(0.5, 20)
        .build()
        .unwrap();
    let s = start(diag).await;
    let requests = (0..200).map(|_| {
        let req = s.get("/healthz").header("x-debug", TOKEN);
        async move { req.send().await.unwrap() }
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut debugged = 0;
    let mut exhausted = 0;
    for res in &responses {
        assert_eq!(res.status(), 200, "never an error because of diag");
        if header(res, "x-debug-id").is_some() {
            debugged += 1;
        } else if header(res, "x-debug-status").as_deref() == Some("budget-exhausted") {
            exhausted += 1;
        }
    }
    // Burst 20, refilling at 0.5/s: at most a few more within the test's seconds.
    assert!((20..=23).contains(&debugged), "{debugged} debug requests");
    assert_eq!(debugged + exhausted, 200);
    let metrics = common::text(s.get("/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("diag_debug_budget_exhausted_total {exhausted}")),
        "{exhausted} counted: {metrics}"
    );
    let events: Value = s
        .admin_json("/debug/events?kind=debug_budget_exhausted")
        .await;
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        1,
        "one event, not one per request: {events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_debug_and_normal_requests_do_not_leak_lines() {
    let s = start(
        Diag::builder()
            .token(TOKEN)
            .debug_budget(1000.0, 1000)
            .build()
            .unwrap(),
    )
    .await;
    // Product ids 8000..8020 are asked in debug mode, 9000..9020 normally: all misses.
    let debug = (8000..8020).map(|id| {
        let req = s.get(&format!("/products/{id}")).header("x-debug", TOKEN);
        async move { req.send().await.unwrap() }
    });
    let normal = (9000..9020).map(|id| {
        let req = s.get(&format!("/products/{id}"));
        async move { req.send().await.unwrap() }
    });
    let (debug, normal) = tokio::join!(
        futures_util::future::join_all(debug),
        futures_util::future::join_all(normal)
    );
    let trace_ids: Vec<String> = debug
        .iter()
        .map(|r| header(r, "x-trace-id").unwrap())
        .collect();
    assert!(normal.iter().all(|r| header(r, "x-debug-id").is_none()));

    let lines = log_lines();
    for (id, trace_id) in (8000..8020).zip(&trace_ids) {
        // `join_all` keeps the order: this is request `id`'s own trace.
        let miss = format!("product_id={id}");
        let line = lines
            .iter()
            .find(|l| l.contains("cache miss") && l.contains(&miss))
            .unwrap_or_else(|| panic!("no DEBUG line for debug request {id}: {lines:#?}"));
        assert!(line.contains(trace_id.as_str()), "not {trace_id}: {line}");
    }
    // Each capture holds its own request's lines and no other request's.
    for (res, id) in debug.iter().zip(8000..8020) {
        let debug_id = header(res, "x-debug-id").unwrap();
        let capture: Value = s.admin_json(&format!("/debug/requests/{debug_id}")).await;
        // The `product_id` field of every line it holds.
        let product_ids: Vec<String> = capture["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .flat_map(|l| l["fields"].as_array().cloned().unwrap_or_default())
            .filter(|pair| pair[0] == "product_id")
            .map(|pair| pair[1].as_str().unwrap().to_owned())
            .collect();
        assert!(
            !product_ids.is_empty() && product_ids.iter().all(|p| *p == id.to_string()),
            "request {id}'s capture holds lines of {product_ids:?}: {capture}"
        );
    }
    // Each debug line carries one of the debug requests' trace ids, never a normal one's.
    for l in lines
        .iter()
        .filter(|l| l.contains("DEBUG") && l.contains("product_id=8"))
    {
        assert!(trace_ids.iter().any(|t| l.contains(t.as_str())), "{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_5_mib_echo_is_byte_identical_in_debug_mode_too() {
    let s = start_with_token().await;
    let payload = diag_conformance::pattern(5 * 1024 * 1024 + 3);
    for debug in [false, true] {
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = payload
            .chunks(100_003)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let mut req = s
            .post("/echo")
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )));
        if debug {
            req = req.header("x-debug", TOKEN);
        }
        let res = req.send().await.unwrap();
        assert_eq!(header(&res, "x-debug-id").is_some(), debug);
        let id = header(&res, "x-debug-id");
        let got = res.bytes().await.unwrap();
        assert!(
            got.as_ref() == payload.as_slice(),
            "debug={debug}: body differs"
        );
        if let Some(id) = id {
            let capture: Value = s.admin_json(&format!("/debug/requests/{id}")).await;
            assert_eq!(capture["complete"], true);
            assert_eq!(capture["request"]["body"]["truncated"], true, "64 KiB cap");
            assert_eq!(capture["request"]["body"]["total_bytes"], payload.len());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_leaves_an_incomplete_capture_and_no_leak() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start_with_token().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    // Stream a large echo and hang up after the first bytes of the response.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let len = 8 * 1024 * 1024;
    let head = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\nx-debug: {TOKEN}\r\ncontent-type: application/octet-stream\r\ncontent-length: {len}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&vec![b'z'; 256 * 1024]).await.unwrap();
    let mut first = [0u8; 1024];
    let n = conn.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    drop(conn);

    // Poll, bounded: the server notices the hang-up and stores the capture.
    let mut list = Value::Null;
    for _ in 0..100 {
        list = s.admin_json("/debug/requests").await;
        if list["captures"].as_array().is_some_and(|c| !c.is_empty())
            && list["debug"]["in_flight"] == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let captures = list["captures"].as_array().unwrap();
    assert_eq!(captures.len(), 1, "{list}");
    assert_eq!(captures[0]["complete"], false);
    assert_ne!(
        captures[0]["failed"], true,
        "the client went away, the service did not fail: {list}"
    );
    assert_eq!(
        list["debug"]["in_flight"], 0,
        "debug request still counted: {list}"
    );
    let requests: Value = s.admin_json("/debug/state/requests").await;
    assert_eq!(requests["value"]["in_flight"], 0, "{requests}");
    let metrics = common::text(s.get("/metrics")).await;
    let gauges: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_server_active_requests{"))
        .collect();
    assert!(!gauges.is_empty(), "{metrics}");
    for line in gauges {
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(value, 0.0, "gauge left up: {line}");
    }
}

/// A client whose upload breaks off (it stops sending and closes its side) while an
/// echo streams the body back: the response fails because the request body did, and
/// the capture says the client left, not that the service failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_breaks_off_is_the_clients_doing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start_with_token().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\nx-debug: {TOKEN}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&vec![b'z'; 64 * 1024]).await.unwrap();
    conn.shutdown().await.unwrap();
    // Read what the server sends until it closes: the head and part of the echo.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut got)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));

    let mut list = Value::Null;
    for _ in 0..100 {
        list = s.admin_json("/debug/requests").await;
        if list["captures"].as_array().is_some_and(|c| !c.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let capture = &list["captures"][0];
    assert_eq!(capture["complete"], false, "{list}");
    assert_ne!(capture["failed"], true, "the client's doing: {list}");
    let id = capture["id"].to_string();
    let full: Value = s.admin_json(&format!("/debug/requests/{id}")).await;
    assert_eq!(full["request"]["body"]["ended"], false, "{full}");
    assert_eq!(full["request"]["body"]["total_bytes"], 64 * 1024, "{full}");
}
