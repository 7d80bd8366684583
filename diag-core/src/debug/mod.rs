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
//!
//! # Credentials
//!
//! `X-Debug` (see [`DEFAULT_HEADER`]; renamed with `DIAG_DEBUG_HEADER`) carries one of:
//! - the debug token (`DIAG_DEBUG_TOKEN`, else the endpoint token `DIAG_TOKEN`), compared
//!   in constant time;
//! - `1`, honoured only from a trusted debug network (`DIAG_DEBUG_NETWORKS`, default
//!   loopback; the client address behind trusted proxies);
//! - a short-lived signed credential, `v1.<expiry_unix>.<mac>`: `expiry_unix` is the
//!   expiry in whole seconds since the Unix epoch (decimal), `mac` the unpadded base64url
//!   encoding of `HMAC-SHA256(key, "diag-debug-v1." + expiry_unix)`, keyed with the debug
//!   token. It lives at most [`MAX_TTL`]. Mint one in code with
//!   [`Diag::mint_debug_credential`](crate::Diag::mint_debug_credential) or
//!   [`sign_credential`], from a shell with the `diag-mint` binary
//!   (`DIAG_TOKEN=… cargo run -p diag-core --bin diag-mint -- 300`), or with openssl
//!   alone:
//!
//! ```sh
//! exp=$(( $(date +%s) + 300 ))
//! mac=$(printf 'diag-debug-v1.%s' "$exp" \
//!   | openssl dgst -sha256 -hmac "$DIAG_TOKEN" -binary \
//!   | openssl base64 -A | tr '+/' '-_' | tr -d '=')
//! curl -H "X-Debug: v1.$exp.$mac" https://service/checkout
//! ```
//!
//! When a request carries several `X-Debug` headers, the first decides. Anything else
//! (a wrong, expired, malformed or oversized value) is refused: the request is served
//! normally, `diag_debug_rejected_total{reason}` counts it, and a WARN (target
//! `diag_core::debug::credential`) is logged at most once per [`WARN_INTERVAL`] per
//! reason. Over the budget, the response says `X-Debug-Status: budget-exhausted`, and a
//! `debug_budget_exhausted` event (and WARN) is recorded at most once per 10 s.

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
pub(crate) mod redact_text;
mod redact_xml;
mod request;
mod server_timing;
mod session;
mod signed;
pub(crate) mod stored;
mod tap;
pub(crate) mod throttle;
pub(crate) mod waterfall;

/// The request header that asks for diagnostic mode, unless the builder's
/// [`debug_header`](crate::DiagBuilder::debug_header) names another.
///
/// ```
/// assert_eq!(diag_core::debug::DEFAULT_HEADER, "x-debug");
/// ```
pub const DEFAULT_HEADER: &str = "x-debug";

pub use budget::DebugBudget;
pub use capture::{
    Capture, CapturedBody, CapturedLog, CapturedRequest, CapturedResponse, CapturedSpan,
};
pub use config::DEFAULT_MAX_IN_FLIGHT;
pub(crate) use config::DebugConfig;
pub use credential::{MAX_CREDENTIAL_BYTES, RejectReason, WARN_INTERVAL};
pub use decision::Decision;
pub use mode::{DebugMode, MintError};
pub use recorder::{FlightRecorder, PinOutcome, RecorderStats};
pub use redact::{ALWAYS_REDACTED_HEADERS, BodyRedaction, DEFAULT_FIELDS, REDACTED};
pub use request::DebugRequest;
pub use server_timing::{MAX_TIMINGS, debug_response_headers, server_timing};
pub use session::{DebugLevel, DebugSession, LogLine, STILL_OPEN_FIELD, SpanTiming, StaticText};
pub use signed::{MAX_TTL, sign_credential};
pub use tap::{BodySide, BodyTap};
pub use waterfall::{Safe, SafeLines, render as render_waterfall};
