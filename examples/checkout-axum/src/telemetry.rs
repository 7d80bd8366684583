//! How the demo wires `tracing` to diag: the service's usual fmt output, filtered by
//! diag's per-request filter, with each request's trace id on its lines, plus diag's error
//! ring and debug-request recorder.

use diag_core::Diag;
use diag_core::log::TraceIdWriter;
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
    // Every line a request writes carries its trace id (`TraceIdWriter`), so the id an
    // exemplar, a response's `traceparent` or the `errors` provider names finds it.
    let output = fmt::layer()
        .with_writer(TraceIdWriter::new(writer))
        .with_ansi(ansi);
    diag.init_tracing(output, service_filter)
        .expect("no other global tracing subscriber");
}
