//! A panic inside the subscriber on a normal request while a debug request runs on
//! another thread, with the service's filter turning diag's `panic` target off: the
//! per-layer filter then asks whether the event belongs to a debug request, and must
//! not look at the current span (the fmt layer holds its extensions). (Not named `panic…`:
//! `panic=off` would turn this crate's own target off too.) Its own process:
//! the panic hook and the global subscriber are global.

use std::sync::mpsc;
use std::time::Duration;

use diag_core::Diag;
use diag_core::request::RequestView;
use tracing_subscriber::{EnvFilter, fmt};

mod panicking;
use panicking::Boom;

#[test]
fn a_panic_on_a_normal_request_with_the_panic_target_off_does_not_hang() {
    let diag = Diag::builder().token("tok").build().unwrap().leak();
    diag.init_tracing(
        fmt::layer().with_writer(std::io::sink),
        EnvFilter::new("info,panic=off"),
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
    let (done, finished) = mpsc::channel();
    let on_thread = diag.clone();
    std::thread::spawn(move || {
        let guard = on_thread.begin(&RequestView {
            method: "GET",
            route: Some("/who"),
            uri: "/who",
            headers: &(),
            peer: &|| None,
        });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _entered = guard.enter();
            let span = tracing::info_span!("handler", user = tracing::field::Empty);
            // Kept for good: the panic poisons the span's slot in the registry.
            std::mem::forget(span.clone());
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
            eprintln!("the normal request's thread hung in the panic hook");
            std::process::exit(101)
        });
    drop(debug);
}
