//! Metrics with exemplars: the HTTP RED metrics every request feeds, the service's own
//! counters, gauges and histograms, and their exposition on `/metrics`.
//!
//! - [`Histogram`], [`Counter`], [`Gauge`]: lock-free on the observation path; counters
//!   and histograms are sharded per thread so cores do not fight over cache lines.
//! - Exemplars (`{trace_id, span_id}`, see [`Exemplar`]) are attached only for sampled
//!   traces: one slot per bucket, a seqlock that writers replace without waiting and
//!   scrapes read without tearing. The label set is 63 code points, inside the
//!   OpenMetrics limit of 128 by construction; an exemplar whose labels would exceed it
//!   is dropped, never truncated ([`exemplar_labels_fit`]).
//! - [`Family`]: one metric per label set, capped (cardinality guard).
//! - HTTP: `http_server_request_duration_seconds`, `http_server_requests_total`,
//!   `http_server_active_requests`; see the `http` module docs for the labels.
//! - Outgoing calls: `http_client_request_duration_seconds{method, server_address,
//!   status}` with the calling request as exemplar ([`Diag::client_call`](crate::Diag::client_call),
//!   [`ClientCall`]).
//! - Collectors ([`Diag::register_collector`](crate::Diag::register_collector),
//!   [`ScrapeWriter`]): functions called on every scrape that write counter and gauge
//!   samples read from wherever the numbers live; no background task.
//! - The process collector: `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//!   `process_virtual_memory_bytes`, `process_threads`, `process_open_fds`,
//!   `process_max_fds`, `process_start_time_seconds` (the names Prometheus's client
//!   libraries use, so their dashboards and alerts apply), `service_build_info{service,
//!   version, git_sha, diag_version, diag_instance} 1`, and the Tokio runtime's
//!   `tokio_workers`, `tokio_alive_tasks`, `tokio_global_queue_depth` and
//!   `tokio_worker_busy_seconds_total{worker}` (the first 64 workers). Read at scrape
//!   time; on by default, off with
//!   [`DiagBuilder::process_metrics`](crate::DiagBuilder::process_metrics).
//!
//! # diag's own metrics
//!
//! Everything diag counts internally is on `/metrics` too, read at scrape time, so an
//! operator can alert on it. Every label is bounded: `reason` and `status` by their
//! enums, `queue` by [`MAX_QUEUES`](crate::state::MAX_QUEUES), `target` by
//! [`MAX_ERROR_TARGETS`](crate::state::MAX_ERROR_TARGETS) plus one `__overflow__`
//! series, `provider` by [`MAX_PROVIDERS`](crate::state::MAX_PROVIDERS).
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `diag_debug_activations_total` | counter | | requests that ran in diagnostic mode |
//! | `diag_debug_rejected_total` | counter | `reason`: `oversized`, `malformed`, `invalid`, `expired`, `untrusted_network` (all present, from 0) | `X-Debug` headers refused; the requests were served normally |
//! | `diag_debug_budget_exhausted_total` | counter | | valid `X-Debug` requests refused because the debug budget was spent |
//! | `diag_debug_busy_total` | counter | | valid `X-Debug` requests refused because the most allowed at once were running |
//! | `diag_debug_in_flight` | gauge | | debug requests running now |
//! | `diag_endpoint_refused_total` | counter | `status`: `401`, `403`, `413` | requests for `/debug/*` (or a guarded `/metrics`) refused: no token, no credential could help, a body over [`EndpointRequest::MAX_BODY`](crate::EndpointRequest::MAX_BODY) |
//! | `diag_debug_records_dropped_total` | counter | `kind`: `span`, `log`, `field` | spans and log lines of debug requests dropped over a capture's caps; fields left out or cut |
//! | `diag_in_flight_untracked_total` | counter | `reason`: `route_overflow`, `no_age_slot` | requests the in-flight table tracked only in part |
//! | `diag_debug_recorder_captures` | gauge | | captures the flight recorder keeps now |
//! | `diag_debug_recorder_bytes` | gauge (unit bytes) | | their approximate size |
//! | `diag_debug_recorder_stored_total` | counter | | captures stored |
//! | `diag_debug_recorder_evicted_total` | counter | | captures evicted to make room (oldest first) |
//! | `diag_debug_recorder_too_large_total` | counter | | captures not kept: alone larger than the byte cap |
//! | `diag_tracestate_dropped_total` | counter | `reason`: `invalid` (discarded whole), `over_length` (members removed to fit 512 bytes) | incoming W3C `tracestate` headers not passed on whole |
//! | `diag_queue_depth` | gauge | `queue` | produced minus consumed: items waiting, plus those being processed when consumers count an item after processing it (see [`QueueProbe`](crate::state::QueueProbe)) |
//! | `diag_queue_capacity` | gauge | `queue` | configured capacity; absent when unknown or unbounded |
//! | `diag_queue_produced_total` | counter | `queue` | items put on the queue |
//! | `diag_queue_consumed_total` | counter | `queue` | items taken off the queue |
//! | `diag_queue_rejected_total` | counter | `queue` | items the queue refused, full or closed ([`QueueProbe::rejected`](crate::state::QueueProbe::rejected)); not counted as produced |
//! | `diag_queue_producer_rate_per_second` | gauge | `queue` | items produced per second over the last minute; absent in the queue's first second |
//! | `diag_queue_consumer_rate_per_second` | gauge | `queue` | items consumed per second, likewise |
//! | `diag_queue_consumer_lagging` | gauge | `queue` | 1 while consumers fall behind (see [`QueueSnapshot::consumer_lagging`](crate::state::QueueSnapshot::consumer_lagging)), else 0 |
//! | `diag_errors_total` | counter | `target` (`__overflow__` for targets past the cap) | ERROR events by target; needs [`Diag::error_layer`](crate::Diag::error_layer) |
//! | `diag_errors_evicted_total` | counter | | ERROR events pushed out of the error ring |
//! | `diag_errors_capture_failures_total` | counter | | ERROR events that could not be captured |
//! | `diag_events_recorded_total` | counter | | events recorded on the timeline |
//! | `diag_events_evicted_total` | counter | | events pushed out of the timeline |
//! | `diag_state_provider_calls_total` | counter | `provider`, `status`: `ok`, `error`, `timeout` (all present, from 0) | state provider calls by outcome |
//! | `diag_state_reports_left_out_total` | counter | | provider reports replaced by an error entry to keep a whole `/debug/state` answer under its cap |
//! | `diag_log_level_override` | gauge | | 1 while a runtime log level change is active, else 0 |
//! | `diag_disabled` | gauge | | 1 while the kill switch is on, else 0 |
//! | `diag_metrics_overflow_total` | counter | `family` | observations folded into a family's `__overflow__` series |
//! | `diag_metrics_label_values_cut_total` | counter | `family` | lookups with a label value over [`MAX_LABEL_VALUE_BYTES`], served by the series of the cut value |
//! | `diag_metrics_rejected_total` | counter | | metrics refused (and observations dropped): invalid name, type conflict, past [`MAX_USER_METRICS`] |
//! | `diag_metrics_collector_dropped_samples` | gauge | | collector samples left out of this scrape |
//! | `diag_metrics_collector_panics_total` | counter | | scrapes in which a collector panicked |
//!
//! ```
//! let diag = diag_core::Diag::builder().build().unwrap();
//! let retries = diag.counter("payment_retries", "Payment retries.").unwrap();
//! retries.inc();
//! let _t = diag.timer("pricing_fetch");
//! diag.hit("cache_miss");
//! ```

