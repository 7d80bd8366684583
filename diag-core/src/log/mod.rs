//! diag's `tracing` integration: per-request verbosity, a record of each debug request's
//! spans and logs, and a log level that changes at runtime.
//!
//! A service keeps its usual log layer and hands its usual filter to diag, in one call
//! ([`Diag::init_tracing`](crate::Diag::init_tracing)) or composed with layers of its own:
//!
//! ```
//! use tracing_subscriber::{EnvFilter, fmt, prelude::*};
//! let diag = diag_core::Diag::builder().service("checkout").build().unwrap();
//! tracing_subscriber::registry()
//!     .with(fmt::layer().with_filter(diag.log_filter(EnvFilter::new("info"))))
//!     .with(diag.debug_recording_layer())
//!     .init();
//! ```
//!
//! - [`LogFilter`] ([`Diag::log_filter`](crate::Diag::log_filter)): the service's
//!   filter, OR "inside a debug request whose level admits this". A request sent with
//!   `X-Debug` logs its own DEBUG (or TRACE) lines, every other request logs as before.
//! - [`DebugRecordingLayer`] ([`Diag::debug_recording_layer`](crate::Diag::debug_recording_layer)):
//!   writes a debug request's span timings and log lines into its
//!   [`DebugSession`](crate::debug::DebugSession).
//! - [`LogLevel`] ([`Diag::log_level`](crate::Diag::log_level)): swaps the service's
//!   filter for another directive, optionally for a TTL; served at `/debug/log-level`.
//! - [`request_span`]: the root span of a request; its `trace_id` field puts the trace
//!   id on every log line of a debug request.
//! - [`TraceIdWriter`]: puts the trace id on every other request's log lines too, as the
//!   line is written (`fmt::layer().map_writer(TraceIdWriter::new)`).
//!
//! How a request is found: while an adapter polls a request's handler, the request's
//! [`RequestScope`](crate::request::RequestScope) is current on the thread; spans opened
//! then (first of all the [`request_span`]) carry a debug mark in their extensions,
//! which child spans inherit, so work spawned with `.instrument(span)` is found too.
//! Cost: while no debug request is in flight anywhere in the process, diag's filters
//! hand tracing the service filter's own callsite interest and max level, so a
//! disabled `debug!` costs what it costs without diag. The first debug request to
//! start (and the last to end) rebuilds tracing's callsite interest cache; while any
//! runs, callsites are re-checked per event and a check outside a debug request ends
//! after one relaxed atomic load.
//!
//! What the request path does for a debug request, in order: hold a
//! `DebugInFlight` guard (crate-private) for the request's whole life, create the root
//! span with [`request_span`], then poll the handler with the scope entered
//! ([`RequestScope::enter`](crate::request::RequestScope::enter)) and the span entered
//! (`.instrument(span)`).

mod debug_request_filter;
mod fields;
mod filter;
mod in_flight;
mod init;
mod level;
mod mark;
mod panic;
mod recorder_layer;
mod request_span;
mod trace_id_writer;

pub use debug_request_filter::DebugRequestFilter;
pub use filter::LogFilter;
pub use level::{LogLevel, LogLevelError, LogLevelState, MAX_DIRECTIVE_BYTES, MAX_TTL};
pub(crate) use panic::as_provider;
pub use panic::{PANIC_TARGET, log_panics};
pub use recorder_layer::DebugRecordingLayer;
pub use request_span::request_span;
pub use trace_id_writer::{TraceIdLine, TraceIdWriter};

#[allow(unused_imports)] // called by the request path as it lands
pub(crate) use in_flight::{DebugInFlight, debug_begin, debug_end};
pub(crate) use level::LogLevelControl;

#[cfg(test)]
mod tests;
