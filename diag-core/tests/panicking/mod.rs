//! What the panic tests share: a value whose `Display` panics, as a field's formatting
//! can while a layer records it, a request to run it in, and a wait that ends the
//! process when the thread that panicked hangs.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use diag_core::Diag;
use diag_core::request::{RequestGuard, RequestView};

/// Panics when formatted.
pub struct Boom;

impl std::fmt::Display for Boom {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("a Display that panics")
    }
}

/// A `GET path` request with these headers begun on `diag`.
pub fn begin(diag: &Diag, path: &str, headers: &Vec<(String, String)>) -> RequestGuard {
    diag.begin(&RequestView {
        method: "GET",
        route: Some(path),
        uri: path,
        headers,
        peer: &|| None,
    })
}

/// Records [`Boom`] into `span`'s `user` field while the span is entered, so the fmt
/// layer formats it holding the span's extensions; asserts that it panicked. The span
/// is kept for good: the panic poisons its slot in the registry (a service that panics
/// there loses that slot, with or without diag), and a later span must not be handed it.
pub fn record_boom(span: tracing::Span) {
    std::mem::forget(span.clone());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _in_span = span.enter();
        span.record("user", tracing::field::display(Boom));
    }));
    assert!(caught.is_err());
}

/// The next message from the thread that panicked, within 20 s. Past that it hung in
/// the panic hook, holding the hook's lock, which the test harness takes on the way
/// out: the process exits, or the failed test would never end.
pub fn wait_or_exit<T>(from: &Receiver<T>, what: &str) -> T {
    from.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            // Past libtest's capture of `eprintln!`, which exiting would throw away.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "{what}: the thread hung in the panic hook"
            );
            std::process::exit(101)
        })
}
