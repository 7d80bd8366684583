//! The server side of the loopback load benchmark (`benches/load.sh`).
//!
//! `load_target VARIANT ADDR` serves the same small axum app in one of these variants:
//! - `bare`: axum alone;
//! - `diag`: with every diag feature on (layer, metrics, log filter, recorder), no debug
//!   traffic unless the client sends `X-Debug`;
//! - `trace`: the stack users pick today, tower-http's `TraceLayer` logging at INFO;
//! - `noop`: axum with an empty `Router::layer` (what any route-aware middleware costs);
//! - `bare_diag_subscriber`: axum alone under diag's subscriber (log filter, error and
//!   debug recording layers), to tell the subscriber's share from the middleware's;
//! - `bare_header`: bare axum whose handler adds one static header (`traceparent`,
//!   value `HEADER_LEN` bytes, default 55, no allocation): the baseline issue 4's
//!   normal-path targets are judged against (every response carries a `traceparent`
//!   with diag, as issue 3 asks; DESIGN.md), and, against `HEADER_LEN=1`, the price of
//!   response bytes on loopback;
//! - `touch`: a calibration, axum plus a layer that writes `TOUCH_LINES` cache lines
//!   (default 24) on separate pages per request: against `TOUCH_LINES=0`, the price of a
//!   cache line on the request path between two loopback requests.
//!
//! Every variant installs the same fmt subscriber at INFO writing to a sink, so the
//! comparison is of the middleware alone. A single-threaded runtime keeps the server on
//! the one core the script pins it to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use diag_axum::DiagRouterExt;
use diag_benches::{app, install_subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// 64-bit words in a page and a line: the `touch` variant's stride.
const PAGE_WORDS: usize = (4096 + 64) / 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "bare".into());
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18080".into())
        .parse()?;

    let router = match variant.as_str() {
        "bare" => {
            init_plain_subscriber();
            app()
        }
        "bare_diag_subscriber" => {
            let diag = diag_core::Diag::from_env()?.service("load").build()?;
            install_subscriber(&diag);
            app()
        }
        "touch" => {
            // Calibration, not a middleware: a `map_request` layer that reads and
            // writes TOUCH_LINES cache lines (default 24), each on its own page, per
            // request. Against TOUCH_LINES=0 it prices a cache line the request path
            // touches on loopback.
            init_plain_subscriber();
            let lines = env_usize("TOUCH_LINES", 24);
            let words: &'static [AtomicU64] = Box::leak(
                (0..lines * PAGE_WORDS + 1)
                    .map(|_| AtomicU64::new(0))
                    .collect::<Box<[_]>>(),
            );
            app().layer(axum::middleware::map_request(
                move |req: axum::extract::Request| async move {
                    for line in 0..lines {
                        let word = &words[line * PAGE_WORDS];
                        word.store(word.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    }
                    req
                },
            ))
        }
        "bare_header" => {
            // Calibration, not a middleware: bare axum whose handler adds one static
            // header of HEADER_LEN bytes (default 55, a `traceparent`'s length).
            init_plain_subscriber();
            let len = env_usize("HEADER_LEN", 55);
            let value: &'static str = Box::leak("0".repeat(len).into_boxed_str());
            axum::Router::new().route(
                "/products/{id}",
                axum::routing::get(move |id| async move {
                    let header = (
                        axum::http::HeaderName::from_static("traceparent"),
                        axum::http::HeaderValue::from_static(value),
                    );
                    ([header], diag_benches::product(id).await)
                }),
            )
        }
        "noop" => {
            init_plain_subscriber();
            app().layer(tower::layer::util::Identity::new())
        }
        "diag" => {
            let diag = diag_core::Diag::from_env()?.service("load").build()?;
            install_subscriber(&diag);
            app().with_diag(&diag)
        }
        "diag_leaked" => {
            // As a service that follows the README: the process's one `Diag`, leaked.
            let diag = diag_core::Diag::from_env()?.service("load").build()?.leak();
            install_subscriber(&diag);
            app().with_diag(&diag)
        }
        "trace" => {
            init_plain_subscriber();
            app().layer(
                tower_http::trace::TraceLayer::new_for_http()
                    .make_span_with(
                        tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO),
                    )
                    .on_response(
                        tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                    ),
            )
        }
        other => {
            return Err(format!(
                "unknown variant `{other}`: use bare, diag, diag_leaked, trace, noop, bare_diag_subscriber, bare_header or touch"
            )
            .into());
        }
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    })?;
    Ok(())
}

use tracing_subscriber::Layer as _;

/// The subscriber every variant without diag's gets: fmt at INFO, writing to a sink.
fn init_plain_subscriber() {
    let sink = tracing_subscriber::fmt::layer().with_writer(std::io::sink);
    tracing_subscriber::registry()
        .with(sink.with_filter(EnvFilter::new("info")))
        .init();
}

/// A calibration's size from the environment variable `name`, else `default`.
fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
