//! How the demo wires `tracing` to diag: the service's usual fmt output, filtered by
//! diag's per-request filter, plus diag's error ring and debug-request recorder.

use diag_core::Diag;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber writing log lines to `writer` (with colours when
/// `ansi`). The level comes from `RUST_LOG` (default `info`); a request with a valid
/// `X-Debug` logs at DEBUG anyway, and only that request.
pub fn init<W>(diag: &Diag, writer: W, ansi: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let service_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = fmt::layer().with_writer(writer).with_ansi(ansi);
    diag.init_tracing(output, service_filter)
        .expect("no other global tracing subscriber");
}
