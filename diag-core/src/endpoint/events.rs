//! `GET /debug/events`: the "what changed" timeline, oldest first.
//!
//! `?since=<seq>` keeps events after that sequence number (poll with `next_since`, the
//! last `seq` returned), `?kind=<kind>` keeps one kind, `?limit=<n>` caps the answer
//! (default and maximum: the timeline's capacity): with `since`, the oldest after it, so
//! a poller misses nothing; without, the newest. `?pretty` indents. As text
//! (`Accept: text/plain` or `?format=text`), one line per event: how long ago, the UTC
//! time, the kind and the message.

use serde::Serialize;

use super::{DiagResponse, EndpointRequest};
use crate::Diag;
use crate::events::Event;

#[derive(Serialize)]
struct EventsPage<'a> {
    events: Vec<Event>,
    /// The latest sequence number recorded.
    last_seq: u64,
    /// Pass it as `since` next time: the last `seq` in this answer (or the `since` given,
    /// when it is empty).
    next_since: u64,
    /// Events pushed out of the ring since start; a `since` older than the oldest
    /// kept event has missed some.
    evicted: u64,
    /// The `since` given is past the newest event: it came from an earlier process
    /// (sequence numbers start at 1 in each), so the answer starts from this one's
    /// first event instead of waiting for a number it may never reach.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    restarted: bool,
    kind: Option<&'a str>,
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let events = diag.events();
    let since = match req.query_param("since").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return DiagResponse::error(400, "`since` must be an event sequence number");
        }
    };
    let limit = match req.limit(events.capacity()) {
        Ok(n) => n,
        Err(refusal) => return refusal,
    };
    let kind = req.query_param("kind").filter(|k| !k.is_empty());
    let restarted = since.is_some_and(|s| s > events.last_seq());
    // From this process's first event: the oldest `limit` after 0, as a poll reads.
    let since = if restarted { Some(0) } else { since };
    let page_events = match since {
        Some(since) => events.after(since, kind, limit),
        None => events.since(0, kind, limit),
    };
    let next_since = page_events.last().map_or(since.unwrap_or(0), |e| e.seq);
    let page = EventsPage {
        events: page_events,
        last_seq: events.last_seq(),
        next_since,
        evicted: events.evicted(),
        restarted,
        kind,
    };
    if req.wants_text() {
        let now = crate::clock::unix_now();
        return DiagResponse::new(200, "text/plain; charset=utf-8", render_text(&page, now));
    }
    DiagResponse::json(200, &page, req.pretty())
}

/// The timeline as a person reads it: oldest first, as in JSON, so the newest is the
/// last line above the prompt.
fn render_text(page: &EventsPage<'_>, now_unix: f64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if page.restarted {
        out.push_str(
            "(`since` is past the newest event: the process restarted; its events from the start)\n",
        );
    }
    if page.events.is_empty() {
        out.push_str("(no events");
        if let Some(kind) = page.kind {
            let _ = write!(out, " of kind `{}`", crate::debug::Safe(kind));
        }
        out.push_str(")\n");
    }
    // Escaped before padding: `Safe` writes as it is, and an escape widens the kind.
    let kinds: Vec<String> = page
        .events
        .iter()
        .map(|e| crate::debug::Safe(&e.kind).to_string())
        .collect();
    let width = kinds.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    for (e, kind) in page.events.iter().zip(&kinds) {
        let _ = writeln!(
            out,
            "{:>4}  {:>8} ago  {}  {kind:<width$}  {}",
            e.seq,
            super::requests::age(now_unix - e.time_unix),
            utc(e.time_unix),
            crate::debug::Safe(&e.message),
        );
    }
    if page.evicted > 0 {
        let _ = writeln!(out, "({} older events evicted)", page.evicted);
    }
    out
}

