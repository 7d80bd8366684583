//! The demo over real HTTP, as an on-call engineer would use it.

mod common;

use common::{API_KEY, Running, TOKEN};
use diag_core::Diag;
use serde_json::{Value, json};

#[tokio::test]
async fn demo_routes_behave() {
    let s = Running::with_token().await;
    assert_eq!(common::text(s.get("/healthz")).await, "ok");

    let p: Value = s.get_json("/products/7").await;
    assert_eq!(p["id"], 7);
    assert!(p["price_cents"].as_u64().unwrap() >= 1000);

    let res = s
        .post("/checkout")
        .json(&json!({"product_id": 7, "qty": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let order: Value = res.json().await.unwrap();
    assert!(order["order_id"].as_u64().unwrap() >= 1);

    let res = s.post("/checkout").body("{not json").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("malformed"));

    let res = s
        .post("/echo")
        .header("content-type", "text/x-demo")
        .body("héllo")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/x-demo");
    assert_eq!(res.text().await.unwrap(), "héllo");

    let slow: Value = s.get_json("/slow?ms=30").await;
    assert_eq!(slow["slept_ms"], 30);
    assert_eq!(s.get("/fail").send().await.unwrap().status(), 500);
}

#[tokio::test]
async fn state_shows_every_provider_with_the_token_and_401_without() {
    let s = Running::with_token().await;
    s.get("/products/1").send().await.unwrap();
    s.get("/products/1").send().await.unwrap();

    let res = s.get("/debug/state").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = s
        .get("/debug/state")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let state: Value = res.json().await.unwrap();
    for name in [
        "process", "cache", "orders", "config", "queues", "requests", "errors", "events",
    ] {
        assert_eq!(state[name]["status"], "ok", "{name}: {state}");
    }
    assert_eq!(state["process"]["value"]["version"], "1.2.3");
    assert_eq!(state["cache"]["value"]["hits"], 1);
    assert_eq!(state["cache"]["value"]["misses"], 1);
    assert_eq!(state["orders"]["value"]["capacity"], 16);
    assert_eq!(state["config"]["status"], "ok");
    assert_eq!(
        state["config"]["value"]["active"]["pricing_api_key"], "***",
        "{}",
        state["config"]
    );
    assert_eq!(
        state["config"]["value"]["active"]["order_queue_capacity"],
        16
    );
    assert!(!state.to_string().contains(API_KEY), "the key leaked");

    let one: Value = s.admin_json("/debug/state/cache").await;
    assert_eq!(one["value"]["entries"], 1);
}

#[tokio::test]
async fn without_a_token_only_loopback_gets_in() {
    let s = Running::start(Diag::builder().service("checkout").build().unwrap()).await;
    // The test client is on loopback.
    assert_eq!(s.get("/debug/state").send().await.unwrap().status(), 200);
    // Through a proxy nobody named, even a loopback peer is refused.
    let res = s
        .get("/debug/state")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "no token to send: refused without a challenge"
    );
}

#[tokio::test]
async fn endpoints_on_a_separate_admin_listener() {
    let diag = Diag::builder()
        .service("checkout")
        .token(TOKEN)
        .build()
        .unwrap();
    let _s = Running::start(diag.clone()).await;
    let admin = diag_tower::admin::serve(&diag, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{}/debug/state/orders", admin.local_addr());
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let v: Value = client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["value"]["capacity"], 16);
    admin.abort();
}

/// A queue of one under bursts of orders: each 503 is a rejected order, each 202 a
/// produced one, and `/debug/state/queues` and `/metrics` say the queue refuses work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_order_queue_is_counted_as_rejecting() {
    let config = checkout_axum::Config {
        order_queue_capacity: 1,
        ..common::test_config()
    };
    let s = Running::start_with(common::diag_with_token(|b| b), config).await;
    let (mut accepted, mut refused) = (0u64, 0u64);
    // The worker spends 2 ms an order: a burst of 32 at once overflows a queue of one.
    for _ in 0..50 {
        let burst = (0..32).map(|_| {
            s.post("/checkout")
                .json(&json!({"product_id": 7, "qty": 1}))
                .send()
        });
        for res in futures_util::future::join_all(burst).await {
            match res.unwrap().status().as_u16() {
                202 => accepted += 1,
                503 => refused += 1,
                other => panic!("checkout answered {other}"),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(
        refused > 0,
        "no burst filled the queue ({accepted} accepted)"
    );

    let q = &s.admin_json("/debug/state/queues").await["value"]["orders"];
    assert_eq!(q["rejected_total"], refused, "{q}");
    assert_eq!(q["produced_total"], accepted, "{q}");
    assert_eq!(q["capacity"], 1, "{q}");
    assert_eq!(q["consumer_lagging"], true, "it refused orders: {q}");
    let metrics = common::text(s.get("/metrics")).await;
    let line = format!("diag_queue_rejected_total{{queue=\"orders\"}} {refused}");
    assert!(
        metrics.lines().any(|l| l == line),
        "no `{line}` in:\n{metrics}"
    );
}
