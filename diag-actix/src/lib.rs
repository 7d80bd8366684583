//! # diag-actix
//!
//! [diag](diag_core) for actix-web 4. [`DiagMiddleware`] watches every request (route
//! templates from actix's `match_pattern`), and [`configure`] mounts the diagnostics
//! endpoints (`/metrics`, `/debug`, `/debug/...`), served by diag-core's framework-neutral
//! handlers.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let diag = diag_core::Diag::builder().service("orders").build().unwrap();
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(diag_actix::DiagMiddleware::new(diag.clone()))
//!             .configure(diag_actix::configure(diag.clone()))
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

pub use endpoints::configure;
pub use headers::{ActixHeaders, ActixHeadersMut};
pub use middleware::{DiagActixBody, DiagFuture, DiagMiddleware, DiagMiddlewareService};
