//! Checks of `/metrics`: route templates, not paths.

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
