//! A request's trace crosses to the services it calls: the front service calls a pricing
//! service through hyper-util's client with `PropagateLayer`, both watched by diag, over
//! real sockets.

mod common;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use bytes::Bytes;
use diag_axum::DiagRouterExt;
use diag_conformance::{TOKEN, Target, wait_for_capture};
use diag_core::Diag;
use diag_tower::{Propagate, PropagateLayer};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};

type PricingClient = Propagate<Client<HttpConnector, Empty<Bytes>>>;

/// Two services that sample nothing on their own, so whatever the pricing service
/// records, it records because the front's `traceparent` said so.
/// Their base URLs, front and pricing.
async fn services() -> (String, String) {
    let front = Diag::builder()
        .service("front")
        .token(TOKEN)
        .sampling_ratio(0.0)
        .build()
        .unwrap();
    let pricing = Diag::builder()
        .service("pricing")
        .token(TOKEN)
        .sampling_ratio(0.0)
        .build()
        .unwrap();
    diag_conformance::install_tracing(&front);
    // Pricing answers with the traceparent it was sent, and the tracestate after a space.
    let pricing_addr = common::serve(
        Router::new()
            .route(
                "/quote/{id}",
                get(|headers: HeaderMap| async move {
                    let get = |name| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
                    let tp = get("traceparent").unwrap_or_default();
                    match get("tracestate") {
                        Some(state) => format!("{tp} {state}"),
                        None => tp,
                    }
                }),
            )
            .with_diag(&pricing),
    )
    .await;
    let client: PricingClient = ServiceBuilder::new()
        .layer(PropagateLayer::new().with_metrics(&front))
        .service(Client::builder(TokioExecutor::new()).build_http());
    let quote_url = format!("http://{pricing_addr}/quote/7");
    let front_addr = common::serve(
        Router::new()
            .route(
                "/products/{id}",
                get(
                    |State((mut client, url)): State<(PricingClient, String)>| async move {
                        let req = http::Request::get(url).body(Empty::new()).unwrap();
                        let res = client.ready().await.unwrap().call(req).await.unwrap();
                        let body = res.into_body().collect().await.unwrap().to_bytes();
                        String::from_utf8(body.to_vec()).unwrap()
                    },
                ),
            )
            .with_state((client, quote_url))
            .with_diag(&front),
    )
    .await;
    (
        format!("http://{front_addr}"),
        format!("http://{pricing_addr}"),
    )
}

