//! The "what changed" timeline: start, configuration reloads, log-level changes, kill
//! switch flips, debug budget exhaustion, metric overflow, and whatever the service
//! records (feature flags, deploy markers).
//!
//! Read it at `GET /debug/events` (`?since=<seq>` for what came after an event already
//! seen, `?kind=<kind>` for one kind, `?limit=<n>`) or in the `events` state provider.
//!
//! The kinds diag itself records (constants in [`kinds`]):
//!
//! | kind | recorded when | by |
//! |---|---|---|
//! | `start` | the [`Diag`](crate::Diag) is built (service, version, git sha) | the builder |
//! | `config_reload` | [`Diag::reload_config`](crate::Diag::reload_config) (changed paths, never values) | the `config` provider |
//! | `log_level` | the runtime log level changes or its TTL reverts it | `/debug/log-level` |
//! | `kill_switch` | [`Diag::set_disabled`](crate::Diag::set_disabled) changes the switch | the `Diag` handle |
//! | `debug_budget_exhausted` | debug requests are refused because the budget ran out | the debug decision |
//! | `metric_overflow` | a metric family reaches its label-set cap | the metrics registry |
//!
//! A service records its own with [`Events::record`], e.g. `diag.events().record("deploy", "v1.4.2 rolled out")`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use diag_core::EndpointRequest;
//! let diag = diag_core::Diag::builder().build().unwrap();
//! diag.events().record("deploy", "v1.4.2 rolled out");
//! let req = EndpointRequest {
//!     method: "GET".into(),
//!     path: "/debug/events".into(),
//!     query: Some("kind=deploy".into()),
//!     peer: Some("127.0.0.1:40000".parse().unwrap()),
//!     ..Default::default()
//! };
//! let page: serde_json::Value = serde_json::from_slice(&diag.serve(req).await.body).unwrap();
//! assert_eq!(page["events"][0]["message"], "v1.4.2 rolled out");
//! assert_eq!(page["last_seq"], 2); // `start` was 1
//! # }
//! ```

pub mod kinds;
mod timeline;

pub use timeline::{Event, Events};
