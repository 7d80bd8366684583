//! `GET /metrics`: the metrics in OpenMetrics text (with exemplars) or, for clients
//! that do not ask for it, the classic Prometheus text format 0.0.4.
//!
//! Content negotiation follows `Accept` with q-values. Prometheus 3 sends, by default,
//! `application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,`
//! `application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;`
//! `escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1`
//! (Prometheus 2 sent `application/openmetrics-text;version=1.0.0,...;q=0.75,`
//! `text/plain;version=0.0.4;q=0.5,*/*;q=0.25`): both get OpenMetrics. A missing
//! `Accept`, `*/*` or `text/plain` (browsers, curl, older scrapers) gets classic text.

use super::{DiagResponse, EndpointRequest};
use crate::Diag;
use crate::metrics::Format;

/// The content type of the OpenMetrics answer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::{EndpointRequest, endpoint::OPENMETRICS_CONTENT_TYPE};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let req = EndpointRequest {
///     method: "GET".into(),
///     path: "/metrics".into(),
///     headers: vec![("accept".into(), "application/openmetrics-text;version=1.0.0".into())],
///     ..Default::default()
/// };
/// let resp = diag.serve(req).await;
/// assert_eq!(resp.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
/// # }
/// ```
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the classic text answer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::{EndpointRequest, endpoint::CLASSIC_CONTENT_TYPE};
/// let diag = diag_core::Diag::builder().build().unwrap();
/// // curl, a browser: no `Accept` asking for OpenMetrics.
/// let req = EndpointRequest { method: "GET".into(), path: "/metrics".into(), ..Default::default() };
/// let resp = diag.serve(req).await;
/// assert_eq!(resp.header("content-type"), Some(CLASSIC_CONTENT_TYPE));
/// # }
/// ```
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The format (and content type) to answer an `Accept` header with.
pub(crate) fn negotiate(accept: Option<&str>) -> (Format, &'static str) {
    const OM_0_0_1: &str = "application/openmetrics-text; version=0.0.1; charset=utf-8";
    let Some(accept) = accept else {
        return (Format::Classic, CLASSIC_CONTENT_TYPE);
    };
    // Best q for OpenMetrics (and whether that entry named version 0.0.1) and for
    // anything classic text satisfies.
    let mut om: Option<(f32, bool)> = None;
    let mut classic = 0.0f32;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut q = 1.0f32;
        let mut version = None;
        for param in parts {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = v.trim().parse().unwrap_or(0.0),
                "version" => version = Some(v.trim().trim_matches('"').to_owned()),
                _ => {}
            }
        }
        match media.as_str() {
            "application/openmetrics-text" => {
                let old = match version.as_deref() {
                    None | Some("1.0.0") => false,
                    Some("0.0.1") => true,
                    Some(_) => continue, // a version we do not write
                };
                if om.is_none_or(|(best, _)| q > best) {
                    om = Some((q, old));
                }
            }
            "text/plain" if matches!(version.as_deref(), None | Some("0.0.4")) => {
                classic = classic.max(q);
            }
            "text/*" | "*/*" => classic = classic.max(q),
            _ => {}
        }
    }
    match om {
        // A client that names OpenMetrics understands it; ties go to it.
        Some((q, old)) if q > 0.0 && q >= classic => (
            Format::OpenMetrics,
            if old {
                OM_0_0_1
            } else {
                OPENMETRICS_CONTENT_TYPE
            },
        ),
        _ => (Format::Classic, CLASSIC_CONTENT_TYPE),
    }
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let (format, content_type) = negotiate(req.accept().as_deref());
    let body = if req.method == "HEAD" {
        Vec::new()
    } else {
        // The scrape also gives the `routes` provider its snapshot for `recent`.
        crate::state::routes::note_scrape(&diag.inner);
        diag.inner.metrics.encode(format).into_bytes()
    };
    DiagResponse::new(200, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::request::RequestView;
    use crate::test_support::scrape_metrics;
    use crate::trace::{SpanId, TraceContext, TraceId};

    fn busy_diag() -> Diag {
        let diag = Diag::builder().max_label_sets(3).build().unwrap();
        for (i, (method, route, status)) in [
            ("GET", Some("/products/{id}"), 200),
            ("GET", Some("/products/{id}"), 404),
            ("POST", Some("/cart \"quoted\"\n"), 201),
            ("DELETE", None, 500),
            ("GET", Some("/x1"), 200),
            ("GET", Some("/x2"), 200),
        ]
        .into_iter()
        .enumerate()
        {
            let g = diag.begin(&RequestView {
                method,
                route,
                uri: "/",
                headers: &(),
                peer: &|| None,
            });
            if i != 3 {
                g.finish(status, &mut ());
            } else {
                drop(g);
            }
        }
        let logins = diag
            .counter_family("logins", "Logins by outcome.", ["outcome"])
            .unwrap();
        let scope = crate::request::RequestScope::new(
            TraceContext {
                trace_id: TraceId([0x11; 16]),
                span_id: SpanId([0x22; 8]),
                sampled: true,
            },
            None,
            None,
        );
        {
            let _in = scope.enter();
            logins.with(["ok"]).inc();
            let _t = diag.timer("pricing_fetch");
            diag.hit("cache_miss");
        }
        for i in 0..5 {
            logins.with([&format!("o{i}")]).inc();
        }
        diag.gauge("queue_depth", "Jobs waiting.").unwrap().set(3.0);
        diag.histogram("cart_items", "Items per cart.", &[1.0, 5.0])
            .unwrap()
            .observe(2.0);
        diag.hit("bad name!");
        diag
    }

    #[tokio::test]
    async fn openmetrics_exposition_is_well_formed() {
        let diag = busy_diag();
        let (ct, text) =
            scrape_metrics(&diag, Some("application/openmetrics-text;version=1.0.0")).await;
        assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
        if let Err(e) = crate::metrics::conformance::check_openmetrics(&text) {
            panic!("{e}\n{text}");
        }
        for want in [
            "# TYPE http_server_request_duration_seconds histogram",
            "# TYPE http_server_requests counter",
            r#"http_server_requests_total{method="GET",route="/products/{id}",status="404"} 1 # {trace_id=""#,
            r#"http_server_active_requests{method="DELETE",route="unmatched"} 0"#,
            r#"logins_total{outcome="ok"} 1 # {trace_id="11111111111111111111111111111111",span_id="2222222222222222"} 1.0 "#,
            r#"logins_total{outcome="__overflow__"} 3"#,
            r#"diag_metrics_overflow_total{family="logins"} 3"#,
            r#"diag_metrics_overflow_total{family="http_server_active_requests"} 2"#,
            r#"diag_metrics_overflow_total{family="http_server_request_duration_seconds"} 2"#,
            r#"http_server_requests_total{method="__overflow__",route="__overflow__",status="__overflow__"} 2"#,
            "diag_metrics_rejected_total 1",
            "cache_miss_total 1 # {",
            "pricing_fetch_duration_seconds_count 1",
            "queue_depth 3.0",
            r#"route="/cart \"quoted\"\n""#,
        ] {
            assert!(text.contains(want), "missing {want}\n{text}");
        }
        assert!(!text.contains("_total_total"));
        if std::env::var_os("DIAG_PRINT_METRICS").is_some() {
            println!("{text}");
        }
    }

    #[tokio::test]
    async fn classic_exposition_passes_promtool() {
        let diag = busy_diag();
        let (ct, text) = scrape_metrics(&diag, None).await;
        assert_eq!(ct, CLASSIC_CONTENT_TYPE);
        assert!(!text.contains(" # {"), "no exemplars in classic text");
        assert!(!text.contains("# EOF"));
        if let Err(e) = crate::metrics::conformance::check_with_promtool(&text) {
            panic!("{e}\n{text}");
        }
    }

    #[tokio::test]
    async fn head_and_wrong_methods() {
        let diag = Diag::builder().build().unwrap();
        let resp = diag
            .serve(EndpointRequest {
                method: "HEAD".into(),
                path: "/metrics".into(),
                ..Default::default()
            })
            .await;
        assert_eq!((resp.status, resp.body.len()), (200, 0));
        let resp = diag
            .serve(EndpointRequest {
                method: "POST".into(),
                path: "/metrics".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(resp.status, 405);
    }

    #[test]
    fn negotiation() {
        let om = Format::OpenMetrics;
        let classic = Format::Classic;
        let cases: &[(Option<&str>, Format)] = &[
            (None, classic),
            (Some("*/*"), classic),
            (Some("text/plain"), classic),
            (Some("text/plain;version=0.0.4"), classic),
            (Some("application/json"), classic),
            (Some("application/openmetrics-text"), om),
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
                ),
                om,
            ),
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.25",
                ),
                om,
            ),
            (
                Some("application/openmetrics-text;q=0.2, text/plain;q=0.9"),
                classic,
            ),
            (Some("application/openmetrics-text;q=0"), classic),
            (Some("application/openmetrics-text;version=2.0.0"), classic),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(*accept).0, *want, "{accept:?}");
        }
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=0.0.1")).1,
            "application/openmetrics-text; version=0.0.1; charset=utf-8"
        );
        assert_eq!(negotiate(None).1, CLASSIC_CONTENT_TYPE);
        assert_eq!(
            negotiate(Some("application/openmetrics-text")).1,
            OPENMETRICS_CONTENT_TYPE
        );
    }
}
