use super::encode::{child_id, open_span};
use super::*;

#[test]
fn the_environment_names_the_endpoint() {
    fn env(vars: &[(&str, &str)]) -> Option<String> {
        endpoint_from_env(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .map(|(_, url)| url)
    }
    assert_eq!(env(&[]), None);
    let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318/");
    assert_eq!(env(&[base]).as_deref(), Some("http://otel:4318/v1/traces"));
    let traces = (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "http://t:4318/v1/traces",
    );
    assert_eq!(
        env(&[base, traces]).as_deref(),
        Some("http://t:4318/v1/traces")
    );
    let own = ("DIAG_OTLP_ENDPOINT", "http://diag:4318");
    assert_eq!(
        env(&[base, traces, own]).as_deref(),
        Some("http://diag:4318")
    );
    // OpenTelemetry's, for another protocol: not for diag; diag's own still is.
    let grpc = ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    assert_eq!(env(&[base, grpc]), None);
    assert_eq!(env(&[base, grpc, own]).as_deref(), Some("http://diag:4318"));
    let http = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf");
    assert_eq!(
        env(&[base, grpc, http]).as_deref(),
        Some("http://otel:4318/v1/traces")
    );
    assert_eq!(
        env(&[("DIAG_OTLP_ENDPOINT", " ")]),
        None,
        "empty means none"
    );
}

#[test]
fn endpoints_parse_with_defaults() {
    let e = Endpoint::parse("http://collector:4318/v1/traces").unwrap();
    assert_eq!(
        (e.authority.as_str(), e.path.as_str()),
        ("collector:4318", "/v1/traces")
    );
    let e = Endpoint::parse("http://127.0.0.1:4318").unwrap();
    assert_eq!(
        (e.authority.as_str(), e.path.as_str()),
        ("127.0.0.1:4318", "/v1/traces")
    );
    let e = Endpoint::parse("http://otel/").unwrap();
    assert_eq!(e.authority, "otel:80");
    assert!(
        Endpoint::parse("https://collector:4318")
            .unwrap_err()
            .contains("only http://")
    );
    assert!(Endpoint::parse("http:///v1/traces").is_err());
    let err = Endpoint::parse("http://user:secret@collector:4318").unwrap_err();
    assert!(!err.contains("secret"), "{err}");
    // Nor in an error about the URL.
    let err = Endpoint::parse("https://vendor/v1/traces?api_key=K9").unwrap_err();
    assert!(
        err.contains("https://vendor/v1/traces") && !err.contains("K9"),
        "{err}"
    );
    let err = Endpoint::parse("https://user:pa?ss@vendor/v1").unwrap_err();
    assert!(!err.contains("pa?") && err.contains("…@vendor/v1"), "{err}");
    // A query is sent, never shown (on /debug, in the WARN and the start event).
    let e = Endpoint::parse("http://c:4318/v1/traces?api_key=OTLPKEY").unwrap();
    assert_eq!(e.path, "/v1/traces?api_key=OTLPKEY");
    assert_eq!(e.shown(), "http://c:4318/v1/traces?[redacted]");
    let diag = Diag::builder()
        .otlp_endpoint("http://127.0.0.1:9/v1/traces?api_key=OTLPKEY")
        .build()
        .unwrap();
    assert_eq!(
        diag.inner.otlp.as_ref().unwrap().status()["endpoint"],
        "http://127.0.0.1:9/v1/traces?[redacted]"
    );
}

use crate::Diag;
use crate::debug::Decision;
use crate::request::RequestView;
use crate::trace::TraceId;

/// One finished debug request through `diag`, as an adapter would drive it.
fn debug_request(diag: &Diag) {
    debug_request_recording(diag, |_| {});
}

/// [`debug_request`], with `record` run on it before its response.
fn debug_request_recording(diag: &Diag, record: impl FnOnce(&crate::debug::DebugRequest)) {
    let h = vec![("x-debug".to_owned(), "tok".to_owned())];
    let Decision::Debug(level) = diag.debug_decision(&h, None) else {
        panic!("not admitted")
    };
    let view = RequestView {
        method: "GET",
        route: Some("/x"),
        uri: "/x",
        headers: &h,
        peer: &|| None,
    };
    let debug = diag.start_debug(level, &view, TraceId([5; 16]));
    record(&debug);
    debug.response_head(200, &Vec::new());
    debug.response_end();
}

fn otlp_diag(endpoint: &str) -> Diag {
    Diag::builder()
        .token("tok")
        .debug_budget(1e9, u32::MAX)
        .otlp_endpoint(endpoint)
        .build()
        .unwrap()
}

fn stats(diag: &Diag) -> [u64; 3] {
    let s = &diag.inner.otlp.as_ref().unwrap().stats;
    [&s.sent, &s.failed, &s.dropped].map(|n| n.load(Ordering::Relaxed))
}

/// Polls until `done`, for at most 10 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback URL where nothing listens (a port bound, then let go).
fn nobody_there() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A collector that accepts connections and never answers (each post waits for its
/// timeout), while the returned listener lives, and a `Diag` sending to it.
fn stuck_collector() -> (std::net::TcpListener, Diag) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let diag = otlp_diag(&format!("http://{}", listener.local_addr().unwrap()));
    (listener, diag)
}

#[test]
fn a_collector_that_is_not_there_is_counted_not_felt() {
    let diag = otlp_diag(&nobody_there());
    debug_request(&diag);
    eventually("the failed export is counted", || stats(&diag) == [0, 1, 0]);
}

#[test]
fn a_stuck_collector_fills_the_queue_and_the_rest_is_dropped_without_waiting() {
    let (listener, diag) = stuck_collector();
    let started = std::time::Instant::now();
    for _ in 0..QUEUE + 10 {
        debug_request(&diag);
    }
    // The request path never waited for the collector.
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    // One in the thread's hands, QUEUE waiting, the rest dropped.
    eventually("the overflow is counted", || stats(&diag)[2] >= 9);
    assert_eq!(stats(&diag)[0], 0);
    drop(listener);
}

#[test]
fn a_stuck_collector_holds_at_most_queue_bytes_of_captures() {
    let (listener, diag) = stuck_collector();
    // Captures of about 1 MiB each (their log lines), far fewer than QUEUE of them.
    for _ in 0..QUEUE_BYTES / (1024 * 1024) + 8 {
        debug_request_recording(&diag, |debug| {
            for _ in 0..16 {
                debug.session().record_log(crate::debug::LogLine {
                    offset: Duration::ZERO,
                    level: "DEBUG".into(),
                    target: "t".into(),
                    message: "x".repeat(64 * 1024),
                    fields: vec![],
                    span: None,
                });
            }
        });
    }
    let exporter = diag.inner.otlp.as_ref().unwrap();
    let queued = exporter.stats.queued_bytes.load(Ordering::Relaxed);
    assert!(queued <= QUEUE_BYTES, "{queued}");
    // One in the thread's hands (its bytes still counted), the rest up to the bytes.
    assert!(stats(&diag)[2] >= 7, "{:?}", stats(&diag));
    drop(listener);
}

#[test]
fn a_failed_body_and_a_panic_are_the_services_errors_in_the_trace() {
    let (url, posts) = collector();
    let diag = otlp_diag(&url);
    debug_request_recording(&diag, |debug| {
        debug.response_head(200, &Vec::new());
        debug.response_chunk(b"half");
        debug.finish_after_error(); // the body yielded an error
    });
    debug_request_recording(&diag, |debug| debug.finish_after_panic());
    assert!(diag.flush_traces(Duration::from_secs(10)));
    let all: Vec<u8> = posts.lock().concat();
    for text in [
        &b"response_body_error"[..],
        b"the response body failed with an error mid-way",
        b"panic",
        b"the handler panicked",
    ] {
        assert!(contains(&all, text), "{}", String::from_utf8_lossy(text));
    }
    assert!(!contains(&all, b"the client went away"));
}

#[test]
fn a_debug_trace_holds_its_recorded_spans_unless_the_services_sdk_sends_them() {
    let sent = |debug_spans: bool| {
        let (url, posts) = collector();
        let diag = Diag::builder()
            .token("tok")
            .otlp_endpoint(&url)
            .otlp_debug_spans(debug_spans)
            .build()
            .unwrap();
        debug_request_recording(&diag, |debug| {
            let session = debug.session();
            session.record_span(crate::debug::SpanTiming {
                id: 2,
                parent: None,
                name: "pricing_fetch".into(),
                target: "checkout".into(),
                start_offset: Duration::from_millis(1),
                duration: Duration::from_millis(5),
                fields: vec![],
            });
            for span in [Some(2), None] {
                session.record_log(crate::debug::LogLine {
                    offset: Duration::from_millis(2),
                    level: "DEBUG".into(),
                    target: "checkout".into(),
                    message: format!("cache miss in {span:?}"),
                    fields: vec![],
                    span,
                });
            }
        });
        assert!(diag.flush_traces(Duration::from_secs(10)));
        let all = posts.lock().concat();
        let status = diag.inner.otlp.as_ref().unwrap().status();
        (all, status["debug_spans"].as_str().unwrap().to_owned())
    };
    let (all, shown) = sent(true);
    assert!(contains(&all, b"GET /x") && contains(&all, b"diag.debug_id"));
    assert!(contains(&all, b"pricing_fetch"));
    assert!(contains(&all, b"cache miss in Some(2)") && contains(&all, b"cache miss in None"));
    assert_eq!(shown, "recorded spans and log lines");
    let (all, shown) = sent(false);
    assert!(
        contains(&all, b"GET /x") && contains(&all, b"diag.debug_id"),
        "the server span"
    );
    assert!(!contains(&all, b"pricing_fetch"), "the SDK sends it");
    assert!(
        !contains(&all, b"cache miss"),
        "the SDK sends the log lines as events"
    );
    assert!(shown.starts_with("none"), "{shown}");
}

/// A collector that answers every post with 200 and keeps the bodies.
fn collector() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(Mutex::new(Vec::new()));
    let kept = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let body = loop {
                let n = stream.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(buf[end + 4..end + 4 + len].to_vec());
                }
            };
            if let Some(body) = body {
                kept.lock().push(body);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            }
        }
    });
    (url, posts)
}

