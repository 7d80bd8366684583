//! Sends traces to an OpenTelemetry collector (OTLP/HTTP, protobuf), so that every
//! trace id diag hands out as an exemplar exists in the tracing backend: the whole
//! recorded trace of every request in diagnostic mode (under the `X-Trace-Id` its response
//! carried), and the server span of every other request whose trace is sampled.
//!
//! Configured with [`DiagBuilder::otlp_endpoint`](crate::DiagBuilder::otlp_endpoint), or
//! from the environment (`DIAG_OTLP_ENDPOINT`, else OpenTelemetry's
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` +
//! `/v1/traces`). Plain `http://` only: point it at a collector or agent beside the
//! service.
//!
//! For a debug request, what is sent is the capture as `/debug/requests/{id}` shows it,
//! redacted the same way: a server span for the request (`{method} {route}`, its status, the HTTP
//! attributes; its span id is the request's own, the one in its `traceparent` and its
//! exemplars; its parent the caller's span when the request came with a `traceparent`),
//! a span for each span the request recorded, its log lines as span events. Headers and
//! bodies are not sent: they stay in the flight recorder.
//!
//! For any other request with a sampled trace (see
//! [`DiagBuilder::sampling_ratio`](crate::DiagBuilder::sampling_ratio); a caller's
//! `traceparent` decides for its trace), a server span: `{method} {route}` (just the
//! method for a request no route matched), the request's span id and trace id (the ones
//! in its `traceparent` and its exemplars), the caller's span as parent,
//! `http.request.method`, `http.route`, `http.response.status_code`, from arrival to the
//! response head (what the duration histogram measures), an error status for a 5xx or a
//! request that never got a response. No path, query, header or body: those are a debug
//! request's, redacted.
//!
//! The request path only hands the stored capture, or the span's ids and times, to a
//! queue ([`QUEUE`] captures, [`SPAN_QUEUE`] spans; when full, it is dropped and counted);
//! a thread of diag's own redacts, encodes and posts them (spans in batches of up to
//! [`BATCH`], at least once a second; 5 s timeouts, no retry). Counts, per request:
//! `diag_otlp_exports_total{outcome}`. Spans still waiting when the process exits (at
//! most a second's worth) are sent only if the service calls
//! [`Diag::flush_traces`](crate::Diag::flush_traces) on its way out.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::clock::MonoTime;
use crate::debug::redact::Redactor;
use crate::debug::stored::StoredCapture;
use crate::debug::throttle::Throttle;
use crate::debug::{Capture, CapturedSpan};
use crate::diag::Inner;
use crate::metrics::ExemplarTime;
use crate::metrics::SeriesRef;
use crate::trace::{SpanId, TraceContext};

/// Debug requests' captures waiting to be sent, at most.
pub const QUEUE: usize = 64;

/// Other sampled requests' server spans waiting to be sent, at most (about 64 bytes
/// each).
pub const SPAN_QUEUE: usize = 4096;

/// Server spans per post: a full batch is sent at once, a partial one within a
/// second.
pub const BATCH: usize = 512;

/// The longest a server span waits for its batch.
const FLUSH: Duration = Duration::from_secs(1);

