//! The server side of the loopback load benchmark (`benches/load.sh`).
//!
//! `load_target VARIANT ADDR` serves the same small axum app in one of these variants:
//! - `bare`: axum alone;
//! - `diag`: with every diag feature on (layer, metrics, log filter, recorder), no debug
//!   traffic unless the client sends `X-Debug`;
//! - `trace`: the stack users pick today, tower-http's `TraceLayer` logging at INFO;
//! - `noop`: axum with an empty `Router::layer` (what any route-aware middleware costs);
//! - `bare_diag_subscriber`: axum alone under diag's subscriber (log filter, error and
//!   debug recording layers), to tell the subscriber's share from the middleware's.
//!
//! Every variant installs the same fmt subscriber at INFO writing to a sink, so the
//! comparison is of the middleware alone. A single-threaded runtime keeps the server on
//! the one core the script pins it to.

use std::net::SocketAddr;

use diag_axum::DiagRouterExt;
use diag_benches::{app, install_subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "bare".into());
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18080".into())
        .parse()?;
    let sink = tracing_subscriber::fmt::layer().with_writer(std::io::sink);

    let router = match variant.as_str() {
        "bare" => {
            tracing_subscriber::registry()
                .with(sink.with_filter(EnvFilter::new("info")))
                .init();
            app()
        }
        "bare_diag_subscriber" => {
            let diag = diag_core::Diag::from_env()?.service("load").build()?;
            install_subscriber(&diag);
            app()
        }
        "noop" => {
            tracing_subscriber::registry()
                .with(sink.with_filter(EnvFilter::new("info")))
                .init();
            app().layer(tower::layer::util::Identity::new())
        }
        "diag" => {
            let diag = diag_core::Diag::from_env()?.service("load").build()?;
            install_subscriber(&diag);
            app().with_diag(&diag)
        }
        "trace" => {
            tracing_subscriber::registry()
                .with(sink.with_filter(EnvFilter::new("info")))
                .init();
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
                "unknown variant `{other}`: use bare, diag, trace, noop or bare_diag_subscriber"
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
