//! `/debug/state/routes` on the demo: which route is slow or failing, from one `curl`.
//! The slow route comes first, the failing one shows its error ratio, the slowest
//! exemplar is a trace a response handed out (with the path to its capture when it was
//! a debug request), and `recent` counts only what happened since the earlier snapshot
//! (the previous read, or a `/metrics` scrape).

mod common;

use std::time::Duration;

use common::{Running, TOKEN};
use serde_json::Value;

fn route<'a>(report: &'a Value, method: &str, path: &str) -> &'a Value {
    report["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == method && r["route"] == path)
        .unwrap_or_else(|| panic!("no {method} {path} in {report:#}"))
}

/// The trace id of a `traceparent` response header.
fn trace_id(res: &reqwest::Response) -> String {
    let tp = res.headers()["traceparent"].to_str().unwrap();
    tp.split('-').nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn routes_name_the_slow_and_the_failing_one() {
    let s = Running::with_token().await;
    for _ in 0..5 {
        s.get("/healthz").send().await.unwrap();
    }
    for _ in 0..2 {
        assert_eq!(s.get("/fail").send().await.unwrap().status(), 500);
    }
    let slow = s.get("/slow?ms=300").send().await.unwrap();
    assert_eq!(slow.status(), 200);
    let slow_trace = trace_id(&slow);

    let first = s.admin_json("/debug/state/routes").await;
    assert_eq!(first["status"], "ok", "{first:#}");
    let v = &first["value"];
    // The first read has nothing earlier to compare with, and says so.
    assert!(v.get("window_seconds").is_none(), "{v:#}");
    assert!(v["note"].as_str().unwrap().contains("read again"), "{v:#}");
    assert_eq!(v["routes"][0]["route"], "/slow", "slowest first: {v:#}");
    let slow_route = route(v, "GET", "/slow");
    let p99 = slow_route["since_start"]["p99_ms"].as_f64().unwrap();
    assert!(p99 >= 250.0, "p99 {p99} of a 300 ms request");
    assert_eq!(slow_route["slowest_exemplar"]["trace_id"], slow_trace);
    assert!(slow_route["slowest_exemplar"]["ms"].as_f64().unwrap() >= 300.0);
    assert!(slow_route["slowest_exemplar"].get("capture").is_none());
    let fail = route(v, "GET", "/fail");
    assert_eq!(fail["since_start"]["requests"], 2);
    assert_eq!(fail["since_start"]["errors"], 2);
    assert_eq!(fail["since_start"]["error_ratio"], 1.0);
    assert_eq!(fail["statuses"]["500"], 2);
    assert_eq!(
        v["failing"],
        serde_json::json!([{"method": "GET", "route": "/fail", "errors": 2, "error_ratio": 1.0,
                            "statuses": {"500": 2}, "window": "since_start"}])
    );
    let health = route(v, "GET", "/healthz");
    assert_eq!(health["since_start"]["errors"], 0);
    assert_eq!(health["since_start"]["error_ratio"], 0.0);
    assert_eq!(health["statuses"]["200"], 5);

    // A second read, later: `recent` counts only the requests in between.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        s.get("/healthz").send().await.unwrap();
    }
    s.get("/fail").send().await.unwrap();
    let debug = s
        .get("/products/9")
        .header("x-debug", TOKEN)
        .send()
        .await
        .unwrap();
    assert!(debug.headers().contains_key("x-debug-id"));
    let debug_trace = trace_id(&debug);
    let debug_id = debug.headers()["x-debug-id"].to_str().unwrap().to_owned();
    let v = s.admin_json("/debug/state/routes").await["value"].clone();
    let window = v["window_seconds"].as_f64().unwrap();
    assert!(window >= 1.0, "window {window}");
    assert!(v.get("note").is_none());
    let health = route(&v, "GET", "/healthz");
    assert_eq!(health["recent"]["requests"], 3, "{health:#}");
    assert_eq!(health["since_start"]["requests"], 8);
    assert!(health["recent"]["per_second"].as_f64().unwrap() > 0.0);
    let fail = route(&v, "GET", "/fail");
    assert_eq!(fail["recent"]["requests"], 1);
    assert_eq!(fail["recent"]["errors"], 1);
    assert_eq!(v["failing"][0]["errors"], 1, "recent errors: {v:#}");
    // The one /products request was in diagnostic mode: its capture is one step away
    // from the route's slowest exemplar.
    let products = route(&v, "GET", "/products/{id}");
    assert_eq!(products["recent"]["requests"], 1);
    let exemplar = &products["slowest_exemplar"];
    assert_eq!(exemplar["trace_id"], debug_trace.as_str(), "{products:#}");
    assert_eq!(
        exemplar["capture"],
        format!("/debug/requests/{debug_id}").as_str()
    );
    let capture = s
        .admin(exemplar["capture"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(capture.status(), 200);
    // /slow had nothing recent: it sorts after the routes that did.
    let order: Vec<&str> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(order.last(), Some(&"/slow"), "{order:?}");
    assert!(route(&v, "GET", "/slow")["recent"]["p99_ms"].is_null());

    // The same as a table for a terminal.
    let res = s
        .admin("/debug/state/routes")
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(text.starts_with("routes   recent: the last "), "{text}");
    // Failing in the recent window: the one /fail since the first read.
    assert!(
        text.contains("\nfailing  GET /fail: 500×1 (100.0% of its requests) in the last "),
        "{text}"
    );
    let products = text
        .lines()
        .find(|l| l.starts_with("GET     /products/{id}"))
        .unwrap_or_else(|| panic!("no /products line:\n{text}"));
    assert!(
        products.ends_with(&format!("{debug_trace}  /debug/requests/{debug_id}")),
        "{products}"
    );
}

#[tokio::test]
async fn routes_need_the_token() {
    let s = Running::with_token().await;
    let res = s.get("/debug/state/routes").send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_pricing_dependency_shows_with_its_calls() {
    let s = Running::with_token().await;
    for id in [1, 2, 1] {
        assert_eq!(
            s.get(&format!("/products/{id}"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let v = s.admin_json("/debug/state/dependencies").await["value"].clone();
    let pricing = &v["dependencies"][0];
    assert_eq!(pricing["server_address"], "pricing.internal", "{v:#}");
    // Two cache misses called pricing; the hit did not.
    assert_eq!(pricing["since_start"]["requests"], 2);
    assert_eq!(pricing["statuses"]["200"], 2);
    // The demo's pricing answers in 20 to 50 ms.
    let p50 = pricing["since_start"]["p50_ms"].as_f64().unwrap();
    assert!((10.0..=75.0).contains(&p50), "p50 {p50}");
    assert!(pricing["slowest_exemplar"]["trace_id"].is_string());
    assert_eq!(v["failing"], serde_json::json!([]));
}
