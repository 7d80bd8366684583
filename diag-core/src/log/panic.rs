//! Panics as ERROR events, so a handler's panic shows where on-call looks: the `errors`
//! state provider (with the trace id of the request it happened in), the service's log
//! output, an exported debug trace.

use std::cell::Cell;
use std::sync::Once;

/// The target of the WARN event a state provider's panic becomes instead.
pub(crate) const PROVIDER_PANIC_TARGET: &str = "diag.state_provider";

thread_local! {
    /// Set while this thread runs a `/debug/state` provider.
    static IN_PROVIDER: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread logs a panic from the hook.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is logging a panic: diag's filters then read no span (the panic
/// may have come from inside the subscriber, a layer holding the current span's
/// extensions while it records a field), and answer from the request scope alone.
#[inline]
pub(crate) fn in_panic_hook() -> bool {
    IN_HOOK.with(Cell::get)
}

/// Runs `f` (a state provider's call or one poll of its future) marked as a provider's:
/// a panic in it is a WARN under [`PROVIDER_PANIC_TARGET`], not an ERROR. Its report
/// already says `provider panicked: …`; as an ERROR, every read of a broken provider
/// would add one to the `errors` ring (pushing the service's own errors out) and to
/// `diag_errors_total`, and fire alerts because on-call was looking.
pub(crate) fn as_provider<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_PROVIDER.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(IN_PROVIDER.with(|c| c.replace(true)));
    f()
}

/// The target of the ERROR event a panic becomes.
///
/// ```
/// use diag_core::log::{PANIC_TARGET, log_panics};
/// use tracing_subscriber::prelude::*;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// log_panics();
/// let subscriber = tracing_subscriber::registry().with(diag.error_layer());
/// tracing::subscriber::with_default(subscriber, || {
///     let _ = std::panic::catch_unwind(|| panic!("out of stock"));
/// });
/// let latest = diag.errors().latest();
/// assert_eq!(latest[0].target, PANIC_TARGET);
/// assert_eq!(latest[0].message, "panicked: out of stock");
/// ```
pub const PANIC_TARGET: &str = "panic";

/// From now on, logs every panic as an ERROR event (target [`PANIC_TARGET`], message
/// `panicked: <payload>`, fields `location` and `thread`), then runs the panic hook that
/// was set before (Rust's default prints the panic to stderr, as ever). A panic while a
/// request is current carries its trace id, like any event. Installed once per process,
/// whatever the number of calls; [`Diag::init_tracing`](crate::Diag::init_tracing) calls
/// it.
///
/// ```
/// diag_core::log::log_panics();
/// let caught = std::panic::catch_unwind(|| panic!("boom"));
/// assert!(caught.is_err());
/// ```
pub fn log_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(a payload that is not text)");
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let thread = std::thread::current();
            struct Reset(bool);
            impl Drop for Reset {
                fn drop(&mut self) {
                    IN_HOOK.with(|c| c.set(self.0));
                }
            }
            let _reset = Reset(IN_HOOK.with(|c| c.replace(true)));
            // The events have no parent span (`parent: None`): a panic may come from
            // inside the subscriber (a field's `Display` that panics while a layer records
            // it, holding the span's extensions), and a layer that read the current span
            // to format this event would wait on itself for good. The request's trace id
            // comes from its scope, not from a span.
            if IN_PROVIDER.with(Cell::get) {
                tracing::warn!(
                    target: PROVIDER_PANIC_TARGET,
                    parent: None,
                    location = location.as_deref().unwrap_or("unknown"),
                    "a /debug/state provider panicked: {message}"
                );
                return previous(info);
            }
            tracing::error!(
                target: PANIC_TARGET,
                parent: None,
                location = location.as_deref().unwrap_or("unknown"),
                thread = thread.name().unwrap_or("unnamed"),
                "panicked: {message}"
            );
            previous(info);
        }));
    });
}