/// One request outside diagnostic mode, with `headers`, answered with `status`
/// (`None`: dropped unanswered); its trace context.
fn normal_request(diag: &Diag, headers: &[(&str, &str)], status: Option<u16>) -> TraceContext {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let guard = diag.begin(&RequestView {
        method: "GET",
        route: Some("/products/{id}"),
        uri: "/products/7",
        headers: &headers,
        peer: &|| None,
    });
    let trace = *guard.trace();
    if let Some(status) = status {
        assert!(
            guard
                .finish(status, &mut Vec::<(String, String)>::new())
                .is_none()
        );
    }
    trace
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn sampled_requests_send_their_server_spans_in_batches() {
    let (url, posts) = collector();
    let diag = otlp_diag(&url);
    let traces: Vec<TraceContext> = (0..BATCH + 10)
        .map(|_| normal_request(&diag, &[], Some(200)))
        .collect();
    // A caller that does not sample: nothing is sent for its trace.
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let unsampled = normal_request(&diag, &[("traceparent", caller)], Some(200));
    assert!(!unsampled.sampled);
    // A sampling caller: its span is the parent; a request without a response
    // is sent too, as an error.
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let continued = normal_request(&diag, &[("traceparent", caller)], None);
    let total = BATCH as u64 + 11;
    eventually("every sampled request counted as sent", || {
        stats(&diag) == [total, 0, 0]
    });
    let posts = posts.lock();
    // One full batch at once, the rest within a second: two posts (three if the
    // once-a-second flush came while the requests were still being made).
    assert!((2..=3).contains(&posts.len()), "{} posts", posts.len());
    let all: Vec<u8> = posts.concat();
    for t in &traces {
        assert!(contains(&all, &t.trace_id.0) && contains(&all, &t.span_id.0));
    }
    assert!(contains(&all, &continued.span_id.0));
    assert!(contains(
        &all,
        &[0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    ));
    assert!(!contains(&all, &unsampled.span_id.0));
    assert!(contains(&all, b"GET /products/{id}") && contains(&all, b"no response"));
    assert!(contains(&all, b"error.type") && contains(&all, b"no_response"));
    // The resource names the process among the service's instances.
    assert!(contains(&all, b"service.instance.id"));
    assert!(contains(&all, diag.instance().as_bytes()));
}

#[test]
fn a_callers_tracestate_is_the_server_spans() {
    let (url, posts) = collector();
    let diag = otlp_diag(&url);
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let state = "congo=t61rcWkgMzE";
    normal_request(
        &diag,
        &[("traceparent", caller), ("tracestate", state)],
        Some(200),
    );
    // A debug request's whole trace: its server span carries it too.
    let headers: Vec<(String, String)> = [
        ("traceparent", caller),
        ("tracestate", state),
        ("x-debug", "tok"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let guard = diag.begin(&RequestView {
        method: "GET",
        route: Some("/x"),
        uri: "/x",
        headers: &headers,
        peer: &|| None,
    });
    let tap = guard.finish(200, &mut Vec::<(String, String)>::new());
    drop(tap.expect("a debug request"));
    eventually("both sent", || stats(&diag)[0] == 2);
    assert!(diag.flush_traces(Duration::from_secs(10)));
    let all: Vec<u8> = posts.lock().concat();
    // Span field 3 (`trace_state`), a string of 17 bytes, in each.
    let field = [&[0x1a, 17][..], state.as_bytes()].concat();
    assert_eq!(all.windows(field.len()).filter(|w| *w == field).count(), 2);
}

/// A debug request's server span is named and labelled as any other request's: an
/// unknown method as `_OTHER` (the original kept), no `http.route` when none matched, and
/// a gRPC call's status read from its trailers.
#[test]
fn a_debug_requests_server_span_follows_the_same_rules() {
    let (url, posts) = collector();
    let diag = otlp_diag(&url);
    let debug = vec![("x-debug".to_owned(), "tok".to_owned())];
    let unmatched = diag.begin(&RequestView {
        method: "FOO",
        route: None,
        uri: "/nope/x",
        headers: &debug,
        peer: &|| None,
    });
    drop(unmatched.finish(404, &mut Vec::<(String, String)>::new()));
    let grpc = diag.begin_grpc(&RequestView {
        method: "POST",
        route: Some("/shop.Cart/Add"),
        uri: "/shop.Cart/Add",
        headers: &debug,
        peer: &|| None,
    });
    let mut head = vec![("content-type".to_owned(), "application/grpc".to_owned())];
    let (tap, pending) = grpc.finish_grpc(200, &mut head);
    let mut tap = tap.expect("a debug request");
    let trailers = vec![("grpc-status".to_owned(), "14".to_owned())];
    tap.trailers(&trailers);
    tap.observe(crate::body::Polled::End);
    drop(tap);
    pending.expect("status in the trailers").trailers(&trailers);
    assert!(diag.flush_traces(Duration::from_secs(10)));
    let all: Vec<u8> = posts.lock().concat();
    assert!(contains(&all, b"_OTHER") && contains(&all, b"http.request.method_original"));
    assert!(!contains(&all, b"unmatched"), "no made-up route");
    assert!(!contains(&all, b"FOO unmatched") && !contains(&all, b"FOO /nope"));
    assert!(contains(&all, b"rpc.grpc.status_code") && contains(&all, b"gRPC UNAVAILABLE"));
}

#[test]
fn a_grpc_call_sends_its_grpc_status() {
    let (url, posts) = collector();
    let diag = otlp_diag(&url);
    let call = |trailers: &str| {
        let guard = diag.begin_grpc(&RequestView {
            method: "POST",
            route: Some("/shop.Cart/Add"),
            uri: "/shop.Cart/Add",
            headers: &(),
            peer: &|| None,
        });
        let trace = *guard.trace();
        let mut head = vec![("content-type".to_owned(), "application/grpc".to_owned())];
        let (_, pending) = guard.finish_grpc(200, &mut head);
        // The status comes in the trailers: nothing is sent before they pass.
        let trailers = vec![("grpc-status".to_owned(), trailers.to_owned())];
        pending.expect("status in the trailers").trailers(&trailers);
        trace
    };
    // The first call teaches diag the method; its span is named after it too.
    let ok = call("0");
    let failed = call("14");
    assert!(diag.flush_traces(Duration::from_secs(10)));
    let all: Vec<u8> = posts.lock().concat();
    assert!(contains(&all, &ok.span_id.0) && contains(&all, &failed.span_id.0));
    assert!(contains(&all, b"rpc.grpc.status_code"));
    let name = b"POST /shop.Cart/Add";
    assert_eq!(all.windows(name.len()).filter(|w| w == name).count(), 2);
    // UNAVAILABLE is a server error; OK is not.
    assert!(contains(&all, b"gRPC UNAVAILABLE"));
    assert!(!contains(&all, b"gRPC OK"));
}

#[test]
fn flushing_sends_what_waits_before_the_timer_would() {
    let (url, posts) = collector();
    let diag = otlp_diag(&url);
    let normal: Vec<TraceContext> = (0..3)
        .map(|_| normal_request(&diag, &[], Some(200)))
        .collect();
    debug_request(&diag);
    // Three spans are far from a batch: without a flush they would wait up to a
    // second. After it, the collector has them and the capture already.
    assert!(diag.flush_traces(Duration::from_secs(10)));
    assert_eq!(stats(&diag), [4, 0, 0]);
    let all: Vec<u8> = posts.lock().concat();
    for t in &normal {
        assert!(contains(&all, &t.span_id.0));
    }
    // Nothing waiting: a second flush has nothing to send and succeeds.
    assert!(diag.flush_traces(Duration::from_secs(10)));
    assert_eq!(stats(&diag), [4, 0, 0]);
}

#[test]
fn a_flush_that_cannot_reach_the_collector_says_so_in_time() {
    // Nothing listens there: the post fails.
    let diag = otlp_diag(&nobody_there());
    normal_request(&diag, &[], Some(200));
    assert!(!diag.flush_traces(Duration::from_secs(10)));
    assert_eq!(stats(&diag), [0, 1, 0]);
    // A collector that never answers: the flush gives up at its timeout, well
    // before the post's own.
    let (listener, diag) = stuck_collector();
    normal_request(&diag, &[], Some(200));
    let started = std::time::Instant::now();
    assert!(!diag.flush_traces(Duration::from_millis(300)));
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    drop(listener);
}

#[test]
fn a_stuck_collector_drops_spans_beyond_the_queue_without_waiting() {
    let (listener, diag) = stuck_collector();
    let waiting = || diag.inner.otlp.as_ref().unwrap().spans.lock().len();
    let started = std::time::Instant::now();
    // A full batch: the thread takes it and waits on the collector.
    for _ in 0..BATCH {
        normal_request(&diag, &[], Some(200));
    }
    eventually("the thread takes the batch", || waiting() == 0);
    for _ in 0..SPAN_QUEUE + 100 {
        normal_request(&diag, &[], Some(200));
    }
    // The request path never waited for the collector.
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(waiting(), SPAN_QUEUE);
    assert_eq!(stats(&diag), [0, 0, 100]);
    drop(listener);
}

#[test]
fn without_a_collector_nothing_is_queued() {
    let diag = Diag::builder().build().unwrap();
    assert!(diag.inner.otlp.is_none());
    normal_request(&diag, &[], Some(200));
}

fn span(id: u64, start_ms: f64, duration_ms: f64) -> CapturedSpan {
    CapturedSpan {
        id,
        parent: None,
        name: format!("s{id}"),
        target: "t".into(),
        start_ms,
        duration_ms,
        fields: vec![],
    }
}

#[test]
fn a_reused_tracing_id_names_the_span_open_at_the_time() {
    // Id 7 closed at 10 ms and was reused by a span open from 20 to 30 ms.
    let spans = [span(7, 0.0, 10.0), span(3, 0.0, 40.0), span(7, 20.0, 10.0)];
    assert_eq!(open_span(&spans, 7, 5.0), Some(0));
    assert_eq!(open_span(&spans, 7, 25.0), Some(2));
    assert_eq!(
        open_span(&spans, 7, 15.0),
        Some(0),
        "none open then: the first"
    );
    assert_eq!(open_span(&spans, 9, 5.0), None);
    let request = [0x11; 8];
    let ids: Vec<[u8; 8]> = spans.iter().map(|s| child_id(&request, s)).collect();
    assert_ne!(
        ids[0], ids[2],
        "the two spans of one tracing id get their own ids"
    );
    assert!(ids.iter().all(|id| *id != [0; 8] && *id != request));
}

#[test]
fn varints_and_fixed_fields_follow_the_wire_format() {
    let mut pb = Pb::default();
    pb.uint(1, 300);
    assert_eq!(pb.0, [0x08, 0xac, 0x02]);
    let mut pb = Pb::default();
    pb.fixed64(7, 1);
    assert_eq!(pb.0, [0x39, 1, 0, 0, 0, 0, 0, 0, 0]);
    let mut pb = Pb::default();
    pb.message(2, |m| m.string(1, "hi"));
    assert_eq!(pb.0, [0x12, 4, 0x0a, 2, b'h', b'i']);
    // A message longer than 127 bytes: a two-byte length before it, nested ones
    // inside it intact.
    let long = "x".repeat(200);
    let mut pb = Pb::default();
    pb.message(2, |m| {
        m.string(1, &long);
        m.message(3, |n| n.string_of(1, &["a", " ", "b"]));
    });
    let mut expected = vec![0x12, 210, 1, 0x0a, 200, 1];
    expected.extend_from_slice(long.as_bytes());
    expected.extend_from_slice(&[0x1a, 5, 0x0a, 3, b'a', b' ', b'b']);
    assert_eq!(pb.0, expected);
    assert!(now_nanos() > 1_700_000_000_000_000_000);
}

/// A collector that does not answer in time is said to, not shown as the errno a timed
/// out read leaves on Unix ("Resource temporarily unavailable").
#[test]
fn a_timeout_is_said_in_words() {
    use std::io::{Error, ErrorKind};
    for kind in [ErrorKind::WouldBlock, ErrorKind::TimedOut] {
        assert_eq!(
            super::endpoint::io_error(Error::from(kind)),
            "no answer within 5 s"
        );
    }
    let refused = super::endpoint::io_error(Error::from(ErrorKind::ConnectionRefused));
    assert!(refused.contains("refused"), "{refused}");
}

/// The collector's name is looked up once per RESOLVE_EVERY, not per post; a failed
/// lookup keeps the addresses that worked; none answering asks again at once.
#[test]
fn the_collectors_addresses_are_looked_up_now_and_then() {
    use super::endpoint::{Addresses, RESOLVE_EVERY};
    use std::cell::Cell;
    use std::net::SocketAddr;
    let a: SocketAddr = "10.0.0.1:4318".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:4318".parse().unwrap();
    let lookups = Cell::new(0);
    let found = |addr: SocketAddr| {
        let lookups = &lookups;
        move |_: &str| {
            lookups.set(lookups.get() + 1);
            Ok(vec![addr])
        }
    };
    let failing = |_: &str| -> std::io::Result<Vec<SocketAddr>> {
        Err(std::io::Error::other("resolver down"))
    };
    let mut addresses = Addresses::default();
    assert_eq!(
        addresses.get("c:4318", failing),
        Err("resolver down".to_owned()),
        "nothing known yet: the error"
    );
    assert_eq!(addresses.get("c:4318", found(a)), Ok(vec![a]));
    assert_eq!(
        addresses.get("c:4318", found(b)),
        Ok(vec![a]),
        "not due yet"
    );
    assert_eq!(lookups.get(), 1);
    // None answered: asked again on the next post.
    addresses.forget();
    assert_eq!(addresses.get("c:4318", found(b)), Ok(vec![b]));
    assert_eq!(lookups.get(), 2);
    // Due again, and the resolver is down: the last addresses, not an error.
    addresses.forget();
    assert_eq!(addresses.get("c:4318", failing), Ok(vec![b]));
    assert_eq!(
        addresses.get("c:4318", found(a)),
        Ok(vec![b]),
        "kept until due again"
    );
    assert_eq!(lookups.get(), 2);
    // RESOLVE_EVERY later, the name is looked up again (a collector that moved is found),
    // and not a moment before.
    addresses.age(RESOLVE_EVERY - Duration::from_secs(2));
    assert_eq!(
        addresses.get("c:4318", found(a)),
        Ok(vec![b]),
        "not due yet"
    );
    addresses.age(Duration::from_secs(3));
    assert_eq!(
        addresses.get("c:4318", found(a)),
        Ok(vec![a]),
        "due: looked up"
    );
    assert_eq!(lookups.get(), 3);
    assert!(
        (Duration::from_secs(10)..=Duration::from_secs(120)).contains(&RESOLVE_EVERY),
        "a collector that moved is found within minutes"
    );

    // A collector that does not answer at its address: looked up again on the next post.
    let dead = nobody_there();
    let authority = dead.trim_start_matches("http://");
    let mut addresses = Addresses::default();
    assert!(super::endpoint::connect(authority, &mut addresses).is_err());
    assert!(addresses.due(), "none answered: forgotten");
}
