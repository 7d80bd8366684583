//! diag's own numbers on `/metrics`: what debug mode, the queues, the error ring, the
//! events timeline, the state providers and the log level count internally, read at
//! scrape time by one collector (see [`super::collector`]) so an operator can alert on
//! them. The names are listed in the [`metrics`](crate::metrics) module docs.
//!
//! Every label here is bounded: `reason` and `status` by their enums, `queue` by
//! [`MAX_QUEUES`](crate::state::MAX_QUEUES), `target` by
//! [`MAX_ERROR_TARGETS`](crate::state::MAX_ERROR_TARGETS) (plus one `__overflow__`
//! series), `provider` by [`MAX_PROVIDERS`](crate::state::MAX_PROVIDERS).

use std::sync::Arc;

use super::collector::{Collector, ScrapeWriter};
use super::family::OVERFLOW_LABEL_VALUE;
use crate::Diag;
use crate::debug::RejectReason;
use crate::diag::Inner;
use crate::state::ProviderStatus;

#[cfg(test)]
mod tests;

/// Registers diag's own collector; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    // Weak: the collector lives inside the `Inner` it reads.
    let weak = Arc::downgrade(&diag.inner);
    let _ = diag.inner.metrics.add_collector(Collector {
        collect: Box::new(move |w| {
            if let Some(inner) = weak.upgrade() {
                collect(&inner, w);
            }
        }),
        own: true,
    });
}

fn collect(inner: &Inner, w: &mut ScrapeWriter) {
    // A scrape is when a service's author first looks: say so if no request had a route.
    let _ = inner.metrics.http.unmatched_hint();
    debug_mode(inner, w);
    otlp(inner, w);
    tracestate(inner, w);
    queues(inner, w);
    errors(inner, w);
    events(inner, w);
    state_providers(inner, w);
    switches(inner, w);
}

/// One counter family with one label, a series per `(value, count)`.
fn one_label_counters<const N: usize>(
    w: &mut ScrapeWriter,
    name: &str,
    help: &str,
    label: &str,
    series: [(&str, u64); N],
) {
    for (value, count) in series {
        w.counter(name, help, &[(label, value)], count);
    }
}

fn debug_mode(inner: &Inner, w: &mut ScrapeWriter) {
    let mode = &inner.debug;
    w.counter(
        "diag_debug_activations_total",
        "Requests that ran in diagnostic mode (X-Debug accepted within budget).",
        &[],
        mode.activated(),
    );
    for &reason in RejectReason::ALL {
        w.counter(
            "diag_debug_rejected_total",
            "X-Debug headers refused, by reason; the requests were served normally.",
            &[("reason", reason.as_str())],
            mode.rejected(reason),
        );
    }
    w.counter(
        "diag_debug_budget_exhausted_total",
        "Valid X-Debug requests served without diagnostics because the debug budget was spent.",
        &[],
        mode.budget().exhausted(),
    );
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    one_label_counters(
        w,
        "diag_endpoint_refused_total",
        "Requests for /debug/* (or a guarded /metrics) refused: 401 without the token, 403 from where no credential helps, 413 with a body over 64 KiB.",
        "status",
        [
            ("401", load(&inner.endpoint_refused[0])),
            ("403", load(&inner.endpoint_refused[1])),
            ("413", load(&inner.endpoint_refused[2])),
        ],
    );
    one_label_counters(
        w,
        "diag_debug_records_dropped_total",
        "Spans and log lines of debug requests dropped over a capture's caps (counts, 2 MiB); fields left out (over 32 a record) or cut (at 1 KiB).",
        "kind",
        [
            ("span", load(&mode.records_dropped[0])),
            ("log", load(&mode.records_dropped[1])),
            ("field", load(&mode.records_dropped[2])),
        ],
    );
    let [overflow, no_age] = inner.in_flight.untracked();
    one_label_counters(
        w,
        "diag_in_flight_untracked_total",
        "Requests the in-flight table tracked only in part: under __overflow__ (its routes were full), or without an age (its slots were).",
        "reason",
        [("route_overflow", overflow), ("no_age_slot", no_age)],
    );
    w.counter(
        "diag_debug_busy_total",
        "Valid X-Debug requests served without diagnostics because the most allowed at once were running.",
        &[],
        mode.busy(),
    );
    w.gauge(
        "diag_debug_in_flight",
        "Requests running in diagnostic mode now.",
        &[],
        mode.in_flight() as f64,
    );
    let rec = mode.recorder().stats();
    w.gauge(
        "diag_debug_recorder_captures",
        "Debug captures the flight recorder keeps now.",
        &[],
        rec.kept as f64,
    );
    w.gauge(
        "diag_debug_recorder_bytes",
        "Approximate size of the captures the flight recorder keeps now.",
        &[],
        rec.bytes as f64,
    );
    w.counter(
        "diag_debug_recorder_stored_total",
        "Debug captures stored in the flight recorder.",
        &[],
        rec.stored,
    );
    w.counter(
        "diag_debug_recorder_evicted_total",
        "Debug captures evicted from the flight recorder to make room (oldest first).",
        &[],
        rec.evicted,
    );
    w.counter(
        "diag_debug_recorder_too_large_total",
        "Debug captures not kept because alone they exceed the flight recorder's byte cap.",
        &[],
        rec.too_large,
    );
}

