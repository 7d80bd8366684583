//! Captures and server spans as OTLP `ExportTraceServiceRequest` messages.

use super::*;

/// The ids of the request's server span.
pub(crate) struct Ids {
    pub(crate) trace: [u8; 16],
    pub(crate) span: [u8; 8],
    /// The caller's span, when the request continued its trace.
    pub(crate) parent: Option<[u8; 8]>,
    /// The caller's `tracestate`, when it sent one.
    pub(crate) tracestate: Option<crate::trace::TraceState>,
}

/// The spans of one capture as an OTLP `ExportTraceServiceRequest`.
pub(crate) fn encode(c: &Capture, request: &Ids, source: &Source) -> Vec<u8> {
    let (trace_id, span_id) = (&request.trace, &request.span);
    let start = c.time_unix;
    let nanos = |ms_from_start: f64| -> u64 { ((start + ms_from_start / 1000.0) * 1e9) as u64 };
    // The recorded root span (diag's `request` span) is the server span itself: its
    // children hang from the server span.
    let root_recorded = c
        .spans
        .iter()
        .find(|s| s.parent.is_none() && s.name == "request" && s.target == "diag")
        .map(|s| s.id);
    let ids: Vec<[u8; 8]> = c.spans.iter().map(|s| child_id(span_id, s)).collect();
    // The server span stands for the recorded root and for no span at all.
    let index = |id: Option<u64>, at_ms: f64| -> Option<usize> {
        let id = id.filter(|id| Some(*id) != root_recorded)?;
        open_span(&c.spans, id, at_ms)
    };
    let otlp_parent = |child: &CapturedSpan| -> [u8; 8] {
        index(child.parent, child.start_ms).map_or(*span_id, |i| ids[i])
    };
    let span_of_log = |span: Option<u64>, at_ms: f64| -> Option<usize> { index(span, at_ms) };

    export_request(source, 0, |ss| {
        // The server span: the whole request.
        ss.message(2, |span| {
            span.bytes(1, trace_id);
            span.bytes(2, span_id);
            if let Some(state) = &request.tracestate {
                span.string(3, state.as_str());
            }
            if let Some(parent) = &request.parent {
                span.bytes(4, parent);
            }
            // Named and labelled as every other request's server span (and its metric
            // series) is: an unknown method as `_OTHER`, no route when none matched.
            let method = crate::metrics::method_label(&c.request.method);
            let route = c
                .request
                .route
                .as_deref()
                .filter(|r| *r != crate::request::UNMATCHED_ROUTE);
            match route {
                Some(route) => span.string_of(5, &[method, " ", route]),
                None => span.string(5, method),
            }
            span.uint(6, 2); // SPAN_KIND_SERVER
            span.fixed64(7, nanos(0.0));
            span.fixed64(8, nanos(c.duration_ms));
            let (path, query) = c
                .request
                .uri
                .split_once('?')
                .unwrap_or((&c.request.uri, ""));
            span.message(9, |kv| kv_str(kv, "http.request.method", method));
            if method != c.request.method {
                span.message(9, |kv| {
                    kv_str(kv, "http.request.method_original", &c.request.method)
                });
            }
            if let Some(route) = route {
                span.message(9, |kv| kv_str(kv, "http.route", route));
            }
            span.message(9, |kv| kv_str(kv, "url.path", path));
            if !query.is_empty() {
                span.message(9, |kv| kv_str(kv, "url.query", query));
            }
            if let Some(r) = &c.response {
                span.message(9, |kv| {
                    kv_int(kv, "http.response.status_code", i64::from(r.status))
                });
            }
            let grpc = c
                .response
                .as_ref()
                .and_then(|r| r.grpc_status)
                .and_then(crate::request::GrpcCode::from_name);
            if let Some(code) = grpc {
                span.message(9, |kv| {
                    kv_int(kv, "rpc.grpc.status_code", i64::from(code.code()))
                });
            }
            span.message(9, |kv| kv_int(kv, "diag.debug_id", c.id as i64));
            span.message(9, |kv| {
                kv_str(kv, "diag.level", &format!("{:?}", c.level).to_lowercase())
            });
            for log in c
                .logs
                .iter()
                .filter(|l| source.debug_spans && span_of_log(l.span, l.offset_ms).is_none())
            {
                span.message(11, |ev| log_event(ev, log, &nanos));
            }
            // How the capture ended says more than its status: a handler's panic, or a
            // response body that failed mid-way, is the service's error, not the client's.
            let kind = if c.panicked {
                Some("panic".to_owned())
            } else if c.failed && c.response.is_some() {
                Some("response_body_error".to_owned())
            } else {
                error_type(c.response.as_ref().map(|r| r.status), grpc)
            };
            if let Some(kind) = &kind {
                span.message(9, |kv| kv_str(kv, "error.type", kind));
            }
            let grpc_failed = grpc.is_some_and(|code| code.is_server_error());
            let failed = c.response.as_ref().is_none_or(|r| r.status >= 500) || grpc_failed;
            if failed || !c.complete {
                span.message(15, |status| {
                    let message = match (&c.response, c.complete, grpc) {
                        _ if c.panicked => "the handler panicked".to_owned(),
                        (None, _, _) if c.failed => {
                            "the service failed with an error instead of a response".to_owned()
                        }
                        (None, _, _) => "no response".to_owned(),
                        (Some(_), true, Some(code)) if grpc_failed => {
                            format!("gRPC {}", code.name())
                        }
                        (Some(r), true, _) => format!("HTTP {}", r.status),
                        (Some(_), false, _) if c.failed => {
                            "the response body failed with an error mid-way".to_owned()
                        }
                        (Some(_), false, _) => {
                            "the client went away before the response ended".to_owned()
                        }
                    };
                    status.string(2, &message);
                    status.uint(3, 2); // STATUS_CODE_ERROR
                });
            }
        });
        // The service's own SDK sends them (`otlp_debug_spans(false)`): not twice.
        let recorded = if source.debug_spans {
            &c.spans[..]
        } else {
            &[]
        };
        for (i, s) in recorded.iter().enumerate() {
            if Some(s.id) == root_recorded && s.parent.is_none() {
                continue;
            }
            ss.message(2, |span| {
                span.bytes(1, trace_id);
                span.bytes(2, &ids[i]);
                span.bytes(4, &otlp_parent(s));
                span.string(5, &s.name);
                span.uint(6, 1); // SPAN_KIND_INTERNAL
                span.fixed64(7, nanos(s.start_ms));
                span.fixed64(8, nanos(s.start_ms + s.duration_ms));
                span.message(9, |kv| kv_str(kv, "code.namespace", &s.target));
                for (k, v) in &s.fields {
                    span.message(9, |kv| kv_str(kv, k, v));
                }
                for log in c
                    .logs
                    .iter()
                    .filter(|l| span_of_log(l.span, l.offset_ms) == Some(i))
                {
                    span.message(11, |ev| log_event(ev, log, &nanos));
                }
            });
        }
    })
}

