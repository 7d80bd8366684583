//! # diag-actix
//!
//! [diag](diag_core) for actix-web 4. [`DiagMiddleware`] watches every request (route
//! templates from actix's `match_pattern`), and [`configure`] mounts the diagnostics
//! endpoints (`/metrics`, `/debug` and diag's paths under it, each on its own), served by
//! diag-core's framework-neutral handlers; it also adds `web::Data<Diag>`.
//!
//! Order: in actix the last `.wrap(..)` is the outermost. Wrap `DiagMiddleware` last, so it
//! counts the statuses other middleware makes; a `NormalizePath` inside it is fine (a
//! request whose route actix finds only once routing ran is counted under that route).
//! Register your own routes at diag's paths (there should be none) before `configure` to
//! keep them, after it to lose them to diag's. Configuration comes from the builder or
//! [`Diag::from_env`](diag_core::Diag::from_env). An error a middleware inside diag returns
//! instead of a response is counted under the status of the response actix makes of it,
//! but that response, made after diag, carries no `traceparent`.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let diag = diag_core::Diag::builder().service("orders").build().unwrap();
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(diag_actix::DiagMiddleware::new(&diag))
//!             .configure(diag_actix::configure(&diag))
//!             .route("/", web::get().to(|| async { "hello" }))
//!     })
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! }
//! ```

#![warn(missing_docs)]

mod endpoints;
mod headers;
mod middleware;

/// diag's framework-neutral core, so that this crate is the only dependency a service
/// needs: `use diag_actix::diag_core;` and every `diag_core::...` path works.
pub use diag_core;
/// The handle and its builder, from the core.
pub use diag_core::{ConfigError, Diag, DiagBuilder, shutdown_signal};

pub use endpoints::configure;
pub use headers::{ActixHeaders, ActixHeadersMut};
pub use middleware::{DiagActixBody, DiagFuture, DiagMiddleware, DiagMiddlewareService};
