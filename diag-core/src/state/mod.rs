//! The `/debug/state` provider registry and its built-in providers.
//!
//! Components register what they believe; on-call reads it as JSON. Each provider is
//! called in isolation: a panic becomes an error entry, a provider past its deadline
//! becomes a `timeout` entry and does not hold the response, and every entry reports
//! how long it took. The whole response is capped too (largest entries left out first).
//!
//! Built-in providers:
//!
//! | name | shows | fed by |
//! |---|---|---|
//! | `process` | pid, version, git sha and build facts, uptime, rss, threads, fds vs limit, Tokio runtime figures | the OS and Tokio |
//! | `config` | the service's effective configuration, secrets hidden | [`Diag::config`](crate::Diag::config), [`Diag::reload_config`](crate::Diag::reload_config) |
//! | `errors` | the latest ERROR events with trace ids, counts per target | [`Diag::error_layer`](crate::Diag::error_layer) in the subscriber |
//! | `queues` | depth, capacity, items refused, producer/consumer/rejection rates, lagging consumers | [`Diag::queue`](crate::Diag::queue) probes |
//! | `requests` | requests in flight per route, oldest's age; whether the kill switch hides them | [`Diag::begin`](crate::Diag::begin) |
//! | `routes`, `dependencies` | per route (per called service): rate, errors by status, mean and p50/p90/p99, exemplars, recent and since start | the RED histograms |
//! | `events` | the latest "what changed" events | [`Diag::events`](crate::Diag::events) |
//!
//! `routes`, `dependencies`, `requests` and `queues` also read as text (`Accept:
//! text/plain` or `?format=text` on `/debug/state/{name}`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use diag_core::EndpointRequest;
//! let diag = diag_core::Diag::builder().build().unwrap(); // no token: loopback only
//! let _slow = diag.in_flight().start("GET", "/slow");
//! let req = EndpointRequest {
//!     method: "GET".into(),
//!     path: "/debug/state/requests".into(),
//!     headers: vec![("accept".into(), "text/plain".into())],
//!     peer: Some("127.0.0.1:50312".parse().unwrap()),
//!     ..Default::default()
//! };
//! let text = String::from_utf8(diag.serve(req).await.body).unwrap();
//! assert!(text.starts_with("requests   1 in flight"));
//! assert!(text.contains("\nGET     /slow          1"));
//! # }
//! ```
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use diag_core::EndpointRequest;
//! let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
//! diag.state().register("cache", || serde_json::json!({"entries": 12})).unwrap();
//! let req = EndpointRequest {
//!     method: "GET".into(),
//!     path: "/debug/state".into(),
//!     headers: vec![("authorization".into(), "Bearer s3cret".into())],
//!     ..Default::default()
//! };
//! let state: serde_json::Value = serde_json::from_slice(&diag.serve(req).await.body).unwrap();
//! assert_eq!(state["cache"]["value"]["entries"], 12);
//! assert_eq!(state["process"]["status"], "ok"); // a built-in provider
//! # }
//! ```

pub(crate) mod config;
mod error_layer;
pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod in_flight;
pub(crate) mod kill_switch;
pub(crate) mod process;
pub(crate) mod queues;
pub(crate) mod redaction;
mod registry;
mod report;
mod response_cap;
pub(crate) mod routes;
pub(crate) mod routes_text;
pub(crate) mod text;

pub use config::ConfigValueError;
pub use error_layer::ErrorLayer;
pub use errors::{ErrorRecord, ErrorRing, MAX_ERROR_FIELDS, MAX_ERROR_TARGETS, MAX_ERROR_TEXT};
pub use in_flight::{AGE_PROBES, AGE_SLOTS, InFlight, InFlightGuard, MAX_ROUTES};
pub use queues::{
    MAX_QUEUES, MAX_SAMPLES, MIN_RATE_WINDOW, QueueProbe, QueueSnapshot, RATE_WINDOW,
};
pub use redaction::{DEFAULT_SECRET_KEYS, DEFAULT_SECRET_WORDS, REDACTED, SecretKeys};
pub use registry::{MAX_PROVIDERS, RegisterError, StateRegistry};
pub use report::{ProviderReport, ProviderStatus};
pub use routes::{MAX_ROUTES_SHOWN, MAX_SNAPSHOTS, SNAPSHOT_EVERY, SNAPSHOT_MAX_AGE, WINDOW};
