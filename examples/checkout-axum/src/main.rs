//! `cargo run -p checkout-axum`: the demo service on `LISTEN` (default 127.0.0.1:8080).

use std::net::SocketAddr;

use checkout_axum::{Config, app};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let diag = diag_core::Diag::from_env()?
        .service("checkout")
        .version(env!("CARGO_PKG_VERSION"))
        .build()?;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let config = Config::from_env();
    let router = app(&diag, &config);
    if let Some(addr) = diag.admin_addr() {
        let admin = diag_tower::admin::serve(diag.clone(), addr).await?;
        tracing::info!("diagnostics on http://{}/debug", admin.local_addr());
    }
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    tracing::info!("checkout listening on http://{}", listener.local_addr()?);
    if std::env::var_os("DIAG_TOKEN").is_none() {
        tracing::warn!("DIAG_TOKEN is not set: /debug/* answers loopback clients only");
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