/// Connect, write and read timeouts of one post.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where traces go: `http://host:port/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host:port`.
    authority: String,
    path: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]` (port 80, path `/v1/traces` when absent).
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url.trim().strip_prefix("http://").ok_or_else(|| {
            format!("`{url}`: only http:// is supported (send to a local collector)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("`{url}`: no host"));
        }
        if authority.contains('@') {
            // Not supported, and it would be printed in warnings and on `/debug`.
            return Err("credentials in the URL are not supported".to_owned());
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let path = if path.is_empty() || path == "/" {
            "/v1/traces"
        } else {
            path
        };
        Ok(Endpoint {
            authority,
            path: path.to_owned(),
        })
    }
}

/// The endpoint the environment names, read through `var`: `DIAG_OTLP_ENDPOINT`, else
/// OpenTelemetry's `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`
/// with `/v1/traces`. OpenTelemetry's only where its exporters speak what diag speaks,
/// OTLP/HTTP with protobuf (`OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` unset or
/// `http/protobuf`): a gRPC endpoint would only collect failures.
pub(crate) fn endpoint_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let protocol =
        var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let otel = protocol.is_none_or(|p| p.trim() == "http/protobuf");
    [
        ("DIAG_OTLP_ENDPOINT", "", true),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", otel),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "/v1/traces", otel),
    ]
    .into_iter()
    .filter(|(_, _, usable)| *usable)
    .find_map(|(name, suffix, _)| {
        let url = var(name)?;
        let url = url.trim().trim_end_matches('/');
        (!url.is_empty()).then(|| format!("{url}{suffix}"))
    })
}

/// How the exports went.
#[derive(Debug, Default)]
pub(crate) struct OtlpStats {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// A request outside diagnostic mode whose trace is sampled, as its server span will
/// show it: ids and clock readings only, labels read on the exporting thread.
#[derive(Clone, Debug)]
pub(crate) struct RequestSpan {
    pub(crate) trace: TraceContext,
    /// The caller's `tracestate`, passed on as the span's.
    pub(crate) tracestate: Option<crate::trace::TraceState>,
    /// The caller's span, when the request continued its trace.
    pub(crate) parent: Option<SpanId>,
    /// The request's `(method, route)` series of `http_server_active_requests`.
    pub(crate) series: SeriesRef,
    /// `None`: the request ended without a response.
    pub(crate) status: Option<u16>,
    /// A gRPC call's status.
    pub(crate) grpc: Option<crate::request::GrpcCode>,
    pub(crate) start: MonoTime,
    pub(crate) end: MonoTime,
}

enum Msg {
    Capture(Arc<StoredCapture>),
    /// A batch of spans is ready.
    Flush,
    /// Send everything waiting now, then answer (`Diag::flush_traces`).
    FlushNow(SyncSender<()>),
}

/// The queues to the exporting thread.
#[derive(Debug)]
pub(crate) struct OtlpExporter {
    tx: SyncSender<Msg>,
    spans: Arc<Mutex<Vec<RequestSpan>>>,
    /// The handle whose route labels the spans name, once built.
    owner: Arc<OnceLock<Weak<Inner>>>,
    pub(crate) stats: Arc<OtlpStats>,
    /// Where the spans go, as `/debug` shows it.
    url: String,
}

/// Who the spans are from.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) service: String,
    pub(crate) version: String,
    /// `service.instance.id`: the process (see `Diag::instance`).
    pub(crate) instance: String,
}

impl OtlpExporter {
    /// Starts the exporting thread; it ends when the exporter is dropped.
    pub(crate) fn start(
        endpoint: Endpoint,
        source: Source,
        redactor: Redactor,
    ) -> std::io::Result<OtlpExporter> {
        // Captures and "a batch is ready" share one channel, so the thread sleeps on
        // one thing; a full channel means the thread is busy and will flush anyway.
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let stats = Arc::new(OtlpStats::default());
        // Both buffers hold a full queue from the start: no growth under the lock.
        let spans = Arc::new(Mutex::new(Vec::with_capacity(SPAN_QUEUE)));
        let owner = Arc::new(OnceLock::new());
        let url = format!("http://{}{}", endpoint.authority, endpoint.path);
        let thread = Thread {
            endpoint,
            source,
            redactor,
            stats: stats.clone(),
            spans: spans.clone(),
            owner: owner.clone(),
            warnings: Throttle::new(Duration::from_secs(60)),
        };
        std::thread::Builder::new()
            .name("diag-otlp".into())
            .spawn(move || thread.run(rx))?;
        Ok(OtlpExporter {
            tx,
            spans,
            owner,
            stats,
            url,
        })
    }

    /// What `/debug` shows: where traces go and how that is going.
    pub(crate) fn status(&self) -> serde_json::Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "endpoint": self.url,
            "sent": n(&self.stats.sent),
            "failed": n(&self.stats.failed),
            "dropped": n(&self.stats.dropped),
            "spans_waiting": self.spans.lock().len(),
        })
    }

    /// Names the handle whose series the spans refer to (once, after it is built).
    pub(crate) fn attach(&self, owner: Weak<Inner>) {
        let _ = self.owner.set(owner);
    }

    /// Queues `capture`; never blocks. A full queue (or a stopped thread) drops it.
    pub(crate) fn export(&self, capture: Arc<StoredCapture>) {
        if self.tx.try_send(Msg::Capture(capture)).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a sampled request's server span: a short lock and a copy; never blocks on
    /// the collector. Beyond [`SPAN_QUEUE`] waiting spans, it is dropped and counted.
    pub(crate) fn export_span(&self, span: RequestSpan) {
        let waiting = {
            let mut spans = self.spans.lock();
            if spans.len() >= SPAN_QUEUE {
                drop(spans);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            spans.push(span);
            spans.len()
        };
        if waiting == BATCH {
            // A full channel means the thread is awake already.
            let _ = self.tx.try_send(Msg::Flush);
        }
    }

    /// Has the thread send every capture and span queued before the call, and waits
    /// for it, `timeout` at most. `true` when all of them reached the collector.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let failed = self.stats.failed.load(Ordering::Relaxed);
        let (ack, acked) = std::sync::mpsc::sync_channel(1);
        let mut msg = Msg::FlushNow(ack);
        // A full channel: the thread is busy with captures; the flush waits its turn.
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
        acked
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
            && self.stats.failed.load(Ordering::Relaxed) == failed
    }
}

/// The exporting thread's side.
struct Thread {
    endpoint: Endpoint,
    source: Source,
    redactor: Redactor,
    stats: Arc<OtlpStats>,
    spans: Arc<Mutex<Vec<RequestSpan>>>,
    owner: Arc<OnceLock<Weak<Inner>>>,
    /// One warning a minute at most: a collector that is down must not flood the logs
    /// it is meant to spare.
    warnings: Throttle,
}

impl Thread {
    /// Until the exporter is dropped (with its handle).
    fn run(self, rx: Receiver<Msg>) {
        let mut spare = Vec::with_capacity(SPAN_QUEUE);
        let mut flushed = Instant::now();
        loop {
            let wait = FLUSH.saturating_sub(flushed.elapsed());
            let mut ack = None;
            let flush = match rx.recv_timeout(wait) {
                Ok(Msg::Capture(stored)) => {
                    self.send_capture(&stored);
                    flushed.elapsed() >= FLUSH
                }
                Ok(Msg::Flush) | Err(RecvTimeoutError::Timeout) => true,
                // Captures queued before it came through the channel first.
                Ok(Msg::FlushNow(reply)) => {
                    ack = Some(reply);
                    true
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if flush {
                flushed = Instant::now();
                spare = self.send_spans(spare);
            }
            if let Some(reply) = ack {
                // The caller may have stopped waiting.
                let _ = reply.try_send(());
            }
        }
    }

    fn send_capture(&self, stored: &StoredCapture) {
        let capture = stored.redacted(&self.redactor);
        let ids = Ids {
            trace: stored.trace_id.0,
            span: stored.span_id.0,
            parent: stored.parent_span_id.map(|p| p.0),
            tracestate: stored.tracestate.clone(),
        };
        let body = encode(&capture, &ids, &self.source);
        self.outcome(post(&self.endpoint, &body), 1, "a debug request's trace");
    }

    /// Sends the waiting spans, in batches; returns the emptied buffer for next time.
    fn send_spans(&self, spare: Vec<RequestSpan>) -> Vec<RequestSpan> {
        let mut batch = std::mem::replace(&mut *self.spans.lock(), spare);
        if batch.is_empty() {
            return batch;
        }
        let Some(inner) = self.owner.get().and_then(Weak::upgrade) else {
            // The handle is gone: nothing can name the routes, and nobody is left to ask.
            batch.clear();
            return batch;
        };
        for chunk in batch.chunks(BATCH) {
            let body = encode_spans(chunk, &self.source, &|series| {
                inner.metrics.http.active.labels(series)
            });
            self.outcome(
                post(&self.endpoint, &body),
                chunk.len() as u64,
                "requests' spans",
            );
        }
        batch.clear();
        batch
    }

    fn outcome(&self, result: Result<(), String>, requests: u64, what: &str) {
        match result {
            Ok(()) => {
                self.stats.sent.fetch_add(requests, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.failed.fetch_add(requests, Ordering::Relaxed);
                if self.warnings.ready() {
                    tracing::warn!(
                        "diag: could not send {what} to {}{}: {e}",
                        self.endpoint.authority,
                        self.endpoint.path
                    );
                }
            }
        }
    }
}

/// One `POST` with `Connection: close`; a 2xx status is success.
fn post(endpoint: &Endpoint, body: &[u8]) -> Result<(), String> {
    let addr = endpoint
        .authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.path,
        endpoint.authority,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    // The status line is all that is needed: `HTTP/1.1 200 OK`.
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < buf.len() {
        match stream.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    let status = line.split(' ').nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "the collector answered `{}`",
            line.lines().next().unwrap_or("")
        ))
    }
}

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
            let route = c
                .request
                .route
                .as_deref()
                .unwrap_or(crate::request::UNMATCHED_ROUTE);
            span.string(5, &format!("{} {route}", c.request.method));
            span.uint(6, 2); // SPAN_KIND_SERVER
            span.fixed64(7, nanos(0.0));
            span.fixed64(8, nanos(c.duration_ms));
            let (path, query) = c
                .request
                .uri
                .split_once('?')
                .unwrap_or((&c.request.uri, ""));
            span.message(9, |kv| kv_str(kv, "http.request.method", &c.request.method));
            span.message(9, |kv| kv_str(kv, "http.route", route));
            span.message(9, |kv| kv_str(kv, "url.path", path));
            if !query.is_empty() {
                span.message(9, |kv| kv_str(kv, "url.query", query));
            }
            if let Some(r) = &c.response {
                span.message(9, |kv| {
                    kv_int(kv, "http.response.status_code", i64::from(r.status))
                });
            }
            span.message(9, |kv| kv_int(kv, "diag.debug_id", c.id as i64));
            span.message(9, |kv| {
                kv_str(kv, "diag.level", &format!("{:?}", c.level).to_lowercase())
            });
            for log in c
                .logs
                .iter()
                .filter(|l| span_of_log(l.span, l.offset_ms).is_none())
            {
                span.message(11, |ev| log_event(ev, log, &nanos));
            }
            let failed = c.response.as_ref().is_none_or(|r| r.status >= 500);
            if failed || !c.complete {
                span.message(15, |status| {
                    let message = match (&c.response, c.complete) {
                        (None, _) => "no response".to_owned(),
                        (Some(r), true) => format!("HTTP {}", r.status),
                        (Some(_), false) => {
                            "the client went away before the response ended".to_owned()
                        }
                    };
                    status.string(2, &message);
                    status.uint(3, 2); // STATUS_CODE_ERROR
                });
            }
        });
        for (i, s) in c.spans.iter().enumerate() {
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
fn export_request(source: &Source, capacity: usize, spans: impl FnOnce(&mut Pb)) -> Vec<u8> {
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
fn encode_spans<'a>(
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
                let error = match (s.status, s.grpc) {
                    (None, _) => Some("no response".to_owned()),
                    (_, Some(code)) if code.is_server_error() => {
                        Some(format!("gRPC {}", code.name()))
                    }
                    (Some(status), _) if status >= 500 => Some(format!("HTTP {status}")),
                    _ => None,
                };
                if let Some(message) = error {
                    span.message(15, |st| {
                        st.string(2, &message);
                        st.uint(3, 2); // STATUS_CODE_ERROR
                    });
                }
            });
        }
    })
}

/// The recorded span with tracing id `id` that was open at `at_ms` (tracing reuses the
/// ids of closed spans, so an id alone may name several), else the first with that id.
fn open_span(spans: &[CapturedSpan], id: u64, at_ms: f64) -> Option<usize> {
    spans
        .iter()
        .position(|s| s.id == id && s.start_ms <= at_ms && at_ms <= s.start_ms + s.duration_ms)
        .or_else(|| spans.iter().position(|s| s.id == id))
}

fn log_event(ev: &mut Pb, log: &crate::debug::CapturedLog, nanos: &dyn Fn(f64) -> u64) {
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
fn child_id(request_span: &[u8; 8], s: &CapturedSpan) -> [u8; 8] {
    let mut x = u64::from_be_bytes(*request_span)
        ^ s.id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (s.start_ms * 1e6) as u64;
    // splitmix64's finalizer.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x | 1).to_be_bytes()
}

fn kv_str(kv: &mut Pb, key: &str, value: &str) {
    kv.string(1, key);
    kv.message(2, |v| v.string(1, value));
}

fn kv_int(kv: &mut Pb, key: &str, value: i64) {
    kv.string(1, key);
    kv.message(2, |v| {
        v.tag(3, 0);
        v.varint(value as u64);
    });
}

/// Just enough protobuf: the wire format of the messages above.
#[derive(Default)]
pub(crate) struct Pb(pub(crate) Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire)));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, 0);
        self.varint(v);
    }

    fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A nested message, written in place: a one-byte length goes before it, and only
    /// a message of 128 bytes or more moves to make room for a longer one. No buffer
    /// per message.
    fn message(&mut self, field: u32, f: impl FnOnce(&mut Pb)) {
        self.tag(field, 2);
        let at = self.0.len();
        self.0.push(0);
        f(self);
        let mut len = (self.0.len() - at - 1) as u64;
        if len < 0x80 {
            self.0[at] = len as u8;
            return;
        }
        let mut varint = [0u8; 10];
        let mut n = 0;
        while len >= 0x80 {
            varint[n] = len as u8 | 0x80;
            len >>= 7;
            n += 1;
        }
        varint[n] = len as u8;
        let end = self.0.len();
        self.0.resize(end + n, 0);
        self.0.copy_within(at + 1..end, at + 1 + n);
        self.0[at..=at + n].copy_from_slice(&varint[..=n]);
    }

    /// A string field made of `parts`, without joining them first.
    fn string_of(&mut self, field: u32, parts: &[&str]) {
        self.tag(field, 2);
        self.varint(parts.iter().map(|p| p.len() as u64).sum());
        for p in parts {
            self.0.extend_from_slice(p.as_bytes());
        }
    }
}

/// Unix nanoseconds now, for tests.
#[cfg(test)]
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_endpoint() {
        fn env(vars: &[(&str, &str)]) -> Option<String> {
            endpoint_from_env(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
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
    }

    use crate::Diag;
    use crate::debug::Decision;
    use crate::request::RequestView;
    use crate::trace::TraceId;

    /// One finished debug request through `diag`, as an adapter would drive it.
    fn debug_request(diag: &Diag) {
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
}