/// An `ExportTraceServiceRequest` from `source` whose one scope (diag) holds the spans
/// `spans` writes, in a buffer of `capacity` bytes to begin with.
pub(super) fn export_request(
    source: &Source,
    capacity: usize,
    spans: impl FnOnce(&mut Pb),
) -> Vec<u8> {
    let mut out = Pb(Vec::with_capacity(capacity));
    out.message(1, |rs| {
        rs.message(1, |resource| {
            resource.message(1, |kv| kv_str(kv, "service.name", &source.service));
            resource.message(1, |kv| kv_str(kv, "service.version", &source.version));
            resource.message(1, |kv| kv_str(kv, "service.instance.id", &source.instance));
        });
        rs.message(2, |ss| {
            ss.message(1, |scope| {
                scope.string(1, "diag");
                scope.string(2, env!("CARGO_PKG_VERSION"));
            });
            spans(ss);
        });
    });
    out.0
}

/// Server spans of requests outside diagnostic mode; `labels` names a series'
/// `[method, route]`.
pub(super) fn encode_spans<'a>(
    spans: &[RequestSpan],
    source: &Source,
    labels: &dyn Fn(SeriesRef) -> [&'a str; 2],
) -> Vec<u8> {
    // About 170 bytes a span.
    export_request(source, 256 * spans.len(), |ss| {
        for s in spans {
            let [method, route] = labels(s.series);
            let matched = route != crate::request::UNMATCHED_ROUTE
                && route != crate::metrics::OVERFLOW_LABEL_VALUE;
            ss.message(2, |span| {
                span.bytes(1, &s.trace.trace_id.0);
                span.bytes(2, &s.trace.span_id.0);
                if let Some(state) = &s.tracestate {
                    span.string(3, state.as_str());
                }
                if let Some(parent) = &s.parent {
                    span.bytes(4, &parent.0);
                }
                if matched {
                    span.string_of(5, &[method, " ", route]);
                } else {
                    span.string(5, method);
                }
                span.uint(6, 2); // SPAN_KIND_SERVER
                span.fixed64(7, ExemplarTime::from_mono(s.start).unix_nanos());
                span.fixed64(8, ExemplarTime::from_mono(s.end).unix_nanos());
                span.message(9, |kv| kv_str(kv, "http.request.method", method));
                if matched {
                    span.message(9, |kv| kv_str(kv, "http.route", route));
                }
                if let Some(status) = s.status {
                    span.message(9, |kv| {
                        kv_int(kv, "http.response.status_code", i64::from(status))
                    });
                }
                if let Some(code) = s.grpc {
                    span.message(9, |kv| {
                        kv_int(kv, "rpc.grpc.status_code", i64::from(code.code()))
                    });
                }
                if let Some(kind) = error_type(s.status, s.grpc) {
                    span.message(9, |kv| kv_str(kv, "error.type", &kind));
                    let message = match (s.status, s.grpc) {
                        (None, _) => "no response".to_owned(),
                        (_, Some(code)) if code.is_server_error() => {
                            format!("gRPC {}", code.name())
                        }
                        (_, _) => format!("HTTP {kind}"),
                    };
                    span.message(15, |st| {
                        st.string(2, &message);
                        st.uint(3, 2); // STATUS_CODE_ERROR
                    });
                }
            });
        }
    })
}