/// `2026-11-27 02:37:07Z`: seconds since the Unix epoch as a UTC date and time.
fn utc(time_unix: f64) -> String {
    let secs = time_unix.max(0.0) as i64;
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60
    )
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

        let seqs = |page: &Value| -> Vec<u64> {
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .collect()
        };
        let (_, after) = get(&diag, Some("since=2")).await;
        assert_eq!(seqs(&after), [3, 4]);

        let (_, deploys) = get(&diag, Some("kind=deploy&since=2")).await;
        assert_eq!(deploys["events"].as_array().unwrap().len(), 1);
        assert_eq!(deploys["events"][0]["message"], "v2");

        let (_, limited) = get(&diag, Some("limit=1")).await;
        assert_eq!(limited["events"][0]["message"], "v2");
        // Polling in pages: with `since`, the oldest after it, and where to go on.
        let (_, page) = get(&diag, Some("since=1&limit=1")).await;
        assert_eq!(page["events"][0]["seq"], 2);
        assert_eq!(page["next_since"], 2);
        let (_, page) = get(&diag, Some("since=2&limit=2")).await;
        assert_eq!(seqs(&page), [3, 4]);
        assert_eq!(page["next_since"], 4);

        let (_, none) = get(&diag, Some("since=4")).await;
        assert!(none["events"].as_array().unwrap().is_empty());
        assert_eq!(none["restarted"], Value::Null);
        // A poller left from an earlier process: this one's events from its start, and
        // said so.
        let (_, ahead) = get(&diag, Some("since=999")).await;
        assert_eq!(ahead["restarted"], true);
        assert_eq!(seqs(&ahead), [1, 2, 3, 4]);
        assert_eq!(ahead["next_since"], 4);
        // In pages, as a poller asks: the first ones first, nothing skipped.
        let (_, first) = get(&diag, Some("since=999&limit=2")).await;
        assert_eq!(
            (seqs(&first), first["next_since"].clone()),
            (vec![1, 2], 2.into())
        );

        let (status, err) = get(&diag, Some("since=yesterday")).await;
        assert_eq!(status, 400);
        assert!(err["error"].as_str().unwrap().contains("since"));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0.0), "1970-01-01 00:00:00Z");
        assert_eq!(super::utc(951_782_400.0), "2000-02-29 00:00:00Z");
        assert_eq!(super::utc(1_798_338_627.9), "2026-12-27 02:30:27Z");
        assert_eq!(super::utc(4_107_542_399.0), "2100-02-28 23:59:59Z");
    }

    #[tokio::test]
    async fn the_timeline_as_text() {
        let diag = Diag::builder().service("svc").build().unwrap();
        diag.events()
            .record("deploy", "v2 rolled out\n   1  forged line");
        let resp = diag
            .serve(EndpointRequest {
                method: "GET".into(),
                path: "/debug/events".into(),
                query: Some("format=text".into()),
                peer: Some("127.0.0.1:1".parse().unwrap()),
                ..Default::default()
            })
            .await;
        assert_eq!(resp.status, 200);
        let text = String::from_utf8(resp.body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].trim_start().starts_with("1 "), "{text}");
        assert!(
            lines[0].contains(" ago  ") && lines[0].contains("Z  start "),
            "{text}"
        );
        assert!(lines[1].contains("deploy  v2 rolled out\\n"), "{text}");
    }

    /// Kinds of different widths, one with a character shown escaped: the messages
    /// still start in one column.
    #[tokio::test]
    async fn the_messages_line_up_in_one_column() {
        let diag = Diag::builder().service("svc").build().unwrap();
        diag.events().record("deploy", "v2");
        diag.events().record("feature_flag", "cart on");
        diag.events().record("x\ty", "odd kind");
        let resp = diag
            .serve(EndpointRequest {
                method: "GET".into(),
                path: "/debug/events".into(),
                query: Some("format=TEXT".into()),
                peer: Some("127.0.0.1:1".parse().unwrap()),
                ..Default::default()
            })
            .await;
        assert_eq!(resp.status, 200);
        let text = String::from_utf8(resp.body).unwrap();
        let starts: Vec<usize> = ["svc ", "v2", "cart on", "odd kind"]
            .iter()
            .zip(text.lines())
            .map(|(message, line)| line.rfind(message).expect(&text))
            .collect();
        assert!(
            starts.iter().all(|&at| at == starts[0]),
            "{starts:?}\n{text}"
        );
        assert!(text.contains("Z  x\\ty  "), "{text}");
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

        // Started with the kill switch on: the timeline says so from the first read.
        let off = Diag::builder().disabled(true).build().unwrap();
        let (_, v) = get(&off, Some("kind=kill_switch")).await;
        assert_eq!(v["events"].as_array().unwrap().len(), 1, "{v}");
        assert!(
            v["events"][0]["message"]
                .as_str()
                .unwrap()
                .contains("from the start")
        );
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
