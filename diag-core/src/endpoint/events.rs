//! `GET /debug/events`: the "what changed" timeline, oldest first.
//!
//! `?since=<seq>` keeps events after that sequence number (poll with the last `seq`
//! seen), `?kind=<kind>` keeps one kind, `?limit=<n>` caps the answer (default and
//! maximum: the timeline's capacity; the newest are kept), `?pretty` indents.

use serde::Serialize;

use super::{DiagResponse, EndpointRequest};
use crate::Diag;
use crate::events::Event;

#[derive(Serialize)]
struct EventsPage<'a> {
    events: Vec<Event>,
    /// The latest sequence number: pass it as `since` next time.
    last_seq: u64,
    /// Events pushed out of the ring since start; a `since` older than the oldest
    /// kept event has missed some.
    evicted: u64,
    kind: Option<&'a str>,
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let events = diag.events();
    let since = match req.query_param("since").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return DiagResponse::error(400, "`since` must be an event sequence number");
        }
    };
    let limit = match req.query_param("limit").map(str::parse::<usize>) {
        None => events.capacity(),
        Some(Ok(n)) => n.min(events.capacity()),
        Some(Err(_)) => return DiagResponse::error(400, "`limit` must be a number"),
    };
    let kind = req.query_param("kind").filter(|k| !k.is_empty());
    let page = EventsPage {
        events: events.since(since, kind, limit),
        last_seq: events.last_seq(),
        evicted: events.evicted(),
        kind,
    };
    DiagResponse::json(200, &page, req.pretty())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::{Diag, EndpointRequest};

    async fn get(diag: &Diag, query: Option<&str>) -> (u16, Value) {
        let resp = diag
            .serve(EndpointRequest {
                method: "GET".into(),
                path: "/debug/events".into(),
                query: query.map(String::from),
                peer: Some("127.0.0.1:1".parse().unwrap()),
                ..Default::default()
            })
            .await;
        let v = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        (resp.status, v)
    }

    #[tokio::test]
    async fn since_and_kind_filter_the_timeline() {
        let diag = Diag::builder().service("svc").build().unwrap();
        diag.events().record("deploy", "v1");
        diag.events().record("feature_flag", "cart on");
        diag.events().record("deploy", "v2");

        let (status, all) = get(&diag, None).await;
        assert_eq!(status, 200);
        let kinds: Vec<&str> = all["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["start", "deploy", "feature_flag", "deploy"]);
        assert_eq!(all["last_seq"], 4);

        let (_, after) = get(&diag, Some("since=2")).await;
        let seqs: Vec<u64> = after["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [3, 4]);

        let (_, deploys) = get(&diag, Some("kind=deploy&since=2")).await;
        assert_eq!(deploys["events"].as_array().unwrap().len(), 1);
        assert_eq!(deploys["events"][0]["message"], "v2");

        let (_, limited) = get(&diag, Some("limit=1")).await;
        assert_eq!(limited["events"][0]["message"], "v2");

        let (_, none) = get(&diag, Some("since=4")).await;
        assert!(none["events"].as_array().unwrap().is_empty());

        let (status, err) = get(&diag, Some("since=yesterday")).await;
        assert_eq!(status, 400);
        assert!(err["error"].as_str().unwrap().contains("since"));
    }

    #[tokio::test]
    async fn kill_switch_flips_are_events_only_on_change() {
        let diag = Diag::builder().build().unwrap();
        diag.set_disabled(true);
        diag.set_disabled(true);
        diag.set_disabled(false);
        let (_, v) = get(&diag, Some("kind=kill_switch")).await;
        let messages: Vec<&str> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("on"));
        assert!(messages[1].contains("off"));
        assert!(!diag.is_disabled());
    }

    #[tokio::test]
    async fn other_methods_are_refused() {
        let diag = Diag::builder().build().unwrap();
        let resp = diag
            .serve(EndpointRequest {
                method: "POST".into(),
                path: "/debug/events".into(),
                peer: Some("127.0.0.1:1".parse().unwrap()),
                ..Default::default()
            })
            .await;
        assert_eq!(resp.status, 405);
    }
}
