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
//!
//! ```
//! let diag = diag_core::Diag::builder().build().unwrap();
//! let retries = diag.counter("payment_retries", "Payment retries.").unwrap();
//! retries.inc();
//! let _t = diag.timer("pricing_fetch");
//! diag.hit("cache_miss");
//! ```

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
pub(crate) mod registry;
mod shard;
mod user;

pub use collector::{MAX_COLLECTED_SERIES, MAX_COLLECTORS, ScrapeWriter};
pub use counter::Counter;
pub use encode::Format;
pub use exemplar::{Exemplar, ExemplarTime, MAX_EXEMPLAR_LABEL_CODE_POINTS, exemplar_labels_fit};
pub use family::{
    DEFAULT_MAX_LABEL_SETS, Family, MAX_LABEL_SETS_LIMIT, OVERFLOW_LABEL_VALUE, SeriesRef,
};
pub use gauge::Gauge;
pub use histogram::{
    BucketsError, Histogram, HistogramSnapshot, LATENCY_BUCKETS, validate_buckets,
};
pub use http::method_label;
pub use name::{MAX_NAME_LEN, MetricError};
pub use registry::MAX_USER_METRICS;
pub use shard::MAX_SHARDS;
pub use user::Timer;
