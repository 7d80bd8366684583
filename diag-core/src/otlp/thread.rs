//! The exporting thread: takes captures and batches of spans off the queues, encodes
//! them and posts them, counting the outcomes.

use super::*;

/// The exporting thread's side.
pub(super) struct Thread {
    pub(super) endpoint: Endpoint,
    pub(super) source: Source,
    pub(super) redactor: Redactor,
    pub(super) stats: Arc<OtlpStats>,
    pub(super) spans: Arc<Mutex<Vec<RequestSpan>>>,
    pub(super) owner: Arc<OnceLock<Weak<Inner>>>,
    /// One warning a minute at most: a collector that is down must not flood the logs
    /// it is meant to spare.
    pub(super) warnings: Throttle,
    /// The collector's addresses, looked up now and then.
    pub(super) addresses: std::cell::RefCell<Addresses>,
}

impl Thread {
    /// Until the exporter is dropped (with its handle).
    pub(super) fn run(self, rx: Receiver<Msg>) {
        let mut spare = Vec::with_capacity(SPAN_QUEUE);
        let mut flushed = Instant::now();
        loop {
            let wait = FLUSH.saturating_sub(flushed.elapsed());
            let mut ack = None;
            let flush = match rx.recv_timeout(wait) {
                Ok(Msg::Capture(stored)) => {
                    self.send_capture(&stored);
                    self.stats
                        .queued_bytes
                        .fetch_sub(stored.approx_bytes(), Ordering::Relaxed);
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
        let posted = post(&self.endpoint, &mut self.addresses.borrow_mut(), &body);
        self.outcome(posted, 1, "a debug request's trace");
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
            let posted = post(&self.endpoint, &mut self.addresses.borrow_mut(), &body);
            self.outcome(posted, chunk.len() as u64, "requests' spans");
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
