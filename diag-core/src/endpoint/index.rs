//! `GET /debug`: the service explained to someone who has never seen it.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::{DiagResponse, ENDPOINTS, EndpointRequest};
use crate::Diag;
use crate::state::text::TEXT_VIEWS;

#[derive(Serialize)]
struct Index<'a> {
    service: &'a str,
    version: &'a str,
    /// Which of the service's instances answered (captures stay on theirs).
    instance: &'a str,
    uptime_seconds: f64,
    diag_version: &'static str,
    disabled: bool,
    endpoints: Vec<EndpointEntry>,
    providers: Vec<String>,
    /// The providers that also read as text, each with where (`Accept: text/plain` on
    /// `/debug/state/{name}` gets it too).
    provider_text_views: BTreeMap<String, String>,
    git_sha: Option<&'a str>,
    /// The service's active configuration, secrets already hidden.
    config: Option<&'a serde_json::Value>,
    events: EventsSummary,
    /// Sections other parts of diag add; see [`sections`].
    #[serde(flatten)]
    sections: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct EventsSummary {
    /// Events kept in the timeline now.
    recent: usize,
    last_seq: u64,
    /// The newest few, newest first.
    latest: Vec<crate::events::Event>,
}

/// How many events the index shows; `/debug/events` has the rest.
const EVENTS_ON_INDEX: usize = 5;

