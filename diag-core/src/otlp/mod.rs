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
//! a span for each span the request recorded, its log lines as span events (the server
//! span alone with [`otlp_debug_spans(false)`](crate::DiagBuilder::otlp_debug_spans),
//! for a service whose own SDK sends those spans). Headers and bodies are not sent: they
//! stay in the flight recorder.
//!
//! For any other request with a sampled trace (see
//! [`DiagBuilder::sampling_ratio`](crate::DiagBuilder::sampling_ratio); a caller's
//! `traceparent` decides for its trace), a server span: `{method} {route}` (just the
//! method for a request no route matched), the request's span id and trace id (the ones
//! in its `traceparent` and its exemplars), the caller's span as parent,
//! `http.request.method`, `http.route`, `http.response.status_code`, from arrival to the
//! response head (what the duration histogram measures), an error status and
//! `error.type` (`"503"`, a gRPC server error's name such as `"UNAVAILABLE"`, or
//! `"no_response"`) for a 5xx, a failed gRPC call, or a request that never got a response
//! (a debug request's server span carries the same). No path, query, header or body:
//! those are a debug request's, redacted (a path may hold a secret no rule can know).
//!
//! The request path only hands the stored capture, or the span's ids and times, to a
//! queue ([`QUEUE`] captures, [`SPAN_QUEUE`] spans; when full, it is dropped and counted);
//! a thread of diag's own redacts, encodes and posts them (spans in batches of up to
//! [`BATCH`], at least once a second; 5 s timeouts, no retry; the collector's name looked
//! up at most every 30 s, and a failed lookup keeps the addresses that worked). Counts, per request:
//! `diag_otlp_exports_total{outcome}`. Spans still waiting when the process exits (at
//! most a second's worth) are sent only if the service calls
//! [`Diag::flush_traces`](crate::Diag::flush_traces) on its way out.
//!
//! ```
//! use std::time::Duration;
//! use diag_core::request::RequestView;
//!
//! // A collector that is down: nothing listens on this port any more.
//! let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
//! let diag = diag_core::Diag::builder()
//!     .otlp_endpoint(format!("http://127.0.0.1:{port}"))
//!     .build()
//!     .unwrap();
//! let view = RequestView { method: "GET", route: None, uri: "/", headers: &(), peer: &|| None };
//! let _ = diag.begin(&view).finish(200, &mut ()); // sampled: its server span is queued
//! // The request was served all the same; the flush reports the span did not arrive.
//! assert!(!diag.flush_traces(Duration::from_secs(5)));
//! ```

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
///
/// ```
/// use diag_core::otlp::QUEUE;
/// // Sizing: a full default burst of debug requests (20, see
/// // `DiagBuilder::debug_budget`) fits in the queue with room to spare.
/// assert!(20 <= QUEUE);
/// ```
pub const QUEUE: usize = 64;

/// The most bytes of debug captures waiting to be sent (as the flight recorder counts
/// them): a capture past it is dropped and counted, like one past [`QUEUE`]. A capture
/// the recorder finds too large to keep still goes to the collector when it fits here.
///
/// ```
/// use diag_core::otlp::QUEUE_BYTES;
/// assert_eq!(QUEUE_BYTES, 16 * 1024 * 1024);
/// ```
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Other sampled requests' server spans waiting to be sent, at most (about 64 bytes
/// each).
///
/// ```
/// use diag_core::otlp::SPAN_QUEUE;
/// // At about 64 bytes a span, a full queue holds a quarter of a MiB.
/// assert_eq!(SPAN_QUEUE * 64, 256 * 1024);
/// ```
pub const SPAN_QUEUE: usize = 4096;

/// Server spans per post: a full batch is sent at once, a partial one within a
/// second.
///
/// ```
/// use diag_core::otlp::{BATCH, SPAN_QUEUE};
/// // A full span queue goes out in this many posts:
/// assert_eq!(SPAN_QUEUE.div_ceil(BATCH), 8);
/// ```
pub const BATCH: usize = 512;

/// The longest a server span waits for its batch.
const FLUSH: Duration = Duration::from_secs(1);

/// Connect, write and read timeouts of one post.
const TIMEOUT: Duration = Duration::from_secs(5);

mod encode;
mod endpoint;
mod pb;
#[cfg(test)]
mod tests;
mod thread;

use encode::encode_spans;
pub(crate) use encode::{Ids, encode};
use endpoint::{Addresses, post};
pub(crate) use endpoint::{Endpoint, endpoint_from_env, otel_protocol};
pub(crate) use pb::Pb;
use thread::Thread;

/// How the exports went.
#[derive(Debug, Default)]
pub(crate) struct OtlpStats {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Bytes of the captures queued and not sent yet (see [`QUEUE_BYTES`]).
    pub(crate) queued_bytes: std::sync::atomic::AtomicUsize,
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
    /// [`Source::debug_spans`], as `/debug` shows it.
    debug_spans: bool,
}

/// Who the spans are from.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub(crate) service: String,
    pub(crate) version: String,
    /// `service.instance.id`: the process (see `Diag::instance`).
    pub(crate) instance: String,
    /// Whether a debug request's export holds the spans and log lines it recorded
    /// (`DiagBuilder::otlp_debug_spans`).
    pub(crate) debug_spans: bool,
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
        let url = endpoint.shown();
        let debug_spans = source.debug_spans;
        let thread = Thread {
            endpoint,
            source,
            redactor,
            stats: stats.clone(),
            spans: spans.clone(),
            owner: owner.clone(),
            warnings: Throttle::new(Duration::from_secs(60)),
            addresses: Default::default(),
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
            debug_spans,
        })
    }

    /// Where the spans go (`http://host:port/path`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// What `/debug` shows: where traces go and how that is going.
    pub(crate) fn status(&self) -> serde_json::Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "endpoint": self.url,
            // What a debug request's trace holds beside its server span.
            "debug_spans": if self.debug_spans { "recorded spans and log lines" } else { "none (the service's SDK sends them)" },
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

    /// Queues `capture`; never blocks. A full queue (by count or by [`QUEUE_BYTES`]), or
    /// a stopped thread, drops it.
    pub(crate) fn export(&self, capture: Arc<StoredCapture>) {
        let size = capture.approx_bytes();
        let room =
            self.stats
                .queued_bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                    queued
                        .checked_add(size)
                        .filter(|total| *total <= QUEUE_BYTES)
                });
        if room.is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.try_send(Msg::Capture(capture)).is_err() {
            self.stats.queued_bytes.fetch_sub(size, Ordering::Relaxed);
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

/// Unix nanoseconds now, for tests.
#[cfg(test)]
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
