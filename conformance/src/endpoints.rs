//! Checks of diag's endpoints: access, the index, state providers, the log level.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::*;

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
    // At least once: a client may send the request again on a fresh connection when
    // the server answered before reading the body and closed the first.
    let text = t.metrics().await;
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"diag_endpoint_refused_total{status="413"} "#))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        counted.is_some_and(|n| n >= 1.0),
        "the 413 is counted:\n{text}"
    );
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

/// A browser, which cannot send a bearer token, is offered Basic credentials (any user,
/// the token as password); they read, but never change anything.
pub async fn browsers_read_with_basic_credentials(t: &Target) {
    let res = t.get("/debug").send().await.expect("request");
    let challenges: Vec<String> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect();
    assert_eq!(
        challenges,
        [
            "Bearer realm=\"diag\"",
            "Basic realm=\"diag\", charset=\"UTF-8\""
        ]
    );
    for path in ["/debug", "/debug/state/process"] {
        let res = t
            .get(path)
            .basic_auth("oncall", Some(TOKEN))
            .header("accept", "text/html,*/*;q=0.8")
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "{path} with Basic credentials");
        let res = t
            .get(path)
            .basic_auth("oncall", Some("wrong-token"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 401, "{path} with a wrong Basic password");
    }
    let res = t
        .client
        .put(format!("{}/debug/log-level", t.base))
        .basic_auth("oncall", Some(TOKEN))
        .body("debug")
        .send()
        .await
        .expect("request");
    assert_json_error(res, 403, "Bearer").await;
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
