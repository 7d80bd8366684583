//! Per-request diagnostic mode.
//!
//! A request carrying `X-Debug` with a valid credential (the debug token, a signed
//! short-lived credential, or `1` from a trusted network) runs in diagnostic mode, within
//! a budget: its DEBUG (or, with `X-Debug-Level: trace`, TRACE) logs and its spans are
//! recorded, its bodies are captured up to a cap, its response carries `Server-Timing`,
//! `X-Debug-Id` and `X-Trace-Id`, and the capture lands in the [`FlightRecorder`],
//! which redacts it for every reader, served at `/debug/requests[/{id}]`.
//!
//! The path through this module, for an adapter:
//! 1. [`Diag::debug_decision`](crate::Diag::debug_decision) → [`Decision`];
//! 2. on [`Decision::Debug`], [`Diag::start_debug`](crate::Diag::start_debug) →
//!    `Arc<`[`DebugRequest`]`>`; its [`session`](DebugRequest::session) goes into the
//!    request's scope; otherwise [`Decision::status_header`] may go on the response;
//! 3. request body frames → [`DebugRequest::request_chunk`], its end →
//!    [`DebugRequest::request_end`];
//! 4. response head → [`DebugRequest::response_head`] (returns headers to add);
//! 5. response body frames → [`DebugRequest::response_chunk`], its end →
//!    [`DebugRequest::response_end`]; dropped early → [`DebugRequest::finish_incomplete`]
//!    (or just drop the last handle).

pub(crate) mod base64;
mod budget;
pub(crate) mod capture;
mod config;
mod credential;
mod decision;
mod mode;
mod recorder;
pub(crate) mod redact;
mod redact_json;
mod redact_text;
mod redact_xml;
mod request;
mod server_timing;
mod session;
mod signed;
pub(crate) mod stored;
mod tap;
pub(crate) mod throttle;
pub(crate) mod waterfall;

pub use budget::DebugBudget;
pub use capture::{
    Capture, CapturedBody, CapturedLog, CapturedRequest, CapturedResponse, CapturedSpan,
};
pub(crate) use config::DebugConfig;
pub use credential::{MAX_CREDENTIAL_BYTES, RejectReason, WARN_INTERVAL};
pub use decision::Decision;
pub use mode::{DebugMode, MintError};
pub use recorder::{FlightRecorder, RecorderStats};
pub use redact::{ALWAYS_REDACTED_HEADERS, BodyRedaction, DEFAULT_FIELDS, REDACTED};
pub use request::DebugRequest;
pub use server_timing::{MAX_TIMINGS, debug_response_headers, server_timing};
pub use session::{DebugLevel, DebugSession, LogLine, STILL_OPEN_FIELD, SpanTiming, StaticText};
pub use signed::{MAX_TTL, sign_credential};
pub use tap::{BodySide, BodyTap};
pub use waterfall::{Safe, SafeLines, render as render_waterfall};
