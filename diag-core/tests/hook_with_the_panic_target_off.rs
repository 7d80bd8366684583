//! A panic inside the subscriber on a normal request while a debug request runs on
//! another thread, with the service's filter turning diag's `panic` target off: the
//! per-layer filter then asks whether the event belongs to a debug request, and must
//! not look at the current span (the fmt layer holds its extensions). (Not named `panic…`:
//! `panic=off` would turn this crate's own target off too.) Its own process:
//! the panic hook and the global subscriber are global.

use std::sync::mpsc;

use diag_core::Diag;
use tracing_subscriber::{EnvFilter, fmt};

mod panicking;

#[test]
fn a_panic_on_a_normal_request_with_the_panic_target_off_does_not_hang() {
    let diag = Diag::builder().token("tok").build().unwrap().leak();
    diag.init_tracing(
        fmt::layer().with_writer(std::io::sink),
        EnvFilter::new("info,panic=off"),
    )
    .unwrap();
    let debug = panicking::begin(&diag, "/slow", &vec![("x-debug".into(), "tok".into())]);
    assert!(debug.debug_id().is_some());
    let (done, finished) = mpsc::channel();
    let on_thread = diag.clone();
    std::thread::spawn(move || {
        let guard = panicking::begin(&on_thread, "/who", &vec![]);
        let span = {
            let _entered = guard.enter();
            tracing::info_span!("handler", user = tracing::field::Empty)
        };
        let _entered = guard.enter();
        panicking::record_boom(span);
        done.send(()).unwrap();
    });
    panicking::wait_or_exit(&finished, "the normal request's thread");
    drop(debug);
}
