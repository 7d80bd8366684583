//! A panic inside the subscriber while a debug request is in flight and the panicking
//! thread has no request scope: work a debug request handed to another thread with its
//! span (`.instrument(span)`), whose field's `Display` panics while the fmt layer records
//! it. diag's filters answer from the scope alone while the hook logs the panic, never
//! from the span whose extensions the fmt layer holds. Its own process: the panic hook
//! and the global subscriber are global (a scoped dispatcher would hide the re-entrance).

use std::sync::mpsc;
use std::time::Duration;

use diag_core::Diag;
use diag_core::request::RequestView;
use tracing_subscriber::{EnvFilter, fmt};

mod panicking;
use panicking::Boom;

#[test]
fn a_panic_in_a_debug_requests_span_on_another_thread_does_not_hang() {
    let diag = Diag::builder().token("tok").build().unwrap().leak();
    diag.init_tracing(
        fmt::layer().with_writer(std::io::sink),
        EnvFilter::new("info"),
    )
    .unwrap();
    let h = vec![("x-debug".to_owned(), "tok".to_owned())];
    let debug = diag.begin(&RequestView {
        method: "GET",
        route: Some("/slow"),
        uri: "/slow",
        headers: &h,
        peer: &|| None,
    });
    assert!(debug.debug_id().is_some());
    // A span made inside the debug request, handed to other work.
    let span = {
        let _entered = debug.enter();
        tracing::info_span!("job", user = tracing::field::Empty)
    };
    // Kept for good: the panic poisons the span's slot in the registry.
    std::mem::forget(span.clone());

    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _in_span = span.enter();
            span.record("user", tracing::field::display(Boom));
        }));
        assert!(caught.is_err());
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            // The hung thread holds the panic hook's lock, which the test harness takes
            // on the way out: exit, or the failed test would never end.
            eprintln!("the worker thread hung in the panic hook");
            std::process::exit(101)
        });
    let errors = diag.errors().latest();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].message, "panicked: a Display that panics");
    drop(debug);
}
