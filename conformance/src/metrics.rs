//! Checks of `/metrics`: route templates, not paths.

use std::time::{Duration, Instant};

use crate::*;

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

/// A handler that panics is a server error in the RED metrics (a 500, whatever the
/// framework then does with the connection), and leaves nothing active.
pub async fn a_panicking_handler_counts_as_a_500(t: &Target) {
    let calls = |text: &str| {
        let labels = r#"method="GET",route="/panic/{id}",status="500""#;
        sample(text, "http_server_requests_total", labels)
    };
    let active = |text: &str| {
        let labels = r#"method="GET",route="/panic/{id}""#;
        sample(text, "http_server_active_requests", labels)
    };
    let before = calls(&t.metrics().await).unwrap_or(0.0);
    // Through a connection of its own: the framework may close it.
    let client = reqwest::Client::new();
    for id in [1, 2] {
        let res = client.get(format!("{}/panic/{id}", t.base)).send().await;
        if let Ok(res) = res {
            assert_eq!(res.status(), 500, "a panic is never a success");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = t.metrics().await;
        if calls(&text) == Some(before + 2.0) && active(&text) == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "500s of /panic/{{id}} at {before} + 2, none active:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
