//! `cargo run -p greeter-grpc`: the gRPC demo on `LISTEN` (default 127.0.0.1:50051),
//! diag's endpoints on `DIAG_ADMIN_ADDR` (default 127.0.0.1:9902).

use std::time::Duration;

use tracing_subscriber::{EnvFilter, fmt};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The error's own words (a bad DIAG_* value names the variable), not its Debug form.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("greeter-grpc: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = diag_core::Diag::from_env()?
        .service("greeter")
        .version(env!("CARGO_PKG_VERSION"))
        // Labelled from their first call, even a failed one.
        .grpc_method("/greeter.v1.Greeter/SayHello")
        .grpc_method("/greeter.v1.Greeter/Countdown");
    if std::env::var_os("DIAG_ADMIN_ADDR").is_none() {
        builder = builder.admin_addr("127.0.0.1:9902");
    }
    let diag = builder.build()?.leak();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    diag.init_tracing(
        // Colours only on a terminal: a log file keeps no escape codes.
        fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .map_writer(diag_core::log::TraceIdWriter::new),
        filter,
    )?;

    let addr = diag.admin_addr().expect("an admin address is always set");
    let admin = diag_tower::admin::serve(&diag, addr).await?;
    tracing::info!("diagnostics on http://{}/debug", admin.local_addr());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:50051".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!("greeter (gRPC) listening on {}", listener.local_addr()?);
    if !diag.has_token() {
        tracing::warn!("DIAG_TOKEN is not set: /debug/* answers loopback clients only");
    }
    // Ctrl-C, or SIGTERM (what Kubernetes, systemd and docker send).
    greeter_grpc::serve(diag.clone(), listener, diag_core::shutdown_signal()).await?;
    // The last second's server spans (and any debug capture still queued) would go
    // down with the process: send them to the collector first.
    diag.flush_traces_on_exit(Duration::from_secs(5)).await;
    Ok(())
}