/// OpenTelemetry's `error.type` of a server span that failed: the status code of a 5xx
/// (`"503"`), a gRPC server error's name (`"UNAVAILABLE"`), `"no_response"` for a request
/// that ended without a response head; `None` for one that did not fail.
fn error_type(status: Option<u16>, grpc: Option<crate::request::GrpcCode>) -> Option<String> {
    match (status, grpc) {
        (None, _) => Some("no_response".to_owned()),
        (_, Some(code)) if code.is_server_error() => Some(code.name().to_owned()),
        (Some(status), _) if status >= 500 => Some(status.to_string()),
        _ => None,
    }
}

/// The recorded span with tracing id `id` that was open at `at_ms` (tracing reuses the
/// ids of closed spans, so an id alone may name several), else the first with that id.
pub(super) fn open_span(spans: &[CapturedSpan], id: u64, at_ms: f64) -> Option<usize> {
    spans
        .iter()
        .position(|s| s.id == id && s.start_ms <= at_ms && at_ms <= s.start_ms + s.duration_ms)
        .or_else(|| spans.iter().position(|s| s.id == id))
}

pub(super) fn log_event(ev: &mut Pb, log: &crate::debug::CapturedLog, nanos: &dyn Fn(f64) -> u64) {
    ev.fixed64(1, nanos(log.offset_ms));
    ev.string(2, &log.message);
    ev.message(3, |kv| kv_str(kv, "log.level", &log.level));
    ev.message(3, |kv| kv_str(kv, "code.namespace", &log.target));
    for (k, v) in &log.fields {
        ev.message(3, |kv| kv_str(kv, k, v));
    }
}

/// A span id for a recorded span: distinct per span and request (tracing's ids are
/// reused once a span closes, so its start takes part).
pub(super) fn child_id(request_span: &[u8; 8], s: &CapturedSpan) -> [u8; 8] {
    let mut x = u64::from_be_bytes(*request_span)
        ^ s.id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (s.start_ms * 1e6) as u64;
    // splitmix64's finalizer.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x | 1).to_be_bytes()
}

pub(super) fn kv_str(kv: &mut Pb, key: &str, value: &str) {
    kv.string(1, key);
    kv.message(2, |v| v.string(1, value));
}

pub(super) fn kv_int(kv: &mut Pb, key: &str, value: i64) {
    kv.string(1, key);
    kv.message(2, |v| {
        v.tag(3, 0);
        v.varint(value as u64);
    });
}
