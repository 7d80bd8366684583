//! [`Diag::init_tracing`]: the subscriber most services want, in one call.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::Diag;

impl Diag {
    /// Installs the process's global `tracing` subscriber as most services want it:
    /// `output` (your fmt layer, or any layer that writes log lines) behind diag's
    /// per-request filter over `service_filter` ([`log_filter`](Self::log_filter): a
    /// request with a valid `X-Debug` logs at DEBUG, only it), diag's error ring
    /// ([`error_layer`](Self::error_layer), the `errors` state provider) and its debug
    /// recorder ([`debug_recording_layer`](Self::debug_recording_layer), the spans and
    /// log lines of a capture). Panics become ERROR events too
    /// ([`log_panics`](crate::log::log_panics): in the ring with their request's trace
    /// id; the hook set before still runs). With other layers of your own, compose
    /// those yourself (see the [`log`](crate::log) module).
    ///
    /// Fails, as `tracing_subscriber`'s `try_init` does, when a global subscriber is
    /// already set.
    ///
    /// ```
    /// use tracing_subscriber::{EnvFilter, fmt};
    /// let diag = diag_core::Diag::builder().service("checkout").build().unwrap();
    /// diag.init_tracing(fmt::layer(), EnvFilter::new("info")).unwrap();
    /// tracing::info!("ready");
    /// // Only one global subscriber per process.
    /// assert!(diag.init_tracing(fmt::layer(), EnvFilter::new("info")).is_err());
    /// ```
    pub fn init_tracing<L>(&self, output: L, service_filter: EnvFilter) -> Result<(), TryInitError>
    where
        L: Layer<Registry> + Send + Sync + 'static,
    {
        tracing_subscriber::registry()
            .with(output.with_filter(self.log_filter(service_filter)))
            .with(self.error_layer())
            .with(self.debug_recording_layer())
            .try_init()?;
        crate::log::log_panics();
        // What `build` had to say before there was a subscriber to say it to.
        for note in std::mem::take(&mut *self.inner.pending_warnings.lock()) {
            tracing::warn!(target: "diag", "{note}");
        }
        Ok(())
    }
}
