//! A panic inside the subscriber while a debug request is in flight and the panicking
//! thread has no request scope: work a debug request handed to another thread with its
//! span (`.instrument(span)`), whose field's `Display` panics while the fmt layer records
//! it. diag's filters answer from the scope alone while the hook logs the panic, never
//! from the span whose extensions the fmt layer holds. Its own process: the panic hook
//! and the global subscriber are global (a scoped dispatcher would hide the re-entrance).

use std::sync::mpsc;

use diag_core::Diag;
use tracing_subscriber::{EnvFilter, fmt};

mod panicking;

#[test]
fn a_panic_in_a_debug_requests_span_on_another_thread_does_not_hang() {
    let diag = Diag::builder().token("tok").build().unwrap().leak();
    diag.init_tracing(
        fmt::layer().with_writer(std::io::sink),
        EnvFilter::new("info"),
    )
    .unwrap();
    let debug = panicking::begin(&diag, "/slow", &vec![("x-debug".into(), "tok".into())]);
    assert!(debug.debug_id().is_some());
    // A span made inside the debug request, handed to other work.
    let span = {
        let _entered = debug.enter();
        tracing::info_span!("job", user = tracing::field::Empty)
    };

    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        panicking::record_boom(span);
        done.send(()).unwrap();
    });
    panicking::wait_or_exit(&finished, "the worker thread");
    let errors = diag.errors().latest();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].message, "panicked: a Display that panics");
    drop(debug);
}
