//! [`shutdown_signal`]: when a service should stop, for its graceful shutdown and the
//! last flush of its traces.

/// Resolves on the first signal that asks the process to stop: Ctrl-C (`SIGINT`), or,
/// on Unix, `SIGTERM`, which Kubernetes, systemd and docker send first. A service that
/// waits only for Ctrl-C dies at once on `SIGTERM`, without its graceful shutdown and
/// without [`Diag::flush_traces_on_exit`](crate::Diag::flush_traces_on_exit): the last
/// second's traces, and the debug captures still queued for the collector, are lost.
/// Logs which signal came, at INFO. Await it on a Tokio runtime (actix-web's is one).
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// let diag = diag_core::Diag::builder().build().unwrap();
/// // With axum: `axum::serve(listener, app).with_graceful_shutdown(diag_core::shutdown_signal())`.
/// let serve = std::future::pending::<()>(); // stands in for the server
/// tokio::select! {
///     _ = serve => {}
///     _ = diag_core::shutdown_signal() => {}
/// }
/// diag.flush_traces_on_exit(std::time::Duration::from_secs(5)).await;
/// # }
/// ```
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                }
                return;
            }
            Err(e) => tracing::warn!("cannot listen for SIGTERM ({e}); Ctrl-C only"),
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("Ctrl-C: shutting down"),
        // No signal will ever come: never resolve rather than stop a healthy service.
        Err(e) => {
            tracing::warn!("cannot listen for Ctrl-C ({e})");
            std::future::pending::<()>().await;
        }
    }
}