mod active;
pub(crate) mod client;
mod collector;
#[cfg(test)]
pub(crate) mod conformance;
mod counter;
mod encode;
mod exemplar;
mod family;
mod gauge;
mod histogram;
pub(crate) mod http;
pub(crate) mod internals;
mod name;
pub(crate) mod process;
pub(crate) mod registry;
mod route_hint;
mod shard;
mod user;

pub use client::{ClientCall, MAX_CLIENT_LABEL_SETS};
pub use collector::{MAX_COLLECTED_SERIES, MAX_COLLECTORS, ScrapeWriter};
pub use counter::Counter;
pub use encode::Format;
pub use exemplar::{Exemplar, ExemplarTime, MAX_EXEMPLAR_LABEL_CODE_POINTS, exemplar_labels_fit};
pub use family::{
    DEFAULT_MAX_LABEL_SETS, Family, MAX_LABEL_SETS_LIMIT, MAX_LABEL_VALUE_BYTES,
    OVERFLOW_LABEL_VALUE, SeriesRef,
};
pub use gauge::Gauge;
pub use histogram::{
    BucketsError, Histogram, HistogramSnapshot, LATENCY_BUCKETS, validate_buckets,
};
pub(crate) use http::Outcome;
pub use http::method_label;
pub use name::{MAX_NAME_LEN, MetricError};
pub use registry::MAX_USER_METRICS;
pub use shard::MAX_SHARDS;
pub use user::Timer;
