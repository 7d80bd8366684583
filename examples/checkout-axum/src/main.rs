//! `cargo run -p checkout-axum`: the demo service on `LISTEN` (default 127.0.0.1:8080).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use checkout_axum::{Config, app};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The error's own words (a bad DIAG_* value names the variable), not its Debug form.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("checkout-axum: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let diag = diag_core::Diag::from_env()?
        .service("checkout")
        .version(env!("CARGO_PKG_VERSION"))
        .git_sha(option_env!("GIT_SHA"))
        .build()?
        // The process's one Diag: its per-request clones then write no shared counter.
        .leak();
    checkout_axum::telemetry::init(&diag, std::io::stdout, std::io::stdout().is_terminal());

    let config = Config::from_env();
    let router = app(&diag, &config);
    if let Some(admin) = diag_axum::admin::serve_configured(&diag).await? {
        tracing::info!("diagnostics on http://{}/debug", admin.local_addr());
    }
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    tracing::info!("checkout listening on http://{}", listener.local_addr()?);
    if !diag.has_token() {
        tracing::warn!("DIAG_TOKEN is not set: /debug/* answers loopback clients only");
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    // Ctrl-C, or SIGTERM (what Kubernetes, systemd and docker send).
    .with_graceful_shutdown(diag_core::shutdown_signal())
    .await?;
    // The last second's server spans (and any debug capture still queued) would go
    // down with the process: send them to the collector first.
    diag.flush_traces_on_exit(Duration::from_secs(5)).await;
    Ok(())
}