/// Only when traces are sent somewhere.
fn otlp(inner: &Inner, w: &mut ScrapeWriter) {
    let Some(otlp) = &inner.otlp else { return };
    let s = &otlp.stats;
    for (outcome, n) in [
        ("sent", &s.sent),
        ("failed", &s.failed),
        ("dropped", &s.dropped),
    ] {
        w.counter(
            "diag_otlp_exports_total",
            "Requests whose trace was sent to the OTLP collector (a debug request's whole trace, another sampled request's server span), by outcome (dropped: the queue was full).",
            &[("outcome", outcome)],
            n.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
}

fn tracestate(inner: &Inner, w: &mut ScrapeWriter) {
    let (invalid, over_length) = inner.tracestate.dropped();
    for (reason, n) in [("invalid", invalid), ("over_length", over_length)] {
        w.counter(
            "diag_tracestate_dropped_total",
            "Incoming W3C tracestate headers not passed on whole, by reason (invalid: discarded, malformed; over_length: members removed to fit 512 bytes).",
            &[("reason", reason)],
            n,
        );
    }
}

fn queues(inner: &Inner, w: &mut ScrapeWriter) {
    // Cloned out of the lock: snapshots take each probe's own sample lock.
    let probes = inner.queues.probes();
    for probe in &probes {
        let snap = probe.snapshot();
        let queue = [("queue", probe.name())];
        w.gauge(
            "diag_queue_depth",
            "Items produced and not yet consumed: waiting, plus any being processed when consumers count an item after processing it.",
            &queue,
            snap.depth as f64,
        );
        if let Some(capacity) = snap.capacity {
            w.gauge(
                "diag_queue_capacity",
                "The queue's configured capacity (absent when unknown or unbounded).",
                &queue,
                capacity as f64,
            );
        }
        w.counter(
            "diag_queue_produced_total",
            "Items put on the queue.",
            &queue,
            snap.produced_total,
        );
        w.counter(
            "diag_queue_consumed_total",
            "Items taken off the queue.",
            &queue,
            snap.consumed_total,
        );
        w.counter(
            "diag_queue_rejected_total",
            "Items the queue refused (full or closed); not counted as produced.",
            &queue,
            snap.rejected_total,
        );
        if let Some(rate) = snap.producer_rate_per_s {
            w.gauge(
                "diag_queue_producer_rate_per_second",
                "Items produced per second over the last minute (absent during the first second).",
                &queue,
                rate,
            );
        }
        if let Some(rate) = snap.consumer_rate_per_s {
            w.gauge(
                "diag_queue_consumer_rate_per_second",
                "Items consumed per second over the last minute (absent during the first second).",
                &queue,
                rate,
            );
        }
        w.gauge(
            "diag_queue_consumer_lagging",
            "1 while the queue's consumers fall behind (it rejected items over the last minute, depth is at 90% of capacity, or depth grew and they took under 90% of what was produced over the window), else 0.",
            &queue,
            f64::from(u8::from(snap.consumer_lagging)),
        );
    }
}

fn errors(inner: &Inner, w: &mut ScrapeWriter) {
    const HELP: &str = "ERROR events by target (module path); targets past the table's cap count under target=\"__overflow__\". Needs diag's error layer in the subscriber.";
    let (mut per_target, overflow) = inner.errors.per_target();
    per_target.sort_unstable();
    for (target, count) in &per_target {
        w.counter("diag_errors_total", HELP, &[("target", target)], *count);
    }
    if overflow > 0 {
        w.counter(
            "diag_errors_total",
            HELP,
            &[("target", OVERFLOW_LABEL_VALUE)],
            overflow,
        );
    }
    w.counter(
        "diag_errors_evicted_total",
        "ERROR events pushed out of the error ring by newer ones.",
        &[],
        inner.errors.evicted(),
    );
    w.counter(
        "diag_errors_capture_failures_total",
        "ERROR events that could not be captured (a field's Debug panicked).",
        &[],
        inner.errors.capture_failures(),
    );
}

fn events(inner: &Inner, w: &mut ScrapeWriter) {
    w.counter(
        "diag_events_recorded_total",
        "Events recorded on the \"what changed\" timeline.",
        &[],
        inner.events.last_seq(),
    );
    w.counter(
        "diag_events_evicted_total",
        "Events pushed out of the timeline by newer ones.",
        &[],
        inner.events.evicted(),
    );
}

fn state_providers(inner: &Inner, w: &mut ScrapeWriter) {
    for (provider, counts) in inner.state.outcomes() {
        for (status, count) in ProviderStatus::ALL.iter().zip(counts) {
            w.counter(
                "diag_state_provider_calls_total",
                "State provider calls by outcome: ok, error (panic, unserializable or oversized value), timeout.",
                &[("provider", &provider), ("status", status.as_str())],
                count,
            );
        }
    }
    w.counter(
        "diag_state_reports_left_out_total",
        "Provider reports replaced by an error entry to keep a whole /debug/state answer under its cap (each is still readable alone).",
        &[],
        inner.state.left_out(),
    );
}

fn switches(inner: &Inner, w: &mut ScrapeWriter) {
    w.gauge(
        "diag_log_level_override",
        "1 while a runtime log level change replaces the service's own filter, else 0.",
        &[],
        f64::from(u8::from(inner.log_level.override_active())),
    );
    w.gauge(
        "diag_disabled",
        "1 while diag's kill switch is on (requests pass straight through), else 0.",
        &[],
        f64::from(u8::from(
            inner.disabled.load(std::sync::atomic::Ordering::Relaxed),
        )),
    );
}