/// The extension point for sections owned elsewhere: each adds one entry here, shown
/// in the JSON as a top-level key and in the HTML as its own block.
///
/// `log_level` (the runtime log level and its TTL), `debug_mode` (the header, which
/// token it carries, the networks `X-Debug: 1` counts from, the trusted proxies, the
/// budget and how much of it was used, captures kept) and `tracing` (the sampling ratio;
/// the OTLP collector, if any, and how the exports went).
fn sections(diag: &Diag) -> serde_json::Map<String, serde_json::Value> {
    let mut sections = serde_json::Map::new();
    let log_level = match diag.log_level().current() {
        Ok(state) => serde_json::json!({
            "directive": state.directive,
            "default": state.default,
            "expires_in_seconds": state.expires_in.map(|d| d.as_secs_f64()),
        }),
        // No `log_filter` installed: say so rather than guess.
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    sections.insert("log_level".into(), log_level);
    let mode = diag.debug_mode();
    let budget = mode.budget();
    sections.insert(
        "debug_mode".into(),
        serde_json::json!({
            "header": mode.header(),
            // What explains a refused `X-Debug`: which token it must carry, where `1`
            // counts, whose forwarding headers are believed.
            "token": mode.key_source(),
            "networks": mode.networks().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "trusted_proxies": diag.inner.trusted_proxies.nets().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "budget_per_second": budget.per_second(),
            "budget_burst": budget.burst(),
            "activated": mode.activated(),
            "in_flight": mode.in_flight(),
            "budget_exhausted": budget.exhausted(),
            "captures_kept": mode.recorder().stats().kept,
        }),
    );
    let hints: Vec<String> = [
        diag.inner.metrics.http.unmatched_hint(),
        diag.debug_mode().logs_hint().map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !hints.is_empty() {
        sections.insert("hints".into(), serde_json::json!(hints));
    }
    sections.insert(
        "tracing".into(),
        serde_json::json!({
            "sampling_ratio": diag.inner.sampler.ratio(),
            // Which responses name their trace in a `traceparent`.
            "traceparent_on": if diag.inner.traceparent_every_response {
                "every response"
            } else {
                "debug and error responses"
            },
            "otlp": diag.inner.otlp.as_ref().map(|o| o.status()),
        }),
    );
    sections
}

#[derive(Serialize)]
struct EndpointEntry {
    path: &'static str,
    methods: &'static str,
    shows: &'static str,
    /// Where its text form is, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'static str>,
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let config = diag.active_config();
    let index = Index {
        service: diag.service(),
        version: diag.version(),
        instance: diag.instance(),
        // The process's, as the `process` provider and `process_start_time_seconds` say
        // (the kernel's start time), not the `Diag` handle's, which may be younger.
        uptime_seconds: crate::process::ProcessStats::read()
            .start_and_uptime(diag.started_at())
            .1,
        diag_version: env!("CARGO_PKG_VERSION"),
        disabled: diag.is_disabled(),
        endpoints: ENDPOINTS
            .iter()
            .map(|e| EndpointEntry {
                path: e.path,
                methods: e.methods,
                shows: e.shows,
                text: e.text,
            })
            .collect(),
        providers: diag.state().names(),
        provider_text_views: diag
            .state()
            .names()
            .into_iter()
            .filter(|p| TEXT_VIEWS.contains(&p.as_str()))
            .map(|p| {
                let text = format!("/debug/state/{p}?format=text");
                (p, text)
            })
            .collect(),
        git_sha: diag.git_sha(),
        config: config.as_deref(),
        events: EventsSummary {
            recent: diag.events().len(),
            last_seq: diag.events().last_seq(),
            latest: {
                let mut latest = diag.events().since(0, None, EVENTS_ON_INDEX);
                latest.reverse();
                latest
            },
        },
        sections: sections(diag),
    };
    if req.accepts("text/html") {
        DiagResponse::new(200, "text/html; charset=utf-8", html(&index))
    } else {
        DiagResponse::json(200, &index, true)
    }
}

fn html(index: &Index<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{s} diagnostics</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}\
         td,th{{text-align:left;padding:.2em .8em .2em 0;vertical-align:top}}code{{background:#f3f3f3}}</style>\
         </head><body><h1>{s} <small>{v}{sha}</small></h1>\
         <p>Instance <code>{inst}</code>, up for {up:.0} s. diag {dv}.{off}</p><h2>Endpoints</h2><table><tr><th>path</th><th>methods</th><th>shows</th></tr>",
        s = escape(index.service),
        v = escape(index.version),
        sha = index
            .git_sha
            .map(|g| format!(" <code>{}</code>", escape(g)))
            .unwrap_or_default(),
        inst = escape(index.instance),
        up = index.uptime_seconds,
        dv = index.diag_version,
        off = if index.disabled {
            " <b>Kill switch on: diagnostics are paused.</b>"
        } else {
            ""
        },
    );
    for e in &index.endpoints {
        let link = if e.path.contains('{') {
            format!("<code>{}</code>", escape(e.path))
        } else {
            format!("<a href=\"{p}\"><code>{p}</code></a>", p = escape(e.path))
        };
        let _ = write!(
            out,
            "<tr><td>{link}</td><td>{}</td><td>{}</td></tr>",
            e.methods,
            escape(e.shows)
        );
    }
    out.push_str("</table><h2>State providers</h2><ul>");
    for p in &index.providers {
        // Those with a text view read better as text.
        let query = if index.provider_text_views.contains_key(p) {
            "format=text"
        } else {
            "pretty"
        };
        let _ = write!(
            out,
            "<li><a href=\"/debug/state/{p}?{query}\"><code>{p}</code></a></li>",
            p = escape(p)
        );
    }
    out.push_str("</ul>");
    let _ = write!(
        out,
        "<h2>Recent events</h2><p>{} kept, latest #{}; <a href=\"/debug/events?pretty\">all</a></p><table>",
        index.events.recent, index.events.last_seq
    );
    for e in &index.events.latest {
        let _ = write!(
            out,
            "<tr><td>#{}</td><td><code>{}</code></td><td>{}</td></tr>",
            e.seq,
            escape(&e.kind),
            escape(&e.message)
        );
    }
    out.push_str("</table>");
    for (name, value) in &index.sections {
        let _ = write!(out, "<h2>{}</h2>{}", escape(name), json_block(value));
    }
    out.push_str("<h2>Configuration</h2>");
    match &index.config {
        Some(config) => out.push_str(&json_block(config)),
        None => out.push_str("<p>Not registered (<code>diag.config(&amp;settings)</code>).</p>"),
    }
    out.push_str("</body></html>\n");
    out
}

fn json_block(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    format!("<pre><code>{}</code></pre>", escape(&text))
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::{Diag, EndpointRequest};

    fn request(accept: Option<&str>) -> EndpointRequest {
        EndpointRequest {
            method: "GET".into(),
            path: "/debug".into(),
            headers: accept
                .map(|a| vec![("accept".to_owned(), a.to_owned())])
                .unwrap_or_default(),
            peer: Some("127.0.0.1:1".parse().unwrap()),
            ..Default::default()
        }
    }

    fn diag() -> Diag {
        let diag = Diag::builder()
            .service("checkout")
            .version("1.4.2")
            .git_sha(Some("abc123"))
            .build()
            .unwrap();
        diag.config(&serde_json::json!({"port": 8080, "stripe_api_key": "sk_live_1"}))
            .unwrap();
        diag.set_disabled(true);
        diag
    }

    /// A service whose middleware gets no route templates is told so, on `/debug` and
    /// once in its log; one request with a route is enough to say nothing.
    #[tokio::test]
    async fn a_service_whose_requests_all_lack_a_route_is_told_why() {
        let diag = Diag::builder().build().unwrap();
        let request_to = |route: Option<&str>| {
            diag.begin(&crate::request::RequestView {
                method: "GET",
                route,
                uri: "/users/7",
                headers: &(),
                peer: &|| None,
            })
            .finish(200, &mut ());
        };
        async fn hints(diag: &Diag) -> Value {
            let resp = diag.serve(request(None)).await;
            let v: Value = serde_json::from_slice(&resp.body).unwrap();
            v["hints"].clone()
        }
        for _ in 0..crate::metrics::http::UNMATCHED_HINT_AFTER - 1 {
            request_to(None);
        }
        assert!(hints(&diag).await.is_null(), "too few requests to tell");
        request_to(None);
        let said = hints(&diag).await;
        let hint = said[0].as_str().unwrap();
        assert!(
            hint.contains("all 100 requests") && hint.contains("with_route"),
            "{hint}"
        );
        request_to(Some("/users/{id}"));
        assert!(hints(&diag).await.is_null(), "a route was seen");
    }

    #[tokio::test]
    async fn json_index_has_config_events_and_endpoints() {
        let resp = diag().serve(request(None)).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["service"], "checkout");
        assert_eq!(v["git_sha"], "abc123");
        assert_eq!(v["disabled"], true);
        assert_eq!(v["config"]["port"], 8080);
        assert_eq!(v["config"]["stripe_api_key"], "***");
        assert_eq!(v["tracing"]["sampling_ratio"], 1.0);
        assert_eq!(v["tracing"]["traceparent_on"], "every response");
        assert!(v["tracing"]["otlp"].is_null(), "no collector configured");
        let mode = &v["debug_mode"];
        assert_eq!(mode["header"], "x-debug");
        assert_eq!(mode["token"], "none");
        assert_eq!(
            mode["networks"],
            serde_json::json!(["127.0.0.0/8", "::1/128"])
        );
        assert_eq!(mode["trusted_proxies"], serde_json::json!([]));
        assert_eq!(v["events"]["recent"], 2);
        assert_eq!(v["events"]["latest"][0]["kind"], "kill_switch");
        let paths: Vec<&str> = v["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"/debug/events") && paths.contains(&"/debug/kill-switch"));
        let providers = v["providers"].as_array().unwrap();
        for p in [
            "config", "errors", "events", "process", "queues", "requests",
        ] {
            assert!(providers.contains(&Value::from(p)), "{p} missing");
        }
        // Where a text form exists, the index says where.
        assert_eq!(
            v["provider_text_views"],
            serde_json::json!({
                "dependencies": "/debug/state/dependencies?format=text",
                "queues": "/debug/state/queues?format=text",
                "requests": "/debug/state/requests?format=text",
                "routes": "/debug/state/routes?format=text",
            })
        );
        let text_of = |path: &str| {
            v["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["path"] == path)
                .map(|e| e["text"].clone())
                .unwrap()
        };
        assert_eq!(
            text_of("/debug/state/{name}"),
            "/debug/state/{name}?format=text"
        );
        assert_eq!(text_of("/debug/requests"), "/debug/requests?format=text");
        assert_eq!(text_of("/debug/events"), "/debug/events?format=text");
        assert!(text_of("/debug/kill-switch").is_null());
    }

    #[tokio::test]
    async fn the_index_and_the_process_provider_agree_on_uptime() {
        let diag = diag();
        // This test process began before this `Diag` was built.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let index: Value = serde_json::from_slice(&diag.serve(request(None)).await.body).unwrap();
        let process = diag
            .state()
            .collect("process")
            .await
            .unwrap()
            .value
            .unwrap();
        let (a, b) = (
            index["uptime_seconds"].as_f64().unwrap(),
            process["uptime_seconds"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1.0, "index {a} s, process {b} s");
        assert!(
            a >= diag.uptime().as_secs_f64(),
            "index {a} s, Diag {:?}",
            diag.uptime()
        );
    }

    #[tokio::test]
    async fn the_index_says_where_traces_go() {
        let diag = Diag::builder()
            .sampling_ratio(0.25)
            .otlp_endpoint("http://127.0.0.1:9/v1/traces")
            .build()
            .unwrap();
        let resp = diag.serve(request(None)).await;
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        let tracing = &v["tracing"];
        assert_eq!(tracing["sampling_ratio"], 0.25);
        assert_eq!(tracing["otlp"]["endpoint"], "http://127.0.0.1:9/v1/traces");
        for n in ["sent", "failed", "dropped", "spans_waiting"] {
            assert_eq!(tracing["otlp"][n], 0, "{n}");
        }
    }

    #[tokio::test]
    async fn browsers_get_html_without_secrets() {
        let resp = diag()
            .serve(request(Some("text/html,application/xhtml+xml;q=0.9")))
            .await;
        assert_eq!(resp.status, 200);
        assert!(
            resp.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        let html = String::from_utf8(resp.body).unwrap();
        assert!(html.contains("<h1>checkout <small>1.4.2 <code>abc123</code></small></h1>"));
        assert!(html.contains("Kill switch on"));
        assert!(html.contains("href=\"/debug/events\""));
        assert!(html.contains("href=\"/debug/state/routes?format=text\""));
        assert!(html.contains("href=\"/debug/state/requests?format=text\""));
        assert!(html.contains("href=\"/debug/state/queues?format=text\""));
        assert!(html.contains("href=\"/debug/state/process?pretty\""));
        assert!(html.contains("&quot;port&quot;: 8080"));
        assert!(!html.contains("sk_live_1"));
    }
}
