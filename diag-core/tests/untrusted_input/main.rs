//! Property tests for diag's non-negotiable: whatever a client sends, diag never breaks
//! the host. Request headers (`X-Debug` credentials, `traceparent`/`tracestate`,
//! `X-Debug-Level`, `X-Forwarded-For`, ...), requests to the diagnostics endpoints, and
//! JSON bodies carrying secret fields are generated at random, mixing fully random bytes
//! with near-valid values (a token with a suffix, a signed credential with a bad or expired
//! signature, a `traceparent` with one byte changed, huge values), and checked against
//! oracles written from the documented behaviour:
//!
//! 1. [`Diag::begin`] + [`RequestGuard::finish`](diag_core::request::RequestGuard::finish)
//!    never panic, add only well-formed headers, keep the handler's, and turn diagnostic
//!    mode on exactly when the credential (or the trusted network) allows it;
//! 2. a valid incoming `traceparent` is continued, anything else starts a fresh trace;
//! 3. [`Diag::serve`] answers every method, path, query and `Accept` with a status from a
//!    small set, refuses everyone the access rules refuse, and its JSON parses;
//! 4. a debug request's capture, as `/debug/requests` serves it (JSON and text), never
//!    shows a secret body field, secret query parameter or credential header, whatever
//!    `Content-Type` the client labelled the JSON body with.
//!
//! Only the public API is used. Inputs print on failure (bytes escaped, huge values
//! abbreviated); failures are not persisted to files.

mod endpoints;
mod redaction;
mod requests;
mod support;
mod trace_context;
