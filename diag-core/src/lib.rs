//! # diag-core
//!
//! The framework-neutral core of **diag**: it makes a running web service explain itself
//! during an incident. Adapters (`diag-tower`, `diag-axum`, `diag-actix`) convert their
//! framework's types and call into this crate; nothing here names a web framework.
//!
//! - [`Diag`]: the handle a service builds once ([`Diag::builder`], [`Diag::from_env`]).
//! - [`StateRegistry`]: what components believe, served at `/debug/state`.
//! - [`Diag::serve`]: the diagnostics endpoints as plain functions
//!   ([`EndpointRequest`] in, [`DiagResponse`] out), guarded by a bearer token or,
//!   with none configured, loopback-only access.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use diag_core::{Diag, EndpointRequest};
//!
//! let diag = Diag::builder().service("checkout").token("s3cret").build().unwrap();
//! diag.state().register("cache", || serde_json::json!({"entries": 12})).unwrap();
//!
//! let req = EndpointRequest {
//!     method: "GET".into(),
//!     path: "/debug/state/cache".into(),
//!     headers: vec![("authorization".into(), "Bearer s3cret".into())],
//!     ..Default::default()
//! };
//! let resp = diag.serve(req).await;
//! assert_eq!(resp.status, 200);
//! # }
//! ```

#![warn(missing_docs)]

mod auth;
pub mod body;
mod clock;
pub mod debug;
mod diag;
pub mod endpoint;
pub mod events;
mod headers;
pub mod log;
pub mod metrics;
pub mod net;
pub mod otlp;
mod process;
pub mod request;
mod shutdown;
pub mod state;
pub mod trace;

pub use auth::AuthError;
pub use diag::{ConfigError, Diag, DiagBuilder};
pub use endpoint::{DiagResponse, ENDPOINT_DEFAULT_TTL, EndpointRequest};
pub use headers::{HeaderView, ResponseHeaders};
pub use shutdown::shutdown_signal;
pub use state::{ProviderReport, ProviderStatus, RegisterError, StateRegistry};

#[cfg(test)]
pub(crate) mod test_support;
