//! `cargo run -p orders-actix`: the demo orders service on `LISTEN` (default
//! 127.0.0.1:8081).

use std::io::IsTerminal;
use std::time::Duration;

use orders_actix::{Config, init_tracing, server, settings};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    // The error's own words (a bad DIAG_* value names the variable), not its Debug form.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orders-actix: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The process's one Diag: its per-request clones then write no shared counter.
    let diag = settings(diag_core::Diag::from_env()?).build()?.leak();
    init_tracing(&diag, std::io::stdout, std::io::stdout().is_terminal());
    let config = Config::from_env();
    let listener = std::net::TcpListener::bind(&config.listen)?;
    tracing::info!("orders listening on http://{}", listener.local_addr()?);
    if !diag.has_token() {
        tracing::warn!("DIAG_TOKEN is not set: /debug/* answers loopback clients only");
    }
    // actix stops on Ctrl-C by itself, after its graceful shutdown.
    server(diag.clone(), &config, listener)?.await?;
    diag.flush_traces_on_exit(Duration::from_secs(5)).await;
    Ok(())
}