/// A service's `/metrics`, as OpenMetrics (with exemplars).
async fn metrics(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .header("accept", "application/openmetrics-text")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_called_service_continues_the_callers_trace() {
    let (front_url, pricing_url) = services().await;
    let http = reqwest::Client::new();

    // A normal request, not sampled: pricing was called as a child of the front's server
    // span, with the sampled flag off, exactly what the front answered with.
    let res = http
        .get(format!("{front_url}/products/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let front_tp = header(&res, "traceparent");
    assert!(front_tp.ends_with("-00"), "{front_tp}");
    assert_eq!(res.text().await.unwrap(), front_tp);

    // A traceparent from further up: the trace id goes all the way through.
    let upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let res = http
        .get(format!("{front_url}/products/7"))
        .header("traceparent", upstream)
        .send()
        .await
        .unwrap();
    let front_tp = header(&res, "traceparent");
    assert!(front_tp.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
    assert_ne!(front_tp, upstream, "the front has a span of its own");
    assert_eq!(res.text().await.unwrap(), front_tp);

    // With the caller's tracestate (two header lines are one list): passed on whole.
    let res = http
        .get(format!("{front_url}/products/7"))
        .header("traceparent", upstream)
        .header("tracestate", "congo=t61rcWkgMzE ")
        .header("tracestate", "rojo=00f067aa0ba902b7")
        .send()
        .await
        .unwrap();
    let front_tp = header(&res, "traceparent");
    assert_eq!(
        res.text().await.unwrap(),
        format!("{front_tp} congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
    );
    // A malformed one is not passed on, and counted; nor is one without a traceparent.
    for headers in [
        &[("traceparent", upstream), ("tracestate", "Bad Key=1")][..],
        &[("tracestate", "congo=t61rcWkgMzE")][..],
    ] {
        let mut req = http.get(format!("{front_url}/products/7"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        let front_tp = header(&res, "traceparent");
        assert_eq!(res.text().await.unwrap(), front_tp, "{headers:?}");
    }
    let metrics = metrics(&http, &front_url).await;
    assert!(
        metrics.contains("diag_tracestate_dropped_total{reason=\"invalid\"} 1\n"),
        "{metrics}"
    );

    // Outside any request, the pricing service is called without a trace context.
    let res = http
        .get(format!("{pricing_url}/quote/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_requests_forced_trace_is_recorded_downstream_too() {
    let (front_url, pricing_url) = services().await;
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{front_url}/products/7"))
        .header("x-debug", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let trace_id = header(&res, "x-trace-id");
    let debug_id = header(&res, "x-debug-id");
    let timing = header(&res, "server-timing");
    let sent = res.text().await.unwrap();
    assert!(
        sent.starts_with(&format!("00-{trace_id}-")) && sent.ends_with("-01"),
        "pricing was sent {sent}"
    );
    assert!(timing.contains("http_client;dur="), "{timing}");

    // Pricing sampled nothing by itself, yet its request carries the front's trace as
    // an exemplar: the forced trace continues in the service that was called.
    let metrics = metrics(&http, &pricing_url).await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_bucket")
                && l.contains("/quote/{id}")
                && l.contains(&format!(r#"trace_id="{trace_id}""#))
        ),
        "no exemplar of {trace_id} on pricing's /metrics:\n{metrics}"
    );

    // The front's capture times the call.
    let capture = wait_for_capture(&Target::new(front_url.clone()), &debug_id).await;
    let span = capture["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "http_client")
        .unwrap_or_else(|| panic!("no http_client span: {capture}"));
    assert!(span["duration_ms"].as_f64().unwrap() > 0.0, "{span}");
    let fields = span["fields"].to_string();
    assert!(fields.contains(r#"["host","127.0.0.1"]"#), "{fields}");
    assert!(fields.contains(r#"["method","GET"]"#), "{fields}");

    // The front counted the call by the address it called, with the debug request (the
    // only sampled one) as the exemplar of the client histogram.
    let front_metrics = crate::metrics(&http, &front_url).await;
    let pricing_address = pricing_url.trim_start_matches("http://");
    let series = format!(
        r#"http_client_request_duration_seconds_count{{method="GET",server_address="{pricing_address}",status="200"}} 1"#
    );
    assert!(
        front_metrics.contains(&series),
        "{series} not in:\n{front_metrics}"
    );
    assert!(
        front_metrics.lines().any(
            |l| l.starts_with("http_client_request_duration_seconds_bucket")
                && l.contains(&format!(r#"trace_id="{trace_id}""#))
        ),
        "no client exemplar of {trace_id}:\n{front_metrics}"
    );
    // And on-call finds the call in /debug/state/dependencies, one step from the
    // debug request's capture.
    let deps: serde_json::Value = http
        .get(format!("{front_url}/debug/state/dependencies"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pricing = &deps["value"]["dependencies"][0];
    assert_eq!(pricing["server_address"], pricing_address, "{deps:#}");
    assert_eq!(pricing["since_start"]["requests"], 1);
    assert_eq!(pricing["statuses"]["200"], 1);
    assert_eq!(pricing["slowest_exemplar"]["trace_id"], trace_id.as_str());
    assert_eq!(
        pricing["slowest_exemplar"]["capture"],
        format!("/debug/requests/{debug_id}").as_str()
    );
    assert_eq!(deps["value"]["failing"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_gets_no_answer_counts_as_an_error() {
    let front = Diag::builder().build().unwrap();
    // A port nothing listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client: PricingClient = ServiceBuilder::new()
        .layer(PropagateLayer::new().with_metrics(&front))
        .service(Client::builder(TokioExecutor::new()).build_http());
    let req = http::Request::get(format!("http://{closed}/quote/1"))
        .body(Empty::new())
        .unwrap();
    assert!(client.clone().oneshot(req).await.is_err());
    // A caller's timeout that fires first: cancelled.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let req = http::Request::get(format!("http://{silent_addr}/quote/2"))
        .body(Empty::new())
        .unwrap();
    let waited =
        tokio::time::timeout(std::time::Duration::from_millis(200), client.oneshot(req)).await;
    assert!(waited.is_err(), "the silent server never answers");
    let text = String::from_utf8(
        front
            .serve(diag_core::EndpointRequest {
                method: "GET".into(),
                path: "/metrics".into(),
                ..Default::default()
            })
            .await
            .body,
    )
    .unwrap();
    for (address, status) in [(closed, "error"), (silent_addr, "cancelled")] {
        let series = format!(
            r#"http_client_request_duration_seconds_count{{method="GET",server_address="{address}",status="{status}"}} 1"#
        );
        assert!(text.contains(&series), "{series} not in:\n{text}");
    }
    // Both are failing dependencies: no answer is a failure, giving up on one too.
    let deps = front.state().collect("dependencies").await.unwrap();
    let failing = &deps.value.as_ref().unwrap()["failing"];
    let mut addresses: Vec<String> = failing
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["errors"], 1, "{f}");
            assert_eq!(f["error_ratio"], 1.0, "{f}");
            f["server_address"].as_str().unwrap().to_owned()
        })
        .collect();
    addresses.sort();
    let mut expected = vec![closed.to_string(), silent_addr.to_string()];
    expected.sort();
    assert_eq!(addresses, expected);
    drop(silent);
}
